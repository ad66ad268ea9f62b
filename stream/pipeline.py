"""The pipeline: frame -> boxes -> crops -> colours -> (more stages) -> outputs.

    capture.open_source  -> Frame
    boxes.box_source     -> Cars (where)
    ColorStage           -> Cars (with colours), bundled in a FrameRecord
    stages               -> FrameRecord -> FrameRecord (tracking, counting...)
    sinks                -> JSON Lines log, annotated video, window

``run`` wires them from a ``Config`` and returns a ``Summary``; ``process`` is
the loop itself, usable with any iterable of frames and any callables.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

from .boxes import box_source, clip
from .classify import ColorClassifier
from .record import Cars, Frame, FrameRecord

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


def process(frames: Iterable[Frame], source: str, boxes: Callable[[Frame], Cars],
            colors: Callable[[Frame, Cars], Cars], stages: Sequence[Stage] = (),
            sinks: Sequence[Sink] = (), progress: Optional[Progress] = None,
            should_stop: Callable[[], bool] = lambda: False) -> Summary:
    """Run every frame through boxes, colours, stages and sinks; returns the counts."""
    summary = Summary()
    start = time.monotonic()
    for frame in frames:
        cars, skipped = clip(boxes(frame), *frame.size)
        record = FrameRecord(source, frame, colors(frame, cars), skipped)
        for stage in stages:
            record = stage(record)
        for sink in sinks:
            sink(record)
        summary.frames += 1
        summary.cars += len(record.cars)
        summary.skipped += skipped
        if progress is not None:
            progress.update(summary.frames)
        if should_stop():
            break
    summary.seconds = time.monotonic() - start
    return summary


def run(cfg, source: Union[str, int], *, boxes_file: Optional[Union[str, Path]] = None,
        output: Optional[Union[str, Path]] = None, log: Optional[Union[str, Path]] = None,
        show: bool = False, progress: bool = True, classifier: Optional[ColorClassifier] = None,
        stderr=None) -> Summary:
    """Process ``source`` as ``cfg`` says; every sink is finalised even on Ctrl-C or an error."""
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
        sinks: List[Sink] = []
        if logger is not None:
            sinks.append(logger)
        window = None
        if output or show:
            overlay = Overlay(show=min(2, cfg.top_k))
            video = VideoSink(output, src.fps / cfg.every if not src.live else (src.fps or 25.0)) if output else None
            window = Window(f"carcolor: {src.name}") if show else None
            closers += [s for s in (video, window) if s is not None]

            def draw(record: FrameRecord) -> None:
                image = overlay.draw(record.frame.image, record)
                if video is not None:
                    video.write(image)
                if window is not None:
                    window.write(image)
            sinks.append(draw)
        stats = LiveStats(src, on_event, cfg.live.stats_interval) if src.live else None
        stages: List[Stage] = [stats] if stats else []
        bar = Progress(src.expected, stderr, enabled=progress)
        try:
            summary = process(src, src.name, boxes, ColorStage(classifier), stages, sinks, bar,
                              should_stop=lambda: bool(window and window.quit))
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
