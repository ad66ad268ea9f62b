"""Events to an MQTT broker (paho-mqtt 2.x): ``<prefix>/<camera>/<event>``, payload = the log line's JSON.

- Reconnects by itself (paho's network thread, back-off 0.5..5 s) when the broker
  restarts or the network drops.
- ``publish`` never blocks a camera: messages go into a bounded queue
  (``mqtt.queue_size``); when it is full the oldest message is dropped and
  counted (``dropped``). A pump thread hands them to paho only while connected,
  at most ``WINDOW`` unacknowledged at a time; QoS 1 messages paho already sent
  and not yet acknowledged when the connection drops are sent again by paho on
  reconnect (at least once).
- Retained: each camera's last ``status`` (and ``mode``), and the service's own
  ``<prefix>/service/status``, ``online`` after every connect and ``offline``
  as the broker's last will (a crash or a cut network) or at a clean stop. After
  every connect the retained messages are published again, so a broker that
  restarted without persistence gets them back.
"""
from __future__ import annotations

import collections
import json
import os
import threading
import time
from typing import Callable, Deque, Dict, List, Optional, Tuple

from ..config import MqttConfig

WINDOW = 50               # messages handed to paho and not yet acknowledged
RETAINED = ("status", "mode")
QOS0 = ("stats", "frame")  # rates: a lost one is replaced by the next


def dumps(line: Dict) -> bytes:
    """A log line as the log writes it (compact JSON)."""
    return json.dumps(line, separators=(",", ":"), allow_nan=False).encode()


class MqttPublisher:
    """``publish(camera, event_name, line)``; ``connected``, ``sent``, ``dropped``, ``queued``; ``close()``."""

    def __init__(self, cfg: MqttConfig, will: Dict, online: Callable[[], Dict]):
        """``will``: the service's ``offline`` line (the last will); ``online()``: its ``online`` line,
        published retained after every connect."""
        try:
            import paho.mqtt.client as mqtt
        except ImportError as e:
            raise ImportError(f"mqtt: needs paho-mqtt ({e}): pip install 'carcolor[service]'") from e
        self.cfg = cfg
        self.prefix = cfg.topic_prefix.rstrip("/")
        self.service_topic = f"{self.prefix}/service/status"
        self._mqtt = mqtt
        self.online_line = online
        client_id = cfg.client_id or f"carcolor-{os.getpid()}-{int(time.time())}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=True)
        if cfg.username is not None:
            self.client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            self.client.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None)
        self.client.will_set(self.service_topic, dumps(will), qos=1, retain=True)
        self.client.reconnect_delay_set(0.5, 5)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.connected = False
        self.connects = 0          # successful connections (1 + reconnects)
        self.disconnects = 0
        self.queued = 0            # messages accepted by publish()
        self.sent = 0              # handed to paho (QoS 0) or acknowledged by the broker (QoS 1/2)
        self.dropped = 0           # oldest messages dropped from a full queue
        self.last_error = ""
        self._queue: Deque[Tuple[str, bytes, int, bool]] = collections.deque()
        self._retained: Dict[str, bytes] = {}
        self._inflight: List = []
        self._replay = False
        self._cond = threading.Condition()
        self._stop = False
        self.client.connect_async(cfg.host, cfg.port, cfg.keepalive)
        self.client.loop_start()
        self._pump_thread = threading.Thread(target=self._pump, name="mqtt-pump", daemon=True)
        self._pump_thread.start()

    # --- paho callbacks (its network thread) ----------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused: {reason_code}"
            return
        with self._cond:
            self.connected = True
            self.connects += 1
            self._replay = True
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        with self._cond:
            if self.connected:
                self.disconnects += 1
            self.connected = False
            self.last_error = str(reason_code)
            self._cond.notify_all()

    # --- callers -----------------------------------------------------------------------------
    def topic(self, camera: str, event: str) -> str:
        return f"{self.prefix}/{camera}/{event}"

    def publish(self, camera: str, event: str, line: Dict) -> None:
        """Queue one event's line for ``<prefix>/<camera>/<event>`` (status words go to ``.../status``)."""
        kind = "status" if event in ("online", "offline", "reconnected", "max_retries") else event
        topic = self.topic(camera, kind)
        self.put(topic, dumps(line), 0 if kind in QOS0 else self.cfg.qos, kind in RETAINED or self.cfg.retain)

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        with self._cond:
            if retain:
                self._retained[topic] = payload
            if len(self._queue) >= self.cfg.queue_size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((topic, payload, qos, retain))
            self.queued += 1
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged (queued here, or in paho's hands)."""
        with self._cond:
            return len(self._queue) + len(self._inflight)

    # --- the pump thread ----------------------------------------------------------------------
    def _settle(self) -> None:
        still = []
        for qos, info in self._inflight:
            try:
                done = info.is_published()
            except (RuntimeError, ValueError):
                # A QoS 1 message published as the connection dropped keeps rc NO_CONN although paho
                # holds it and sends it on reconnect; its own flag says when the broker acknowledged it.
                done = bool(getattr(info, "_published", False))
            if done:
                self.sent += 1
            else:
                still.append((qos, info))
        self._inflight = still

    def _pump(self) -> None:
        while True:
            with self._cond:
                self._settle()
                while not self._stop and not (self.connected and (self._replay or (
                        self._queue and len(self._inflight) < WINDOW))):
                    self._cond.wait(0.05 if self._inflight else 0.5)
                    self._settle()
                if self._stop:
                    return
                if self._replay:  # after a (re)connect: the retained state first
                    batch = [(t, p, 1, True) for t, p in self._retained.items()]
                    self._replay = False
                    batch.insert(0, (self.service_topic, dumps(self.online_line()), 1, True))
                else:
                    batch = []
                    while self._queue and len(self._inflight) + len(batch) < WINDOW:
                        batch.append(self._queue.popleft())
            for topic, payload, qos, retain in batch:
                info = self.client.publish(topic, payload, qos=qos, retain=retain)
                with self._cond:
                    if info.rc == self._mqtt.MQTT_ERR_SUCCESS or qos > 0:
                        # QoS > 0 that paho could not send now stays in its session and goes on reconnect.
                        self._inflight.append((qos, info))
                    else:  # QoS 0 while the connection dropped: back in front, in order
                        self._queue.appendleft((topic, payload, qos, retain))

    def close(self, offline: Optional[Dict] = None, timeout: float = 3.0) -> None:
        """Deliver what is queued (up to ``timeout`` s), publish the service ``offline``, disconnect."""
        if offline is not None:
            self.put(self.service_topic, dumps(offline), 1, True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.connected and self.pending:
            time.sleep(0.02)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._pump_thread.join(1.0)
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
