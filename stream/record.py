"""The records that flow through the pipeline.

capture -> ``Frame``; boxes -> ``Cars`` (no colours yet); classify -> ``Cars``
with colours; the pipeline bundles both into one immutable ``FrameRecord`` that
every later stage (tracking, overlay, sinks) reads and, when it adds something,
replaces with ``dataclasses.replace`` instead of writing into it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from .events import Event

TopK = Tuple[Tuple[str, float], ...]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class Frame:
    """One decoded picture.

    ``index`` counts frames of the source from 0 (frames skipped by ``--every``
    keep their numbers); ``timestamp`` is seconds from the start of the source
    (the container's clock for files, ``time.monotonic()`` since opening for live
    sources); ``wall`` is the Unix time the frame was captured (live sources
    only, else None). ``image`` is BGR uint8 (H, W, 3).
    """

    index: int
    timestamp: float
    image: np.ndarray
    wall: Optional[float] = None

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class Cars:
    """The cars of one frame, column-wise (supervision's ``Detections`` shape).

    - ``xyxy``: int32 (N, 4) pixel boxes, inside the frame, non-empty.
    - ``score``: float32 (N,) detector confidence, NaN when unknown.
    - ``track_id``: int64 (N,), -1 when the car is not tracked.
    - ``name``: N strings (a configured region's name, else "").
    - ``crop_top``: N top-k lists of (colour, probability) of each car's crop in
      this frame, from the classifier; empty before classifying.
    - ``crop_color``: N per-crop decisions (a colour or "unknown"), likewise.
    - ``crop_sharpness``: N sharpness values of each crop (``cars.sharpness``), measured by the
      classifier on the thumbnail it classified; empty when not measured.
    - ``vote_top``: N top-k lists of (colour, vote share) over the car's track so
      far, from ``CarVotes``; ``()`` for a car without a vote (untracked); the
      whole column is empty before voting.
    - ``vote_color``: N voted decisions, ``""`` for a car without a vote.

    ``shown_top`` / ``shown_color`` are what to show or log for each car: the
    vote where there is one, else the crop's.
    """

    xyxy: np.ndarray
    score: np.ndarray = None  # type: ignore[assignment]
    track_id: np.ndarray = None  # type: ignore[assignment]
    name: Tuple[str, ...] = None  # type: ignore[assignment]
    crop_top: Tuple[TopK, ...] = ()
    crop_color: Tuple[str, ...] = ()
    vote_top: Tuple[TopK, ...] = ()
    vote_color: Tuple[str, ...] = ()
    crop_sharpness: Tuple[float, ...] = ()

    def __post_init__(self) -> None:
        xyxy = np.array(self.xyxy, dtype=np.int32)  # a copy: the record owns its arrays
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {xyxy.shape}")
        n = len(xyxy)
        score = np.full(n, np.nan, np.float32) if self.score is None else np.asarray(self.score, np.float32)
        track = np.full(n, -1, np.int64) if self.track_id is None else np.asarray(self.track_id, np.int64)
        name = ("",) * n if self.name is None else tuple(self.name)
        for label, col in (("score", score), ("track_id", track)):
            if col.shape != (n,):
                raise ValueError(f"{label} must have shape ({n},), got {col.shape}")
        if len(name) != n:
            raise ValueError(f"name must have {n} entries, got {len(name)}")
        for label in ("crop_top", "crop_color", "vote_top", "vote_color", "crop_sharpness"):
            col = getattr(self, label)
            if col and len(col) != n:
                raise ValueError(f"{label} must have {n} entries, got {len(col)}")
        object.__setattr__(self, "xyxy", _readonly(xyxy))
        object.__setattr__(self, "score", _readonly(score))
        object.__setattr__(self, "track_id", _readonly(track))
        object.__setattr__(self, "name", name)
        for label in ("crop_top", "vote_top"):
            object.__setattr__(self, label, tuple(tuple((str(c), float(p)) for c, p in t) for t in getattr(self, label)))
        object.__setattr__(self, "crop_color", tuple(self.crop_color))
        object.__setattr__(self, "vote_color", tuple(self.vote_color))
        object.__setattr__(self, "crop_sharpness", tuple(float(v) for v in self.crop_sharpness))

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> "Cars":
        return cls(np.zeros((0, 4), np.int32))

    @property
    def classified(self) -> bool:
        return len(self.crop_top) == len(self) and len(self) > 0

    def with_crop_colors(self, top: Sequence[TopK], color: Sequence[str],
                         sharpness: Sequence[float] = ()) -> "Cars":
        """The classifier's answer for each crop of this frame (and each crop's sharpness, measured on
        the same thumbnail: ``cars.sharpness``)."""
        return replace(self, crop_top=tuple(top), crop_color=tuple(color), crop_sharpness=tuple(sharpness))

    def with_votes(self, top: Sequence[TopK], color: Sequence[str]) -> "Cars":
        """The tracks' voted colours (``()`` / ``""`` for a car without a vote)."""
        return replace(self, vote_top=tuple(top), vote_color=tuple(color))

    @property
    def shown_top(self) -> Tuple[TopK, ...]:
        """Per car: the vote's top-k where there is one, else the crop's (empty before classifying)."""
        if not self.vote_top:
            return self.crop_top
        return tuple(v if v else c for v, c in zip(self.vote_top, self.crop_top or ((),) * len(self)))

    @property
    def shown_color(self) -> Tuple[str, ...]:
        """Per car: the voted colour where there is one, else the crop's decision."""
        if not self.vote_color:
            return self.crop_color
        return tuple(v if v else c for v, c in zip(self.vote_color, self.crop_color or ("",) * len(self)))

    def select(self, mask: np.ndarray) -> "Cars":
        """The cars where ``mask`` (bool (N,) or indices) holds."""
        idx = np.arange(len(self))[mask]
        return Cars(
            self.xyxy[idx], self.score[idx], self.track_id[idx],
            tuple(self.name[i] for i in idx),
            *(tuple(getattr(self, col)[i] for i in idx) if getattr(self, col) else ()
              for col in ("crop_top", "crop_color", "vote_top", "vote_color")),
            crop_sharpness=tuple(self.crop_sharpness[i] for i in idx) if self.crop_sharpness else (),
        )


@dataclass(frozen=True)
class FrameRecord:
    """Everything known about one frame; what every stage after capture passes on.

    ``skipped`` counts boxes dropped as empty or degenerate; ``events`` carries
    the events a stage wants written with this frame (tracking's finished cars,
    line counts): typed events of ``stream.events``, written before the frame line.
    """

    source: str
    frame: Frame
    cars: Cars
    skipped: int = 0
    events: Tuple["Event", ...] = field(default_factory=tuple)
