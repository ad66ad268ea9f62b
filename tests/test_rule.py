"""The hand-made colour rule (stream.rule) on drawn cars and on real photos of the data set."""

import cv2
import numpy as np
import pytest

from stream.labels import LABELS
from stream.training.dataset import load_split
from stream.rule import HSVRule, central_region

from _shared import DATASET as DATA, needs_shared  # noqa: E402


def _car(body_bgr, road=(90, 90, 90), size=(120, 200)):
    img = np.full((*size, 3), road, np.uint8)
    h, w = size
    cv2.rectangle(img, (w // 6, h // 5), (5 * w // 6, 4 * h // 5), body_bgr, -1)
    cv2.rectangle(img, (w // 3, h // 4), (2 * w // 3, h // 3), (30, 30, 30), -1)  # a dark windscreen strip
    return img


@pytest.mark.parametrize("colour,bgr", [
    ("white", (240, 240, 240)), ("gray", (125, 125, 125)), ("black", (25, 25, 25)), ("red", (30, 30, 200)),
    ("blue", (170, 60, 20)), ("green", (40, 150, 40)), ("yellow", (20, 210, 230)), ("orange", (20, 120, 240)),
    ("brown", (40, 70, 110)), ("purple", (140, 30, 120)),
])
def test_rule_names_drawn_cars(colour, bgr):
    rule = HSVRule()
    assert rule.name_of(_car(bgr)) == colour
    p = rule.predict_proba([_car(bgr)])
    assert p.shape == (1, len(LABELS)) and p[0, LABELS.index(colour)] == 1.0 and p.sum() == 1.0


@needs_shared
def test_rule_is_about_the_same_at_any_resolution():
    """Large crops are shrunk before the statistics: a 4x larger crop gives the same answers."""
    rule = HSVRule()
    x, y, _ = load_split(DATA, "val")
    small = rule.predict_proba(x[:120]).argmax(1)
    big = rule.predict_proba([cv2.resize(c, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC) for c in x[:120]])
    assert (small == big.argmax(1)).mean() >= 0.95
    assert central_region(np.zeros((400, 600, 3), np.uint8)).shape[:2] == (33, 50)
    assert central_region(np.zeros((3, 1, 3), np.uint8)).size > 0


@needs_shared
def test_rule_on_real_photos_beats_chance_by_far():
    """On the data set's val split the rule is a weak but real classifier (about 64%)."""
    x, y, _ = load_split(DATA, "val")
    acc = (HSVRule().predict_proba(x).argmax(1) == y).mean()
    assert 0.5 < acc < 0.9


def test_rule_refuses_labels_it_cannot_name():
    with pytest.raises(ValueError, match="needs labels .*brown"):
        HSVRule(["white", "gray", "black", "red", "blue", "green", "yellow", "orange", "purple"])
