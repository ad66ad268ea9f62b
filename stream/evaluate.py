"""``carcolor evaluate``: the model card's metrics for any model the classifier loads.

Works for the shipped model, a user's ``.keras`` / ``.onnx``, or an original-style
frozen ``.pb`` with its own labels file: its labels are folded into the ten
colours (silver -> gray, beige/golden -> brown, bordeaux -> red, violet -> purple,
case-folded); a prediction whose label folds into none counts as wrong.

    python -c "import sys; from stream.evaluate import main; sys.exit(main(sys.argv[1:]))" \\
        --data ../shared/datasets/traffic-colors --model models/default
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import metrics as M
from .dataset import LABELS, DataError, canonical_label, load_split
from .errors import CarcolorError

DEFAULT_MODEL = Path("models") / "default"


def label_map(model_labels: Sequence[str]) -> np.ndarray:
    """Index into :data:`LABELS` for each model label, -1 where it folds into none."""
    return np.array([LABELS.index(c) if (c := canonical_label(l)) else -1 for l in model_labels], np.int64)


def evaluate_classifier(clf, crops: Sequence[np.ndarray], y: np.ndarray) -> Tuple[Dict, np.ndarray]:
    """(metrics over the ten colours, (N, 10) probabilities) for an object with
    ``.labels`` and ``.predict_proba(bgr_crops)``.

    The prediction is the model's own top label, folded; probabilities of labels
    that fold into the same colour are summed (used for top-2 and coverage).
    """
    raw = np.asarray(clf.predict_proba(list(crops)), np.float64)
    mapping = label_map(clf.labels)
    probs = np.zeros((len(raw), len(LABELS)), np.float64)
    for j, c in enumerate(mapping):
        if c >= 0:
            probs[:, c] += raw[:, j]
    y_pred = mapping[raw.argmax(axis=1)] if len(raw) else np.zeros(0, np.int64)
    return M.classification_metrics(y, probs, LABELS, y_pred=y_pred), probs


def robustness(classifiers: Dict[str, object], crops: Sequence[np.ndarray], y: np.ndarray) -> Dict[str, Dict[str, float]]:
    """Top-1 of each classifier on ``crops`` after each fixed perturbation of ``stream.augment``."""
    from .augment import PERTURBATIONS

    out: Dict[str, Dict[str, float]] = {}
    for name, fn in PERTURBATIONS.items():
        changed = [fn(c) for c in crops]
        out[name] = {k: evaluate_classifier(clf, changed, y)[0]["top1"] for k, clf in classifiers.items()}
    return out


def resolve_model(model: Optional[str], labels: Optional[str], size: Optional[int]) -> Tuple[Path, Path, int]:
    """Model file, labels file and input size from the CLI arguments (a folder means its model.onnx)."""
    path = Path(model) if model else DEFAULT_MODEL
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        path = path / "model.onnx"
    if not path.exists():
        raise DataError(f"model file not found: {path}")
    label_path = Path(labels) if labels else folder / "labels.txt"
    if not label_path.is_file():
        raise DataError(f"labels file not found: {label_path} (pass --labels)")
    if size is None:
        meta = folder / "model.json"
        size = 224
        if meta.is_file():
            try:
                size = int(json.loads(meta.read_text(encoding="utf-8"))["input_size"])
            except (ValueError, KeyError, TypeError):
                pass
    return path, label_path, size


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carcolor evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder with labels.csv, or <colour>/<image> folders")
    p.add_argument("--model", help="model file (.onnx/.keras/.pb) or model folder (default models/default)")
    p.add_argument("--labels", help="labels file (default: labels.txt beside the model)")
    p.add_argument("--size", type=int, help="input size (default: model.json, the model's input shape, or 224)")
    p.add_argument("--split", choices=["train", "val", "test", "all"],
                   help="split to evaluate (default: test where the data has splits, else all)")
    p.add_argument("--out", default="out/evaluate", help="folder for metrics.json and confusion.png")
    p.add_argument("--input-layer", default="input_1", help="frozen-graph input tensor name")
    p.add_argument("--output-layer", default="softmax/Softmax", help="frozen-graph output tensor name")
    p.add_argument("--threads", type=int, default=0)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        from .classify import ColorClassifier

        crops, y, _ = load_split(args.data, args.split)
        model, labels, size = resolve_model(args.model, args.labels, args.size)
        clf = ColorClassifier(model, labels, args.input_layer, args.output_layer, input_size=size,
                              threads=args.threads)
        metrics, _ = evaluate_classifier(clf, crops, y)
    except CarcolorError as e:
        print(f"carcolor evaluate: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = dict(metrics, model=str(model), labels_file=str(labels), input_size=clf.input_size,
                   data=str(args.data), split=args.split or "default")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    M.plot_confusion(metrics, out / "confusion.png", f"{model.name}: top-1 {metrics['top1']:.3f}")
    print(M.format_table(metrics, f"{model} on {args.data} ({args.split or 'default split'}):"))
    print(f"saved {out / 'metrics.json'} and {out / 'confusion.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
