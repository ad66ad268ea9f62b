"""Box and polygon geometry shared by the box sources, the detectors, tracking and counting.

Boxes are ``xyxy`` rows ``[x1, y1, x2, y2]`` in pixels (x right, y down); a
polygon or a line is a list of points in pixels, or in 0..1 fractions of the
frame when every coordinate is in 0..1.

    >>> iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]])).round(3)
    array([[0.333, 0.   ]])
    >>> clip_boxes(np.array([[-5, 2, 8, 30], [50, 50, 60, 60]]), 40, 20)
    (array([[ 0,  2,  8, 20],
           [40, 20, 40, 20]]), array([ True, False]))
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

MIN_SIDE = 2  # pixels: a box thinner than this has no colour to read


def _overlap(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise intersection areas (N, M) and the two box areas (N, 1), (1, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    return iw * ih, area_a, area_b


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4); 0 where the union is empty."""
    inter, area_a, area_b = _overlap(a, b)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def coverage(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M): the share of each box of ``b`` that each box of ``a`` covers (intersection / area of b)."""
    inter, _, area_b = _overlap(a, b)
    return inter / np.maximum(area_b, 1e-9)


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best score first (ties: lower index first)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: List[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        order = rest[iou_matrix(xyxy[i:i + 1], xyxy[rest])[0] <= iou]
    return np.asarray(keep, np.int64)


def to_pixels(xyxy: np.ndarray) -> np.ndarray:
    """Float boxes -> int64 pixel edges, rounded outwards; non-finite rows become (0, 0, 0, 0)."""
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    bad = ~np.isfinite(xyxy).all(axis=1)
    out = np.zeros_like(xyxy, dtype=np.int64)
    good = xyxy[~bad]
    out[~bad, :2] = np.floor(good[:, :2])
    out[~bad, 2:] = np.ceil(good[:, 2:])
    return out


def clip_boxes(xyxy: np.ndarray, width: int, height: int, min_side: int = MIN_SIDE) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to a width x height frame, and a bool mask of those at least ``min_side`` a side."""
    out = np.array(xyxy, copy=True).reshape(-1, 4)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    keep = ((out[:, 2] - out[:, 0]) >= min_side) & ((out[:, 3] - out[:, 1]) >= min_side)
    return out, keep


def polygon_pixels(points: Sequence[Tuple[float, float]], width: int, height: int) -> np.ndarray:
    """Polygon points (pixels, or 0..1 fractions when all are in 0..1) as int32 pixels (K, 2)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) and ((pts >= 0) & (pts <= 1)).all():
        pts = pts * [width, height]
    return np.round(pts).astype(np.int32)


def side(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    """The cross product (b - a) x (p - a): > 0 on one side of the line a-b, < 0 on the other."""
    return float((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]))


def crosses(a: np.ndarray, b: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> int:
    """+1 / -1 when the step p0 -> p1 crosses segment a-b (to its positive / negative side), else 0.

    Positive is the side where ``(b - a) x (p - a) > 0``: in image coordinates
    (y down), the right-hand side when looking from a to b.
    """
    s0, s1 = side(a, b, p0), side(a, b, p1)
    if (s0 > 0) == (s1 > 0) or s0 == 0 and s1 == 0:
        return 0
    t0, t1 = side(p0, p1, a), side(p0, p1, b)
    if (t0 > 0) == (t1 > 0) and t0 != 0 and t1 != 0:
        return 0  # the step passes the line beyond its ends
    return 1 if s1 > 0 else -1
