"""The camera service: every camera of ``cameras:`` in one process, one log, MQTT, the web view.

    carcolor run --config cams.yaml --log cams.jsonl     # no --source: every camera of the config

One log for all cameras, ``"camera"`` first on every line: one file to tail,
rotate and feed to ``carcolor report`` (``jq 'select(.camera == "gate")'`` picks
one camera), and the lines of all cameras in the order they happened; one file
per camera would need N writers and N rotations for the same content.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Dict, List, Optional

from .. import __version__
from ..boxes import box_source
from ..classify import ColorClassifier
from ..events import CountEvent, Event, ModeEvent, StartEvent, StatsEvent, StatusEvent, describe, tagged
from ..record import FrameRecord
from .batch import SharedColors
from .camera import Camera


class _Locked:
    """One detector network shared by several cameras: each camera has its own copy of the
    detector's per-stream state (frame size, ROI); the network and its compiled sizes are
    shared, and calls from different cameras take turns on a lock."""

    def __init__(self, detector, lock: threading.Lock):
        self.detector, self.lock = detector, lock

    def detect(self, image):
        with self.lock:
            return self.detector.detect(image)

    def __call__(self, frame):
        with self.lock:
            return self.detector(frame)


class DetectorPool:
    """Box sources for the cameras; cameras on the shipped vehicle detector with the same network
    settings share one loaded network (memory: one copy of the weights and compiled models)."""

    def __init__(self):
        self._nets: Dict[tuple, tuple] = {}
        self.networks = 0

    def boxes(self, cfg):
        if cfg.boxes or cfg.detector != "vehicle":
            return box_source(cfg, None)  # motion keeps a background per camera: nothing to share
        import copy

        from ..detect.vehicle import Coast, VehicleDetector

        v = cfg.vehicle
        key = (str(v.model), v.input_width, v.input_height, cfg.threads)
        if key not in self._nets:
            self._nets[key] = (VehicleDetector(v, threads=cfg.threads), threading.Lock())
            self.networks += 1
        base, lock = self._nets[key]
        det = copy.copy(base)  # shares the network and its compiled sizes; its own stream state
        det.cfg, det.calls = v, 0
        det._size = det._roi = det._view = None
        shared = _Locked(det, lock)
        if v.detect_every == 1 and not v.skip_static:
            return shared
        return Coast(shared, v.detect_every, v.skip_static)


class Service:
    """``Service(cfg, log=...)``: builds every camera (errors at start, naming the camera), then
    ``run()`` until every camera ended (files) or ``close()`` / Ctrl-C / SIGTERM."""

    def __init__(self, cfg, *, log=None, stderr=None, classifier: Optional[ColorClassifier] = None,
                 web: bool = True):
        from ..sinks import JsonlLog

        if not cfg.cameras:
            raise ValueError("the service needs cameras: in the config")
        self.cfg = cfg
        self.stderr = stderr or sys.stderr
        self.t0 = time.monotonic()
        self.started = time.time()
        self.cameras: Dict[str, Camera] = {}
        self.mqtt = None
        self.web = None
        self.logger = JsonlLog(log) if log else None
        self._closed = False
        self._lock = threading.Lock()
        try:
            self.shared = SharedColors(classifier or ColorClassifier.from_config(cfg))
            if cfg.mqtt is not None:
                from .mqtt import MqttPublisher

                self.mqtt = MqttPublisher(cfg.mqtt, will=self.service_line("offline", reason="connection lost"),
                                          online=lambda: self.service_line("online"))
            self.detectors = DetectorPool()
            for cam in cfg.cameras:
                ccfg = cfg.for_camera(cam.name)
                if self.logger is not None:  # before the camera opens: its first status follows this line
                    self.logger.write(tagged(StartEvent(cam.source, time.time(), __version__), cam.name))
                try:
                    boxes = self.detectors.boxes(ccfg)
                    self.cameras[cam.name] = Camera(cam.name, cam.source, ccfg, self.shared, self.emit,
                                                    self.frame, boxes, self.stderr)
                except Exception as e:
                    if hasattr(e, "args") and e.args and isinstance(e.args[0], str):
                        e.args = (f"camera '{cam.name}': {e.args[0]}",) + e.args[1:]
                    raise
            if web and cfg.web is not None:
                from .web import WebServer

                self.web = WebServer(self, cfg.web)
        except BaseException:
            self.close()
            raise

    # --- what flows out ----------------------------------------------------------------------
    def service_line(self, status: str, **details) -> Dict:
        return StatusEvent(status, "service", time.monotonic() - self.t0, time.time(), details).to_json()

    def emit(self, camera: Camera, event: Event) -> None:
        """One event of ``camera``: the log, MQTT, and stderr for the ones a person watches."""
        line = tagged(event, camera.name)
        if self.logger is not None:
            self.logger.write(line)
        if self.mqtt is not None:
            self.mqtt.publish(camera.name, line["event"], line)
        if isinstance(event, (StatusEvent, ModeEvent, StatsEvent)) or (isinstance(event, CountEvent) and event.final):
            text = describe(event)
            text = f"[{camera.name}]" + text[text.index("]") + 1:] if text.startswith("[") else text
            with self._lock:
                self.stderr.write(text + "\n")
                self.stderr.flush()

    def frame(self, camera: Camera, record: FrameRecord) -> None:
        """One processed frame of ``camera``: its events, then its frame line in the log."""
        for event in record.events:
            self.emit(camera, event)
        if self.logger is not None:
            self.logger.write(tagged(record, camera.name))

    # --- running -----------------------------------------------------------------------------
    def start(self) -> "Service":
        for cam in self.cameras.values():
            cam.start()
        if self.web is not None:
            self.web.start()
            self.stderr.write(f"carcolor: web view on {self.web.url}\n")
        names = ", ".join(f"{c.name} ({c.source})" for c in self.cameras.values())
        self.stderr.write(f"carcolor: {len(self.cameras)} cameras: {names}\n")
        self.stderr.flush()
        return self

    def run(self) -> Dict[str, Dict]:
        """Start, wait until every camera ended (or Ctrl-C / SIGTERM: KeyboardInterrupt), close."""
        try:
            self.start()
            while any(c.thread.is_alive() for c in self.cameras.values()):
                time.sleep(0.2)
        finally:
            self.close()
        return {name: c.state() for name, c in self.cameras.items()}

    def close(self) -> None:
        """Stop every camera (their last events written), publish offline, stop the web view. Idempotent."""
        if self._closed:
            return
        self._closed = True
        main = threading.current_thread() is threading.main_thread()
        saved = {}
        if main:  # a second Ctrl-C or SIGTERM must not cut the shutdown short
            for sig in (signal.SIGINT, signal.SIGTERM):
                saved[sig] = signal.signal(sig, signal.SIG_IGN)
        try:
            cams = list(self.cameras.values())
            was = {c.name: c.status for c in cams}
            stoppers = [threading.Thread(target=c.stop, daemon=True) for c in cams]
            for s in stoppers:
                s.start()
            deadline = time.monotonic() + 3.0
            for s in stoppers:
                s.join(max(0.0, deadline - time.monotonic()))
            for c in cams:
                c.join(max(0.1, deadline - time.monotonic()))
            for c in cams:
                if c.src.live and was[c.name] in ("online", "reconnected"):
                    c.status = "stopped"
                    self.emit(c, StatusEvent("offline", c.source, time.monotonic() - c.src._t0, time.time(),
                                             {"reason": "service stopped"}))
            if getattr(self, "shared", None) is not None:
                self.shared.close()
            if self.web is not None:
                self.web.close()
            if self.mqtt is not None:
                self.mqtt.close(offline=self.service_line("offline", reason="stopped"))
            if self.logger is not None:
                self.logger.close()
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)


def run_service(cfg, log=None, stderr=None) -> List[str]:
    """``carcolor run`` with ``cameras:`` and no ``--source``: the service until every camera ends or a
    signal; one summary line per camera."""
    states = Service(cfg, log=log, stderr=stderr).run()
    return [f"{name}: {s['frames']} frames, {s['cars']} cars, {s['reconnects']} reconnects, {s['dropped']} dropped"
            for name, s in states.items()]
