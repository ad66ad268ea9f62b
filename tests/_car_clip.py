"""A generated fixed-camera clip with real car photos driving through it; truth by construction.

Used by test_detect.py and test_track.py. A static textured road (noise, lane
marks, verge), sensor noise per frame, and four cars that are real crops from
the traffic-colors test split entering, crossing and leaving; the red and the
blue car pass each other with overlapping boxes for a few frames; each car has
a soft shadow below it (MOG2 must drop it); from ``BRIGHT_FROM`` on the whole
picture is 30% brighter (a cloud moving off the sun). ``drift`` moves the whole
picture a fraction of a pixel per frame (a camera mount in the wind).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

from stream.record import Frame

from _shared import TEST_SPLIT, require_shared
SIZE = (640, 360)
FPS = 30.0
FRAMES = 180
BRIGHT_FROM = 115  # global brightness step (x1.3) from this frame on
CAR_W, CAR_H = 100, 64


@dataclass(frozen=True)
class Car:
    color: str  # the dataset label
    y: int  # top of the box
    x0: float  # left edge at frame ``start``
    speed: float  # px per frame (negative: right to left)
    start: int
    image: str = ""  # file name in TEST_SPLIT/<color>/ ("" = the first one)

    def box(self, i: int) -> Optional[Tuple[float, float, float, float]]:
        """Unclipped true box at frame ``i`` (None before the car starts)."""
        if i < self.start:
            return None
        x = self.x0 + self.speed * (i - self.start)
        return (x, self.y, x + CAR_W, self.y + CAR_H)


# Red and blue share 14 rows of their lanes and pass each other around frame 45-55.
CARS = (
    Car("red", 40, -CAR_W, 10.0, 20),
    Car("blue", 90, SIZE[0], -10.0, 24),
    Car("white", 190, -CAR_W, 7.0, 50),
    Car("black", 270, SIZE[0], -9.0, 80),
)
COUNT_LINE = ((0.5, 0.0), (0.5, 1.0))  # vertical, mid-frame: left-to-right crossings are "out"


def crop_path(color: str, name: str = "") -> Path:
    require_shared()  # the cars are real photos of the shared test split
    files = sorted((TEST_SPLIT / color).glob("*.jpg"))
    if name:
        return TEST_SPLIT / color / name
    return files[0]


def background(seed: int = 1) -> np.ndarray:
    """A static textured scene: asphalt with grain, lane marks, a green verge, a kerb."""
    w, h = SIZE
    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (92, 96, 98)
    img += grain[..., None] * 14
    patches = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6)
    img += (patches / patches.std() * 10)[..., None]  # repairs and wear: texture a camera shift shows
    yy = np.arange(h)[:, None]
    img[(yy < 30).repeat(w, 1)] = (60, 120, 70)  # verge
    img[:30] += cv2.GaussianBlur(rng.normal(0, 1, (30, w)).astype(np.float32), (0, 0), 2)[..., None] * 25
    img[30:34] = (180, 180, 180)  # kerb
    for y in (135, 180, 262):  # dashed lane marks
        for x in range(0, w, 60):
            img[y:y + 3, x:x + 30] = (215, 215, 215)
    return np.clip(img, 0, 255).astype(np.uint8)


class Clip:
    """Frames and truth of the generated clip (frames made on demand, deterministic)."""

    def __init__(self, cars=CARS, frames: int = FRAMES, bright_from: Optional[int] = BRIGHT_FROM,
                 crops: Optional[dict] = None, drift: Tuple[float, float] = (0.0, 0.0)):
        self.cars = tuple(cars)
        self.drift = drift  # camera drift, px per frame (the whole picture moves)
        self.frames = frames
        self.bright_from = bright_from
        self.bg = background()
        crops = crops or {}
        self.sprites = [cv2.resize(cv2.imread(str(crop_path(c.color, crops.get(c.color, c.image)))),
                                   (CAR_W, CAR_H), interpolation=cv2.INTER_AREA) for c in self.cars]

    def truth(self, i: int) -> List[Tuple[int, np.ndarray, float]]:
        """(car index, clipped box int (4,), visible fraction) of the cars at least partly in frame ``i``."""
        w, h = SIZE
        out = []
        for k, car in enumerate(self.cars):
            b = car.box(i)
            if b is None:
                continue
            x1, y1, x2, y2 = b
            cx1, cx2 = max(0.0, x1), min(float(w), x2)
            if cx2 - cx1 < 1:
                continue
            dx, dy = self.drift[0] * i, self.drift[1] * i
            box = np.array([round(cx1 + dx), round(y1 + dy), round(cx2 + dx), round(y2 + dy)], np.int64)
            out.append((k, box, (cx2 - cx1) / CAR_W))
        return out

    def image(self, i: int) -> np.ndarray:
        w, h = SIZE
        img = self.bg.astype(np.float32)
        for k, car in enumerate(self.cars):
            b = car.box(i)
            if b is None:
                continue
            x1 = int(round(b[0]))
            y1 = int(b[1])
            lo, hi = max(0, x1), min(w, x1 + CAR_W)
            if hi <= lo:
                continue
            # soft shadow under and right of the car (darker, same hue: MOG2's shadow model)
            slo, shi = max(0, x1 + 6), min(w, x1 + CAR_W + 6)
            if shi > slo:
                img[y1 + CAR_H:y1 + CAR_H + 8, slo:shi] *= 0.65
            img[y1:y1 + CAR_H, lo:hi] = self.sprites[k][:, lo - x1:hi - x1]
        if self.bright_from is not None and i >= self.bright_from:
            img *= 1.3
        if self.drift != (0.0, 0.0):
            m = np.float32([[1, 0, self.drift[0] * i], [0, 1, self.drift[1] * i]])
            img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        noise = np.random.default_rng(1000 + i).normal(0, 2.0, img.shape).astype(np.float32)
        return np.clip(img + noise, 0, 255).astype(np.uint8)

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.frames):
            yield Frame(i, i / FPS, self.image(i))

    def write(self, path: Path) -> Path:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
        assert writer.isOpened()
        for f in self:
            writer.write(f.image)
        writer.release()
        return path


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(truth_box, boxes) -> int:
    """Index of the detected box with the highest IoU with ``truth_box`` (>= 0.5), else -1."""
    best, best_iou = -1, 0.5
    for j, b in enumerate(boxes):
        v = iou(truth_box, b)
        if v >= best_iou:
            best, best_iou = j, v
    return best
