"""The shipped car finder (``detector: vehicle``): Open Model Zoo's vehicle-detection-0202 on OpenVINO.

An SSD-style detector with one class (vehicle), trained on traffic and parking
cameras seen from above and at angles (``models/vehicle-detection-0202/``,
Apache-2.0). The IR takes a BGR 0..255 NCHW image and gives rows
``[image_id, label, conf, x_min, y_min, x_max, y_max]`` (0..1, NMS done inside).

- The network is reshaped to the searched view's aspect (the frame, or the
  bounding box of ``roi``): 16:9 video runs at 512x288, about half the cost of
  the square 512x512 it ships with, for nearly the same recall.
- ``roi``: only the polygon's bounding box is searched (smaller input, more
  pixels per car), and boxes whose centre is outside the polygon are dropped.
- ``detect_every``: the network runs every Nth frame; in between, each box is
  moved on at the speed measured between its last two detections
  (``Coast``), so the tracker and the colour vote see every frame.
- ``skip_static``: a frame that looks like the last detected one (no 40x40 px
  block changed by more than a few grey levels) reuses its boxes without a
  network call: a quiet parking camera costs almost nothing.

Every file and runtime problem is raised as ``ModelError`` when the detector
is built, before the first frame.

    >>> det = VehicleDetector(VehicleConfig())                     # doctest: +SKIP
    >>> cars = det(frame)        # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from ..config import VehicleConfig
from ..errors import ModelError
from ..geometry import polygon_pixels
from ..record import Cars, Frame


def _first_line(e: Exception) -> str:
    """OpenVINO's messages are a stack of "Exception from file:line" lines; the last other line says why."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.strip().startswith("Exception from")]
    return lines[-1] if lines else type(e).__name__


def _rounded(v: float, step: int = 32) -> int:
    return max(step, int(round(v / step)) * step)


class VehicleDetector:
    """OpenVINO vehicle detector: ``frame -> Cars`` (scores are the network's confidences)."""

    def __init__(self, cfg: Optional[VehicleConfig] = None, threads: int = 0):
        self.cfg = cfg = cfg or VehicleConfig()
        xml = Path(cfg.model)
        if xml.suffix.lower() != ".xml":
            raise ModelError(f"vehicle detector model {xml}: expected an OpenVINO IR .xml file (its .bin beside it)")
        if not xml.is_file():
            raise ModelError(f"vehicle detector model not found: {xml}")
        weights = xml.with_suffix(".bin")
        if not weights.is_file():
            raise ModelError(f"vehicle detector weights not found: {weights} (the .bin beside {xml.name})")
        try:
            import openvino as ov
        except ImportError as e:
            raise ModelError(f"the vehicle detector needs the openvino package ({e}); pip install openvino") from e
        try:
            self.core = ov.Core()
            self.model = self.core.read_model(str(xml), str(weights))
        except Exception as e:  # OpenVINO raises RuntimeError for every kind of bad file
            raise ModelError(f"cannot load vehicle detector {xml}: {_first_line(e)}") from e
        self.path = xml
        inputs, outputs = self.model.inputs, self.model.outputs
        if len(inputs) != 1:
            raise ModelError(f"vehicle detector {xml}: expected one image input, it has {len(inputs)}")
        shape = inputs[0].get_partial_shape()
        if shape.rank.is_dynamic or shape.rank.get_length() != 4 or shape[1].is_dynamic or shape[1].get_length() != 3:
            raise ModelError(f"vehicle detector {xml}: input must be an image [N, 3, H, W], it is {shape}")
        out = outputs[0].get_partial_shape() if outputs else None
        if out is None or out.rank.is_dynamic or out[out.rank.get_length() - 1].is_dynamic \
                or out[out.rank.get_length() - 1].get_length() != 7:
            raise ModelError(f"vehicle detector {xml}: output must be SSD rows [..., 7], it is {out}")
        self.input_name = inputs[0].get_any_name()
        self.threads = threads
        self._compiled: Dict[Tuple[int, int], object] = {}
        self._view: Optional[Tuple[int, int, int, int]] = None
        self._size: Optional[Tuple[int, int]] = None
        self._roi: Optional[np.ndarray] = None
        self.calls = 0  # network runs
        # Compile once now at the configured width for 16:9, so a runtime that cannot run it fails at start-up.
        self._request(self.input_size(16 * 60, 9 * 60))

    def input_size(self, width: int, height: int) -> Tuple[int, int]:
        """(w, h) the network runs at for a view of width x height pixels."""
        w = _rounded(self.cfg.input_width)
        h = self.cfg.input_height or _rounded(w * height / max(1, width))
        return w, h

    def _request(self, size: Tuple[int, int]):
        req = self._compiled.get(size)
        if req is None:
            w, h = size
            try:
                model = self.model.clone()
                model.reshape({self.input_name: [1, 3, h, w]})
                props = {"PERFORMANCE_HINT": "LATENCY"}
                if self.threads:
                    props["INFERENCE_NUM_THREADS"] = self.threads
                compiled = self.core.compile_model(model, "CPU", props)
            except Exception as e:
                raise ModelError(f"cannot run vehicle detector {self.path} at {w}x{h} on this CPU: "
                                 f"{_first_line(e)}") from e
            req = self._compiled[size] = compiled.create_infer_request()
        return req

    def _setup(self, width: int, height: int) -> None:
        self._size = (width, height)
        self._roi, self._view = None, (0, 0, width, height)
        if self.cfg.roi:
            poly = polygon_pixels(self.cfg.roi, width, height)
            poly[:, 0], poly[:, 1] = poly[:, 0].clip(0, width), poly[:, 1].clip(0, height)
            x1, y1 = poly.min(axis=0)
            x2, y2 = poly.max(axis=0)
            if x2 - x1 >= 8 and y2 - y1 >= 8:
                self._roi, self._view = poly.astype(np.float32), (int(x1), int(y1), int(x2), int(y2))

    def detect(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(xyxy float (N, 4) in frame pixels, confidence (N,)) of the vehicles in a BGR image."""
        h, w = image.shape[:2]
        if self._size != (w, h):
            self._setup(w, h)
        vx1, vy1, vx2, vy2 = self._view
        view = image[vy1:vy2, vx1:vx2]
        size = self.input_size(vx2 - vx1, vy2 - vy1)
        blob = shrink(view, size)
        x = blob.transpose(2, 0, 1)[None].astype(np.float32)
        req = self._request(size)
        rows = np.asarray(req.infer({0: x})[0], np.float32).reshape(-1, 7)
        self.calls += 1
        end = np.flatnonzero(rows[:, 0] < 0)
        rows = rows[: end[0]] if len(end) else rows
        rows = rows[rows[:, 2] >= self.cfg.confidence]
        xyxy = rows[:, 3:7].astype(np.float64) * [vx2 - vx1, vy2 - vy1, vx2 - vx1, vy2 - vy1] + [vx1, vy1, vx1, vy1]
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        keep = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]) >= self.cfg.min_size
        if self._roi is not None and keep.any():
            for i in np.flatnonzero(keep):
                centre = (float(xyxy[i, 0] + xyxy[i, 2]) / 2, float(xyxy[i, 1] + xyxy[i, 3]) / 2)
                keep[i] = cv2.pointPolygonTest(self._roi, centre, False) >= 0
        return xyxy[keep], rows[keep, 2].copy()

    def __call__(self, frame: Frame) -> Cars:
        xyxy, score = self.detect(frame.image)
        return _cars(xyxy, score)


def shrink(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` (w, h), anti-aliased but fast.

    OpenCV's area averaging is slow for a non-integer factor (11 ms for 1080p to
    512x288 here); bilinear to twice the size, then area by exactly 2 (its fast
    path) averages the same way for about a quarter of the cost. Sizes within a
    factor of 2 are bilinear.
    """
    w, h = size
    if image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        double = cv2.resize(image, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(double, size, interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def _cars(xyxy: np.ndarray, score: np.ndarray) -> Cars:
    if not len(xyxy):
        return Cars.empty()
    boxes = np.empty((len(xyxy), 4), np.int64)
    boxes[:, :2] = np.floor(xyxy[:, :2])
    boxes[:, 2:] = np.ceil(xyxy[:, 2:])
    return Cars(boxes, score=score)


def _match(prev: np.ndarray, now: np.ndarray) -> np.ndarray:
    """For each box of ``now``, the index of the same car in ``prev`` (-1: none).

    Greedy on centre distance relative to the car's size: a car is the nearest
    box of a similar size within one box size (a detection interval later).
    """
    out = np.full(len(now), -1, np.int64)
    if not len(prev) or not len(now):
        return out
    cp, cn = (prev[:, :2] + prev[:, 2:]) / 2, (now[:, :2] + now[:, 2:]) / 2
    sp = np.sqrt(np.prod(prev[:, 2:] - prev[:, :2], axis=1))
    sn = np.sqrt(np.prod(now[:, 2:] - now[:, :2], axis=1))
    dist = np.linalg.norm(cn[:, None] - cp[None], axis=2) / np.maximum(1.0, np.maximum(sn[:, None], sp[None]))
    ratio = np.minimum(sn[:, None], sp[None]) / np.maximum(1.0, np.maximum(sn[:, None], sp[None]))
    cost = np.where((dist <= 1.0) & (ratio >= 0.6), dist, np.inf)
    for _ in range(min(len(now), len(prev))):
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        if not np.isfinite(cost[i, j]):
            break
        out[i] = j
        cost[i, :], cost[:, j] = np.inf, np.inf
    return out


class Coast:
    """Runs a detector on some frames only and moves its boxes on in between.

    The network runs every ``every`` th frame (and on the first frame of a new
    size). With ``skip_static``, a frame whose 40x40 px blocks all differ from
    the last detected frame's by at most ``static_level`` grey levels (mean) is
    not run either: nothing moved, the last boxes stand. Boxes of a frame not
    run are the last detections moved on at each car's speed (centre and size
    change per frame between its last two detections; zero for a new car).

    ``detector`` is any ``(xyxy, score) = detector.detect(image)``.
    """

    def __init__(self, detector, every: int = 1, skip_static: bool = False, static_level: float = 6.0):
        self.detector = detector
        self.every = max(1, int(every))
        self.skip_static = skip_static
        self.static_level = static_level
        self.runs = 0  # frames the network ran on
        self.frames = 0
        self._last: Optional[Tuple[int, np.ndarray, np.ndarray, np.ndarray]] = None  # index, xyxy, score, velocity
        self._thumb: Optional[np.ndarray] = None
        self._size: Optional[Tuple[int, int]] = None

    def _thumbnail(self, image: np.ndarray) -> np.ndarray:
        """Grey means of 40x40 px blocks, from every 4th pixel (1080p: 0.4 ms, not 6 ms for all pixels)."""
        h, w = image.shape[:2]
        small = cv2.resize(image[::4, ::4], (max(1, w // 40), max(1, h // 40)), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)

    def __call__(self, frame: Frame) -> Cars:
        self.frames += 1
        image, last = frame.image, self._last
        fresh = last is None or self._size != frame.size or frame.index <= last[0]
        if not fresh and frame.index - last[0] < self.every:
            idx, xyxy, score, vel = last  # between detections: each box moves on at its car's speed
            return self._moved(xyxy + vel * (frame.index - idx), score, frame.size)
        thumb = self._thumbnail(image) if self.skip_static else None
        if not fresh and thumb is not None and self._thumb is not None \
                and int(np.abs(thumb - self._thumb).max()) <= self.static_level:
            # Nothing changed since the last detection: its boxes stand where they were seen.
            _, xyxy, score, _ = last
            self._last = (frame.index, xyxy, score, np.zeros_like(xyxy))
            return _cars(xyxy, score)
        xyxy, score = self.detector.detect(image)
        self.runs += 1
        vel = np.zeros_like(xyxy)
        if not fresh:
            idx, prev, _, _ = last
            m = _match(prev, xyxy)
            ok = m >= 0
            vel[ok] = (xyxy[ok] - prev[m[ok]]) / (frame.index - idx)
        self._last, self._size, self._thumb = (frame.index, xyxy, score, vel), frame.size, thumb
        return _cars(xyxy, score)

    @staticmethod
    def _moved(xyxy: np.ndarray, score: np.ndarray, size: Tuple[int, int]) -> Cars:
        w, h = size
        xyxy = xyxy.copy()
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        keep = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]) >= 2  # gone off the frame
        return _cars(xyxy[keep], score[keep])


def build(cfg):
    """The registry's builder: ``detector: vehicle`` with its ``vehicle`` section; the network, wrapped
    in ``Coast`` when it skips frames."""
    section = cfg.vehicle
    det = VehicleDetector(section, threads=cfg.threads)
    if section.detect_every == 1 and not section.skip_static:
        return det
    return Coast(det, section.detect_every, section.skip_static)
