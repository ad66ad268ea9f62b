"""Pictures a person checks: the errors a model makes, and what the renders look like.

    error_sheet(crops, y, probs, "errors.png", "other-cameras val")   # doctest: +SKIP
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from ..labels import LABELS

_TILE = 72


def _tile(img: np.ndarray, caption: str, colour=(0, 0, 0)) -> np.ndarray:
    h, w = img.shape[:2]
    s = (_TILE - 2) / max(h, w)
    img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST)
    t = np.full((_TILE + 14, _TILE, 3), 255, np.uint8)
    t[1:1 + img.shape[0], 1:1 + img.shape[1]] = img
    cv2.putText(t, caption, (2, _TILE + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour, 1, cv2.LINE_AA)
    return t


def _grid(tiles: Sequence[np.ndarray], cols: int, title: str) -> np.ndarray:
    rows = max(1, math.ceil(len(tiles) / cols))
    th, tw = tiles[0].shape[:2]
    sheet = np.full((rows * th + 18, cols * tw, 3), 255, np.uint8)
    cv2.putText(sheet, title, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[18 + r * th:18 + (r + 1) * th, c * tw:(c + 1) * tw] = t
    return sheet


def error_sheet(crops: Sequence[np.ndarray], y: np.ndarray, probs: np.ndarray, path, title: str,
                cols: int = 10, limit: int = 60) -> int:
    """Write the misclassified crops ('label > predicted p') to ``path``; returns how many errors there are."""
    pred = probs.argmax(1)
    wrong = np.nonzero(pred != y)[0]
    if not len(wrong):
        Path(path).unlink(missing_ok=True)
        return 0
    tiles = [_tile(crops[i], f"{LABELS[y[i]][:5]}>{LABELS[pred[i]][:5]} {probs[i].max():.2f}", (0, 0, 170))
             for i in wrong[:limit]]
    more = f" (first {limit})" if len(wrong) > limit else ""
    cv2.imwrite(str(path), _grid(tiles, min(cols, len(tiles)), f"{title}: {len(wrong)} of {len(y)} wrong{more}"))
    return int(len(wrong))


def render_sheet(folder: Path, path, per_class: int = 10) -> Optional[Path]:
    """A row of renders per colour from a ``carcolor synth`` folder (its first images of each colour)."""
    manifest = Path(folder) / "manifest.csv"
    if not manifest.is_file():
        return None
    picked = {c: [] for c in LABELS}
    with open(manifest, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if len(picked[r["colour"]]) < per_class:
                picked[r["colour"]].append(r)
    tiles = []
    for c in LABELS:
        for r in picked[c] + [None] * (per_class - len(picked[c])):
            if r is None:
                tiles.append(np.full((_TILE + 14, _TILE, 3), 255, np.uint8))
                continue
            img = cv2.imread(str(Path(folder) / r["path"]))
            tiles.append(_tile(img, f"{c[:6]} {r['light'][:7]}"))
    cv2.imwrite(str(path), _grid(tiles, per_class, "renders (carcolor synth): a row per colour"))
    return Path(path)
