"""Labelled colour data sets: loaders (the colour names and their folding are in ``stream.labels``).

A data folder is either laid out ``<colour>/<image>`` (at any depth, e.g.
``images/test/<colour>/x.jpg``; the nearest parent folder named after a colour
gives the label) or has a ``labels.csv`` with ``path,colour,split`` columns like
``../shared/datasets/traffic-colors/``.

    >>> [s.label for s in list_samples(DEFAULT_DATA)][:1]   # doctest: +SKIP
    ['white']
"""
from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from ..errors import CarcolorError
from ..labels import LABELS, canonical_label

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
DEFAULT_DATA = Path("..") / "shared" / "datasets" / "traffic-colors"


class DataError(CarcolorError, ValueError):
    """A data folder or image that cannot be used."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str


def read_image(path: Path) -> np.ndarray:
    """BGR uint8 image; :class:`DataError` when it cannot be decoded."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise DataError(f"cannot read image {path}")
    return img


SPLITS = ("train", "val", "test")


def _hash_split(rel: str) -> str:
    """Deterministic 70/15/15 split by file path, for folders without split folders."""
    bucket = zlib.crc32(rel.encode("utf-8")) % 20
    return "test" if bucket < 3 else "val" if bucket < 6 else "train"


def list_samples(data_dir: str | Path, split: Optional[str] = None) -> List[Sample]:
    """The labelled images of ``data_dir``.

    ``split``: "train" / "val" / "test" / "all", or None for the default: "test"
    where the folder has splits (a labels.csv ``split`` column, or train/val/test
    folders), otherwise all images. A ``<colour>/<image>`` folder without split
    folders is split deterministically by file path (70/15/15) when a split is asked for.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    if split is not None and split not in SPLITS + ("all",):
        raise DataError(f"unknown split '{split}': expected one of {', '.join(SPLITS + ('all',))}")
    csv_path = root / "labels.csv"
    samples: List[Sample] = []
    if csv_path.is_file():
        split = split or "test"
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"path", "colour"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"{csv_path} lacks column(s) {', '.join(sorted(missing))}")
            for row in reader:
                if split != "all" and row.get("split", split) != split:
                    continue
                label = canonical_label(row["colour"])
                if label is None:
                    raise DataError(f"{csv_path}: unknown colour '{row['colour']}' for {row['path']}")
                samples.append(Sample(root / row["path"], label))
        if not samples:
            raise DataError(f"no images of split '{split}' in {csv_path}")
        return samples
    found = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        rel = p.relative_to(root)
        label = None
        for parent in rel.parents:
            if parent.name and canonical_label(parent.name):
                label = canonical_label(parent.name)
                break
        if label is not None:
            part = next((q for q in rel.parts[:-1] if q in SPLITS), None)
            found.append((Sample(p, label), part, rel.as_posix()))
    if not found:
        raise DataError(f"no images under {root} in <colour>/<image> folders "
                        f"(colours: {', '.join(LABELS)}) and no labels.csv")
    has_split_dirs = any(part for _, part, _ in found)
    if split is None:
        split = "test" if has_split_dirs else "all"
    for sample, part, rel in found:
        if split == "all" or (part or _hash_split(rel)) == split:
            samples.append(sample)
    if not samples:
        raise DataError(f"no images of split '{split}' under {root}")
    return samples


def load_split(data_dir: str | Path, split: Optional[str] = None,
               labels: Sequence[str] = LABELS) -> tuple[list[np.ndarray], np.ndarray, list[Path]]:
    """(BGR crops, int label indices into ``labels``, paths) of one split."""
    samples = list_samples(data_dir, split)
    index = {name: i for i, name in enumerate(labels)}
    crops = [read_image(s.path) for s in samples]
    y = np.array([index[s.label] for s in samples], np.int64)
    return crops, y, [s.path for s in samples]
