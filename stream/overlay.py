"""Drawing cars and their colours on a frame.

``Overlay().draw(image, record)`` returns a new annotated image: each box, and
above it (or inside it near the top edge) the top colours with percentages on
a dark background with a small swatch of each colour. Sizes scale with the
frame, so the text is legible from 320x240 to 4K and never leaves the frame.
With a ``counter`` (``cars.LineCounter``) it also draws the count line and,
top left, the counts per direction and colour.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .record import FrameRecord

# BGR swatches for colour names (the ten classes, the original's 14, and "unknown").
SWATCH: Dict[str, Tuple[int, int, int]] = {
    "white": (245, 245, 245), "gray": (128, 128, 128), "grey": (128, 128, 128), "silver": (192, 192, 192),
    "black": (20, 20, 20), "red": (40, 40, 210), "bordeaux": (40, 20, 120), "maroon": (40, 20, 120),
    "blue": (200, 90, 20), "green": (60, 160, 40), "yellow": (40, 220, 240), "orange": (20, 140, 250),
    "brown": (40, 75, 120), "beige": (170, 205, 225), "golden": (50, 175, 215), "gold": (50, 175, 215),
    "purple": (140, 40, 130), "violet": (200, 80, 160), "pink": (190, 160, 250), "tan": (140, 180, 210),
    "unknown": (90, 90, 90),
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def swatch(name: str) -> Tuple[int, int, int]:
    return SWATCH.get(name.lower(), (160, 160, 160))


class Overlay:
    """Draws boxes and colour labels; ``show`` is how many colours per car (top-k)."""

    def __init__(self, show: int = 2, box_color: Optional[Tuple[int, int, int]] = None, counter=None):
        self.show = max(1, show)
        self.box_color = box_color
        self.counter = counter

    def _metrics(self, width: int, height: int) -> Tuple[float, int]:
        scale = max(0.35, min(2.5, min(width, height) / 900.0))
        return scale, max(1, int(round(scale * 2)))

    def label_lines(self, record: FrameRecord, i: int) -> List[Tuple[str, str]]:
        """(text, swatch colour name) lines for car ``i``."""
        cars = record.cars
        lines = []
        head = f"#{cars.track_id[i]} " if cars.track_id[i] >= 0 else ""
        colors = cars.shown_color
        if colors:
            decision = colors[i]
            top = cars.shown_top[i] if cars.shown_top else ()
            if decision == "unknown" or not top:
                lines.append((f"{head}unknown", "unknown"))
            for j, (name, prob) in enumerate(top[: self.show]):
                lines.append((f"{head if j == 0 and decision != 'unknown' else ''}{name} {prob * 100:.0f}%", name))
        elif cars.name[i]:
            lines.append((f"{head}{cars.name[i]}", "unknown"))
        return lines

    def draw(self, image: np.ndarray, record: FrameRecord) -> np.ndarray:
        out = image.copy()
        h, w = out.shape[:2]
        scale, thick = self._metrics(w, h)
        placed: List[Tuple[int, int, int, int]] = []  # label rectangles drawn so far: later ones avoid them
        if self.counter is not None:
            self._counts(out, scale, thick, placed)
        for i, (x1, y1, x2, y2) in enumerate(record.cars.xyxy.tolist()):
            lines = self.label_lines(record, i)
            color = self.box_color or (swatch(lines[0][1]) if lines and record.cars.crop_color else (0, 220, 255))
            cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), (0, 0, 0), thick + 2)
            cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), color, thick)
            self._label(out, lines, x1, y1, y2, scale, thick, placed)
        return out

    def _counts(self, out: np.ndarray, scale: float, thick: int, placed: List) -> None:
        """The count line, and its counts per direction and colour at the top left."""
        h, w = out.shape[:2]
        (a, b) = np.round(self.counter.points(w, h)).astype(int).tolist()
        cv2.line(out, tuple(a), tuple(b), (0, 0, 0), thick + 3, cv2.LINE_AA)
        cv2.line(out, tuple(a), tuple(b), (0, 220, 255), thick + 1, cv2.LINE_AA)
        dirs = self.counter.directions
        totals = self.counter.totals
        lines = [(" / ".join(f"{d} {totals[d]}" for d in dirs), "unknown")]
        colors = sorted({c for d in dirs for c in self.counter.counts[d]})
        for c in colors:
            lines.append((f"{c} " + " / ".join(str(self.counter.counts[d].get(c, 0)) for d in dirs), c))
        self._label(out, lines, 0, 0, 0, scale, thick, placed)

    def _label(self, out: np.ndarray, lines: Sequence[Tuple[str, str]], x: int, top: int, bottom: int,
               scale: float, thick: int, placed: List[Tuple[int, int, int, int]]) -> None:
        if not lines:
            return
        h, w = out.shape[:2]
        (tw, th), base = cv2.getTextSize("Ag", _FONT, scale, thick)
        line_h = th + base + 2 * thick
        sw = th  # swatch side
        pad = max(2, thick)
        widths = [cv2.getTextSize(t, _FONT, scale, thick)[0][0] for t, _ in lines]
        box_w = max(widths) + sw + 3 * pad
        box_h = line_h * len(lines) + pad
        # Above the box if it fits, else inside it from its top edge, else below it: the first
        # place that covers no earlier label (or the one covering least); always inside the frame.
        x0 = int(min(max(0, x), max(0, w - box_w)))
        spots = [top - box_h if top - box_h >= 0 else top, top, bottom]
        spots = [int(min(max(0, y), max(0, h - box_h))) for y in spots]

        def covered(y: int) -> int:
            return sum(max(0, min(x0 + box_w, r[2]) - max(x0, r[0])) * max(0, min(y + box_h, r[3]) - max(y, r[1]))
                       for r in placed)
        y0 = min(spots, key=lambda y: (covered(y), spots.index(y)))
        placed.append((x0, y0, x0 + box_w, y0 + box_h))
        roi = out[y0:y0 + box_h, x0:x0 + box_w]
        roi[:] = (roi * 0.35).astype(np.uint8)  # translucent dark background
        for k, (text, name) in enumerate(lines):
            ty = y0 + pad + k * line_h
            cv2.rectangle(out, (x0 + pad, ty + pad), (x0 + pad + sw, ty + pad + sw), swatch(name), -1)
            cv2.rectangle(out, (x0 + pad, ty + pad), (x0 + pad + sw, ty + pad + sw), (255, 255, 255), 1)
            cv2.putText(out, text, (x0 + 2 * pad + sw, ty + pad + th), _FONT, scale, (255, 255, 255), thick,
                        cv2.LINE_AA)
