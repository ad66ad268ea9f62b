"""Two baselines the CNN has to beat, with the classifier protocol (``.labels``, ``.predict_proba``).

- :class:`HSVRule` (from :mod:`stream.rule`): hand-made rule on HSV statistics of the
  central region (no training): low saturation -> white/gray/black by brightness,
  otherwise the hue band of the saturated pixels, dark/muted orange -> brown.
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

from ..labels import LABELS
from ..rule import HSVRule

__all__ = ["HSVRule", "HistogramLR", "hsv_histogram"]


def hsv_histogram(crops: Sequence[np.ndarray], size: int = 64, bins=(12, 4, 4)) -> np.ndarray:
    """L1-normalised joint HSV histograms of the centre square of each crop, shape (N, prod(bins))."""
    from ..preprocess import to_batch

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
