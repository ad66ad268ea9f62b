"""The camera service against real RTSP servers on loopback (tests/rtsp_server.py): a camera that
comes back is seen within seconds whatever the back-off reached, one camera down does not slow
the others, and SIGTERM stops the whole service within seconds with every log line whole."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, wait_for
from rtsp_server import RtspServer, free_port, gst_missing
from stream.capture import LiveSource
from stream.config import LiveConfig

_MISSING = gst_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")

# Short stall/read timeouts so an outage is noticed quickly; the back-off as shipped (1 s doubling to 30 s).
LIVE = {"open_timeout": 3, "read_timeout": 2, "stall_timeout": 2, "stats_interval": 1}


@pytest.fixture
def servers():
    made = []

    def make(**kw):
        s = RtspServer().start(**kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.kill()


def test_camera_back_after_10s_outage_is_read_within_seconds(servers):
    """Server killed for 10 s: the back-off reached 8 s (1, 2, 4, 8 ...); the probe sees the port
    accept again and the next attempt starts at once: frames within 3 s of the restart."""
    server = servers()
    cfg = LiveConfig(**LIVE)
    assert (cfg.retry_interval, cfg.retry_max_interval, cfg.probe_interval) == (1.0, 30.0, 0.5)
    events = []
    src = LiveSource(server.url, cfg, on_event=events.append)
    got = []
    stop = threading.Event()

    def consume():
        for frame in src:
            got.append(time.monotonic())
            if stop.is_set():
                return
    t = threading.Thread(target=consume, daemon=True)
    t.start()
    try:
        wait_for(lambda: len(got) > 5, 20, "first frames")
        server.kill()
        killed = time.monotonic()
        wait_for(lambda: any(e.status == "offline" for e in events), 10, "offline")
        time.sleep(max(0.0, killed + 10.0 - time.monotonic()))
        retries = [e.details.get("retry_in") for e in events if e.status == "offline"]
        server.start()
        restarted = time.monotonic()
        wait_for(lambda: got and got[-1] > restarted, 15, "frames after the restart")
        resumed = next(g for g in got if g > restarted) - restarted
        assert resumed < 3.0, f"frames {resumed:.1f} s after the restart (back-off so far {retries})"
        assert max(retries) >= 4, retries       # the back-off did grow: the probe is what made it quick
        rec = [e for e in events if e.status == "reconnected"]
        assert rec and rec[-1].details["downtime"] < 10 + 2 + 3.0 + 1
    finally:
        stop.set()
        src.close()


def write_config(folder: Path, cameras, **extra) -> Path:
    data = {"detector": "motion", "live": LIVE, "cameras": cameras, **extra}
    p = folder / "cams.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_one_camera_down_does_not_slow_the_others(servers, tmp_path):
    from stream.config import load_config
    from stream.service import Service
    import io

    a, b = servers(fps=15), servers(fps=15)
    cfg = load_config(write_config(tmp_path, [{"name": "a", "source": a.url}, {"name": "b", "source": b.url}]))
    service = Service(cfg, log=tmp_path / "log.jsonl", stderr=io.StringIO()).start()
    try:
        cam_a, cam_b = service.cameras["a"], service.cameras["b"]
        wait_for(lambda: cam_a.frames > 20 and cam_b.frames > 20, 30, "both cameras")
        t0, f0 = time.monotonic(), cam_b.frames
        time.sleep(4)
        before = (cam_b.frames - f0) / (time.monotonic() - t0)
        a.kill()
        wait_for(lambda: cam_a.status == "offline", 10, "camera a offline")
        t0, f0 = time.monotonic(), cam_b.frames
        time.sleep(6)
        during = (cam_b.frames - f0) / (time.monotonic() - t0)
        assert during >= 0.8 * before and during > 10, (before, during)
        a.start()
        wait_for(lambda: cam_a.status == "reconnected", 10, "camera a back")
        assert cam_b.status == "online" and cam_b.src.reconnects == 0
    finally:
        service.close()


def test_sigterm_stops_the_whole_service_within_seconds_every_line_whole(servers, tmp_path):
    a, b = servers(), servers()
    port = free_port()
    config = write_config(tmp_path, [{"name": "a", "source": a.url}, {"name": "b", "source": b.url}],
                          web={"port": port})
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--config", str(config), "--log", str(log)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def both_running():
            if not log.exists():
                return False
            text = log.read_text()
            return '"camera":"a","source"' in text and '"camera":"b","source"' in text
        wait_for(lambda: both_running() or proc.poll() is not None, 60, "frames of both cameras")
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert proc.returncode == 130, err
    assert took < 5.0, took
    raw = log.read_bytes()
    assert raw.endswith(b"\n")
    rows = [json.loads(x) for x in raw.decode().splitlines()]   # a torn line would not parse
    stopped = [r for r in rows if r.get("event") == "offline" and r.get("reason") == "service stopped"]
    assert sorted(r["camera"] for r in stopped) == ["a", "b"]
    assert "interrupted" in err.splitlines()[-1]
