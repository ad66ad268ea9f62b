"""Night / IR mode: a picture without chroma (a camera's grey infrared picture) has no car colours.

``chroma(image)`` is the 99th percentile of a 64x36 thumbnail's chroma distance
from grey (``max(|Cr - 128|, |Cb - 128|)``, 0..128): a colour street scene
measures well above 10 (cars, signs, grass), an IR or black-and-white picture
0-2 (what the video codec leaves). ``IrWatch`` measures every ``every`` th frame
and switches mode only after ``hold`` measures in a row agree, so one dark or
washed-out frame does not flip it.

    >>> import numpy as np
    >>> grey = np.full((360, 640, 3), 90, np.uint8)
    >>> chroma(grey)
    0.0
    >>> w = IrWatch(every=1, hold=2)
    >>> [w.update(grey) for _ in range(3)], w.ir
    ([None, 'ir', None], True)
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

IR_CHROMA = 4.0   # at or below: grey picture (IR); the colour footage of the repo measures 20-40


def chroma(image: np.ndarray) -> float:
    """How far from grey the most colourful 1% of a BGR picture is (0 = a grey picture)."""
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    ycc = cv2.cvtColor(small, cv2.COLOR_BGR2YCrCb)[..., 1:].astype(np.int16) - 128
    return float(np.percentile(np.abs(ycc).max(axis=2), 99))


class IrWatch:
    """``update(image)`` -> ``"ir"`` / ``"color"`` when the mode changes, else None; ``ir`` is the mode."""

    def __init__(self, every: int = 5, hold: int = 3, threshold: float = IR_CHROMA):
        self.every, self.hold, self.threshold = max(1, every), max(1, hold), threshold
        self.ir = False
        self.value = -1.0  # the last measure (-1: none yet)
        self._n = 0
        self._agree = 0

    def update(self, image: np.ndarray) -> Optional[str]:
        self._n += 1
        if (self._n - 1) % self.every:
            return None
        self.value = chroma(image)
        grey = self.value <= self.threshold
        if grey == self.ir:
            self._agree = 0
            return None
        self._agree += 1
        if self._agree < self.hold:
            return None
        self.ir, self._agree = grey, 0
        return "ir" if grey else "color"
