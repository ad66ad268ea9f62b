"""Colour-safe augmentation and label-changing hue synthesis, vectorised with numpy/cv2.

Two parts:

- :func:`synthesise_rare` makes extra training images of rare colours by rotating
  the hue of saturated (chromatic) training images so that their dominant body
  hue lands in the target colour's hue band. Saturation and value are kept
  (brown, a dark low-saturation orange, also scales them down). Never applied to
  white/gray/black sources, and only ever called on the training split.
- :func:`augment` turns BGR crops into augmented uint8 RGB batches: crop jitter
  with background, flips, small rotations, white-balance shifts, brightness,
  contrast, gamma, saturation both ways, blur, noise and JPEG artefacts. None of
  them moves hue far enough to contradict a label.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> out = augment([np.full((100, 100, 3), 128, np.uint8)] * 2, 32, rng, np.array([False, False]))
    >>> out.shape, out.dtype
    ((2, 32, 32, 3), dtype('uint8'))
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from ..labels import ACHROMATIC, LABELS

# Target hue bands in degrees (0..360) for label-changing hue rotation.
HUE_BANDS: Dict[str, Tuple[float, float]] = {
    "red": (-8.0, 8.0),
    "orange": (18.0, 34.0),
    "yellow": (44.0, 58.0),
    "green": (90.0, 150.0),
    "blue": (200.0, 235.0),
    "purple": (270.0, 330.0),
    "brown": (20.0, 40.0),
}
SOURCE_COLOURS = ("red", "blue", "green", "yellow", "orange")
# Default number of synthetic images per colour (added to the real ones).
DEFAULT_PLAN = {"blue": 80, "green": 150, "yellow": 150, "orange": 140, "purple": 160, "brown": 100}


def _centre(img: np.ndarray, frac: float = 0.6) -> np.ndarray:
    h, w = img.shape[:2]
    dy, dx = int(h * (1 - frac) / 2), int(w * (1 - frac) / 2)
    return img[dy:h - dy, dx:w - dx]


def dominant_hue(bgr: np.ndarray) -> Tuple[float, float]:
    """(circular mean hue in degrees of the saturated centre pixels, their fraction)."""
    hsv = cv2.cvtColor(_centre(bgr), cv2.COLOR_BGR2HSV_FULL).reshape(-1, 3).astype(np.float32)
    sat = (hsv[:, 1] > 70) & (hsv[:, 2] > 40)
    frac = float(sat.mean())
    if not sat.any():
        return 0.0, 0.0
    ang = hsv[sat, 0] * (2 * np.pi / 256)
    wts = hsv[sat, 1]
    mean = np.arctan2((np.sin(ang) * wts).sum(), (np.cos(ang) * wts).sum())
    return float(np.degrees(mean) % 360), frac


def rotate_hue(bgr: np.ndarray, degrees: float, s_scale: float = 1.0, v_scale: float = 1.0) -> np.ndarray:
    """Rotate every pixel's hue by ``degrees`` (optionally scaling S and V)."""
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV_FULL)
    h = hsv[..., 0].astype(np.int32) + int(round(degrees * 256 / 360))
    hsv[..., 0] = np.mod(h, 256).astype(np.uint8)
    if s_scale != 1.0:
        hsv[..., 1] = np.clip(hsv[..., 1] * s_scale, 0, 255).astype(np.uint8)
    if v_scale != 1.0:
        hsv[..., 2] = np.clip(hsv[..., 2] * v_scale, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL)


def synthesise_rare(crops: Sequence[np.ndarray], y: np.ndarray, rng: np.random.Generator,
                    plan: Dict[str, int] | None = None, labels: Sequence[str] = LABELS,
                    min_saturated: float = 0.15) -> Tuple[List[np.ndarray], np.ndarray, Dict[str, int]]:
    """Hue-rotated copies of chromatic training crops, labelled with the target colour.

    Returns (new crops, their label indices, count per target colour). Sources are
    training crops of :data:`SOURCE_COLOURS` whose centre has at least
    ``min_saturated`` strongly saturated pixels; a source is never used for its own colour.
    """
    plan = DEFAULT_PLAN if plan is None else plan
    index = {n: i for i, n in enumerate(labels)}
    sources = []
    for i, (crop, lab) in enumerate(zip(crops, y)):
        name = labels[lab]
        if name in ACHROMATIC or name not in SOURCE_COLOURS:
            continue
        hue, frac = dominant_hue(crop)
        if frac >= min_saturated:
            sources.append((i, name, hue))
    out_crops: List[np.ndarray] = []
    out_y: List[int] = []
    counts: Dict[str, int] = {}
    for target, n in plan.items():
        if target in ACHROMATIC or target not in index or n <= 0:
            continue
        pool = [s for s in sources if s[1] != target and not (target == "brown" and s[1] == "orange")]
        if not pool:
            continue
        lo, hi = HUE_BANDS[target]
        picks = rng.integers(0, len(pool), n)
        for p in picks:
            i, _, hue = pool[p]
            goal = rng.uniform(lo, hi)
            s_scale = v_scale = 1.0
            if target == "brown":  # brown = dark, muted orange; beige/tan = light, muted
                s_scale = rng.uniform(0.45, 0.8)
                v_scale = rng.uniform(0.45, 0.7)
            out_crops.append(rotate_hue(crops[i], goal - hue, s_scale, v_scale))
            out_y.append(index[target])
        counts[target] = len(picks)
    return out_crops, np.array(out_y, np.int64), counts


def _affine(side_h: int, side_w: int, size: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Affine map from a crop to a size x size output: centre square + jitter."""
    side = min(side_h, side_w)
    base = size / side
    zoom = np.exp(rng.uniform(-0.2, 0.15) * strength)  # <1 shows more background
    aspect = np.exp(rng.uniform(-0.08, 0.08) * strength)
    sx, sy = base * zoom * aspect, base * zoom / aspect
    theta = np.radians(rng.uniform(-8, 8) * strength)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    tx, ty = rng.uniform(-0.08, 0.08, 2) * side * strength
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array([[c * sx * flip, -s * sy], [s * sx * flip, c * sy]])
    centre = np.array([side_w / 2 + tx, side_h / 2 + ty])
    offset = np.array([size / 2, size / 2]) - rot @ centre
    return np.hstack([rot, offset[:, None]]).astype(np.float32)


def road_mask(bgr: np.ndarray, margin: float = 0.08, iterations: int = 3) -> np.ndarray:
    """Soft (H, W, 1) float mask, 1 on the road around a roughly centred vehicle.

    GrabCut started from the rectangle inside a ``margin`` border: the border is road, the
    vehicle is whatever inside differs from it. About 15 ms for a 100x100 crop; compute it
    once per training crop. Falls back to "no road" when GrabCut finds nothing.
    """
    h, w = bgr.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    rect = (int(w * margin), int(h * margin), max(1, int(w * (1 - 2 * margin))), max(1, int(h * (1 - 2 * margin))))
    try:
        cv2.grabCut(bgr, mask, rect, np.zeros((1, 65)), np.zeros((1, 65)), iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return np.zeros((h, w, 1), np.float32)
    road = ((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)).astype(np.float32)
    if road.mean() > 0.9:  # found no vehicle: leave the crop alone
        return np.zeros((h, w, 1), np.float32)
    return cv2.GaussianBlur(road, (0, 0), max(h, w) / 60)[..., None]


def shift_background(bgr: np.ndarray, road: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Scale the road's BGR by ``gains`` (3,) where ``road`` (from :func:`road_mask`) is 1.

    The training camera's road is light and sunlit; elsewhere asphalt is dark, wet or tinted.
    Changing it independently of the vehicle stops a model from reading the vehicle's colour
    relative to the road.
    """
    out = bgr.astype(np.float32) * (1 - road + road * gains.astype(np.float32))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def augment(crops: Sequence[np.ndarray], size: int, rng: np.random.Generator, chromatic: np.ndarray,
            strength: float = 1.0, background: float = 0.0,
            roads: Sequence[np.ndarray] | None = None, exposure: float = 1.0) -> np.ndarray:
    """BGR crops -> augmented uint8 RGB batch (N, size, size, 3).

    ``chromatic[i]`` says whether crop i's label is a chromatic colour; those may be
    desaturated further and saturated more than white/gray/black ones. ``background``:
    the probability of :func:`shift_background` (road x0.25-1.3, slightly tinted), with
    ``roads[i]`` the :func:`road_mask` of crop i. ``exposure`` scales the ranges of
    brightness, contrast and gamma (1: x0.61-1.35, x0.74-1.28, 0.70-1.57).
    """
    n = len(crops)
    out = np.empty((n, size, size, 3), np.uint8)
    for i, crop in enumerate(crops):
        if background and roads is not None and rng.random() < background:
            gains = np.exp(rng.uniform(np.log(0.25), np.log(1.3)) + rng.normal(0, 0.06, 3))
            crop = shift_background(crop, roads[i], gains)
        m = _affine(crop.shape[0], crop.shape[1], size, rng, strength)
        interp = cv2.INTER_AREA if m[0, 0] ** 2 + m[1, 0] ** 2 < 1 else cv2.INTER_LINEAR
        out[i] = cv2.warpAffine(crop, m, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT_101)
    x = out[..., ::-1].astype(np.float32) * np.float32(1 / 255)
    shape = (n, 1, 1, 1)
    # white balance: per-channel gains
    gains = np.exp(rng.normal(0, 0.06 * strength, (n, 1, 1, 3))).astype(np.float32)
    x *= gains
    # brightness, contrast
    x *= np.exp(rng.uniform(-0.5, 0.3, shape) * strength * exposure).astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * np.exp(rng.uniform(-0.3, 0.25, shape) * strength * exposure).astype(np.float32) + mean
    # saturation both ways (chromatic labels tolerate more)
    gray = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    lo = np.where(chromatic, np.log(0.45), np.log(0.3))[:, None, None, None]
    hi = np.where(chromatic, np.log(1.8), np.log(1.3))[:, None, None, None]
    sat = np.exp(rng.uniform(0, 1, shape) * (hi - lo) * strength + lo * strength).astype(np.float32)
    x = gray + (x - gray) * sat
    # gamma
    np.clip(x, 0, 1, out=x)
    x **= np.exp(rng.uniform(-0.35, 0.45, shape) * strength * exposure).astype(np.float32)
    # noise
    noisy = rng.random(n) < 0.3 * strength
    if noisy.any():
        sig = rng.uniform(0.005, 0.03, (int(noisy.sum()), 1, 1, 1)).astype(np.float32)
        x[noisy] += rng.standard_normal(x[noisy].shape, dtype=np.float32) * sig
    out = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    # blur and JPEG, per image
    for i in np.nonzero(rng.random(n) < 0.25 * strength)[0]:
        out[i] = cv2.GaussianBlur(out[i], (0, 0), rng.uniform(0.4, 1.3) * size / 64)
    for i in np.nonzero(rng.random(n) < 0.3 * strength)[0]:
        ok, buf = cv2.imencode(".jpg", out[i], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 80))])
        out[i] = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


# --- fixed perturbations for the robustness table ---------------------------------------------

def darken(bgr: np.ndarray) -> np.ndarray:
    """Night-like: gamma 2.2 and half the light."""
    x = (bgr.astype(np.float32) / 255) ** 2.2 * 0.6
    return (x * 255 + 0.5).astype(np.uint8)


def blur(bgr: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(bgr, (0, 0), 2.0)


def jpeg(bgr: np.ndarray, quality: int = 10) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def warm_cast(bgr: np.ndarray) -> np.ndarray:
    """Tungsten-like colour cast: red up 20%, blue down 20%."""
    x = bgr.astype(np.float32) * np.array([0.8, 1.0, 1.2], np.float32)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def cool_cast(bgr: np.ndarray) -> np.ndarray:
    """Shade/overcast-like cast: blue up 20%, red down 20%."""
    x = bgr.astype(np.float32) * np.array([1.2, 1.0, 0.8], np.float32)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


PERTURBATIONS = {
    "clean": lambda b: b,
    "dark (gamma 2.2, x0.6)": darken,
    "blur (sigma 2 px)": blur,
    "JPEG q=10": jpeg,
    "warm cast (R+20%, B-20%)": warm_cast,
    "cool cast (B+20%, R-20%)": cool_cast,
}
