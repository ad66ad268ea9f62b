"""A hand-made colour rule: HSV statistics of a crop's central region -> a named colour.

It has no training and so no camera to over-learn: low saturation means white, gray or
black by median brightness; otherwise the mean hue of the saturated pixels picks the hue
band, and a dark or muted orange is brown. On the training camera it is far less accurate
than the CNN; on cameras that look different it degrades less. :class:`ColorClassifier`
can mix its one-hot answer into the CNN's probabilities (``rule_weight``); the baselines
use it alone.

Large crops are area-shrunk first (at most 50 px a side of the central region), so a
crop costs about the same at any resolution.

    >>> import numpy as np
    >>> rule = HSVRule()
    >>> red, navy = np.full((50, 50, 3), (0, 0, 200), np.uint8), np.full((40, 60, 3), (90, 20, 10), np.uint8)
    >>> [rule.labels[i] for i in rule.predict_proba([red, navy]).argmax(1)]
    ['red', 'blue']
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .labels import LABELS

# hue bands in degrees -> colour
BANDS = ((0, 12, "red"), (12, 38, "orange"), (38, 70, "yellow"), (70, 170, "green"),
         (170, 255, "blue"), (255, 335, "purple"), (335, 360, "red"))
RULE_COLOURS = ("white", "gray", "black", "red", "orange", "yellow", "green", "blue", "purple", "brown")


def central_region(img: np.ndarray, frac: float = 0.5, max_side: int = 50) -> np.ndarray:
    """The central ``frac`` of a BGR crop, area-shrunk to at most ``max_side`` pixels a side."""
    h, w = img.shape[:2]
    dy, dx = int(h * (1 - frac) / 2), int(w * (1 - frac) / 2)
    centre = img[dy:max(h - dy, dy + 1), dx:max(w - dx, dx + 1)]
    ch, cw = centre.shape[:2]
    if max(ch, cw) > max_side:
        f = max_side / max(ch, cw)
        centre = cv2.resize(centre, (max(1, round(cw * f)), max(1, round(ch * f))), interpolation=cv2.INTER_AREA)
    return centre


def mix(p_model: np.ndarray, p_rule: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) x the model's probabilities + weight x the rule's vote: still a distribution."""
    return (1 - weight) * p_model + weight * p_rule


class HSVRule:
    """Median HSV of the central half of each crop -> nearest named colour (one-hot output).

    The three thresholds were picked by a small grid search on the val split. ``labels``
    must contain every colour the rule can name (:data:`RULE_COLOURS`).
    """

    def __init__(self, labels: Sequence[str] = LABELS, sat_min: float = 0.22, white_v: float = 0.5,
                 black_v: float = 0.3, max_side: int = 50):
        self.labels = list(labels)
        missing = [c for c in RULE_COLOURS if c not in self.labels]
        if missing:
            raise ValueError(f"the colour rule needs labels {', '.join(missing)}")
        self.sat_min, self.white_v, self.black_v, self.max_side = sat_min, white_v, black_v, max_side

    def name_of(self, bgr: np.ndarray) -> str:
        """The rule's colour name for one BGR crop."""
        hsv = cv2.cvtColor(central_region(bgr, max_side=self.max_side), cv2.COLOR_BGR2HSV_FULL)
        hsv = hsv.reshape(-1, 3).astype(np.float32)
        h, s, v = hsv[:, 0] * (360 / 256), hsv[:, 1] / 255, hsv[:, 2] / 255
        chroma = (s > self.sat_min) & (v > 0.2)
        if chroma.mean() < 0.25:  # mostly unsaturated: white / gray / black by median brightness
            vm = float(np.median(v))
            return "white" if vm >= self.white_v else "black" if vm <= self.black_v else "gray"
        ang = np.radians(h[chroma])
        hue = float(np.degrees(np.arctan2(np.sin(ang).mean(), np.cos(ang).mean())) % 360)
        sm, vm = float(np.median(s[chroma])), float(np.median(v[chroma]))
        name = next((nm for lo, hi, nm in BANDS if lo <= hue < hi), "red")
        if name in ("orange", "red", "yellow") and 8 <= hue < 50 and (vm < 0.5 or sm < 0.45):
            name = "brown"
        return name

    def predict_proba(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(crops), len(self.labels)), np.float32)
        for i, name in enumerate(map(self.name_of, crops)):
            out[i, self.labels.index(name)] = 1.0
        return out
