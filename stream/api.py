"""The library in a few calls: ``stream.open`` a source for its cars, ``stream.classify_images`` for photos.

    >>> import stream
    >>> with stream.open("demo/motorway-960x540.mp4", config="demo/config.yaml") as video:  # doctest: +SKIP
    ...     for car in video.cars():
    ...         print(car.id, car.color, round(car.prob, 2))

Everything the CLI does is built the same way (``pipeline.wiring``): the
classifier owns the crops (clipped to the frame) and the ``unknown`` decision,
the vote takes both from it, and the end of the source flushes the tracks still
open, so the last cars are reported without any call of yours.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

import numpy as np

from .boxes import box_source
from .capture import Source, open_source
from .classify import ColorClassifier
from .config import Config, load_config
from .events import CarEvent, Event
from .pipeline.loop import ColorStage, Loop
from .pipeline.wiring import car_stages_for
from .record import Cars, FrameRecord, TopK

Config_ = Union[Config, str, Path, None]


def _config(config: Config_, overrides: dict) -> Config:
    cfg = config if isinstance(config, Config) else load_config(config)
    return cfg.override(**overrides)


class CarStream:
    """A source opened for its cars: iterate ``records()`` (every frame), ``events()`` or ``cars()``.

    ``config``: a ``Config``, a YAML path (keys it does not set are the shipped
    ones) or None (the shipped config); ``overrides``: config keys, e.g.
    ``detector="motion"``, ``top_k=1``; ``boxes``: a detections file. Cars are
    tracked when boxes come from a detector or a file. One pass per stream.
    """

    def __init__(self, source: Union[str, int, Path], config: Config_ = None, *,
                 boxes: Optional[Union[str, Path]] = None, classifier: Optional[ColorClassifier] = None,
                 **overrides):
        self.config = cfg = _config(config, overrides)
        self.classifier = classifier or ColorClassifier.from_config(cfg)
        self.source: Source = open_source(source, every=cfg.every, start=cfg.start, end=cfg.end, live=cfg.live)
        try:
            self.stages = car_stages_for(cfg, boxes is not None, self.classifier)
            self._loop = Loop(self.source.name, box_source(cfg, boxes, fps=self.source.fps or 30.0),
                              ColorStage(self.classifier), self.stages)
        except BaseException:
            self.source.close()
            raise
        self._used = False

    def records(self) -> Iterator[FrameRecord]:
        """Each frame's ``FrameRecord``; after the last one, a record holding the events still pending."""
        if self._used:
            raise RuntimeError("a CarStream is read once; open the source again")
        self._used = True
        try:
            for frame in self.source:
                yield self._loop(frame)
            pending = self._loop.finish()
            if pending:
                yield FrameRecord(self.source.name, self._loop.last, Cars.empty(), events=pending)
        finally:
            self.close()

    def events(self) -> Iterator[Event]:
        """The events in order: each car when its track ends, count lines, the final counts."""
        for record in self.records():
            yield from record.events

    def cars(self) -> Iterator[CarEvent]:
        """Each tracked car once (``CarEvent``: id, first/last seen, voted colour and share, best box)."""
        for event in self.events():
            if isinstance(event, CarEvent):
                yield event

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> "CarStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[CarEvent]:
        return self.cars()


def open(source: Union[str, int, Path], config: Config_ = None, **kwargs) -> CarStream:  # noqa: A001
    """A video file, webcam index or URL opened for its cars (see ``CarStream``)."""
    return CarStream(source, config, **kwargs)


@dataclass(frozen=True)
class Colors:
    """One image's answer: the decision (a colour, or ``unknown``) and the top-k (colour, probability)."""

    color: str
    colors: TopK


def classify_images(images: Sequence[Union[str, Path, np.ndarray]], config: Config_ = None,
                    classifier: Optional[ColorClassifier] = None, **overrides) -> List[Colors]:
    """The colours of car photos (paths, or BGR arrays), in one batched model call.

    A file that cannot be read raises ``ImageError`` naming it (``carcolor classify``
    reports it and goes on with the others).
    """
    from .imageio import read_image

    clf = classifier or ColorClassifier.from_config(_config(config, overrides))
    arrays = [im if isinstance(im, np.ndarray) else read_image(im) for im in images]
    probs = clf.predict_proba(arrays)
    return [Colors(d, t) for t, d in zip(clf.top(probs), clf.decide(probs))]


__all__ = ["CarStream", "Colors", "classify_images", "open"]
