"""Several cameras at once: the validation and test sets a colour model is chosen and judged on.

A model trained on one camera can score 90% there and 40% on another, so every
choice of the training recipe (mixing weights, input size, rule weight, temperature,
``unknown`` threshold) is made on a *multi-domain* validation set: traffic-colors val
and other-cameras val, weighted equally, with the motorway clip's labelled cars as a
check (never a target). Test splits are reported once, at the end.

    >>> d = Domain("x", [], np.zeros(0, np.int64))
    >>> d.name, len(d)
    ('x', 0)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..labels import LABELS
from . import metrics as M
from .dataset import DataError, load_split


@dataclass
class Domain:
    """Labelled crops of one camera (or set of cameras) and split; ``cars`` groups crops of one car."""

    name: str
    crops: List[np.ndarray]
    y: np.ndarray
    cars: Optional[np.ndarray] = None
    note: str = ""

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Domains:
    val: Dict[str, Domain] = field(default_factory=dict)
    test: Dict[str, Domain] = field(default_factory=dict)
    check: Dict[str, Domain] = field(default_factory=dict)   # reported beside val, never chosen on

    def splits(self):
        """(split name, its domains) for val, test and check, in that order."""
        return (("val", self.val), ("test", self.test), ("check", self.check))


def load_domains(data: str | Path, other: Optional[str | Path] = None,
                 another_camera: Optional[Sequence[str]] = None) -> Domains:
    """traffic-colors val/test, other-cameras val/test (if given), a video's labelled cars (if given)."""
    d = Domains()
    for split, target in (("val", d.val), ("test", d.test)):
        x, y, _ = load_split(data, split)
        target["traffic-colors"] = Domain("traffic-colors", x, y)
        if other is not None:
            x, y, _ = load_split(other, split)
            target["other-cameras"] = Domain("other-cameras", x, y)
    if another_camera:
        from .evaluate import load_video_boxes

        video, boxes = another_camera
        x, y, cars = load_video_boxes(video, boxes)
        d.check["motorway"] = Domain("motorway", x, y, cars, note=f"{Path(video).name} + {Path(boxes).name}")
    return d


def mean_top1(probs: Mapping[str, np.ndarray], domains: Mapping[str, Domain]) -> float:
    """Top-1 averaged over domains (each domain counts the same, whatever its size)."""
    return float(np.mean([(probs[k].argmax(1) == dom.y).mean() for k, dom in domains.items()]))


def per_car_right(y: np.ndarray, probs: np.ndarray, cars: np.ndarray) -> int:
    from .evaluate import per_car

    return int(per_car(y, probs, cars)["right"])


def report(probs: np.ndarray, dom: Domain) -> Dict:
    """Metrics of one domain: top-1, macro-F1, per-class recall, and cars right where crops are grouped."""
    m = M.classification_metrics(dom.y, probs, LABELS)
    out = {"n": len(dom), "top1": m["top1"], "macro_f1": m["macro_f1"],
           "recall": {c: m["per_class"][c]["recall"] for c in LABELS if m["per_class"][c]["support"]},
           "support": {c: m["per_class"][c]["support"] for c in LABELS if m["per_class"][c]["support"]}}
    if dom.cars is not None:
        from .evaluate import per_car

        pc = per_car(dom.y, probs, dom.cars)
        out["cars"], out["cars_right"] = pc["cars"], pc["right"]
    return out


def evaluate_all(predict, domains: Mapping[str, Domain]) -> Dict[str, Dict]:
    """``predict(crops) -> probs`` on every domain: {name: report}."""
    return {k: report(predict(dom.crops), dom) for k, dom in domains.items()}


def gray_recall(reports: Sequence[Mapping[str, Dict]], domain: str = "other-cameras") -> Optional[float]:
    """Gray recall over the given reports of one domain (e.g. its val and test), weighted by support."""
    hits = n = 0.0
    for r in reports:
        dom = r.get(domain)
        if dom and "gray" in dom["recall"]:
            hits += dom["recall"]["gray"] * dom["support"]["gray"]
            n += dom["support"]["gray"]
    return hits / n if n else None
