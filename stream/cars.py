"""From boxes per frame to cars: one voted colour per track, and line counts.

Two pipeline stages that read track ids (from ``track.Tracker`` or an external
MOT file) and keep per-track state:

- ``CarVotes``: every crop of a track adds its colour probabilities
  (``Cars.crop_top``), weighted by crop quality (size, distance from the frame
  edge, sharpness); the track's cars then carry the vote (``Cars.vote_top``,
  ``vote_color``: shown instead of the crop's, so the overlay label does not
  flicker), and when the track ends (unseen for ``track_timeout`` frames, gone
  at the frame edge, or the end of the stream) one ``CarEvent`` goes into the
  record's events, optionally with its best crop saved as a JPEG.
  Each track knows whether it moved: its centre went ``moving_distance`` of its
  own size (square root of the box area) from where it stood. Car events say
  ``moving``; by default only tracks that moved give one (``car_events: all``:
  every track). A track standing for ``parked_after`` seconds gives one
  ``ParkedEvent``; its spot is remembered, so the same parked car seen again
  under a new id (after an occlusion) is not reported again while it stands;
  when it drives off it is a moving car like any other.
- ``LineCounter``: a track whose centre crosses the count line is counted once,
  by direction and colour; ``CountEvent`` lines go to the log every
  ``interval`` seconds of video and at the end.

Both have ``finish(record) -> record``, which the pipeline calls once after the
last frame so that tracks still open are reported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .config import CountLineConfig, TrackConfig
from .errors import CarcolorError
from .events import CarEvent, CountEvent, Event, ParkedEvent
from .geometry import crosses, iou_matrix, polygon_pixels
from .labels import UNKNOWN
from .record import FrameRecord, TopK


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of a BGR crop at 64x64 grey (motion blur and defocus lower it).

    The classifier measures it on the small thumbnail it already made of each crop
    (``Cars.crop_sharpness``), so a crop is shrunk from full size once, not once more here.
    """
    if crop.size == 0:
        return 0.0
    gray = cv2.cvtColor(cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def crop_quality(image: np.ndarray, box: Sequence[int], sharp: Optional[float] = None) -> float:
    """How much a crop's colour should count, in (0, 1]: size x edge distance x sharpness.

    - size: full weight from about 96 px (square root of the area) up;
    - edge: a box touching the frame border (a car cut off) counts a tenth;
      full weight from 3% of the frame's shorter side inwards;
    - sharpness: ``sharpness`` of the crop (given, or measured here), v / (v + 50).
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in box)
    side = math.sqrt(max(1, (x2 - x1) * (y2 - y1)))
    q_size = min(1.0, side / 96.0)
    margin = max(1.0, 0.03 * min(w, h))
    d = min(x1, y1, w - x2, h - y2)
    q_edge = 0.1 + 0.9 * min(1.0, max(0, d) / margin)
    if sharp is None:
        crop = image[y1:y2, x1:x2]
        if crop.size == 0:
            return 1e-3
        sharp = sharpness(crop)
    v = sharp
    q_sharp = 0.1 + 0.9 * v / (v + 50.0)
    return max(1e-3, q_size * q_edge * q_sharp)


SPOT_MEMORY = 60.0  # seconds a reported parked car's spot is remembered while nothing is seen there


@dataclass
class _Track:
    id: int
    first: float
    last: float
    last_seen: int  # processed-frame counter
    box: Tuple[int, int, int, int]
    frames: int = 0
    weight: float = 0.0
    votes: Dict[str, float] = field(default_factory=dict)
    best: float = -1.0
    best_box: Tuple[int, int, int, int] = (0, 0, 0, 0)
    best_crop: Optional[np.ndarray] = None
    shown: Optional[str] = None
    anchor: Tuple[int, int, int, int] = (0, 0, 0, 0)  # the box where it last stood, and since when
    anchor_t: float = 0.0
    moving: bool = False  # went moving_distance of its size from where it stood, at least once
    parked: bool = False  # reported parked (or its spot already was) during the current stand

    def ranked(self) -> List[Tuple[str, float]]:
        """Colours by voted share, best first (ties by name, so the order is stable)."""
        total = self.weight or 1.0
        return sorted(((c, v / total) for c, v in self.votes.items()), key=lambda cv: (-cv[1], cv[0]))


def vote_threshold(track: Optional[float], per_crop: float) -> float:
    """A track's vote is unknown below ``tracking.unknown_threshold``, never above the classifier's
    per-crop threshold (a model that never says unknown gives votes that never do); null: the per-crop one."""
    return float(per_crop) if track is None else min(float(track), float(per_crop))


class CarVotes:
    """A stage: one colour per track, voted over its crops; ``car`` events when tracks end."""

    def __init__(self, cfg: Optional[TrackConfig] = None, classifier=None, *, top_k: Optional[int] = None,
                 unknown_threshold: Optional[float] = None, save_crops: Optional[Union[str, Path]] = None):
        """``classifier`` (a ``ColorClassifier``) gives ``top_k`` and caps the ``unknown`` threshold of a
        vote: ``cfg.unknown_threshold``, never above the classifier's per-crop one (a model that never
        says unknown gives votes that never do; null: the per-crop one). ``unknown_threshold`` given here
        wins; with neither, ``top_k`` is 3 and the threshold 0 (never unknown)."""
        self.cfg = cfg or TrackConfig()
        self.top_k = top_k or (classifier.top_k if classifier is not None else 3)
        if unknown_threshold is None and classifier is not None:
            unknown_threshold = vote_threshold(self.cfg.unknown_threshold, classifier.unknown_threshold)
        self.unknown_threshold = unknown_threshold or 0.0
        self.save_crops = Path(save_crops) if save_crops else None
        if self.save_crops is not None:
            if not self.save_crops.parent.is_dir():
                raise CarcolorError(f"--save-crops folder's parent does not exist: {self.save_crops.parent}")
            self.save_crops.mkdir(exist_ok=True)
        self.tracks: Dict[int, _Track] = {}
        self.ended: set = set()
        self.count = 0  # frames processed
        self.cars = 0  # car events written
        self.standing = 0  # tracks that ended without moving (no car event with car_events: moving)
        self.spots: List[list] = []  # reported parked cars: [box, last seen (s), track id]

    def _shown(self, t: _Track) -> str:
        ranked = t.ranked()
        leader, share = ranked[0]
        if t.shown is None or t.shown == leader:
            t.shown = leader
        else:
            current = dict(ranked).get(t.shown, 0.0)
            if share - current > self.cfg.switch_margin:
                t.shown = leader
        return t.shown

    def _top(self, t: _Track) -> Tuple[TopK, str]:
        """The track's (top-k, decision) to show: the stable colour first, unless it is "unknown"."""
        ranked = t.ranked()
        shown = self._shown(t)
        if dict(ranked)[shown] < self.unknown_threshold:
            return tuple(ranked[: self.top_k]), UNKNOWN
        top = [(shown, dict(ranked)[shown])] + [cv for cv in ranked if cv[0] != shown]
        return tuple(top[: self.top_k]), shown

    def __call__(self, record: FrameRecord) -> FrameRecord:
        self.count += 1
        frame, cars = record.frame, record.cars
        image = frame.image
        h, w = image.shape[:2]
        tops: List[TopK] = [()] * len(cars)
        colors: List[str] = [""] * len(cars)
        seen = set()
        for i in range(len(cars)):
            tid = int(cars.track_id[i])
            if tid < 0 or tid in self.ended or tid in seen:
                continue
            seen.add(tid)
            box = tuple(int(v) for v in cars.xyxy[i])
            t = self.tracks.get(tid)
            if t is None:
                t = self.tracks[tid] = _Track(tid, frame.timestamp, frame.timestamp, self.count, box,
                                              anchor=box, anchor_t=frame.timestamp)
            t.last, t.last_seen, t.box = frame.timestamp, self.count, box
            t.frames += 1
            self._move(t, box, frame.timestamp)
            if not cars.crop_top:
                continue
            q = crop_quality(image, box, cars.crop_sharpness[i] if cars.crop_sharpness else None)
            t.weight += q
            for c, p in cars.crop_top[i]:
                t.votes[c] = t.votes.get(c, 0.0) + q * p
            if q > t.best:
                t.best, t.best_box = q, box
                if self.save_crops is not None:
                    t.best_crop = image[box[1]:box[3], box[0]:box[2]].copy()
            tops[i], colors[i] = self._top(t)
        events: List[Event] = [self._parked(t) for t in self.tracks.values() if not t.parked and t.votes
                               and t.last_seen == self.count
                               and frame.timestamp - t.anchor_t >= self.cfg.parked_after]
        events += [self._end(t) for t in self._ending(w, h)]
        events = [e for e in events if e is not None]
        self._forget_spots(frame.timestamp)
        if any(colors):
            record = replace(record, cars=cars.with_votes(tops, colors))
        if events:
            record = replace(record, events=tuple(record.events) + tuple(events))
        return record

    def _ending(self, w: int, h: int) -> List[_Track]:
        """Tracks that end now: unseen for track_timeout frames, or gone while at the frame edge."""
        margin = self.cfg.edge_margin * min(w, h)
        edge_wait = min(3, self.cfg.track_timeout)
        out = []
        for t in self.tracks.values():
            gone = self.count - t.last_seen
            if gone == 0:
                continue
            x1, y1, x2, y2 = t.box
            at_edge = x1 <= margin or y1 <= margin or x2 >= w - margin or y2 >= h - margin
            if gone >= self.cfg.track_timeout or (at_edge and gone >= edge_wait):
                out.append(t)
        return out

    def _move(self, t: _Track, box: Tuple[int, int, int, int], now: float) -> None:
        """Moving versus standing: has the centre left where it stood by moving_distance of its size?"""
        (ax1, ay1, ax2, ay2), (x1, y1, x2, y2) = t.anchor, box
        size = max(math.sqrt(max(1, (ax2 - ax1) * (ay2 - ay1))), math.sqrt(max(1, (x2 - x1) * (y2 - y1))))
        shift = math.hypot((x1 + x2 - ax1 - ax2) / 2, (y1 + y2 - ay1 - ay2) / 2)
        if shift >= self.cfg.moving_distance * size:
            if t.parked:  # a parked car drives off: its spot is free again
                self.spots = [sp for sp in self.spots if sp[2] != t.id]
            t.moving, t.parked, t.anchor, t.anchor_t = True, False, box, now
        elif t.parked:
            for sp in self.spots:
                if sp[2] == t.id:
                    sp[1] = now

    def _decision(self, t: _Track) -> Tuple[str, float, TopK]:
        ranked = t.ranked()
        color, prob = ranked[0]
        return (UNKNOWN if prob < self.unknown_threshold else color), prob, tuple(ranked[: self.top_k])

    def _parked(self, t: _Track) -> Optional[ParkedEvent]:
        """A track that stood parked_after seconds: one event, unless its spot was already reported."""
        t.parked = True
        for sp in self.spots:
            if iou_matrix(np.array([sp[0]]), np.array([t.box]))[0, 0] >= 0.5:  # seen again under a new id
                sp[1], sp[2] = t.last, t.id
                return None
        self.spots.append([t.box, t.last, t.id])
        color, prob, top = self._decision(t)
        return ParkedEvent(t.id, t.first, t.last, color, prob, top, t.box)

    def _forget_spots(self, now: float) -> None:
        """Spots unseen for SPOT_MEMORY seconds (the car left while hidden) are forgotten."""
        if self.spots:
            self.spots = [sp for sp in self.spots if now - sp[1] <= SPOT_MEMORY or sp[2] in self.tracks]

    def _end(self, t: _Track) -> Optional[CarEvent]:
        del self.tracks[t.id]
        self.ended.add(t.id)
        if t.frames < self.cfg.min_frames or not t.votes:
            return None
        if not t.moving and self.cfg.car_events == "moving":
            self.standing += 1
            return None
        color, prob, top = self._decision(t)
        event = CarEvent(t.id, t.first, t.last, t.frames, color, prob, top, t.best_box, moving=t.moving)
        if self.save_crops is not None and t.best_crop is not None and t.best_crop.size:
            cv2.imwrite(str(self.save_crops / crop_name(event)), t.best_crop)
        self.cars += 1
        return event

    def finish(self, record: FrameRecord) -> FrameRecord:
        """End every open track (the stream ended): their car events, in id order."""
        events = [self._end(self.tracks[tid]) for tid in sorted(self.tracks)]
        events = [e for e in events if e is not None]
        return replace(record, events=tuple(record.events) + tuple(events))


def crop_name(event: CarEvent) -> str:
    """The JPEG name of a car event's best crop: ``car-<id>-<first>s-<colour>.jpg``."""
    return f"car-{event.id}-{round(event.first, 3):.2f}s-{event.color}.jpg"


class LineCounter:
    """A stage: counts each track crossing the line once, by direction and colour.

    ``directions[0]`` is crossing towards the right-hand side of the line seen from
    its first point to its second (for a line drawn left to right: moving down
    the image), ``directions[1]`` the other way.
    """

    def __init__(self, cfg: CountLineConfig, min_frames: int = 1):
        self.cfg = cfg
        self.min_frames = min_frames
        self.directions = tuple(cfg.directions)
        self.counts: Dict[str, Dict[str, int]] = {d: {} for d in self.directions}
        self._state: Dict[int, list] = {}  # id -> [centre, frames seen, direction, counted colour, last frame]
        self._frames = 0
        self._size: Optional[Tuple[int, int]] = None
        self._next: Optional[float] = None

    def points(self, width: int, height: int) -> np.ndarray:
        """The line's two points in pixels of a width x height frame."""
        return polygon_pixels(self.cfg.points, width, height).astype(np.float64)

    @property
    def totals(self) -> Dict[str, int]:
        return {d: sum(c.values()) for d, c in self.counts.items()}

    def _add(self, direction: str, color: str, n: int) -> None:
        by = self.counts[direction]
        by[color] = by.get(color, 0) + n
        if by[color] <= 0:
            del by[color]

    def event(self, t: float, final: bool = False) -> CountEvent:
        return CountEvent(t, {d: dict(sorted(c.items())) for d, c in self.counts.items()}, final)

    def _recolor(self, events: Sequence[Event]) -> None:
        """A car event carries the track's final colour: move its count there if the vote changed."""
        for e in events:
            if not isinstance(e, CarEvent):
                continue
            st = self._state.pop(e.id, None)
            if st is not None and st[3] is not None and st[3] != e.color:
                self._add(st[2], st[3], -1)
                self._add(st[2], e.color, +1)

    def __call__(self, record: FrameRecord) -> FrameRecord:
        frame, cars = record.frame, record.cars
        self._frames += 1
        a, b = self.points(*frame.size)
        for i in range(len(cars)):
            tid = int(cars.track_id[i])
            if tid < 0:
                continue
            x1, y1, x2, y2 = cars.xyxy[i]
            centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2], np.float64)
            st = self._state.get(tid)
            if st is None:
                self._state[tid] = [centre, 1, None, None, self._frames]
                continue
            st[1] += 1
            st[4] = self._frames
            if st[2] is None:
                way = crosses(a, b, st[0], centre)
                if way:
                    st[2] = self.directions[0] if way > 0 else self.directions[1]
            st[0] = centre
            if st[2] is not None and st[3] is None and st[1] >= self.min_frames:
                st[3] = cars.shown_color[i] if cars.shown_color else UNKNOWN
                self._add(st[2], st[3], +1)
        self._recolor(record.events)
        if self._frames % 1000 == 0:  # forget tracks long gone without a car event (too short to report)
            for tid in [k for k, st in self._state.items() if self._frames - st[4] > 1000]:
                del self._state[tid]
        extra = []
        if self._next is None:
            self._next = frame.timestamp + self.cfg.interval
        elif frame.timestamp >= self._next:
            extra.append(self.event(frame.timestamp))
            self._next = frame.timestamp + self.cfg.interval
        if extra:
            record = replace(record, events=tuple(record.events) + tuple(extra))
        return record

    def finish(self, record: FrameRecord) -> FrameRecord:
        """Apply the last car events' colours; the final counts."""
        self._recolor(record.events)
        return replace(record, events=tuple(record.events) + (self.event(record.frame.timestamp, final=True),))
