"""A real MQTT broker on loopback for the camera service's tests and soak: Debian's ``mosquitto``.

``Mosquitto(port).start()`` writes its own config file (loopback listener on a
free port, anonymous, no persistence: a restart forgets retained messages, the
worst case for a client) and runs ``mosquitto -c`` as a subprocess; ``kill()``
SIGKILLs it, ``start()`` again brings it back on the same port.
``Subscriber`` is a paho-mqtt client recording every message it gets.
``mosquitto_missing()`` says why it cannot run here (installed by
``scripts/install-system-deps.sh``).
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from rtsp_server import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def mosquitto_missing() -> Optional[str]:
    if not Path(MOSQUITTO).exists():
        return "mosquitto not installed; run scripts/install-system-deps.sh"
    try:
        import paho.mqtt  # noqa: F401
    except ImportError:
        return "paho-mqtt not installed: pip install 'carcolor[service]'"
    return None


class Mosquitto:
    """``mosquitto`` on 127.0.0.1:``port`` as a subprocess: start, SIGKILL, restart on the same port."""

    def __init__(self, port: Optional[int] = None, persistence: bool = False):
        """``persistence``: sessions and retained messages saved every second (a persistent
        subscriber then gets what was published for it while it reconnected)."""
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="mosquitto_"))
        self.conf = self.folder / "mosquitto.conf"
        keep = (f"persistence true\npersistence_location {self.folder}/\nautosave_interval 1\n" if persistence
                else "persistence false\n")
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{keep}"
                             "log_dest stderr\nlog_type error\nlog_type warning\n")
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 15.0) -> "Mosquitto":
        assert self.proc is None
        deadline = time.monotonic() + timeout
        err = open(self.folder / "stderr.txt", "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=err)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:  # the port may still be held by the killed one: retry
                time.sleep(0.2)
                self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                             stderr=err)
                continue
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}: "
                           f"{(self.folder / 'stderr.txt').read_text()[-500:]}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Subscriber:
    """A paho client subscribed to ``topic``; ``messages`` holds (topic, payload dict or str, retained)."""

    def __init__(self, port: int, topic: str = "#", persistent: bool = False):
        """``persistent``: a session the broker keeps (and queues QoS 1 messages for) while away."""
        import paho.mqtt.client as mqtt

        self.messages: List[tuple] = []
        self.received: List[float] = []   # monotonic time each message arrived
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.time_ns()}",
                                  clean_session=not persistent)
        self.client.on_connect = lambda c, u, f, rc, p=None: (c.subscribe(topic, qos=1), self.connected.set())
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port, 30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            payload = msg.payload.decode(errors="replace")
        with self.lock:
            self.messages.append((msg.topic, payload, bool(msg.retain)))
            self.received.append(time.monotonic())

    def on(self, topic: str) -> List[Dict]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                with self.lock:
                    seen = sorted({t for t, _, _ in self.messages})
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; topics seen: {seen}")
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
