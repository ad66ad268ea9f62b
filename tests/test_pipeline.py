"""The pipeline loop (stream/pipeline/loop.py) on its own: plain callables for boxes, colours, stages, sinks."""
from __future__ import annotations

import numpy as np
import pytest

from stream.events import CarEvent, CountEvent
from stream.pipeline import Loop, Summary, process
from stream.record import Cars, Frame, FrameRecord


def frames(n=5, w=64, h=48):
    return [Frame(i, i / 10, np.zeros((h, w, 3), np.uint8)) for i in range(n)]


def boxes(frame):  # one box partly outside the frame, one degenerate after clipping
    return Cars([[-10, 5, 20, 30], [70, 10, 90, 20]], track_id=[frame.index % 2, 7])


def colors(frame, cars):
    return cars.with_crop_colors([(("red", 0.9),)] * len(cars), ["red"] * len(cars))


class Counter:
    """A stage with a finish: one car event on frame 2, and one pending at the end."""

    def __init__(self):
        self.seen = []

    def __call__(self, record):
        self.seen.append(record.frame.index)
        if record.frame.index == 2:
            ev = CarEvent(1, 0.0, 0.2, 3, "red", 0.9, (("red", 0.9),), (0, 5, 20, 30))
            return FrameRecord(record.source, record.frame, record.cars, record.skipped, record.events + (ev,))
        return record

    def finish(self, record):
        ev = CarEvent(2, 0.1, 0.4, 4, "blue", 0.8, (("blue", 0.8),), (0, 0, 5, 5))
        return FrameRecord(record.source, record.frame, record.cars, events=record.events + (ev, CountEvent(0.4, {})))


def test_process_clips_runs_stages_in_order_and_sinks_last():
    stage, written, closing = Counter(), [], []
    summary = process(frames(), "src", boxes, colors, [stage], [written.append], on_event=closing.append)
    assert stage.seen == [0, 1, 2, 3, 4] and [r.frame.index for r in written] == [0, 1, 2, 3, 4]
    assert all(r.cars.xyxy.tolist() == [[0, 5, 20, 30]] and r.skipped == 1 for r in written)
    assert all(r.cars.crop_color == ("red",) for r in written)
    assert [type(e).__name__ for e in closing] == ["CarEvent", "CountEvent"]
    assert (summary.frames, summary.detections, summary.cars, summary.skipped) == (5, 5, 2, 5)
    assert (summary.first, summary.last) == (0, 4)


def test_the_closing_events_come_even_when_a_sink_fails():
    closing = []

    def broken(record):
        if record.frame.index == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        process(frames(), "src", boxes, colors, [Counter()], [broken], on_event=closing.append)
    assert [e.id for e in closing if isinstance(e, CarEvent)] == [2]


def test_should_stop_and_no_frames():
    summary = process(frames(), "src", boxes, colors, should_stop=lambda: True)
    assert summary.frames == 1
    closing = []
    empty = process([], "src", boxes, colors, [Counter()], on_event=closing.append)
    assert empty.frames == 0 and closing == [] and empty.first is None


def test_loop_finishes_once():
    loop = Loop("src", boxes, colors, [Counter()])
    assert loop.finish() == ()  # no frame yet: nothing pending
    for f in frames(2):
        loop(f)
    assert len(loop.finish()) == 2 and loop.finish() == ()


def test_summary_line():
    s = Summary(frames=335, detections=814, cars=15, seconds=2.0)
    assert str(s) == "done: 335 frames, 15 cars, 814 car boxes, 167.5 fps, 2.0 s"
    assert "cars," not in str(Summary(frames=3, detections=3, cars=None, seconds=1.0))
