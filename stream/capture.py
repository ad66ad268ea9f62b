"""Video sources: files, webcams and network cameras, as iterators of ``Frame``.

Files and live sources buffer differently, on purpose:

- ``FileSource``: a decoding thread runs ahead of the consumer through a bounded
  queue that blocks and never drops; every frame (or every Nth) in order, each
  stamped with the container's own clock. End of file ends the iteration.
- ``LiveSource`` (webcam index or rtsp:// / http:// URL): a capture thread keeps
  only the newest frame and counts the frames the consumer never saw; a
  supervisor thread watches the time of the last frame, replaces a dead or
  stalled connection with back-off and reports ``online`` / ``offline`` /
  ``reconnected`` events.

    >>> with open_source("traffic.mp4", every=2) as frames:      # doctest: +SKIP
    ...     for frame in frames:
    ...         print(frame.index, frame.timestamp, frame.image.shape)
"""
from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Protocol, Tuple, Union, runtime_checkable

import cv2
import numpy as np

from .config import LiveConfig
from .errors import SourceError
from .events import StatusEvent
from .queues import drain, offer
from .record import Frame

EventSink = Callable[[StatusEvent], None]
_END = object()


@runtime_checkable
class Source(Protocol):
    """What the pipeline may read of a source (``FileSource`` and ``LiveSource`` both provide it).

    ``fps`` is the source's frame rate (0 until a live source is online);
    ``expected`` the frames the iteration should yield (0 = unknown, live);
    ``frames_read`` the frames decoded so far; ``dropped`` those a live source
    replaced before the consumer took them; ``reconnects`` a live source's
    reconnections; ``truncated`` True when a file ended before its header's
    ``frame_count``.
    """

    name: str
    live: bool
    fps: float
    frame_count: int
    frames_read: int
    dropped: int
    reconnects: int
    truncated: bool

    @property
    def expected(self) -> int: ...

    def __iter__(self) -> Iterator[Frame]: ...

    def stats(self) -> Dict: ...

    def close(self) -> None: ...


def is_live(spec: Union[str, int]) -> bool:
    """True for a webcam index ("0") or a network URL."""
    s = str(spec)
    return s.isdigit() or "://" in s


def open_source(spec: Union[str, int, Path], *, every: int = 1, start: float = 0.0,
                end: Optional[float] = None, live: Optional[LiveConfig] = None,
                on_event: Optional[EventSink] = None, queue_size: int = 8) -> Source:
    """A ``FileSource`` or ``LiveSource`` for ``spec`` (path, webcam index or URL)."""
    if is_live(spec):
        return LiveSource(spec, live or LiveConfig(), on_event=on_event)
    return FileSource(spec, every=every, start=start, end=end, queue_size=queue_size)


class FileSource:
    """Every frame of a video file, in order, decoded ahead in a thread."""

    live = False
    dropped = 0      # a file never drops a frame
    reconnects = 0

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
        if self.frame_count and int(round(start * self.fps)) >= self.frame_count:
            self._cap.release()
            raise SourceError(f"start {start:g} s is past the end of {self.path} "
                              f"({self.frame_count / self.fps:.1f} s, {self.frame_count} frames)")
        self._first, self._index0 = first, 0
        if start > 0 and self.frame_count:
            self._seek(int(round(start * self.fps)))
        self._queue: "queue.Queue" = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.frames_read = 0
        self.truncated = False

    def _seek(self, target: int) -> None:
        """Start decoding at frame ``target`` (from the keyframe before it, as FFmpeg seeks) instead of
        decoding every frame before ``start``: a time chunk of a long file costs its own length only.
        Where the container cannot seek exactly, decoding starts from frame 0 as before."""
        if target <= 0:
            return
        if self._cap.set(cv2.CAP_PROP_POS_FRAMES, target) and int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) == target:
            ok, image = self._cap.read()
            if ok and image is not None:
                self._first, self._index0 = image, target
                return
        self._cap.release()  # no exact seek: reopen at frame 0 (the frames before start are skipped)
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        ok, self._first = self._cap.read()
        self._index0 = 0

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
        cap, index, image = self._cap, self._index0, self._first
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
        offer(self._queue, item, self._stop)

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is not None:
            raise RuntimeError("a FileSource can be iterated once")
        self._thread = threading.Thread(target=self._decode, name=f"decode:{self.path.name}", daemon=True)
        self._thread.start()
        yield from drain(self._queue, self._thread, _END, lambda item: item if isinstance(item, Exception) else None)

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


_FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


def ffmpeg_options(url: str, cfg: LiveConfig, user: Optional[str] = None) -> str:
    """FFmpeg demuxer options for a live URL, in OpenCV's ``key;value|key;value`` form.

    RTSP goes over ``cfg.rtsp_transport``; ``fflags=nobuffer`` drops what FFmpeg read
    while probing the stream (seconds-old frames) and ``flags=low_delay`` asks the
    decoder not to hold frames back. Keys the user already set in the environment win.
    """
    opts: Dict[str, str] = {}
    if url.lower().startswith("rtsp"):
        opts["rtsp_transport"] = cfg.rtsp_transport
    opts.update({"fflags": "nobuffer", "flags": "low_delay"})
    for pair in filter(None, (user or "").split("|")):
        key, _, value = pair.partition(";")
        opts[key] = value
    return "|".join(f"{k};{v}" for k, v in opts.items())


def open_live(spec: Union[str, int], cfg: LiveConfig) -> cv2.VideoCapture:
    """A ``cv2.VideoCapture`` for a webcam index or URL, with open/read timeouts (URLs).

    A blocked FFmpeg read returns (fails) after ``min(read_timeout, stall_timeout)``.
    The FFmpeg options go through the environment, which OpenCV reads when it opens;
    they are set only for the duration of this open (a file opened later must not
    get ``nobuffer``, which drops the first frames of a file).
    """
    if isinstance(spec, int):
        return cv2.VideoCapture(spec)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(min(cfg.read_timeout, cfg.stall_timeout) * 1000)]
    if cfg.decode_threads:
        params += [cv2.CAP_PROP_N_THREADS, cfg.decode_threads]
    with _ffmpeg_env(ffmpeg_options(spec, cfg, _user_options())):
        return cv2.VideoCapture(spec, cv2.CAP_FFMPEG, params)


class _OptionsEnv:
    """``OPENCV_FFMPEG_CAPTURE_OPTIONS`` set for the opens in progress, which may overlap when they
    want the same value (every camera of a service with the same transport: a camera that takes
    ``open_timeout`` to fail does not hold the others' opens back); an open wanting another value
    waits until they are done. The user's own value is put back when the last one ends."""

    def __init__(self):
        self._cond = threading.Condition()
        self._users = 0
        self._value: Optional[str] = None
        self._saved: Optional[str] = None

    @contextlib.contextmanager
    def __call__(self, value: str) -> Iterator[None]:
        with self._cond:
            while self._users and self._value != value:
                self._cond.wait()
            if not self._users:
                self._saved = os.environ.get(_FFMPEG_OPTIONS)
                os.environ[_FFMPEG_OPTIONS] = self._value = value
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                if not self._users:
                    if self._saved is None:
                        os.environ.pop(_FFMPEG_OPTIONS, None)
                    else:
                        os.environ[_FFMPEG_OPTIONS] = self._saved
                    self._value = None
                    self._cond.notify_all()


_ffmpeg_env = _OptionsEnv()


def _user_options() -> Optional[str]:
    """The user's ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` (not one set by an open in progress)."""
    with _ffmpeg_env._cond:
        return _ffmpeg_env._saved if _ffmpeg_env._users else os.environ.get(_FFMPEG_OPTIONS)


_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}


def probe_address(spec: Union[str, int]) -> Optional[Tuple[str, int]]:
    """(host, port) a live URL connects to, for a cheap reachability probe; None for a webcam index."""
    if isinstance(spec, int) or "://" not in str(spec):
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(spec))
        port = parts.port or _PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or not port:
        return None
    return parts.hostname, port


def reachable(address: Tuple[str, int], timeout: float) -> bool:
    """True when a TCP connection to ``address`` is accepted within ``timeout`` s."""
    import socket

    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


class _Connection:
    """One attempt to read a live source: its own thread, its own ``VideoCapture``.

    The thread opens, reads and publishes frames until the stream fails, the source
    stops, or the supervisor abandons it (stalled). It always releases its capture
    itself: a capture is never touched from two threads. An abandoned thread blocked
    in FFmpeg ends at its read timeout; it can no longer publish.
    """

    def __init__(self, owner: "LiveSource", number: int):
        self.owner = owner
        self.abandoned = False
        self.online = threading.Event()
        self.done = threading.Event()
        self.reason = "stopped"
        self.opened_at = time.monotonic()
        self.last_frame = self.opened_at
        self.thread = threading.Thread(target=self._run, name=f"capture:{owner.name}#{number}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        owner, cap = self.owner, None
        try:
            cap = open_live(owner.spec, owner.cfg)
            if not cap.isOpened():
                self.reason = "cannot open stream"
                return
            ok, image = cap.read()
            if not ok or image is None:
                self.reason = "opened but no frame arrived"
                return
            if not owner._connected(self, image, float(cap.get(cv2.CAP_PROP_FPS) or 0.0)):
                return
            limit = min(owner.cfg.read_timeout, owner.cfg.stall_timeout)
            while True:
                started = time.monotonic()
                ok, image = cap.read()
                waited = time.monotonic() - started
                if waited >= 0.9 * limit:
                    # FFmpeg's read timeout fired. OpenCV may still return True with a frame
                    # flushed from the decoder: an old picture, not a sign of life.
                    self.reason = f"stalled: no frame for {waited:.1f}s"
                    return
                if not ok or image is None:
                    self.reason = "stream ended or connection lost"
                    return
                if not owner._publish(self, image):
                    return
        except Exception as e:  # noqa: BLE001 - a camera error ends this attempt, the supervisor retries
            self.reason = f"capture error: {e}"
        finally:
            if cap is not None:
                cap.release()
            self.done.set()


class LiveSource:
    """The newest frame of a webcam or network camera, reconnecting when it dies.

    A capture thread per connection reads as fast as the camera sends and
    overwrites a one-frame slot; ``dropped`` counts frames replaced before the
    consumer took them, so the consumer never sees a frame older than one read
    cycle. A supervisor thread watches the time of the last frame: a failed read,
    a failed open, or no frame for ``stall_timeout`` seconds ends the connection
    (``offline`` event with the reason) and a new one is opened after
    ``retry_interval`` seconds, doubling up to ``retry_max_interval`` (a URL whose
    port refused and accepts again is retried at once: ``probe_interval``); the first
    connection reports ``online``, later ones ``reconnected`` (with the count and
    the frame size, re-read every time). After ``max_retries`` failed retries in a
    row (if set) the iteration ends with ``SourceError``. Frames are never invented.
    ``close()`` returns within about a second even while a read is blocked.

        >>> with LiveSource("rtsp://127.0.0.1:8554/live", LiveConfig(stall_timeout=5)) as cam:  # doctest: +SKIP
        ...     for frame in cam:
        ...         print(frame.index, frame.size, cam.dropped)
    """

    live = True
    truncated = False

    def __init__(self, spec: Union[str, int], cfg: Optional[LiveConfig] = None,
                 on_event: Optional[EventSink] = None):
        self.cfg = cfg or LiveConfig()
        self.spec = int(spec) if str(spec).isdigit() else str(spec)
        self.name = str(spec)
        self.on_event = on_event or (lambda e: None)
        self.size: Optional[Tuple[int, int]] = None
        self.fps = 0.0
        self.frame_count = 0
        self.expected = 0
        self.dropped = 0
        self.frames_read = 0
        self.reconnects = 0
        self.online = False
        self._slot: Optional[Frame] = None
        self._cond = threading.Condition()   # guards the slot and the counters
        self._lock = threading.Lock()        # orders connection state changes and their events
        self._stop = threading.Event()
        self._failed: Optional[SourceError] = None
        self._conn: Optional[_Connection] = None
        self._connections = []
        self._ever_online = False
        self._offline_since: Optional[float] = None
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._supervise, name=f"supervise:{self.name}", daemon=True)
        self._thread.start()

    # --- called from a connection's thread ----------------------------------------------------
    def _connected(self, conn: _Connection, image: np.ndarray, fps: float) -> bool:
        """The first frame of a connection: new size and fps, ``online``/``reconnected``, publish."""
        with self._lock:
            if conn.abandoned or self._stop.is_set():
                return False
            self.size = (int(image.shape[1]), int(image.shape[0]))
            self.fps = fps
            if self._ever_online:
                self.reconnects += 1
                down = time.monotonic() - (self._offline_since or conn.opened_at)
                self._emit("reconnected", count=self.reconnects, size=list(self.size), fps=fps,
                           downtime=round(down, 3))
            else:
                self._emit("online", size=list(self.size), fps=fps)
            self._ever_online = self.online = True
            conn.online.set()
            return self._publish(conn, image)

    def _publish(self, conn: _Connection, image: np.ndarray) -> bool:
        now = time.monotonic()
        with self._cond:
            if conn.abandoned or self._stop.is_set():
                return False
            if self._slot is not None:
                self.dropped += 1
            self._slot = Frame(self.frames_read, now - self._t0, image, wall=time.time())
            self.frames_read += 1
            conn.last_frame = now
            self._cond.notify_all()
        return True

    # --- supervisor thread --------------------------------------------------------------------
    def _emit(self, status: str, **details) -> None:
        self.on_event(StatusEvent(status, self.name, time.monotonic() - self._t0, time.time(), details))

    def _abandon(self, conn: _Connection) -> None:
        with self._lock, self._cond:
            conn.abandoned = True
            self.online = False

    def _watch(self, conn: _Connection) -> Optional[str]:
        """Wait until ``conn`` ends or stalls; its reason, or None when the source stops first."""
        cfg = self.cfg
        poll = min(0.1, cfg.stall_timeout / 10)
        # Opening: FFmpeg gives up after open_timeout, the first read after read_timeout.
        deadline = conn.opened_at + cfg.open_timeout + min(cfg.read_timeout, cfg.stall_timeout) + 1.0
        while not conn.online.is_set():
            if self._stop.is_set():
                return None
            if conn.done.wait(poll):
                return conn.reason
            if time.monotonic() > deadline:
                return f"no frame within {deadline - conn.opened_at:.1f}s of opening"
        while not self._stop.is_set():
            if conn.done.wait(poll):
                return conn.reason
            idle = time.monotonic() - conn.last_frame
            if idle >= cfg.stall_timeout:
                return f"stalled: no frame for {idle:.1f}s"
        return None

    def _supervise(self) -> None:
        cfg = self.cfg
        delay, failures, number = cfg.retry_interval, 0, 0
        try:
            while not self._stop.is_set():
                number += 1
                conn = self._conn = _Connection(self, number)
                self._connections = [c for c in self._connections if c.thread.is_alive()] + [conn]
                reason = self._watch(conn)
                self._abandon(conn)  # from here on it cannot publish; it releases its capture itself
                if reason is None or self._stop.is_set():
                    return
                if conn.online.is_set():
                    failures, delay = 0, cfg.retry_interval
                    self._offline_since = time.monotonic()
                failures += 1
                giving_up = cfg.max_retries is not None and failures > cfg.max_retries
                with self._lock:
                    self._emit("offline", reason=reason, attempt=failures,
                               **({} if giving_up else {"retry_in": round(delay, 3)}))
                if isinstance(self.spec, int) and not self._ever_online and reason == "cannot open stream":
                    # A local device that does not open is not coming back by itself (a URL may).
                    self._failed = SourceError(f"camera {self.name} never opened: no video device {self.spec}, "
                                               "or it is busy (check the index: ls /dev/video*)")
                    return
                if giving_up:
                    self._failed = SourceError(f"camera {self.name} offline: {reason} "
                                               f"(gave up after {cfg.max_retries} retries)")
                    self._emit("max_retries", retries=cfg.max_retries, reason=reason)
                    return
                if self._wait_retry(delay):
                    return
                delay = min(delay * 2, cfg.retry_max_interval)
        except Exception as e:  # noqa: BLE001 - delivered to the consumer, never swallowed
            self._failed = SourceError(f"camera {self.name}: supervisor failed: {e}")
            self._failed.__cause__ = e
        finally:
            with self._cond:
                self._cond.notify_all()

    def _wait_retry(self, delay: float) -> bool:
        """Wait ``delay`` s before the next attempt; True when the source stops meanwhile.

        For a URL, its host:port is probed every ``probe_interval`` s (a TCP connect,
        no stream opened): if it refused at first and accepts now (the camera or its
        server is back), the wait ends at once, whatever the back-off had reached.
        A host that kept accepting (a stalled server) waits the whole back-off.
        """
        end = time.monotonic() + delay
        step = self.cfg.probe_interval
        address = probe_address(self.spec) if step > 0 else None
        if address is None:
            return self._stop.wait(delay)
        was_up = reachable(address, min(step, 1.0))
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return self._stop.is_set()
            if self._stop.wait(min(step, left)):
                return True
            if not was_up and reachable(address, min(step, 1.0)):
                return self._stop.is_set()

    # --- consumer -----------------------------------------------------------------------------
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

    def close(self, timeout: float = 1.0) -> None:
        """Stop the threads; waits at most ``timeout`` s (a read blocked in FFmpeg ends on its own)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        end = time.monotonic() + timeout
        self._thread.join(max(0.0, end - time.monotonic()))
        for conn in list(self._connections):
            conn.thread.join(max(0.0, end - time.monotonic()))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
