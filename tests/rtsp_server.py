"""A real RTSP server on loopback for the live-source tests and the soak.

Run it with the *system* Python, which has GStreamer's bindings (``python3-gi``,
``gir1.2-gst-rtsp-server-1.0``; installed by ``scripts/install-system-deps.sh``)::

    /usr/bin/python3 tests/rtsp_server.py --port 8554      # -> READY rtsp://127.0.0.1:8554/live

It serves a live H.264 stream (x264, zero-latency, a key frame every second)
made of synthetic pictures. Every picture carries, as a grid of 16x16 black or
white blocks in its top rows, the server's frame counter (frames since the
server started, from its monotonic clock) and the Unix time in milliseconds at
which it was made, plus a checksum. ``decode(image)`` reads them back from a
decoded BGR frame (numpy), so a test can tell how old the frame it got is and
how many it missed.

``RtspServer`` runs it as a subprocess from any Python (start on a port, SIGKILL,
restart on the same port, SIGSTOP/SIGCONT) and ``gst_missing()`` says why it
cannot run here. GStreamer is imported only in ``main``, so the tests and the
soak (the project's venv) import this module without it.
"""
from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

BLOCK = 16            # pixels per code block (one H.264 macroblock: survives compression)
COUNTER_BITS = 32
WALL_BITS = 44        # milliseconds since the epoch, good until the year 2527
CHECK_BITS = 8
CODE_BITS = COUNTER_BITS + WALL_BITS + CHECK_BITS
HIGH, LOW = 235, 16   # luma of a 1 bit / 0 bit
SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).resolve()


def _checksum(counter: int, wall_ms: int) -> int:
    value = counter | (wall_ms << COUNTER_BITS)
    return sum(value.to_bytes(10, "little")) & 0xFF


def code_bits(counter: int, wall_ms: int):
    """The bits drawn into a frame, least significant first."""
    value = ((counter & (2 ** COUNTER_BITS - 1)) | ((wall_ms & (2 ** WALL_BITS - 1)) << COUNTER_BITS)
             | (_checksum(counter, wall_ms) << (COUNTER_BITS + WALL_BITS)))
    return [(value >> i) & 1 for i in range(CODE_BITS)]


def code_rows(width: int) -> int:
    return -(-CODE_BITS // (width // BLOCK))


def decode(image):
    """``(counter, wall_ms)`` drawn into a decoded BGR (or grey) numpy frame, or None if unreadable."""
    h, w = image.shape[:2]
    cols = w // BLOCK
    if cols < 1 or code_rows(w) * BLOCK > h:
        return None
    grey = image if image.ndim == 2 else image.mean(axis=2)
    value = 0
    for i in range(CODE_BITS):
        r, c = divmod(i, cols)
        y, x = r * BLOCK + BLOCK // 2, c * BLOCK + BLOCK // 2
        level = float(grey[y - 3:y + 3, x - 3:x + 3].mean())
        value |= int(level > 128) << i
    counter = value & (2 ** COUNTER_BITS - 1)
    wall_ms = (value >> COUNTER_BITS) & (2 ** WALL_BITS - 1)
    if value >> (COUNTER_BITS + WALL_BITS) != _checksum(counter, wall_ms):
        return None
    return counter, wall_ms


def raw_clip(video, out, width: int = 640, height: int = 360, fps: int = 25, seconds: float = 10.0,
             grey: bool = False) -> Path:
    """``video`` as raw I420 frames of ``width`` x ``height`` at ``fps`` (ffmpeg), for ``--clip``."""
    vf = f"scale={width}:{height},fps={fps}" + (",hue=s=0" if grey else "")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-t", str(seconds), "-vf", vf,
                    "-pix_fmt", "yuv420p", "-f", "rawvideo", str(out)], check=True)
    return Path(out)


class Picture:
    """I420 pictures with the code blocks and a moving square (or the frames of a raw I420 clip,
    played in a loop), in pure Python (no numpy here)."""

    def __init__(self, width: int, height: int, clip: Optional[str] = None):
        if width % BLOCK or height % 2 or code_rows(width) * BLOCK + 40 > height:
            raise ValueError(f"size {width}x{height}: width must be a multiple of {BLOCK}, tall enough for the code")
        self.w, self.h = width, height
        self.luma = bytes([100]) * (width * height)
        self.chroma = bytes([128]) * (2 * (width // 2) * (height // 2))
        self.top = code_rows(width) * BLOCK
        self.on, self.off = bytes([HIGH]) * BLOCK, bytes([LOW]) * BLOCK
        self.clip = None
        if clip:
            self.clip = Path(clip).read_bytes()
            self.frame_bytes = width * height * 3 // 2
            self.frames = len(self.clip) // self.frame_bytes
            if not self.frames:
                raise ValueError(f"{clip}: not one {width}x{height} I420 frame in it")

    def make(self, counter: int, wall_ms: int) -> bytes:
        w = self.w
        if self.clip is not None:
            start = (counter % self.frames) * self.frame_bytes
            y = bytearray(self.clip[start:start + w * self.h])
            chroma = self.clip[start + w * self.h:start + self.frame_bytes]
        else:
            y, chroma = bytearray(self.luma), self.chroma
        cols = w // BLOCK
        for i, bit in enumerate(code_bits(counter, wall_ms)):
            r, c = divmod(i, cols)
            fill = self.on if bit else self.off
            for row in range(r * BLOCK, (r + 1) * BLOCK):
                off = row * w + c * BLOCK
                y[off:off + BLOCK] = fill
        if self.clip is not None:
            return bytes(y) + chroma
        # A bright square bouncing along the lower part: something for the encoder to do.
        size = 32
        span = w - size
        x0 = (counter * 8) % (2 * span)
        x0 = x0 if x0 < span else 2 * span - x0
        y0 = self.top + 8 + (counter * 3) % max(1, self.h - self.top - size - 8)
        square = bytes([220]) * size
        for row in range(y0, min(self.h, y0 + size)):
            y[row * w + x0:row * w + x0 + size] = square
        return bytes(y) + self.chroma


# --- controlling the server from the tests (any Python) ---------------------------------------
def gst_missing() -> Optional[str]:
    """Why the server cannot run on this machine, or None when it can."""
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "missing = [e for e in ('appsrc', 'x264enc', 'rtph264pay') if not Gst.ElementFactory.find(e)]; "
             "assert not missing, 'missing GStreamer elements: ' + ', '.join(missing)")
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    try:
        r = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "probing GStreamer timed out"
    if r.returncode:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"no GStreamer RTSP server for {SYSTEM_PYTHON} ({last}); run scripts/install-system-deps.sh"
    return None


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """The test server as a subprocess: start, SIGKILL, restart on the same port, SIGSTOP/SIGCONT."""

    def __init__(self, port: Optional[int] = None, path: str = "/live"):
        self.port = port or free_port()
        self.path = path
        self.proc: Optional[subprocess.Popen] = None
        self.stopped = False

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self, width: int = 320, height: int = 240, fps: int = 15, timeout: float = 15.0,
              clip: Optional[Path] = None, shared: bool = False) -> "RtspServer":
        """``clip``: a raw I420 file of width x height frames (``raw_clip``) served in a loop;
        ``shared``: every client gets the same encoded stream (one encoder, for benches)."""
        assert self.proc is None
        extra = (["--clip", str(clip)] if clip else []) + (["--shared"] if shared else [])
        deadline = time.monotonic() + timeout
        while True:  # the port can be briefly unavailable right after a kill
            err = tempfile.TemporaryFile("w+")  # never read while it runs: a pipe could fill up
            self.proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER), "--port", str(self.port), "--path", self.path, "--width", str(width),
                 "--height", str(height), "--fps", str(fps), *extra], stdout=subprocess.PIPE, stderr=err, text=True)
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.1, deadline - time.monotonic()))
            line = self.proc.stdout.readline() if ready else ""
            if line.startswith("READY"):
                return self
            self.proc.kill()
            self.proc.wait()
            err.seek(0)
            err = err.read()
            self.proc = None
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start: {line!r} {err[-500:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None:
            if self.stopped:
                self.cont()
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.stopped = False


# --- the server (system Python with GStreamer) ---------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/live")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--clip", default=None, help="raw I420 frames (width x height) to serve in a loop")
    ap.add_argument("--shared", action="store_true", help="one encoder for every client (benches)")
    args = ap.parse_args(argv)

    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    picture = Picture(args.width, args.height, args.clip)
    sources = set()  # appsrc elements of the connected clients' pipelines
    lock = threading.Lock()

    class Factory(GstRtspServer.RTSPMediaFactory):
        def do_create_element(self, url):
            return Gst.parse_launch(
                f"( appsrc name=src is-live=true do-timestamp=true format=time block=false "
                f"caps=video/x-raw,format=I420,width={args.width},height={args.height},framerate={args.fps}/1 "
                f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} bframes=0 threads=1 "
                f"! rtph264pay name=pay0 pt=96 config-interval=-1 )")

    def configure(factory, media):
        src = media.get_element().get_by_name_recurse_up("src")
        with lock:
            sources.add(src)

        def gone(*_):
            with lock:
                sources.discard(src)
        media.connect("unprepared", gone)

    factory = Factory()
    factory.set_shared(args.shared)
    factory.connect("media-configure", configure)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.path, factory)
    if not server.attach(None):
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 3

    stop = threading.Event()
    t0 = time.monotonic()

    def feed():
        # Frame n is due at t0 + n / fps; after a pause (SIGSTOP) the counter jumps to "now".
        n = 0
        while not stop.is_set():
            due = t0 + n / args.fps
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            n = max(n, int((time.monotonic() - t0) * args.fps))
            data = picture.make(n, int(time.time() * 1000))
            with lock:
                targets = list(sources)
            for src in targets:
                ret = src.emit("push-buffer", Gst.Buffer.new_wrapped(data))
                if ret != Gst.FlowReturn.OK and ret != Gst.FlowReturn.NOT_LINKED:
                    with lock:
                        sources.discard(src)
            n += 1

    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, lambda *_: (loop.quit(), False)[1])
    threading.Thread(target=feed, daemon=True).start()
    print(f"READY rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    try:
        loop.run()
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
