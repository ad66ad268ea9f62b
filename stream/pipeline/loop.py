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
from typing import Callable, Dict, Iterable, Optional, Sequence

from ..boxes import clip
from ..classify import ColorClassifier
from ..events import CarEvent, Event
from ..record import Cars, Frame, FrameRecord
from .progress import Progress

Stage = Callable[[FrameRecord], FrameRecord]
Sink = Callable[[FrameRecord], None]


class ColorStage:
    """Classifies every car of a frame in one batched model call."""

    def __init__(self, classifier: ColorClassifier):
        self.classifier = classifier

    def __call__(self, frame: Frame, cars: Cars) -> Cars:
        if len(cars) == 0:
            return cars
        image = frame.image
        crops = [image[y1:y2, x1:x2] for x1, y1, x2, y2 in cars.xyxy.tolist()]
        probs = self.classifier.predict_proba(crops)
        return cars.with_crop_colors(self.classifier.top(probs), self.classifier.decide(probs))


@dataclass
class Summary:
    """What a run did: frames, car boxes seen (detections, not cars), tracked cars reported, time."""

    frames: int = 0
    detections: int = 0
    cars: Optional[int] = 0  # car events (tracked cars); None when nothing was tracked
    skipped: int = 0
    seconds: float = 0.0
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
    last: Optional[FrameRecord] = None
    try:
        for frame in frames:
            cars, skipped = clip(boxes(frame), *frame.size)
            record = FrameRecord(source, frame, colors(frame, cars), skipped)
            for stage in stages:
                record = stage(record)
            for sink in sinks:
                sink(record)
            last = record
            summary.frames += 1
            summary.detections += len(record.cars)
            summary.cars += sum(isinstance(e, CarEvent) for e in record.events)
            summary.skipped += skipped
            if progress is not None:
                progress.update(summary.frames)
            if should_stop():
                break
    finally:
        if last is not None:
            end = finish(stages, FrameRecord(source, last.frame, Cars.empty()))
            summary.cars += sum(isinstance(e, CarEvent) for e in end.events)
            for event in end.events:
                if on_event is not None:
                    on_event(event)
        summary.seconds = time.monotonic() - start
    return summary
