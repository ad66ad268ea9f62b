"""The camera service's MQTT side against a real broker (Debian's mosquitto on loopback,
tests/mqtt_broker.py), killed and restarted: topics, payload = the log line, QoS 1, retained
status, last will, the bounded queue while the broker is away, reconnection."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, wait_for
from mqtt_broker import Mosquitto, Subscriber, mosquitto_missing
from rtsp_server import RtspServer, gst_missing

_MISSING = mosquitto_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
needs_rtsp = pytest.mark.skipif(gst_missing() is not None, reason=gst_missing() or "")


@pytest.fixture
def broker():
    b = Mosquitto().start()
    yield b
    b.kill()


def car_line(i: int):
    return {"camera": "gate", "event": "car", "id": i, "first": 0.0, "last": 1.0, "frames": 5, "color": "red",
            "prob": 0.9, "colors": [{"color": "red", "prob": 0.9}], "box": [0, 0, 10, 10], "moving": True}


def test_queue_while_broker_down_is_bounded_oldest_dropped_then_delivered(broker):
    from stream.config import MqttConfig
    from stream.service.mqtt import MqttPublisher

    pub = MqttPublisher(MqttConfig(port=broker.port, queue_size=5),
                        will={"event": "offline", "source": "service", "t": 0.0, "reason": "connection lost"},
                        online=lambda: {"event": "online", "source": "service", "t": 1.0})
    try:
        wait_for(lambda: pub.connected, 10, "connected")
        pub.publish("gate", "online", {"camera": "gate", "event": "online", "source": "rtsp://x", "t": 0.0})
        wait_for(lambda: pub.pending == 0, 5, "the status sent")
        broker.kill()
        wait_for(lambda: not pub.connected, 10, "the publisher to see the broker gone")
        for i in range(20):
            pub.publish("gate", "car", car_line(i))
        pub.publish("gate", "offline", {"camera": "gate", "event": "offline", "source": "rtsp://x", "t": 2.0,
                                        "reason": "stalled"})
        assert (pub.dropped, pub.pending) == (16, 5)  # 21 queued into 5: the 16 oldest dropped, counted
        sent_before = pub.sent
        broker.start()    # a fresh broker: nothing retained, no sessions
        wait_for(lambda: pub.connects == 2 and pub.pending == 0, 20, "reconnected and the queue delivered")
        assert pub.sent - sent_before >= 5
        sub = Subscriber(broker.port, "carcolor/#")
        try:
            wait_for(lambda: sub.on("carcolor/gate/status") and sub.on("carcolor/service/status"), 10,
                     "the retained status published again to the restarted broker")
            assert sub.on("carcolor/gate/status")[-1]["event"] == "offline"
            assert sub.on("carcolor/service/status")[-1] == {"event": "online", "source": "service", "t": 1.0}
            pub.publish("gate", "car", car_line(99))
            wait_for(lambda: sub.on("carcolor/gate/car"), 10, "a car event after the restart")
            assert sub.on("carcolor/gate/car") == [car_line(99)]
        finally:
            sub.close()
    finally:
        pub.close()


def write_config(folder: Path, source: str, port: int) -> Path:
    p = folder / "cams.yaml"
    p.write_text(yaml.safe_dump({
        "detector": "motion",
        "live": {"open_timeout": 3, "read_timeout": 2, "stall_timeout": 2, "retry_interval": 0.3,
                 "stats_interval": 1},
        "cameras": [{"name": "gate", "source": source}],
        "mqtt": {"port": port}}))
    return p


@needs_rtsp
def test_service_publishes_every_event_through_a_broker_kill_and_restart(tmp_path):
    """carcolor run (a subprocess) with one RTSP camera: the broker SIGKILLed for 4 s while the camera
    also dies and comes back; every status line of the log reaches a persistent subscriber, exactly
    as the log has it, and the stats produced while the broker was down arrive after it restarts."""
    broker = Mosquitto(persistence=True).start()
    cam = RtspServer().start()
    sub = Subscriber(broker.port, "carcolor/#", persistent=True)
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--config",
                             str(write_config(tmp_path, cam.url, broker.port)), "--log", str(log)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: sub.connected.is_set(), 10, "the subscriber")
        wait_for(lambda: len(sub.on("carcolor/gate/stats")) >= 2 or proc.poll() is not None, 60, "stats")
        assert proc.poll() is None
        assert sub.on("carcolor/service/status")[-1]["event"] == "online"
        assert sub.on("carcolor/gate/status")[0]["event"] == "online"
        time.sleep(1.5)   # the subscriber's session saved (autosave every second)
        broker.kill()
        down = time.monotonic()
        cam.kill()        # offline while the broker is away...
        time.sleep(1.0)
        cam.start()       # ...and reconnected
        time.sleep(max(0.0, down + 4.0 - time.monotonic()))
        stats_before = len(sub.on("carcolor/gate/stats"))
        broker.start()
        def lines():
            return [json.loads(x) for x in log.read_text().splitlines()]
        wait_for(lambda: any(r.get("event") == "reconnected" for r in lines()), 20, "the camera back")
        wait_for(lambda: [p["event"] for p in sub.on("carcolor/gate/status")][-1] == "reconnected", 20,
                 "the status lines of the outage")
        assert len(sub.on("carcolor/gate/stats")) >= stats_before + 3    # queued while down, then sent
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert proc.returncode == 130, proc.stderr.read()
        wait_for(lambda: sub.on("carcolor/service/status")[-1]["event"] == "offline", 5, "service offline")
        assert sub.on("carcolor/service/status")[-1]["reason"] == "stopped"
        status = [r for r in lines() if r.get("event") in ("online", "offline", "reconnected")]
        got = sub.on("carcolor/gate/status")
        assert all(s in got for s in status)          # payload == the log line, every one delivered
        stats = [r for r in lines() if r.get("event") == "stats"]
        assert sum(s in sub.on("carcolor/gate/stats") for s in stats) >= len(stats) - 2  # QoS 0 in flight at the kill
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
        cam.kill()
        broker.kill()


@needs_rtsp
def test_last_will_says_the_service_is_offline_when_it_dies(tmp_path, broker):
    cam = RtspServer().start()
    sub = Subscriber(broker.port, "carcolor/service/status")
    proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--config",
                             str(write_config(tmp_path, cam.url, broker.port))],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: sub.on("carcolor/service/status"), 60, "service online")
        assert sub.on("carcolor/service/status")[-1]["event"] == "online"
        proc.kill()       # no goodbye: the broker publishes the will
        proc.wait()
        wait_for(lambda: sub.on("carcolor/service/status")[-1]["event"] == "offline", 10, "the last will")
        assert sub.on("carcolor/service/status")[-1]["reason"] == "connection lost"
        late = Subscriber(broker.port, "carcolor/service/status")
        wait_for(lambda: late.on("carcolor/service/status"), 5, "the retained will")
        assert late.messages[-1][2] is True and late.on("carcolor/service/status")[-1]["event"] == "offline"
        late.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
        cam.kill()
