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

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

from ..boxes import clip
from ..classify import ColorClassifier
from ..events import CarEvent, Event
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
        cars, skipped = clip(self.boxes(frame), *frame.size)
        record = FrameRecord(self.source, frame, self.colors(frame, cars), skipped)
        for stage in self.stages:
            record = stage(record)
        self.last = frame
        return record

    def finish(self) -> Tuple[Event, ...]:
        if self._finished or self.last is None:
            return ()
        self._finished = True
        return finish(self.stages, FrameRecord(self.source, self.last, Cars.empty())).events


def process(frames: Iterable[Frame], source: str, boxes: Callable[[Frame], Cars],
            colors: Callable[[Frame, Cars], Cars], stages: Sequence[Stage] = (),
            sinks: Sequence[Sink] = (), progress: Optional[Progress] = None,
            should_stop: Callable[[], bool] = lambda: False,
            on_event: Optional[Callable[[Event], None]] = None) -> Summary:
    """Run every frame through boxes, colours, stages and sinks; returns the counts.

    After the last frame (or Ctrl-C) the stages' closing events go to ``on_event``.
    """
    summary = Summary()
    start = time.monotonic()
    loop = Loop(source, boxes, colors, stages)
    try:
        for frame in frames:
            record = loop(frame)
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
        end = loop.finish()
        summary.cars += sum(isinstance(e, CarEvent) for e in end)
        for event in end:
            if on_event is not None:
                on_event(event)
        summary.seconds = time.monotonic() - start
    return summary
