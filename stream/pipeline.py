"""The pipeline: frame -> boxes -> crops -> colours -> (more stages) -> outputs.

    capture.open_source  -> Frame
    boxes.box_source     -> Cars (where)
    ColorStage           -> Cars (with colours), bundled in a FrameRecord
    stages               -> FrameRecord -> FrameRecord (tracking, counting...)
    sinks                -> JSON Lines log, annotated video, window

A stage may also have ``finish(record) -> record``: called once after the last
frame (also on Ctrl-C) with an empty record of that frame, it adds the events
still pending (tracks still open, final counts); they go to ``on_event``.

``run`` wires them from a ``Config`` and returns a ``Summary``; ``process`` is
the loop itself, usable with any iterable of frames and any callables.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from .boxes import box_source, clip
from .cars import CarVotes, LineCounter
from .classify import ColorClassifier
from .record import Cars, Frame, FrameRecord
from .track import Tracker

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
        return cars.with_colors(self.classifier.top(probs), self.classifier.decide(probs))


class Progress:
    """Frames done / total, fps and ETA on stderr: one updating line on a terminal, else every 5 s."""

    def __init__(self, total: int = 0, stream=None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._last = self.start  # first line after one interval, when fps means something
        self._printed = False
        self.done = 0

    def fps(self) -> float:
        dt = time.monotonic() - self.start
        return self.done / dt if dt > 0 else 0.0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if not self.enabled or now - self._last < (0.5 if self.tty else 5.0):
            return
        self._last, self._printed = now, True
        fps = self.fps()
        if self.total:
            eta = (self.total - done) / fps if fps > 0 else 0.0
            text = f"frames {done}/{self.total} ({100 * done / self.total:.0f}%)  {fps:.1f} fps  ETA {eta:.0f}s"
        else:
            text = f"frames {done}  {fps:.1f} fps"
        self.stream.write(("\r" + text + "   ") if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._printed:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Summary:
    frames: int = 0
    cars: int = 0
    skipped: int = 0
    seconds: float = 0.0
    stats: Dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        text = f"done: {self.frames} frames, {self.cars} cars, {self.fps:.1f} fps, {self.seconds:.1f} s"
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
            on_event: Optional[Callable[[Mapping], None]] = None) -> Summary:
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
            summary.cars += len(record.cars)
            summary.skipped += skipped
            if progress is not None:
                progress.update(summary.frames)
            if should_stop():
                break
    finally:
        if last is not None:
            end = finish(stages, FrameRecord(source, last.frame, Cars.empty()))
            for event in end.events:
                if on_event is not None:
                    on_event(event)
        summary.seconds = time.monotonic() - start
    return summary


def run(cfg, source: Union[str, int], *, boxes_file: Optional[Union[str, Path]] = None,
        output: Optional[Union[str, Path]] = None, log: Optional[Union[str, Path]] = None,
        show: bool = False, progress: bool = True, classifier: Optional[ColorClassifier] = None,
        stderr=None, save_crops: Optional[Union[str, Path]] = None) -> Summary:
    """Process ``source`` as ``cfg`` says; every sink is finalised even on Ctrl-C or an error.

    With a detector or a boxes file, cars are tracked (``cfg.tracking``): one
    colour per car, a ``car`` log line per track, the best crops in
    ``save_crops``, and counts at ``cfg.count_line``.
    """
    from .capture import open_source
    from .overlay import Overlay
    from .sinks import JsonlLog, VideoSink, Window

    stderr = stderr or sys.stderr
    classifier = classifier or ColorClassifier.from_config(cfg)
    logger = JsonlLog(log) if log else None

    def on_event(event: Dict) -> None:
        if logger is not None:
            logger.write(event)
        detail = ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "source", "wall", "t"))
        stderr.write(f"[{event.get('source', '')}] {event['event']}{': ' + detail if detail else ''}\n")
        stderr.flush()

    closers: List = [logger] if logger else []
    try:
        src = open_source(source, every=cfg.every, start=cfg.start, end=cfg.end, live=cfg.live, on_event=on_event)
        closers.insert(0, src)
        boxes = box_source(cfg, boxes_file, fps=src.fps or 30.0)
        car_stages = _car_stages(cfg, boxes_file, save_crops, stderr, classifier.unknown_threshold)
        counter = next((s for s in car_stages if isinstance(s, LineCounter)), None)
        sinks: List[Sink] = []
        window = None
        if output or show:
            overlay = Overlay(show=min(2, cfg.top_k), counter=counter)
            # A live camera's fps is known once it is online: the sink asks when it opens.
            video = VideoSink(output, (lambda: src.fps or 25.0) if src.live else src.fps / cfg.every) if output else None
            window = Window(f"carcolor: {src.name}") if show else None
            closers += [s for s in (video, window) if s is not None]

            def draw(record: FrameRecord) -> None:
                image = overlay.draw(record.frame.image, record)
                if video is not None:
                    video.write(image)
                if window is not None:
                    window.write(image)
            sinks.append(draw)
        if logger is not None:
            sinks.append(logger)  # last: a frame in the log is already in the video
        stats = LiveStats(src, on_event, cfg.live.stats_interval) if src.live else None
        stages: List[Stage] = ([stats] if stats else []) + car_stages

        def on_final(event: Mapping) -> None:
            if logger is not None:
                logger.write(event)
            if event.get("event") == "count":
                counts = "; ".join(f"{d} {sum(c.values())} ({', '.join(f'{k} {n}' for k, n in c.items())})"
                                   for d, c in event["counts"].items())
                stderr.write(f"[{src.name}] count: {counts}\n")

        bar = Progress(src.expected, stderr, enabled=progress)
        try:
            summary = process(src, src.name, boxes, ColorStage(classifier), stages, sinks, bar,
                              should_stop=lambda: bool(window and window.quit), on_event=on_final)
        finally:
            bar.close()
        summary.stats = src.stats()
        if getattr(src, "truncated", False):
            stderr.write(f"warning: {src.name} ended early at frame {src.frames_read} of "
                         f"{src.frame_count} (truncated or corrupt video)\n")
        return summary
    finally:
        for c in closers:
            c.close()


def _car_stages(cfg, boxes_file, save_crops, stderr, unknown_threshold: float) -> List[Stage]:
    """Tracking, the colour vote and the count line, when boxes come from a detector or a file."""
    if not cfg.tracking.enabled or (boxes_file is None and cfg.detector == "none"):
        if cfg.count_line is not None or save_crops:
            stderr.write("warning: count_line and --save-crops need tracking (a detector or --boxes); ignored\n")
        return []
    stages: List[Stage] = [Tracker(cfg.tracking),
                           CarVotes(cfg.tracking, cfg.top_k, unknown_threshold, save_crops)]
    if cfg.count_line is not None:
        stages.append(LineCounter(cfg.count_line, cfg.tracking.min_frames))
    return stages


class LiveStats:
    """A stage that posts per-interval live statistics (fps in, fps processed, dropped)."""

    def __init__(self, src, on_event: Callable[[Dict], None], interval: float):
        self.src, self.on_event, self.interval = src, on_event, interval
        self._t = time.monotonic()
        self._read = src.frames_read
        self._done = 0
        self._dropped = src.dropped

    def __call__(self, record: FrameRecord) -> FrameRecord:
        self._done += 1
        now = time.monotonic()
        dt = now - self._t
        if dt >= self.interval:
            read, dropped = self.src.frames_read, self.src.dropped
            self.on_event({"event": "stats", "source": self.src.name, "t": round(record.frame.timestamp, 3),
                           "fps_in": round((read - self._read) / dt, 2), "fps_processed": round(self._done / dt, 2),
                           "dropped": dropped - self._dropped, "reconnects": self.src.reconnects})
            self._t, self._read, self._done, self._dropped = now, read, 0, dropped
        return record
