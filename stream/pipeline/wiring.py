"""``run``: a config and a source in, every stage and sink built and closed, a ``Summary`` out.

Each part is built from its own section of the config: the source from
``every``/``start``/``end`` and ``live``, the boxes from ``boxes``/``detector``
and the detector's section, tracking and the vote from ``tracking``, the count
line from ``count_line``, the classifier from the model keys.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional, Union

from ..boxes import DetectionsFile, box_source, finds_cars
from ..cars import CarVotes, LineCounter
from ..classify import ColorClassifier
from ..events import CountEvent, Event, StartEvent, describe
from ..record import FrameRecord
from ..track import Tracker, preload
from .live_stats import LiveStats
from .loop import ColorStage, Sink, Stage, Summary, process
from .progress import Progress


def run(cfg, source: Union[str, int], *, boxes_file: Optional[Union[str, Path]] = None,
        output: Optional[Union[str, Path]] = None, log: Optional[Union[str, Path]] = None,
        show: bool = False, progress: Union[bool, Callable[[int, int], None]] = True, classifier: Optional[ColorClassifier] = None,
        stderr=None, save_crops: Optional[Union[str, Path]] = None) -> Summary:
    """Process ``source`` as ``cfg`` says; every sink is finalised even on Ctrl-C or an error.

    With a detector or a boxes file, cars are tracked (``cfg.tracking``): one
    colour per car, a ``car`` log line per track, the best crops in
    ``save_crops``, and counts at ``cfg.count_line``. ``progress``: a line on
    ``stderr`` (True), none (False), or a callable given (frames done, expected).
    """
    from .. import __version__
    from ..capture import open_source
    from ..overlay import Overlay
    from ..sinks import JsonlLog, VideoSink, Window

    stderr = stderr or sys.stderr
    if cfg.tracking.enabled and finds_cars(cfg, True if boxes_file is not None else None):
        # The tracker's library imports in a thread while the colour model and the source open.
        threading.Thread(target=preload, name="import-tracker", daemon=True).start()
    classifier = classifier or ColorClassifier.from_config(cfg)
    logger = JsonlLog(log) if log else None

    def on_event(event: Event) -> None:
        if logger is not None:
            logger.write(event)
        stderr.write(describe(event) + "\n")
        stderr.flush()

    closers: List = [logger] if logger else []
    try:
        src = open_source(source, every=cfg.every, start=cfg.start, end=cfg.end, live=cfg.live, on_event=on_event)
        closers.insert(0, src)
        if logger is not None:
            logger.write(StartEvent(src.name, time.time(), __version__))
        boxes = box_source(cfg, boxes_file, fps=src.fps or 30.0)
        car_stages = car_stages_for(cfg, boxes_file is not None, classifier, save_crops, stderr)
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

        def on_final(event: Event) -> None:
            if logger is not None:
                logger.write(event)
            if isinstance(event, CountEvent):
                counts = "; ".join(f"{d} {sum(c.values())} ({', '.join(f'{k} {n}' for k, n in c.items())})"
                                   for d, c in event.counts.items())
                stderr.write(f"[{src.name}] count: {counts}\n")

        bar = _Report(progress, src.expected) if callable(progress) else Progress(src.expected, stderr, enabled=progress)
        try:
            summary = process(src, src.name, boxes, ColorStage(classifier), stages, sinks, bar,
                              should_stop=lambda: bool(window and window.quit), on_event=on_final)
        finally:
            bar.close()
        if not car_stages:
            summary.cars = None
        summary.stats = src.stats()
        if summary.frames == 0:
            stderr.write(f"warning: no frame of {src.name} was processed (start, end, every: "
                         f"{cfg.start:g}, {cfg.end}, {cfg.every})\n")
        elif isinstance(boxes, DetectionsFile) and boxes.span() and not boxes.frames_with_boxes:
            stderr.write(f"warning: no box of {boxes.path} ({boxes.span()}) fell on a processed frame "
                         f"(frames {summary.first}-{summary.last}); JSON Lines frames count from 0, MOT from 1\n")
        if src.truncated:
            stderr.write(f"warning: {src.name} ended early at frame {src.frames_read} of "
                         f"{src.frame_count} (truncated or corrupt video)\n")
        return summary
    finally:
        for c in closers:
            c.close()


class _Report:
    """``Progress``'s interface over a callable ``(frames done, frames expected)``."""

    def __init__(self, fn: Callable[[int, int], None], total: int):
        self.fn, self.total = fn, total

    def update(self, done: int) -> None:
        self.fn(done, self.total)

    def close(self) -> None:
        pass


def car_stages_for(cfg, external_boxes: bool, classifier: ColorClassifier, save_crops=None,
                   stderr=None) -> List[Stage]:
    """Tracking, the colour vote and the count line, when boxes come from a detector or a file."""
    if not cfg.tracking.enabled or not finds_cars(cfg, True if external_boxes else None):
        if (cfg.count_line is not None or save_crops) and stderr is not None:
            stderr.write("warning: count_line and --save-crops need tracking (a detector or --boxes); ignored\n")
        return []
    stages: List[Stage] = [Tracker(cfg.tracking), CarVotes(cfg.tracking, classifier, save_crops=save_crops)]
    if cfg.count_line is not None:
        stages.append(LineCounter(cfg.count_line, cfg.tracking.min_frames))
    return stages
