"""Live sources against a real RTSP server on loopback (GStreamer, ``tests/rtsp_server.py``).

The server runs under the system Python (it needs ``gi`` + GstRtspServer, installed by
``scripts/install-system-deps.sh``); these tests skip with the reason when it cannot load.
Every picture it serves carries its frame counter and the Unix time it was made, so a
test can read back from the pixels how old the frame it got is and what it missed.
Short timeouts keep the whole file near a minute.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np
import pytest

from conftest import ROOT, wait_for, write_clip
from rtsp_server import RtspServer, decode, free_port, gst_missing
from stream.capture import FileSource, LiveSource, ffmpeg_options, open_live
from stream.config import LiveConfig
from stream.errors import SourceError
from stream.events import to_json

FAST = LiveConfig(open_timeout=2, read_timeout=2, stall_timeout=2, retry_interval=0.2,
                  retry_max_interval=1.6, stats_interval=1)


_MISSING = gst_missing()
needs_rtsp = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


@pytest.fixture
def server():
    s = RtspServer()
    yield s
    s.kill()


class Consumer:
    """Iterates a LiveSource in a thread (optionally slowly), recording what it got."""

    def __init__(self, src: LiveSource, delay: float = 0.0):
        self.src, self.delay = src, delay
        self.frames: List[Dict] = []
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for frame in self.src:
                code = decode(frame.image)
                self.frames.append({"index": frame.index, "size": frame.size, "got": time.monotonic(),
                                    "age_ms": time.time() * 1000 - code[1] if code else None,
                                    "counter": code[0] if code else None})
                if self.delay:
                    time.sleep(self.delay)
        except BaseException as e:  # noqa: BLE001 - re-raised by the test
            self.error = e

    def wait_frames(self, n: int, timeout: float) -> List[Dict]:
        wait_for(lambda: len(self.frames) >= n or not self.thread.is_alive(), timeout, f"{n} frames")
        assert len(self.frames) >= n, f"{len(self.frames)} frames, error {self.error!r}"
        return self.frames


def events_of(events: List[Dict], name: str) -> List[Dict]:
    return [e for e in events if e.get("event") == name]


# --- no server needed -----------------------------------------------------------------------------
def test_ffmpeg_options_user_keys_win():
    assert ffmpeg_options("rtsp://cam/1", FAST) == "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay"
    assert "rtsp_transport" not in ffmpeg_options("http://cam/1.mjpg", FAST)
    opts = ffmpeg_options("rtsp://cam/1", FAST, "rtsp_transport;udp|stimeout;5000000")
    assert "rtsp_transport;udp" in opts and "stimeout;5000000" in opts and "tcp" not in opts


def test_open_live_leaves_the_environment_as_it_was(monkeypatch):
    monkeypatch.delenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", raising=False)
    open_live(f"rtsp://127.0.0.1:{free_port()}/none", FAST).release()  # refused at once
    assert "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "probesize;32")
    open_live(f"rtsp://127.0.0.1:{free_port()}/none", FAST).release()
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "probesize;32"


def test_file_slow_consumer_gets_every_frame_in_order(tmp_path):
    """Files never drop: a consumer far slower than decoding still gets every picture, in order."""
    path = write_clip(tmp_path / "c.mp4", frames=40, size=(160, 96))
    ref = cv2.VideoCapture(str(path))
    with FileSource(path, queue_size=2) as src:
        seen = []
        for frame in src:
            time.sleep(0.02)
            ok, expected = ref.read()
            assert ok and np.array_equal(frame.image, expected), f"frame {frame.index} differs"
            seen.append(frame.index)
        assert src.stats()["dropped"] == 0
    assert seen == list(range(40))


def test_max_retries_ends_the_iteration_with_source_error():
    events: List[Dict] = []
    cfg = FAST.model_copy(update={"max_retries": 2, "retry_interval": 0.05})
    with LiveSource(f"rtsp://127.0.0.1:{free_port()}/none", cfg, on_event=lambda e: events.append(to_json(e))) as src:
        with pytest.raises(SourceError, match="gave up after 2 retries") as info:
            for _ in src:
                pass
    assert isinstance(info.value, OSError)
    assert [e["attempt"] for e in events_of(events, "offline")] == [1, 2, 3]
    assert events_of(events, "max_retries") and not events_of(events, "online")


# --- a real RTSP server ---------------------------------------------------------------------------
@needs_rtsp
def test_frames_arrive(server):
    server.start()
    events: List[Dict] = []
    with LiveSource(server.url, FAST, on_event=lambda e: events.append(to_json(e))) as src:
        frames = Consumer(src).wait_frames(20, timeout=15)[:20]
        assert src.size == (320, 240) and src.live
    online = events_of(events, "online")
    assert len(online) == 1 and online[0]["size"] == [320, 240] and online[0]["source"] == server.url
    assert all(f["size"] == (320, 240) and f["counter"] is not None for f in frames), "undecodable frames"
    idx = [f["index"] for f in frames]
    counters = [f["counter"] for f in frames]
    assert idx == sorted(set(idx)) and counters == sorted(set(counters))
    assert max(f["age_ms"] for f in frames) < 1000, "stale frames at start (probe backlog?)"


@needs_rtsp
def test_killed_server_comes_back_on_the_same_port(server):
    """SIGKILL mid-stream -> offline; restarted (at another size) -> reconnected, frames flow again."""
    server.start()
    events: List[Dict] = []
    with LiveSource(server.url, FAST, on_event=lambda e: events.append(to_json(e))) as src:
        consumer = Consumer(src)
        consumer.wait_frames(10, timeout=15)
        server.kill()
        wait_for(lambda: events_of(events, "offline"), 5, "offline")
        before = len(consumer.frames)
        server.start(width=384, height=288)
        wait_for(lambda: events_of(events, "reconnected"), 15, "reconnected")
        consumer.wait_frames(before + 10, timeout=10)
        assert src.reconnects == 1 and src.size == (384, 288)
    names = [e["event"] for e in events]
    # Retries that found the port still closed (the server restarting slowly on a loaded machine) add offlines.
    first_back = names.index("reconnected")
    assert names[:2] == ["online", "offline"] and set(names[1:first_back]) == {"offline"}, names
    offline, back = events_of(events, "offline")[0], events_of(events, "reconnected")[0]
    assert offline["reason"] == "stream ended or connection lost" and offline["attempt"] == 1
    assert back["count"] == 1 and back["size"] == [384, 288] and back["downtime"] > 0
    after = consumer.frames[before:]
    assert all(f["size"] == (384, 288) for f in after[1:]), "no frame from the restarted server"
    idx = [f["index"] for f in consumer.frames]
    assert idx == sorted(set(idx)), "frame indices must keep growing across reconnects"


@needs_rtsp
def test_stalled_server_is_detected_by_stall_timeout(server):
    server.start()
    events: List[Dict] = []
    with LiveSource(server.url, FAST, on_event=lambda e: events.append(to_json(e))) as src:
        consumer = Consumer(src)
        consumer.wait_frames(10, timeout=15)
        server.stop()
        stopped = time.monotonic()
        wait_for(lambda: events_of(events, "offline"), FAST.stall_timeout + 3, "offline after SIGSTOP")
        detected = time.monotonic() - stopped
        offline = events_of(events, "offline")[0]
        assert offline["reason"].startswith("stalled"), offline
        assert FAST.stall_timeout - 0.3 <= detected <= FAST.stall_timeout + 1.0, detected
        # No frame was published after the stall began (no old picture passed off as new).
        late = [f for f in consumer.frames if f["got"] > stopped + 0.5]
        assert not late, late
        server.cont()
        wait_for(lambda: events_of(events, "reconnected"), 15, "reconnected after SIGCONT")
        n = len(consumer.frames)
        consumer.wait_frames(n + 5, timeout=10)


@needs_rtsp
def test_close_returns_quickly_while_a_read_is_blocked(server):
    server.start()
    src = LiveSource(server.url, FAST.model_copy(update={"read_timeout": 10, "stall_timeout": 10}))
    Consumer(src).wait_frames(5, timeout=15)
    server.stop()
    time.sleep(0.5)  # the capture thread is now blocked in FFmpeg's read
    t = time.monotonic()
    src.close()
    assert time.monotonic() - t < 1.2


@needs_rtsp
def test_slow_consumer_gets_the_newest_frame_not_a_backlog(server):
    """15 fps stream, a consumer at 2 fps: each frame it gets is fresh; the rest are counted as dropped."""
    server.start()
    with LiveSource(server.url, FAST) as src:
        consumer = Consumer(src, delay=0.5)
        frames = consumer.wait_frames(8, timeout=20)[1:8]
        src.close()
        consumer.thread.join(2)
        consumed, dropped, read = len(consumer.frames), src.dropped, src.frames_read
    ages = [f["age_ms"] for f in frames]
    assert max(ages) < 350, f"frame ages {ages} ms: a backlog, not the newest frame"
    gaps = np.diff([f["counter"] for f in frames])
    assert gaps.min() >= 4, f"server frame gaps {gaps}: the consumer is being fed a backlog"
    idx_gaps = np.diff([f["index"] for f in frames])
    assert idx_gaps.min() >= 4
    assert read - 1 <= consumed + dropped <= read, (consumed, dropped, read)
    assert dropped >= int((idx_gaps - 1).sum())


# --- the command line -----------------------------------------------------------------------------
def live_config(tiny_config: Path, tmp_path: Path) -> Path:
    p = tmp_path / "live.yaml"
    p.write_text(tiny_config.read_text() + "boxes:\n  - {name: lane, xyxy: [0.1, 0.5, 0.6, 0.95]}\nlive:\n"
                 + "".join(f"  {k}: {v}\n" for k, v in FAST.model_dump().items() if v is not None))
    return p


class Run:
    """``carcolor run`` on a live URL as a subprocess, its JSON log read back as it grows."""

    def __init__(self, url: str, config: Path, tmp_path: Path, output: bool = True):
        self.log = tmp_path / "live.jsonl"
        self.video = tmp_path / "live.mp4"
        args = [sys.executable, "-m", "stream", "run", "--source", url, "--config", str(config),
                "--log", str(self.log), "--quiet"] + (["--output", str(self.video)] if output else [])
        self.err_path = tmp_path / "stderr.txt"
        with open(self.err_path, "w") as err:  # a file, not a pipe: a chatty run never blocks on it
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def lines(self) -> List[Dict]:
        """Complete lines only (a line being written has no newline yet)."""
        if not self.log.exists():
            return []
        text = self.log.read_text()
        return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]

    def events(self, name: str) -> List[Dict]:
        return events_of(self.lines(), name)

    def frames(self) -> List[Dict]:
        return [x for x in self.lines() if "frame" in x]

    def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        def check():
            if self.proc.poll() is not None:
                raise AssertionError(f"carcolor exited {self.proc.returncode}: {self.stderr()[-2000:]}")
            return cond()
        wait_for(check, timeout, what)

    def terminate(self) -> float:
        """SIGTERM; seconds until the process is gone."""
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return time.monotonic() - t

    def check_log(self) -> List[Dict]:
        """Every line of the finished log is whole JSON."""
        raw = self.log.read_bytes()
        assert raw.endswith(b"\n"), "last line torn"
        return [json.loads(line) for line in raw.decode().splitlines()]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@needs_rtsp
def test_cli_reports_offline_and_reconnected_and_stops_on_sigterm(server, tiny_config, tmp_path):
    server.start()
    run = Run(server.url, live_config(tiny_config, tmp_path), tmp_path)
    try:
        run.wait(lambda: len(run.frames()) >= 10, 60, "frames in the log")
        server.kill()
        run.wait(lambda: run.events("offline"), 8, "offline in the log")
        server.start(width=384, height=288)
        run.wait(lambda: run.events("reconnected"), 15, "reconnected in the log")
        n = len(run.frames())
        run.wait(lambda: len(run.frames()) >= n + 10, 10, "frames after reconnecting")
        took = run.terminate()
        assert run.proc.returncode == 130, run.stderr()
        assert took < 2.0, f"SIGTERM took {took:.2f}s"
    finally:
        run.close()
    lines = run.check_log()
    names = [x["event"] for x in lines if "event" in x]
    assert names.index("online") < names.index("offline") < names.index("reconnected"), names
    back = events_of(lines, "reconnected")[0]
    assert back["count"] == 1 and back["size"] == [384, 288]
    assert events_of(lines, "stats"), "no per-interval stats event"
    frames = [x for x in lines if "frame" in x]
    assert [x["frame"] for x in frames] == sorted({x["frame"] for x in frames})
    assert all(len(x["cars"]) == 1 and x["cars"][0]["color"] for x in frames)
    # The video is finalised and playable, one picture per logged frame, at the first size.
    cap = cv2.VideoCapture(str(run.video))
    count = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        assert image.shape == (240, 320, 3)
        count += 1
    assert count == len(frames)


@needs_rtsp
def test_cli_never_started_server_backs_off_and_exits_on_sigterm(tiny_config, tmp_path):
    run = Run(f"rtsp://127.0.0.1:{free_port()}/live", live_config(tiny_config, tmp_path), tmp_path, output=False)
    try:
        run.wait(lambda: len(run.events("offline")) >= 4, 60, "4 offline events")
        took = run.terminate()
        assert run.proc.returncode == 130, run.stderr()
        assert took < 2.0, f"SIGTERM took {took:.2f}s"
        err = run.stderr()
    finally:
        run.close()
    offline = events_of(run.check_log(), "offline")
    assert [e["attempt"] for e in offline] == list(range(1, len(offline) + 1))
    assert all(e["reason"] == "cannot open stream" for e in offline)
    gaps = np.diff([e["t"] for e in offline])
    assert all(b > a * 1.4 for a, b in zip(gaps[:3], gaps[1:4])), f"no back-off: gaps {gaps}"
    assert gaps[0] >= FAST.retry_interval - 0.05
    assert "offline: reason=cannot open stream" in err  # also reported on stderr


@needs_rtsp
def test_cli_sigterm_while_the_stream_is_stalled(server, tiny_config, tmp_path):
    """A paused camera: stall detected from the log; SIGTERM during the blocked reopen still exits in 2 s."""
    server.start()
    run = Run(server.url, live_config(tiny_config, tmp_path), tmp_path)
    try:
        run.wait(lambda: len(run.frames()) >= 5, 60, "frames in the log")
        server.stop()
        stopped = time.time()
        run.wait(lambda: run.events("offline"), FAST.stall_timeout + 3, "offline after SIGSTOP")
        offline = run.events("offline")[0]
        assert offline["reason"].startswith("stalled")
        assert offline["wall"] - stopped <= FAST.stall_timeout + 1.0
        time.sleep(0.5)  # the reopen is now blocked on the paused server
        took = run.terminate()
        assert run.proc.returncode == 130, run.stderr()
        assert took < 2.0, f"SIGTERM took {took:.2f}s"
    finally:
        run.close()
    frames = [x for x in run.check_log() if "frame" in x]
    cap = cv2.VideoCapture(str(run.video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
