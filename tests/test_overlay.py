"""The overlay is legible and stays inside the frame at any resolution."""
import numpy as np
import pytest

from stream.overlay import Overlay
from stream.record import Cars, Frame, FrameRecord


def record(w, h, boxes):
    cars = Cars(boxes, track_id=[-1] * len(boxes)).with_crop_colors(
        [(("red", 0.91), ("bordeaux", 0.05), ("black", 0.01))] * len(boxes), ["red"] * len(boxes))
    return FrameRecord("test", Frame(0, 0.0, np.full((h, w, 3), 128, np.uint8)), cars)


@pytest.mark.parametrize("w, h", [(160, 120), (640, 360), (1920, 1080), (3840, 2160)])
def test_labels_drawn_inside_frame(w, h):
    boxes = [[0, 0, w // 4, h // 4], [w - w // 5, h - h // 5, w, h], [w // 3, h // 3, w // 2, h // 2]]
    rec = record(w, h, boxes)
    img = rec.frame.image
    out = Overlay(show=2).draw(img, rec)
    assert out.shape == img.shape and out is not img
    assert (img == 128).all()  # the input is not drawn on
    changed = (out != 128).any(axis=2)
    assert changed.any()
    # The label of the top-left box could not go above it: it is drawn inside the box's top.
    assert changed[: h // 8, : w // 4].any()


def test_text_scales_with_resolution():
    small = Overlay()._metrics(320, 240)
    big = Overlay()._metrics(3840, 2160)
    assert big[0] > 3 * small[0] and big[1] > small[1]


def test_unknown_and_swatches():
    rec = record(400, 300, [[100, 100, 300, 250]])
    unknown = FrameRecord(rec.source, rec.frame, rec.cars.with_crop_colors(rec.cars.crop_top, ["unknown"]))
    lines = Overlay(show=2).label_lines(unknown, 0)
    assert lines[0] == ("unknown", "unknown") and lines[1][0].startswith("red 91%")
    assert Overlay(show=2).label_lines(rec, 0) == [("red 91%", "red"), ("bordeaux 5%", "bordeaux")]


def test_labels_of_neighbouring_cars_do_not_overlap():
    """Two cars side by side at the same height: the second label moves instead of covering the first."""
    w, h = 640, 360
    rec = record(w, h, [[100, 150, 260, 300], [120, 160, 280, 320]])
    out = Overlay(show=2).draw(rec.frame.image, rec)
    placed = []
    ov = Overlay(show=2)
    img = rec.frame.image.copy()
    scale, thick = ov._metrics(w, h)
    for i, (x1, y1, x2, y2) in enumerate(rec.cars.xyxy.tolist()):
        ov._label(img, ov.label_lines(rec, i), x1, y1, y2, scale, thick, placed)
    (a, b) = placed
    overlap_w = min(a[2], b[2]) - max(a[0], b[0])
    overlap_h = min(a[3], b[3]) - max(a[1], b[1])
    assert overlap_w <= 0 or overlap_h <= 0
    assert out.shape == img.shape
