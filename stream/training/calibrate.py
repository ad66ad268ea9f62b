"""Confidence that means the same on any camera: temperature scaling and reliability per domain.

A network trained on one camera is over-confident on others. One temperature ``T``
(probabilities ``p -> softmax(log p / T)``) is fitted to minimise the negative
log-likelihood on a *multi-domain* validation set, each domain weighted equally, so
that a clearly coloured car from a new camera is not pushed below the ``unknown``
threshold while a camera-specific guess is. The reliability of the result is
reported per domain (expected calibration error, accuracy by confidence bin).

    >>> import numpy as np
    >>> p = np.array([[0.98, 0.01, 0.01], [0.9, 0.05, 0.05]])
    >>> t = fit_temperature({"a": (p, np.array([0, 1]))})
    >>> t > 1.0      # one of two confident answers is wrong: soften
    True
"""
from __future__ import annotations

from typing import Dict, Mapping, Sequence, Tuple

import numpy as np


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row-wise (what the classifier does with ``model.json``'s temperature);
    T = 1 returns the probabilities unchanged."""
    from ..classify import soften

    probs = np.asarray(probs, np.float64)
    if temperature == 1.0 or len(probs) == 0:
        return probs.astype(np.float32)
    return soften(probs, float(temperature)).astype(np.float32)


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))


def fit_temperature(domains: Mapping[str, Tuple[np.ndarray, np.ndarray]],
                    grid: Sequence[float] = tuple(np.round(np.exp(np.linspace(np.log(0.5), np.log(5.0), 91)), 4))
                    ) -> float:
    """The T of ``grid`` with the lowest mean (over domains) NLL; ``domains``: name -> (probs, labels)."""
    best_t, best = 1.0, float("inf")
    for t in grid:
        loss = float(np.mean([nll(apply_temperature(p, t), y) for p, y in domains.values() if len(y)]))
        if loss < best:
            best_t, best = float(t), loss
    return best_t


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> Dict:
    """Expected calibration error and per-bin (confidence, accuracy, count) of the top-1 answer."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    rows, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if sel.any():
            c, a = float(conf[sel].mean()), float(right[sel].mean())
            ece += sel.mean() * abs(c - a)
            rows.append({"lo": round(float(lo), 2), "hi": round(float(hi), 2), "confidence": c, "accuracy": a,
                         "count": int(sel.sum())})
    return {"ece": float(ece), "n": int(len(y)), "accuracy": float(right.mean()) if len(y) else 0.0,
            "mean_confidence": float(conf.mean()) if len(y) else 0.0, "bins": rows}


def plot_reliability(per_domain: Mapping[str, Dict], path, title: str = "") -> None:
    """One reliability diagram with a line per domain (accuracy against confidence)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--")
    for name, r in per_domain.items():
        xs = [b["confidence"] for b in r["bins"]]
        ys = [b["accuracy"] for b in r["bins"]]
        ax.plot(xs, ys, marker="o", ms=3, label=f"{name} (ECE {100 * r['ece']:.1f}, n={r['n']})")
    ax.set_xlabel("top-1 probability")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
