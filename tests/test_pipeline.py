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


# --- boxes and colours a thread ahead (process(ahead=N)): order, errors, early stops ---------------

import threading  # noqa: E402
import time  # noqa: E402


def _measure_threads():
    return [t for t in threading.enumerate() if t.name == "measure" and t.is_alive()]


@pytest.mark.parametrize("ahead", [0, 1, 3])
def test_ahead_gives_the_same_records_in_order(ahead):
    written, closing = [], []
    summary = process(frames(20), "src", boxes, colors, [Counter()], [written.append], on_event=closing.append,
                      ahead=ahead)
    assert [r.frame.index for r in written] == list(range(20)) and summary.frames == 20
    assert [e.id for e in closing if isinstance(e, CarEvent)] == [2]
    assert not _measure_threads()


def test_the_measuring_thread_runs_beside_the_stages():
    threads, busy, overlaps = set(), threading.Event(), []

    def slow_colors(frame, cars):
        threads.add(threading.current_thread().name)
        busy.set()
        time.sleep(0.02)
        busy.clear()
        return colors(frame, cars)

    def slow_stage(record):
        threads.add(threading.current_thread().name)
        for _ in range(4):  # while a stage works on frame i, colours of frame i+1.. are being made
            overlaps.append(busy.is_set())
            time.sleep(0.005)
        return record

    process(frames(20), "src", boxes, slow_colors, [slow_stage], ahead=2)
    assert threads == {"measure", threading.current_thread().name}
    assert sum(overlaps) > 10, overlaps  # not one after the other


def test_an_error_in_the_source_or_the_boxes_reaches_the_caller_and_the_events_still_come():
    def failing_source():
        yield from frames(4)
        raise OSError("camera unplugged")

    closing = []
    with pytest.raises(OSError, match="camera unplugged"):
        process(failing_source(), "src", boxes, colors, [Counter()], on_event=closing.append)
    assert [e.id for e in closing if isinstance(e, CarEvent)] == [2]

    def bad_boxes(frame):
        if frame.index == 3:
            raise ValueError("bad box line")
        return boxes(frame)

    written = []
    with pytest.raises(ValueError, match="bad box line"):
        process(frames(), "src", bad_boxes, colors, [Counter()], [written.append])
    assert [r.frame.index for r in written] == [0, 1, 2]
    assert not _measure_threads()


def test_stopping_early_stops_the_thread_and_reads_no_further_than_the_queue():
    taken = []

    def endless():
        i = 0
        while True:
            taken.append(i)
            yield Frame(i, i / 10, np.zeros((48, 64, 3), np.uint8))
            i += 1

    summary = process(endless(), "src", boxes, colors, should_stop=lambda: len(taken) > 5, ahead=2)
    assert summary.frames >= 1 and len(taken) <= summary.frames + 2 + 2  # the queue and one in hand
    assert not _measure_threads()

    def interrupting(record):
        if record.frame.index == 4:
            raise KeyboardInterrupt

    taken.clear()
    with pytest.raises(KeyboardInterrupt):
        process(endless(), "src", boxes, colors, sinks=[interrupting], ahead=2)
    assert not _measure_threads() and len(taken) <= 5 + 2 + 2
