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
