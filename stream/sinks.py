"""Where results go: a JSON Lines log, an annotated video, a live window.

Each sink is a context manager that streams: opened on the first frame, written
per frame, finalised on close (also on Ctrl-C or an exception, as the pipeline
closes them in ``finally``). Nothing is collected in memory.
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional, Tuple, Union

import cv2
import numpy as np

from .errors import CarcolorError
from .events import Event, to_json
from .record import FrameRecord


class JsonlLog:
    """Appends one JSON object per line, flushed per write: a kill loses nothing written.

    Each line goes out in a single ``write`` of the whole line, so no torn line is
    left behind by a crash; a torn last line from an earlier power loss is closed
    with a newline before appending. Thread-safe (capture threads write events).
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.lines = 0
        if not self.path.parent.is_dir():  # the rule for every output: carcolor makes files, not folders
            raise CarcolorError(f"log folder does not exist: {self.path.parent}")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise CarcolorError(f"cannot write log {self.path}: {e.strerror}") from e
        self._fd: Optional[int] = fd
        size = os.fstat(fd).st_size
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(fd, b"\n")

    def write(self, item: Union[Mapping, Event, FrameRecord]) -> None:
        """One line: an event or a frame record (as ``events.to_json`` writes it), or a plain dict."""
        obj = item if isinstance(item, Mapping) else to_json(item)
        data = (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()
        with self._lock:
            if self._fd is None:
                return
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self.lines += 1

    def __call__(self, record: FrameRecord) -> None:
        for event in record.events:
            self.write(event)
        self.write(record)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence FFmpeg's C-level chatter while probing for an encoder."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def open_writer(path: Path, fps: float, size: Tuple[int, int], codecs=("avc1", "mp4v")) -> Tuple[cv2.VideoWriter, str]:
    """A VideoWriter with the first codec that works (H.264 when available, else MPEG-4 Part 2)."""
    for codec in codecs:
        with _quiet_stderr():
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
        if writer.isOpened():
            return writer, codec
        writer.release()
    raise CarcolorError(f"cannot write video {path}: no working encoder among {', '.join(codecs)}")


# A fragment per keyframe, and a keyframe a second: a file cut by a crash plays up to its last second.
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
_AV_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


class AvWriter:
    """H.264 (libx264, from PyAV's wheels) in fragmented MP4 / MOV, or Matroska, one frame at a time.

    Browsers and players open it (today's MPEG-4 Part 2 ``mp4v`` plays in none), and
    since an MP4 fragment is complete at each keyframe (one a second), a file cut
    by a SIGKILL or a power loss still plays up to its last fragment: no index is
    written at the end. The frame size must be even (4:2:0); ``VideoSink`` makes it so.
    x264's ``ultrafast`` preset: at 1080p about 1.4x the CPU of OpenCV's mp4v writer for files
    of the same size (``veryfast`` makes them 3x smaller for 3-4x the CPU: ``bench/speed.py``).
    """

    codec = "h264"

    def __init__(self, path: Path, fps: float, size: Tuple[int, int], crf: int = 23, preset: str = "ultrafast"):
        import av
        from fractions import Fraction

        fmt = _AV_FORMATS[path.suffix.lower()]
        try:
            self._out = av.open(str(path), "w", format=fmt, options=_FRAGMENTED if fmt != "matroska" else {})
        except OSError as e:
            raise CarcolorError(f"cannot write video {path}: {e}") from e
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._out.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"preset": preset, "crf": str(crf), "g": str(max(1, round(fps))),
                                "keyint_min": str(max(1, round(fps)))}
        self._av = av

    def write(self, image: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(image, format="bgr24")
        for packet in self._stream.encode(frame):
            self._out.mux(packet)

    def release(self) -> None:
        if self._out is None:
            return
        try:
            for packet in self._stream.encode(None):  # the frames the encoder still holds
                self._out.mux(packet)
        finally:
            self._out.close()
            self._out = None


def _has_x264() -> bool:
    try:
        import av

        return "libx264" in av.codecs_available
    except ImportError:
        return False


class VideoSink:
    """An annotated video with the input's fps and frame size, opened on the first frame.

    ``.mp4``, ``.m4v``, ``.mov`` and ``.mkv`` are H.264 through PyAV (``AvWriter``:
    plays in browsers; fragmented, so a crash leaves a playable file); ``.avi``,
    or a system without PyAV's libx264, go through OpenCV's writer as before.
    Encoding runs in its own thread behind a bounded queue that blocks (never
    drops), so it overlaps with decoding and inference. A live source that comes
    back at another size after a reconnect is scaled to the size the file was
    opened with (a video file has one size; H.264 wants it even: an odd row or
    column is cut). ``close`` writes out what is queued and finalises the file.
    """

    def __init__(self, path: Union[str, Path], fps: Union[float, Callable[[], float]], queue_size: int = 8):
        self.path = Path(path)
        self._fps = fps  # a number, or a callable asked on the first frame (a live camera's rate)
        self.fps = 0.0
        self.size: Optional[Tuple[int, int]] = None
        self.codec = ""
        self.frames = 0
        self._writer: Optional[cv2.VideoWriter] = None
        self._queue: "queue.Queue" = queue.Queue(maxsize=queue_size)
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        if self.path.suffix.lower() not in (".mp4", ".m4v", ".mov", ".avi", ".mkv"):
            raise CarcolorError(f"output video {self.path} must end in .mp4, .mov, .m4v, .avi or .mkv")
        if not self.path.parent.exists():
            raise CarcolorError(f"output folder does not exist: {self.path.parent}")

    def _encode(self) -> None:
        try:
            while True:
                image = self._queue.get()
                if image is None:
                    return
                if self._error is None:
                    w, h = self.size
                    if image.shape[1] in (w, w + 1) and image.shape[0] in (h, h + 1):
                        image = image[:h, :w]  # an odd frame size: one row / column cut
                    else:
                        image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
                    self._writer.write(image)
                    self.frames += 1
        except BaseException as e:  # reported to the producer on its next call
            self._error = e

    def write(self, image: np.ndarray) -> None:
        if self._error is not None:
            raise CarcolorError(f"writing {self.path} failed: {self._error}") from self._error
        if self._writer is None:
            fps = self._fps() if callable(self._fps) else self._fps
            self.fps = fps if fps and fps > 0 else 25.0
            if self.path.suffix.lower() in _AV_FORMATS and _has_x264():
                self.size = (image.shape[1] // 2 * 2, image.shape[0] // 2 * 2)
                self._writer = AvWriter(self.path, self.fps, self.size)
                self.codec = self._writer.codec
            else:
                self.size = (image.shape[1], image.shape[0])
                self._writer, self.codec = open_writer(self.path, self.fps, self.size)
            self._thread = threading.Thread(target=self._encode, name=f"encode:{self.path.name}", daemon=True)
            self._thread.start()
        self._queue.put(image)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Window:
    """A live window (needs a GUI build of OpenCV: ``pip install opencv-python``); q or Esc quits."""

    def __init__(self, title: str = "carcolor"):
        self.title = title
        self.quit = False
        self._open = False

    def write(self, image: np.ndarray) -> None:
        try:
            if not self._open:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
                self._open = True
            cv2.imshow(self.title, image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as e:
            raise CarcolorError("--show needs OpenCV with GUI support and a display "
                                "(pip install opencv-python; set DISPLAY)") from e
        if key in (ord("q"), 27):
            self.quit = True

    def close(self) -> None:
        if self._open:
            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(self.title)
            self._open = False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
