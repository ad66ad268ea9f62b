"""The loop: every frame through boxes, colours, stages and sinks; the stages' closing events.

    frames (capture)     -> Frame
    boxes (a box source) -> Cars (where), clipped to the frame
    colors (ColorStage)  -> Cars with each crop's colours, bundled in a FrameRecord
    stages               -> FrameRecord -> FrameRecord (tracking, vote, counting...)
    sinks                -> FrameRecord -> None (log, video, window)

A stage may also have ``finish(record) -> record``: called once after the last
frame (also on Ctrl-C) with an empty record of that frame, it adds the events
still pending (tracks still open, final counts); they go to ``on_event``.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

from ..boxes import clip
from ..classify import ColorClassifier
from ..events import CarEvent, Event
from ..queues import drain, offer
from ..record import Cars, Frame, FrameRecord
from .progress import Progress

Stage = Callable[[FrameRecord], FrameRecord]
Sink = Callable[[FrameRecord], None]


class ColorStage:
    """Classifies every car of a frame in one batched model call (the classifier clips the boxes)."""

    def __init__(self, classifier: ColorClassifier):
        self.classifier = classifier

    def __call__(self, frame: Frame, cars: Cars) -> Cars:
        return self.classifier.classify_cars(frame.image, cars)


@dataclass
class Summary:
    """What a run did: frames, car boxes seen (detections, not cars), tracked cars reported, time."""

    frames: int = 0
    detections: int = 0
    cars: Optional[int] = 0  # car events (tracked cars); None when nothing was tracked
    skipped: int = 0
    seconds: float = 0.0
    first: Optional[int] = None  # index of the first and last frame processed
    last: Optional[int] = None
    stats: Dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        text = f"done: {self.frames} frames"
        if self.cars is not None:
            text += f", {self.cars} cars"
        text += f", {self.detections} car boxes, {self.fps:.1f} fps, {self.seconds:.1f} s"
        if self.skipped:
            text += f", {self.skipped} degenerate boxes skipped"
        if self.stats.get("dropped"):
            text += f", {self.stats['dropped']} frames dropped (live)"
        return text


def finish(stages: Sequence[Stage], record: FrameRecord) -> FrameRecord:
    """The closing record: each stage with a ``finish`` method, in order, adds its pending events."""
    for stage in stages:
        done = getattr(stage, "finish", None)
        if done is not None:
            record = done(record)
    return record


class Loop:
    """One frame at a time: ``loop(frame) -> FrameRecord``; ``loop.finish()`` -> the events still pending.

    The per-frame part of ``process``, for callers that drive the frames
    themselves (``stream.open``). ``finish`` runs the stages' ``finish`` once,
    after the last frame; later calls return nothing.
    """

    def __init__(self, source: str, boxes: Callable[[Frame], Cars], colors: Callable[[Frame, Cars], Cars],
                 stages: Sequence[Stage] = ()):
        self.source, self.boxes, self.colors, self.stages = source, boxes, colors, list(stages)
        self.last: Optional[Frame] = None
        self._finished = False

    def __call__(self, frame: Frame) -> FrameRecord:
        return self.track(self.measure(frame))

    def measure(self, frame: Frame) -> FrameRecord:
        """The per-frame half that needs no earlier frame's result: boxes, clipping, colours.

        (A detector keeps its own state across frames: call this in frame order, from one thread.)
        """
        cars, skipped = clip(self.boxes(frame), *frame.size)
        return FrameRecord(self.source, frame, self.colors(frame, cars), skipped)

    def track(self, record: FrameRecord) -> FrameRecord:
        """The stages (tracking, vote, counting), in frame order."""
        for stage in self.stages:
            record = stage(record)
        self.last = record.frame
        return record

    def finish(self) -> Tuple[Event, ...]:
        if self._finished or self.last is None:
            return ()
        self._finished = True
        return finish(self.stages, FrameRecord(self.source, self.last, Cars.empty())).events


_END = object()


class _Ahead:
    """``fn(item)`` for each item of ``items`` in a thread, up to ``depth`` results ahead of the consumer.

    The measuring half of the loop (detection, crops, the colour model: native calls that release
    the GIL) runs here while the consumer tracks, votes and writes the frame before: two cores busy.
    Results come in order through a bounded queue that blocks (never drops). An exception in the
    thread (the source's or a stage's) is raised in the consumer; the end marker is posted in
    ``finally``; the consumer waits with a timeout and checks that the thread lives; ``close``
    (also when the consumer stops early or is interrupted) stops the thread and waits for it.
    """

    def __init__(self, items: Iterable, fn: Callable, depth: int = 2):
        self._items, self._fn = items, fn
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._waiting = False
        self._thread = threading.Thread(target=self._work, name="measure", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        return offer(self._queue, item, self._stop)

    def _work(self) -> None:
        try:
            items = iter(self._items)
            while not self._stop.is_set():
                self._waiting = True  # in the source: a live one may block until it is closed
                item = next(items, _END)
                self._waiting = False
                if item is _END or self._stop.is_set() or not self._put(self._fn(item)):
                    return
        except BaseException as e:  # noqa: BLE001 - delivered to the consumer, never swallowed
            self._put(_Failed(e))
        finally:
            self._waiting = False
            self._put(_END)

    def __iter__(self):
        yield from drain(self._queue, self._thread, _END,
                         lambda item: item.error if isinstance(item, _Failed) else None)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread: wait for a frame being measured; not for a source that has no frame
        (a stalled camera): closing the source, next, ends that wait, and the thread with it."""
        self._stop.set()
        self._thread.join(0.3 if self._waiting else timeout)


@dataclass
class _Failed:
    error: BaseException


def process(frames: Iterable[Frame], source: str, boxes: Callable[[Frame], Cars],
            colors: Callable[[Frame, Cars], Cars], stages: Sequence[Stage] = (),
            sinks: Sequence[Sink] = (), progress: Optional[Progress] = None,
            should_stop: Callable[[], bool] = lambda: False,
            on_event: Optional[Callable[[Event], None]] = None, ahead: int = 2) -> Summary:
    """Run every frame through boxes, colours, stages and sinks; returns the counts.

    With ``ahead`` > 0, boxes and colours of the next frames (up to ``ahead``) are
    computed in a thread while this one runs the stages and sinks (``_Ahead``); 0:
    everything in this thread. After the last frame (or Ctrl-C) the stages'
    closing events go to ``on_event``.
    """
    summary = Summary()
    start = time.monotonic()
    loop = Loop(source, boxes, colors, stages)
    measured = _Ahead(frames, loop.measure, ahead) if ahead > 0 else None
    try:
        for record in (measured if measured is not None else map(loop.measure, frames)):
            record = loop.track(record)
            frame = record.frame
            for sink in sinks:
                sink(record)
            summary.frames += 1
            summary.first = frame.index if summary.first is None else summary.first
            summary.last = frame.index
            summary.detections += len(record.cars)
            summary.cars += sum(isinstance(e, CarEvent) for e in record.events)
            summary.skipped += record.skipped
            if progress is not None:
                progress.update(summary.frames)
            if should_stop():
                break
    finally:
        if measured is not None:
            measured.close()
        end = loop.finish()
        summary.cars += sum(isinstance(e, CarEvent) for e in end)
        for event in end:
            if on_event is not None:
                on_event(event)
        summary.seconds = time.monotonic() - start
    return summary
