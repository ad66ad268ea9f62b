"""Two baselines the CNN has to beat, with the classifier protocol (``.labels``, ``.predict_proba``).

- :class:`HSVRule`: hand-made rule on HSV statistics of the central region
  (no training): low saturation -> white/gray/black by brightness, otherwise the
  hue band of the saturated pixels, dark/muted orange -> brown.
- :class:`HistogramLR`: joint HSV colour histogram of the crop + multinomial
  logistic regression (scikit-learn), trained on the training split.

    >>> import numpy as np
    >>> int(HSVRule().predict_proba([np.full((50, 50, 3), (0, 0, 200), np.uint8)]).argmax())  # pure red
    3
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .dataset import LABELS


def _centre(img: np.ndarray, frac: float = 0.5) -> np.ndarray:
    h, w = img.shape[:2]
    dy, dx = int(h * (1 - frac) / 2), int(w * (1 - frac) / 2)
    return img[dy:h - dy, dx:w - dx]


class HSVRule:
    """Median HSV of the central half of the crop -> nearest named colour (one-hot output).

    The three thresholds were picked by a small grid search on the val split.
    """

    # hue bands in degrees -> colour
    BANDS = ((0, 12, "red"), (12, 38, "orange"), (38, 70, "yellow"), (70, 170, "green"),
             (170, 255, "blue"), (255, 335, "purple"), (335, 360, "red"))

    def __init__(self, labels: Sequence[str] = LABELS, sat_min: float = 0.22, white_v: float = 0.5,
                 black_v: float = 0.3):
        self.labels = list(labels)
        self.sat_min, self.white_v, self.black_v = sat_min, white_v, black_v

    def name_of(self, bgr: np.ndarray) -> str:
        hsv = cv2.cvtColor(_centre(bgr), cv2.COLOR_BGR2HSV_FULL).reshape(-1, 3).astype(np.float32)
        h = hsv[:, 0] * (360 / 256)
        s = hsv[:, 1] / 255
        v = hsv[:, 2] / 255
        chroma = (s > self.sat_min) & (v > 0.2)
        if chroma.mean() < 0.25:  # mostly unsaturated: white / gray / black by median brightness
            vm = float(np.median(v))
            return "white" if vm >= self.white_v else "black" if vm <= self.black_v else "gray"
        ang = np.radians(h[chroma])
        hue = float(np.degrees(np.arctan2(np.sin(ang).mean(), np.cos(ang).mean())) % 360)
        sm, vm = float(np.median(s[chroma])), float(np.median(v[chroma]))
        for lo, hi, name in self.BANDS:
            if lo <= hue < hi:
                break
        if name in ("orange", "red", "yellow") and 8 <= hue < 50 and (vm < 0.5 or sm < 0.45):
            name = "brown"
        return name

    def predict_proba(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(crops), len(self.labels)), np.float32)
        for i, crop in enumerate(crops):
            out[i, self.labels.index(self.name_of(crop))] = 1.0
        return out


def hsv_histogram(crops: Sequence[np.ndarray], size: int = 64, bins=(12, 4, 4)) -> np.ndarray:
    """L1-normalised joint HSV histograms of the centre square of each crop, shape (N, prod(bins))."""
    from .preprocess import to_batch

    rgb = to_batch(crops, size)
    feats = np.empty((len(crops), int(np.prod(bins))), np.float32)
    for i, img in enumerate(rgb):
        hsv = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2HSV_FULL)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 256, 0, 256, 0, 256]).ravel()
        feats[i] = hist / max(hist.sum(), 1)
    return np.sqrt(feats)  # Hellinger map: linear models do better on sqrt-histograms


class HistogramLR:
    """Colour histogram + logistic regression; ``fit`` on training crops."""

    def __init__(self, labels: Sequence[str] = LABELS, C: float = 10.0, seed: int = 0):
        from sklearn.linear_model import LogisticRegression

        self.labels = list(labels)
        self.model = LogisticRegression(C=C, max_iter=3000, class_weight="balanced", random_state=seed)

    def fit(self, crops: Sequence[np.ndarray], y: np.ndarray) -> "HistogramLR":
        self.model.fit(hsv_histogram(crops), y)
        return self

    def predict_proba(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        p = self.model.predict_proba(hsv_histogram(crops))
        out = np.zeros((len(crops), len(self.labels)), np.float32)
        out[:, self.model.classes_] = p
        return out
