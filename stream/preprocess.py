"""Crop preprocessing shared by training, evaluation and inference.

The one rule, inherited from the original server: centre-crop the car crop to a
square (the shorter side), resize it to the model's input size, convert BGR->RGB,
and scale pixels to [-1, 1] (``x / 127.5 - 1``, MobileNet/EfficientNet-Lite style).

    >>> import numpy as np
    >>> batch = to_batch([np.zeros((40, 80, 3), np.uint8)], 64)
    >>> batch.shape, batch.dtype
    ((1, 64, 64, 3), dtype('uint8'))
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def center_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of ``image`` (a view, no copy)."""
    h, w = image.shape[:2]
    side = min(h, w)
    y0 = (h - side) // 2
    x0 = (w - side) // 2
    return image[y0:y0 + side, x0:x0 + side]


def to_batch(crops: Sequence[np.ndarray], size: int) -> np.ndarray:
    """BGR crops of any shape -> uint8 RGB batch of shape (N, size, size, 3).

    Each crop is centre-cropped to a square and resized with area interpolation
    when shrinking (cubic when enlarging); the channel swap happens once on the
    whole batch.
    """
    batch = np.empty((len(crops), size, size, 3), np.uint8)
    for i, crop in enumerate(crops):
        if crop.ndim == 2:
            crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
        elif crop.shape[2] == 4:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGRA2BGR)
        sq = center_square(crop)
        interp = cv2.INTER_AREA if sq.shape[0] >= size else cv2.INTER_CUBIC
        batch[i] = cv2.resize(sq, (size, size), interpolation=interp)
    return batch[..., ::-1]


def scale(batch: np.ndarray) -> np.ndarray:
    """uint8 RGB batch -> float32 in [-1, 1], the range every carcolor model takes."""
    return batch.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)
