"""Box and polygon geometry (stream/geometry.py), shared by box sources, detectors, tracking and counting."""
from __future__ import annotations

import numpy as np

from stream.geometry import clip_boxes, coverage, crosses, iou_matrix, nms, polygon_pixels, to_pixels


def test_iou_and_coverage():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 5, 5]])
    assert iou_matrix(a, b).round(3).tolist() == [[1.0, 0.333, 0.25], [0.0, 0.0, 0.0]]
    assert coverage(a, b).round(3).tolist() == [[1.0, 0.5, 1.0], [0.0, 0.0, 0.0]]
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_nms_keeps_the_best_of_each_overlap():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.3, 0.9]), 0.5).tolist() == [1, 2]


def test_pixels_and_clipping():
    assert to_pixels(np.array([[0.2, 1.7, 3.1, 4.0], [np.nan, 0, 1, 1]])).tolist() == [[0, 1, 4, 4], [0, 0, 0, 0]]
    out, keep = clip_boxes(np.array([[-5, -5, 5, 5], [8, 8, 30, 30], [9, 0, 10, 10]]), 10, 10)
    assert out.tolist() == [[0, 0, 5, 5], [8, 8, 10, 10], [9, 0, 10, 10]] and keep.tolist() == [True, True, False]


def test_polygons_in_pixels_or_fractions():
    assert polygon_pixels([[0, 0.5], [1, 0.5]], 200, 100).tolist() == [[0, 50], [200, 50]]
    assert polygon_pixels([[0, 5], [120, 5]], 200, 100).tolist() == [[0, 5], [120, 5]]


def test_crossing_direction():
    a, b = np.array([0.0, 0.0]), np.array([10.0, 0.0])
    assert crosses(a, b, np.array([5.0, -1.0]), np.array([5.0, 1.0])) == 1
    assert crosses(a, b, np.array([5.0, 1.0]), np.array([5.0, -1.0])) == -1
    assert crosses(a, b, np.array([15.0, -1.0]), np.array([15.0, 1.0])) == 0
