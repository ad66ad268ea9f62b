"""One camera of the service: its own source (capture, supervisor, stall detection), box source,
tracking and count line, in its own thread; colours from the shared model.

A camera never waits for another: its thread blocks only on its own source and
on the shared colour model (which answers every waiting camera in one call). Its
state (status, mode, rates, last cars, counts) is what ``/api/cameras`` and
``/metrics`` show; ``jpeg()`` is its latest frame annotated, encoded only when
someone looks.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import replace
from typing import Callable, Deque, Dict, List, Optional, Set

import cv2

from ..capture import open_source
from ..cars import LineCounter
from ..errors import CarcolorError
from ..events import CarEvent, CountEvent, Event, ModeEvent, ParkedEvent, StatsEvent, StatusEvent
from ..labels import UNKNOWN
from ..overlay import Overlay
from ..pipeline.live_stats import LiveStats
from ..pipeline.loop import Loop
from ..pipeline.wiring import car_stages_for
from ..record import FrameRecord
from .batch import CameraColors, SharedColors
from .ir import IrWatch

IR_REASON = "ir"
RATE_WINDOW = 5.0  # seconds the live rates shown on the page and in /metrics are measured over


class Camera:
    """``Camera(name, source, cfg, shared, emit, record_sink, boxes)``; ``start()``, ``stop()``, ``join()``.

    ``emit(camera, event)`` gets every event (status from the capture threads,
    everything else from this camera's thread); ``record_sink(camera, record)``
    every processed frame. ``boxes`` is the box source (built by the service,
    which may share a detector network between cameras).
    """

    def __init__(self, name: str, source: str, cfg, shared: SharedColors,
                 emit: Callable[["Camera", Event], None], record_sink: Callable[["Camera", FrameRecord], None],
                 boxes, stderr=None):
        self.name, self.spec, self.cfg = name, source, cfg
        self._emit_to, self._sink = emit, record_sink
        self.ir = IrWatch()
        self.colors = CameraColors(shared, cfg.unknown_threshold, ir=lambda: self.ir.ir)
        stages = car_stages_for(cfg, False, self.colors, None, stderr)
        self.counter = next((s for s in stages if isinstance(s, LineCounter)), None)
        self.overlay = Overlay(show=min(2, cfg.top_k), counter=self.counter)
        self.status = "starting"
        self.reason = ""
        self.error: Optional[str] = None
        self.frames = 0
        self.cars_total = 0
        self.by_color: Dict[str, int] = collections.Counter()
        self.last_cars: Deque[Dict] = collections.deque(maxlen=8)
        self.counts: Dict[str, Dict[str, int]] = {}
        self.last_event = 0.0     # wall time of the last car event
        self.seconds = 0.0        # time this camera's thread spent per frame (boxes, colours, stages), total
        self._rates: Deque = collections.deque()  # (monotonic, frames_read, frames processed, dropped)
        self._ir_ids: Set[int] = set()
        self._latest: Optional[FrameRecord] = None
        self._jpeg: Optional[bytes] = None
        self._jpeg_index = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.src = open_source(source, every=cfg.every, start=cfg.start, end=cfg.end, live=cfg.live,
                               on_event=self._on_event)
        self.source = self.src.name
        stats = [LiveStats(self.src, self._on_event, cfg.live.stats_interval)] if self.src.live else []
        self.loop = Loop(self.source, boxes, self.colors, stats + stages)
        self.thread = threading.Thread(target=self._run, name=f"camera:{name}", daemon=True)

    # --- events ----------------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if isinstance(event, StatusEvent):
            self.status = event.status
            self.reason = str(event.details.get("reason", ""))
        self._emit_to(self, event)

    def _explain(self, events) -> List[Event]:
        """Car events of tracks seen in IR mode say why their colour is unknown."""
        out = []
        for e in events:
            if isinstance(e, CarEvent) and e.color == UNKNOWN and e.id in self._ir_ids:
                e = replace(e, reason=IR_REASON)
            if isinstance(e, CarEvent):
                self._ir_ids.discard(e.id)
                self.cars_total += 1
                self.by_color[e.color] += 1
                self.last_event = time.time()
                self.last_cars.appendleft({"id": e.id, "color": e.color, "prob": round(e.prob, 3),
                                           "reason": e.reason, "wall": round(self.last_event, 3)})
            elif isinstance(e, CountEvent):
                self.counts = {d: dict(c) for d, c in e.counts.items()}
            out.append(e)
        return out

    # --- the camera's thread ---------------------------------------------------------------------
    def start(self) -> "Camera":
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            for frame in self.src:
                if self._stop.is_set():
                    break
                started = time.perf_counter()
                mode = self.ir.update(frame.image)
                if mode is not None:
                    self._emit_to(self, ModeEvent(self.source, frame.timestamp, mode, self.ir.value, frame.wall))
                record = self.loop(frame)
                if self.ir.ir and len(record.cars):
                    self._ir_ids.update(int(i) for i in record.cars.track_id if i >= 0)
                if record.events:
                    record = replace(record, events=tuple(self._explain(record.events)))
                self.seconds += time.perf_counter() - started
                self.frames += 1
                if self.status == "starting":  # a file has no status events: its first frame is online
                    self.status = "online"
                with self._lock:
                    self._latest = record
                self._sink(self, record)
                self._rate()
        except CarcolorError as e:
            self.error = str(e)
            self.status = "failed"
        except Exception as e:  # noqa: BLE001 - one camera's bug must not take the service down
            self.error = f"{type(e).__name__}: {e}"
            self.status = "failed"
        finally:
            try:
                for event in self._explain(self.loop.finish()):
                    self._emit_to(self, event)
            finally:
                if self.status != "failed":
                    self.status = "stopped" if self._stop.is_set() else "ended"

    def _rate(self) -> None:
        now = time.monotonic()
        self._rates.append((now, self.src.frames_read, self.frames, self.src.dropped))
        while len(self._rates) > 2 and now - self._rates[0][0] > RATE_WINDOW:
            self._rates.popleft()

    def rates(self) -> Dict[str, float]:
        """fps in (decoded), fps processed, over the last few seconds (0 when nothing arrives)."""
        r = list(self._rates)
        if len(r) < 2 or time.monotonic() - r[-1][0] > 2.0:
            return {"fps_in": 0.0, "fps_processed": 0.0}
        dt = r[-1][0] - r[0][0] or 1e-9
        return {"fps_in": round((r[-1][1] - r[0][1]) / dt, 2), "fps_processed": round((r[-1][2] - r[0][2]) / dt, 2)}

    def stop(self) -> None:
        """Ask the thread to stop and close the source (returns in about a second)."""
        self._stop.set()
        self.src.close()

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    # --- what the web view and the metrics read --------------------------------------------------
    def jpeg(self, quality: int = 80) -> Optional[bytes]:
        """The latest frame with its boxes and colours, as JPEG (encoded once per new frame)."""
        with self._lock:
            record = self._latest
            if record is None:
                return None
            if record.frame.index == self._jpeg_index and self._jpeg is not None:
                return self._jpeg
        image = self.overlay.draw(record.frame.image, record)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            return None
        with self._lock:
            self._jpeg, self._jpeg_index = data.tobytes(), record.frame.index
            return self._jpeg

    @property
    def frame_index(self) -> int:
        record = self._latest
        return -1 if record is None else record.frame.index

    def state(self) -> Dict:
        """This camera for ``/api/cameras``."""
        src = self.src
        size = getattr(src, "size", None)
        return {"name": self.name, "source": self.source, "status": self.status, "reason": self.reason,
                "error": self.error, "mode": "ir" if self.ir.ir else "color",
                "chroma": round(self.ir.value, 2), **self.rates(), "frames": self.frames,
                "frames_read": src.frames_read, "dropped": src.dropped, "reconnects": src.reconnects,
                "size": list(size) if size else None, "cars": self.cars_total, "by_color": dict(self.by_color),
                "counts": self.counts, "last_cars": list(self.last_cars), "last_event": self.last_event,
                "frame": self.frame_index}
