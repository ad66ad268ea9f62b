"""The sinks (stream/sinks.py) on their own: the JSON Lines log and the video file."""
from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from stream.errors import CarcolorError
from stream.events import CarEvent, StartEvent
from stream.record import Cars, Frame, FrameRecord
from stream.sinks import JsonlLog, VideoSink


def record(i):
    cars = Cars([[1, 2, 30, 40]], track_id=[4]).with_crop_colors([(("red", 0.5),)], ["red"])
    ev = (CarEvent(4, 0.0, 0.1, 2, "red", 0.5, (("red", 0.5),), (1, 2, 30, 40)),) if i == 1 else ()
    return FrameRecord("s.mp4", Frame(i, i / 25, np.zeros((50, 60, 3), np.uint8)), cars, events=ev)


def test_log_writes_events_before_their_frame_and_appends(tmp_path):
    path = tmp_path / "log.jsonl"
    with JsonlLog(path) as log:
        log.write(StartEvent("s.mp4", 1.0, "x"))
        for i in range(3):
            log(record(i))
    with JsonlLog(path) as log:  # a second run appends
        log(record(5))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x.get("event", x.get("frame")) for x in lines] == ["start", 0, "car", 1, 2, 5]
    assert lines[1]["cars"] == [{"box": [1, 2, 30, 40], "id": 4, "color": "red",
                                 "colors": [{"color": "red", "prob": 0.5}]}]


def test_log_closes_a_torn_last_line_before_appending(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"source":"a","frame":0,"t":0,"cars":[]}\n{"source":"a","fra')
    with JsonlLog(path) as log:
        log(record(0))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["frame"] == 0


def test_log_lines_never_interleave_across_threads(tmp_path):
    path = tmp_path / "log.jsonl"
    with JsonlLog(path) as log:
        threads = [threading.Thread(target=lambda: [log(record(i)) for i in range(200)]) for _ in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 201 and all(json.loads(x) for x in lines)


def test_log_and_video_refuse_a_missing_folder(tmp_path):
    with pytest.raises(CarcolorError, match="log folder does not exist"):
        JsonlLog(tmp_path / "no" / "log.jsonl")
    with pytest.raises(CarcolorError, match="output folder does not exist"):
        VideoSink(tmp_path / "no" / "out.mp4", 25.0)
    with pytest.raises(CarcolorError, match="must end in .mp4"):
        VideoSink(tmp_path / "out.gif", 25.0)


def test_video_sink_writes_every_frame_at_the_first_size(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoSink(path, 25.0) as video:
        for i in range(12):
            size = (64, 48) if i < 6 else (96, 72)  # a live source back at another size
            video.write(np.full((size[1], size[0], 3), i * 20, np.uint8))
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        assert image.shape == (48, 64, 3)
        n += 1
    assert n == 12 and video.frames == 12


def _decoded(path):
    """Frames PyAV and OpenCV each decode from a video file."""
    import av

    n_av = 0
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        codec = stream.codec_context.name
        for packet in c.demux(stream):
            try:  # a fragment cut in the middle ends in a torn packet: players skip it, so does this
                n_av += len(packet.decode())
            except av.error.InvalidDataError:
                continue
    cap = cv2.VideoCapture(str(path))
    n_cv = 0
    while cap.read()[0]:
        n_cv += 1
    cap.release()
    return codec, n_av, n_cv


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_video_is_h264_a_browser_plays_and_odd_sizes_are_cut_even(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    rng = np.random.default_rng(0)
    with VideoSink(path, 29.97) as video:
        for i in range(40):
            video.write(rng.integers(0, 256, (49, 65, 3), np.uint8))
    assert video.codec == "h264" and video.size == (64, 48)
    assert _decoded(path) == ("h264", 40, 40)
    if suffix == ".mp4":
        assert path.read_bytes().count(b"moof") >= 2  # fragmented: a fragment per keyframe (a second)


def test_a_video_cut_by_sigkill_still_plays_to_its_last_fragment(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    out = tmp_path / "cut.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--source", ROOT / "demo" / "motorway-960x540.mp4",
                             "--config", ROOT / "demo" / "config.yaml", "--output", out, "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_file() and out.read_bytes().count(b"moof") >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    codec, n_av, n_cv = _decoded(out)
    # at least two complete fragments of a second (30 frames) were on disk when it was killed: they play
    # (OpenCV stops at the torn packet, a couple of frames early: the decoder's delay is not flushed)
    assert codec == "h264" and 60 <= n_av < 335 and n_cv >= 55, (n_av, n_cv)
