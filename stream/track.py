"""Stable track ids across frames: a pipeline stage around ByteTrack.

ByteTrack comes from ``supervision`` (pinned below 0.31), and everything this
module asks of it goes through one small adapter, ``_ByteTrack``: feed a frame's
boxes, get the tracks updated with a box this frame, get where the confirmed
tracks should be now. No maintained tracker fits carcolor's install better
today: supervision's successor (roboflow ``trackers``), norfair and the
``bytetracker`` package all need SciPy (and more), boxmot needs PyTorch; and
``supervision`` is imported only when a tracker is built, so ``import stream``
pulls none of it in. Replacing the adapter replaces the library.

``Tracker`` gives each car of a ``FrameRecord`` a ``track_id``. Boxes that
already carry ids (an external MOT file's) are used as given: once a source has
shown ids, the tracker stays out of the way. Cars not (yet) on a confirmed track
keep ``track_id = -1``. Detections without a confidence (the motion detector's)
count as sure ones.

Two cars that pass close to each other make one blob for a motion detector.
Fed to the tracker, that blob would drag one track's Kalman state to a box of
both cars and the tracks would swap or restart when the cars separate. So a box
that covers most of two or more tracks' predicted boxes (``hold_merged``) is
kept out of the tracker (it stays in the record with ``track_id = -1``): the
tracks coast on their predictions and are picked up again when the cars part.

    >>> tracker = Tracker(TrackConfig())                          # doctest: +SKIP
    >>> record = tracker(record)            # doctest: +SKIP

(The same cars, now with track ids.)
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Optional, Tuple

import numpy as np

from .config import TrackConfig
from .geometry import coverage, iou_matrix
from .record import Cars, FrameRecord


def preload() -> None:
    """Import ByteTrack (all of supervision: SciPy and more, about a third of a second here) ahead of
    building a ``Tracker``: ``run`` calls it in a thread while the models load. (No
    ``warnings.catch_warnings`` here: it is not thread-safe, and only building a ByteTrack warns.)"""
    import supervision.tracker.byte_tracker.core  # noqa: F401


class _ByteTrack:
    """The only code that knows supervision's ByteTrack (and the state its tracks keep)."""

    def __init__(self, cfg: TrackConfig):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sv.ByteTrack warns that it moved to roboflow/trackers
            from supervision.tracker.byte_tracker.core import ByteTrack

            self._bt = ByteTrack(track_activation_threshold=cfg.activation, lost_track_buffer=cfg.track_timeout,
                                 minimum_matching_threshold=1.0 - cfg.match_iou, frame_rate=30.0,  # frames
                                 minimum_consecutive_frames=1)

    def update(self, xyxy: np.ndarray, score: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Advance one frame with these boxes; (ids (K,), their box estimates xyxy (K, 4)) of the tracks
        updated with a box now."""
        tensors = np.zeros((len(xyxy), 5), np.float32)
        tensors[:, :4], tensors[:, 4] = xyxy, score
        tracks = self._bt.update_with_tensors(tensors)
        tracks = [t for t in tracks if t.frame_id == self._bt.frame_id]
        ids = np.asarray([int(t.external_track_id) for t in tracks], np.int64)
        boxes = np.asarray([t.tlbr for t in tracks], np.float64).reshape(-1, 4)
        return ids, boxes

    def predicted(self, max_lost: int, min_age: int) -> np.ndarray:
        """Where the confirmed tracks lost for under ``max_lost`` frames and at least ``min_age`` frames
        old should be on the next frame, xyxy (M, 4)."""
        t = self._bt
        pool = [s for s in t.tracked_tracks if s.is_activated] + list(t.lost_tracks)
        pool = [s for s in pool if t.frame_id - s.frame_id < max_lost and s.frame_id - s.start_frame >= min_age]
        if not pool:
            return np.zeros((0, 4))
        mean = np.asarray([s.mean for s in pool], np.float64)  # cx, cy, aspect, h, vx, vy, va, vh
        cx, cy = mean[:, 0] + mean[:, 4], mean[:, 1] + mean[:, 5]
        h = mean[:, 3]
        w = mean[:, 2] * h
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


class Tracker:
    """A stage: ``FrameRecord -> FrameRecord`` with track ids on its cars."""

    def __init__(self, cfg: Optional[TrackConfig] = None):
        self.cfg = cfg or TrackConfig()
        self.external = False  # the source brings its own ids (MOT file)
        self._tracker = _ByteTrack(self.cfg)

    def predicted(self) -> np.ndarray:
        """Where the confirmed tracks (seen or lost less than track_timeout frames ago) should be now, xyxy (M, 4)."""
        # Tracks that lived a few frames: a short-lived duplicate of a car must not make its box "merged".
        return self._tracker.predicted(self.cfg.track_timeout, min_age=3)

    def merged(self, xyxy: np.ndarray) -> np.ndarray:
        """bool (N,): boxes covering at least half of each of two or more predicted track boxes."""
        pred = self.predicted()
        if len(pred) < 2 or not len(xyxy):
            return np.zeros(len(xyxy), bool)
        return (coverage(xyxy, pred) >= 0.5).sum(axis=1) >= 2

    def cut(self, xyxy: np.ndarray, size: Optional[Tuple[int, int]]) -> np.ndarray:
        """bool (N,): boxes touching the border of a (width, height) frame: a car only partly in view."""
        if size is None or not len(xyxy):
            return np.zeros(len(xyxy), bool)
        w, h = size
        m = max(2.0, self.cfg.edge_margin * min(w, h))
        return (xyxy[:, 0] <= m) | (xyxy[:, 1] <= m) | (xyxy[:, 2] >= w - m) | (xyxy[:, 3] >= h - m)

    def assign(self, cars: Cars, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """Track ids (int64 (N,), -1 = none yet) for this frame's cars; advances the tracker one frame.

        Unless ``start_at_edge``, a box cut by the frame border (``size``: the
        frame's) goes in with a score below ByteTrack's activation threshold:
        it can continue a track (ByteTrack's second, low-score association)
        but never start one, so a car coming into view is tracked once it is
        clear of the border.
        """
        n = len(cars)
        score = np.where(np.isnan(cars.score), 1.0, cars.score) if n else np.zeros(0, np.float32)
        if n and not self.cfg.start_at_edge:
            low = 0.1 + 0.5 * max(0.0, self.cfg.activation - 0.1)  # between ByteTrack's 0.1 floor and activation
            score = np.where(self.cut(cars.xyxy, size), np.minimum(score, low), score)
        feed = ~self.merged(cars.xyxy) if self.cfg.hold_merged else np.ones(n, bool)
        track_ids, boxes = self._tracker.update(cars.xyxy[feed] if n else np.zeros((0, 4)),
                                                score[feed] if n else np.zeros(0, np.float32))
        ids = np.full(n, -1, np.int64)
        if n and len(track_ids):
            # Each track to the box it was just updated with: its Kalman estimate lies between its
            # prediction and that box, so that box is the one it overlaps most (greedy by IoU).
            iou = iou_matrix(cars.xyxy, boxes)
            iou[~feed] = -1
            for _ in range(min(n, len(track_ids))):
                i, j = np.unravel_index(np.argmax(iou), iou.shape)
                if iou[i, j] < 0.1:
                    break
                ids[i] = track_ids[j]
                iou[i, :], iou[:, j] = -1, -1
        return ids

    def __call__(self, record: FrameRecord) -> FrameRecord:
        cars = record.cars
        if not self.external and len(cars) and (cars.track_id >= 0).any():
            self.external = True
        if self.external:
            return record
        ids = self.assign(cars, record.frame.size)
        return replace(record, cars=replace(cars, track_id=ids))
