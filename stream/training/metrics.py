"""Classification metrics and plots for colour models (numpy + matplotlib, no TensorFlow).

    >>> import numpy as np
    >>> m = classification_metrics(np.array([0, 1, 1]), np.array([[.9, .1], [.2, .8], [.6, .4]]), ["a", "b"])
    >>> round(m["top1"], 3), m["per_class"]["b"]["recall"]
    (0.667, 0.5)
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Rows: true class, columns: predicted class (-1 predictions are dropped from columns)."""
    cm = np.zeros((n, n), np.int64)
    ok = y_pred >= 0
    np.add.at(cm, (y_true[ok], y_pred[ok]), 1)
    return cm


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str],
                           y_pred: np.ndarray | None = None) -> Dict:
    """top-1, top-2, macro-F1 and per-class precision/recall/F1/support.

    ``probs`` columns are ``labels``. ``y_pred`` overrides the argmax (use -1 for a
    prediction that maps to no label: it counts as wrong). Macro-F1 averages over
    the classes present in ``y_true`` (a class with no test examples has no recall).
    """
    y_true = np.asarray(y_true, np.int64)
    probs = np.asarray(probs, np.float64)
    n = len(labels)
    if y_pred is None:
        y_pred = probs.argmax(axis=1)
    y_pred = np.asarray(y_pred, np.int64)
    order = np.argsort(-probs, axis=1, kind="stable")
    top2 = (order[:, :2] == y_true[:, None]).any(axis=1) if probs.shape[1] >= 2 else y_pred == y_true
    cm = confusion(y_true, y_pred, n)
    per_class = {}
    f1s = []
    for i, name in enumerate(labels):
        support = int((y_true == i).sum())
        predicted = int((y_pred == i).sum())
        tp = int(cm[i, i])
        prec = tp / predicted if predicted else 0.0
        rec = tp / support if support else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if support and (prec + rec) > 0 else 0.0
        per_class[name] = {"precision": prec, "recall": rec, "f1": f1, "support": support,
                           "predicted": predicted}
        if support:
            f1s.append(f1)
    return {
        "n": int(len(y_true)),
        "top1": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
        "top2": float(top2.mean()) if len(y_true) else float("nan"),
        "macro_f1": float(np.mean(f1s)) if f1s else float("nan"),
        "per_class": per_class,
        "confusion": cm.tolist(),
        "labels": list(labels),
    }


def coverage_curve(y_true: np.ndarray, probs: np.ndarray, y_pred: np.ndarray | None = None,
                   thresholds: np.ndarray | None = None) -> Dict[str, list]:
    """Coverage (share with top prob >= t) and accuracy of the covered, for each t."""
    conf = probs.max(axis=1)
    y_pred = probs.argmax(axis=1) if y_pred is None else y_pred
    correct = y_pred == y_true
    thresholds = np.round(np.linspace(0, 0.99, 100), 4) if thresholds is None else thresholds
    cov, acc = [], []
    for t in thresholds:
        keep = conf >= t
        cov.append(float(keep.mean()))
        acc.append(float(correct[keep].mean()) if keep.any() else float("nan"))
    return {"threshold": [float(t) for t in thresholds], "coverage": cov, "accuracy": acc}


def calibrate_threshold(y_true: np.ndarray, probs: np.ndarray, target: float = 0.98) -> float:
    """Smallest top-1 probability threshold whose accepted crops reach ``target`` accuracy."""
    curve = coverage_curve(y_true, probs, thresholds=np.round(np.arange(0, 1.0, 0.01), 2))
    for t, a in zip(curve["threshold"], curve["accuracy"]):
        if a == a and a >= target:
            return float(t)
    return 0.99


def format_table(metrics: Dict, title: str = "") -> str:
    """Plain-text table of a metrics dict, as printed by train and evaluate."""
    lines = []
    if title:
        lines.append(title)
    lines.append(f"n={metrics['n']}  top-1 {metrics['top1']:.4f}  top-2 {metrics['top2']:.4f}  "
                 f"macro-F1 {metrics['macro_f1']:.4f}")
    lines.append(f"{'colour':<8} {'support':>7} {'precision':>9} {'recall':>7} {'F1':>6}")
    for name, pc in metrics["per_class"].items():
        if pc["support"] == 0 and pc["predicted"] == 0:
            continue
        rec = "-" if pc["support"] == 0 else f"{pc['recall']:.3f}"
        lines.append(f"{name:<8} {pc['support']:>7} {pc['precision']:>9.3f} {rec:>7} {pc['f1']:>6.3f}")
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(metrics: Dict, path: str | Path, title: str = "") -> None:
    """Confusion-matrix PNG (counts; rows true, columns predicted)."""
    plt = _plt()
    cm = np.asarray(metrics["confusion"])
    labels = metrics["labels"]
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=100)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"top-1 {metrics['top1']:.3f}, n={metrics['n']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_coverage(curves: Dict[str, Dict[str, list]], path: str | Path, chosen: float | None = None) -> None:
    """Accuracy of accepted crops vs coverage, one line per curve (e.g. val and test)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for name, c in curves.items():
        ax.plot(c["coverage"], c["accuracy"], label=name)
        if chosen is not None:
            i = int(np.argmin(np.abs(np.asarray(c["threshold"]) - chosen)))
            ax.plot([c["coverage"][i]], [c["accuracy"][i]], "o", color="k")
    ax.set_xlabel("coverage (share of crops given a colour)")
    ax.set_ylabel("accuracy of the crops given a colour")
    if chosen is not None:
        ax.set_title(f"dots: unknown threshold {chosen:.2f} (calibrated on val)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
