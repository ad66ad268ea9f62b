"""Video sources: files, webcams and network cameras, as iterators of ``Frame``.

Files and live sources buffer differently, on purpose:

- ``FileSource``: a decoding thread runs ahead of the consumer through a bounded
  queue that blocks and never drops; every frame (or every Nth) in order, each
  stamped with the container's own clock. End of file ends the iteration.
- ``LiveSource`` (webcam index or rtsp:// / http:// URL): a capture thread keeps
  only the newest frame and counts the frames the consumer never saw; a
  supervisor in that thread reopens a dead or stalled stream with back-off and
  reports ``online`` / ``offline`` / ``reconnected`` events.

    >>> with open_source("traffic.mp4", every=2) as frames:      # doctest: +SKIP
    ...     for frame in frames:
    ...         print(frame.index, frame.timestamp, frame.image.shape)
"""
from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Union

import cv2
import numpy as np

from .config import LiveConfig
from .errors import SourceError
from .record import Frame

EventSink = Callable[[Dict], None]
_END = object()


def is_live(spec: Union[str, int]) -> bool:
    """True for a webcam index ("0") or a network URL."""
    s = str(spec)
    return s.isdigit() or "://" in s


def open_source(spec: Union[str, int, Path], *, every: int = 1, start: float = 0.0,
                end: Optional[float] = None, live: Optional[LiveConfig] = None,
                on_event: Optional[EventSink] = None, queue_size: int = 8):
    """A ``FileSource`` or ``LiveSource`` for ``spec`` (path, webcam index or URL)."""
    if is_live(spec):
        return LiveSource(spec, live or LiveConfig(), on_event=on_event)
    return FileSource(spec, every=every, start=start, end=end, queue_size=queue_size)


class FileSource:
    """Every frame of a video file, in order, decoded ahead in a thread."""

    live = False

    def __init__(self, path: Union[str, Path], *, every: int = 1, start: float = 0.0,
                 end: Optional[float] = None, queue_size: int = 8):
        self.path = Path(path)
        self.name = str(path)
        if not self.path.exists():
            raise SourceError(f"video file not found: {self.path}")
        if self.path.is_dir():
            raise SourceError(f"video source is a folder, not a file: {self.path}")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.start, self.end = every, start, end
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise SourceError(f"cannot open video {self.path}: not a video file or an unsupported format")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"cannot read any frame from {self.path}: not a video file or corrupt")
        self.size = (first.shape[1], first.shape[0])
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._first = first
        self._queue: "queue.Queue" = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.frames_read = 0
        self.truncated = False

    @property
    def expected(self) -> int:
        """How many frames the iteration should yield (0 when unknown)."""
        if not self.frame_count:
            return 0
        first = int(round(self.start * self.fps))
        last = self.frame_count if self.end is None else min(self.frame_count, int(round(self.end * self.fps)))
        return max(0, -(-(last - first) // self.every))

    def _timestamp(self, index: int) -> float:
        ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        return ms / 1000.0 if ms and ms > 0 else index / self.fps

    def _decode(self) -> None:
        cap, index, image = self._cap, 0, self._first
        try:
            while not self._stop.is_set():
                if image is None:
                    ok, image = cap.read() if self._wanted(index) else (cap.grab(), None)
                    if not ok:
                        self.truncated = bool(self.frame_count) and index < self.frame_count - 1
                        break
                ts = self._timestamp(index) if index else 0.0
                if self.end is not None and ts >= self.end:
                    break
                if ts >= self.start and index % self.every == 0 and image is not None:
                    self._put(Frame(index, ts, image))
                self.frames_read = index + 1
                index += 1
                image = None
        except Exception as e:  # delivered to the consumer, never swallowed
            self._put(SourceError(f"error decoding {self.name} at frame {index}: {e}"))
        finally:
            self._put(_END)

    def _wanted(self, index: int) -> bool:
        # Frames between --every strides are only grabbed: decoded, never converted or queued.
        return index % self.every == 0

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is not None:
            raise RuntimeError("a FileSource can be iterated once")
        self._thread = threading.Thread(target=self._decode, name=f"decode:{self.path.name}", daemon=True)
        self._thread.start()
        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    return
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._cap.release()

    def stats(self) -> Dict:
        return {"frames_read": self.frames_read, "dropped": 0}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LiveSource:
    """The newest frame of a webcam or network camera, reconnecting when it dies.

    The capture thread reads as fast as the camera sends and overwrites a
    one-frame slot; ``dropped`` counts frames replaced before the consumer took
    them. A read that fails, or no frame for ``stall_timeout`` seconds, releases
    the capture and reopens it after ``retry_interval`` seconds, doubling up to
    ``retry_max_interval``; after ``max_retries`` failed attempts in a row (if
    set) the iteration ends with ``SourceError``. Frames are never invented.
    """

    live = True

    def __init__(self, spec: Union[str, int], cfg: Optional[LiveConfig] = None,
                 on_event: Optional[EventSink] = None):
        self.cfg = cfg or LiveConfig()
        self.spec = int(spec) if str(spec).isdigit() else str(spec)
        self.name = str(spec)
        self.on_event = on_event or (lambda e: None)
        self.size = None
        self.fps = 0.0
        self.frame_count = 0
        self.expected = 0
        self.dropped = 0
        self.frames_read = 0
        self.reconnects = 0
        self.online = False
        self._slot: Optional[Frame] = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._failed: Optional[SourceError] = None
        self._t0 = time.monotonic()
        self._last_frame = time.monotonic()
        self._thread = threading.Thread(target=self._supervise, name=f"capture:{self.name}", daemon=True)
        self._thread.start()

    # --- capture thread ---------------------------------------------------------------------
    def _open(self) -> cv2.VideoCapture:
        if isinstance(self.spec, int):
            return cv2.VideoCapture(self.spec)
        if self.spec.lower().startswith("rtsp"):
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{self.cfg.rtsp_transport}"
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.cfg.open_timeout * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(min(self.cfg.read_timeout, self.cfg.stall_timeout) * 1000)]
        return cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)

    def _emit(self, event: str, **fields) -> None:
        self.on_event({"event": event, "source": self.name, "t": round(time.monotonic() - self._t0, 3),
                       "wall": time.time(), **fields})

    def _supervise(self) -> None:
        delay, failures, seq = self.cfg.retry_interval, 0, 0
        try:
            while not self._stop.is_set():
                cap = self._open()
                reason = None
                if not cap.isOpened():
                    reason = "cannot open stream"
                else:
                    ok, image = cap.read()
                    if not ok or image is None:
                        reason = "opened but no frame arrived"
                if reason is None:
                    self.size = (image.shape[1], image.shape[0])
                    self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
                    if self.frames_read or self.reconnects or failures:
                        self.reconnects += 1
                        self._emit("reconnected", count=self.reconnects, size=list(self.size))
                    else:
                        self._emit("online", size=list(self.size), fps=self.fps)
                    self.online, failures, delay = True, 0, self.cfg.retry_interval
                    reason = self._read_loop(cap, image, seq)
                    seq = self.frames_read
                    self.online = False
                cap.release()
                if self._stop.is_set():
                    return
                failures += 1
                self._emit("offline", reason=reason, attempt=failures)
                if self.cfg.max_retries is not None and failures > self.cfg.max_retries:
                    self._failed = SourceError(f"camera {self.name} offline: {reason} "
                                               f"(gave up after {self.cfg.max_retries} retries)")
                    return
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.cfg.retry_max_interval)
        finally:
            with self._cond:
                self._cond.notify_all()

    def _read_loop(self, cap: cv2.VideoCapture, image: np.ndarray, seq: int) -> str:
        while not self._stop.is_set():
            now = time.monotonic()
            frame = Frame(self.frames_read, now - self._t0, image, wall=time.time())
            with self._cond:
                if self._slot is not None:
                    self.dropped += 1
                self._slot = frame
                self._cond.notify_all()
            self.frames_read += 1
            self._last_frame = now
            ok, image = cap.read()
            if not ok or image is None:
                stalled = time.monotonic() - self._last_frame
                if stalled >= self.cfg.stall_timeout * 0.9:
                    return f"stalled: no frame for {stalled:.1f}s"
                return "stream ended or connection lost"
        return "stopped"

    # --- consumer ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        while not self._stop.is_set():
            with self._cond:
                if self._slot is None:
                    self._cond.wait(timeout=0.25)
                frame, self._slot = self._slot, None
            if frame is not None:
                yield frame
            elif self._failed is not None:
                raise self._failed
            elif not self._thread.is_alive():
                return

    def stats(self) -> Dict:
        return {"frames_read": self.frames_read, "dropped": self.dropped,
                "reconnects": self.reconnects, "online": self.online}

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=1.5)  # a read blocked in FFmpeg ends at its timeout; the thread is a daemon

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
