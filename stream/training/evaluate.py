"""``carcolor evaluate``: the model card's metrics for any model the classifier loads.

Works for the shipped model, a user's ``.keras`` / ``.onnx``, or an original-style
frozen ``.pb`` with its own labels file: its labels are folded into the ten
colours (silver -> gray, beige/golden -> brown, bordeaux -> red, violet -> purple,
case-folded); a prediction whose label folds into none counts as wrong.

    python -c "import sys; from stream.training.evaluate import main; sys.exit(main(sys.argv[1:]))" \\
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
from ..labels import LABELS, canonical_label
from .dataset import DataError, load_split
from ..errors import CarcolorError

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
    """Top-1 of each classifier on ``crops`` after each fixed perturbation of ``stream.training.augment``."""
    from .augment import PERTURBATIONS

    out: Dict[str, Dict[str, float]] = {}
    for name, fn in PERTURBATIONS.items():
        changed = [fn(c) for c in crops]
        out[name] = {k: evaluate_classifier(clf, changed, y)[0]["top1"] for k, clf in classifiers.items()}
    return out


def load_video_boxes(video: str | Path, boxes: str | Path) -> Tuple[List[np.ndarray], np.ndarray, np.ndarray]:
    """(BGR crops, colour indices, car ids) from a video and a CSV of labelled boxes.

    The CSV has a header ``car,colour,frame,x0,y0,x1,y1`` (pixels, frame numbers from 0):
    one row per crop, several rows (frames) per car, e.g. ``demo/motorway-cars.csv``.
    """
    import csv

    import cv2

    from ..errors import read_input

    try:
        text = read_input(boxes, "boxes file", DataError).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{boxes} is not a text CSV file") from e
    want: Dict[int, List[Tuple[int, str, Tuple[int, int, int, int]]]] = {}
    try:
        rows = list(csv.DictReader(text.splitlines()))
        for n, row in enumerate(rows, 2):
            colour = canonical_label(row["colour"])
            if colour is None:
                raise DataError(f"{boxes} line {n}: unknown colour {row['colour']!r}")
            box = tuple(int(float(row[k])) for k in ("x0", "y0", "x1", "y1"))
            want.setdefault(int(row["frame"]), []).append((int(row["car"]), colour, box))
    except (KeyError, TypeError, ValueError, csv.Error) as e:
        raise DataError(f"{boxes}: expected columns car,colour,frame,x0,y0,x1,y1 ({e})") from e
    if not want:
        raise DataError(f"{boxes} lists no boxes")
    if not Path(video).is_file():
        raise DataError(f"video not found: {video}")
    cap = cv2.VideoCapture(str(video))
    crops, ys, cars = [], [], []
    frame_no, last = 0, max(want)
    try:
        while frame_no <= last:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            for car, colour, (x0, y0, x1, y1) in want.get(frame_no, []):
                x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
                if x1 - x0 >= 2 and y1 - y0 >= 2:
                    crops.append(frame[y0:y1, x0:x1].copy())
                    ys.append(LABELS.index(colour))
                    cars.append(car)
            frame_no += 1
    finally:
        cap.release()
    if frame_no == 0:
        raise DataError(f"cannot read video {video}")
    if not crops:
        raise DataError(f"no box of {boxes} lies in the frames of {video}")
    return crops, np.array(ys, np.int64), np.array(cars, np.int64)


def per_car(y: np.ndarray, probs: np.ndarray, cars: np.ndarray) -> Dict:
    """Each car's colour from its crops' summed probabilities: {"cars", "right", "rows"}."""
    rows = []
    for car in np.unique(cars):
        sel = cars == car
        summed = probs[sel].sum(0)
        rows.append({"car": int(car), "colour": LABELS[int(y[sel][0])], "predicted": LABELS[int(summed.argmax())],
                     "crops": int(sel.sum()), "crops_right": int((probs[sel].argmax(1) == y[sel]).sum())})
    return {"cars": len(rows), "right": sum(r["colour"] == r["predicted"] for r in rows), "rows": rows}


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
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="folder with labels.csv, or <colour>/<image> folders")
    src.add_argument("--boxes", help="CSV of labelled boxes in --video (car,colour,frame,x0,y0,x1,y1): "
                                     "crop metrics plus per-car accuracy")
    p.add_argument("--video", help="the video that --boxes refers to")
    p.add_argument("--model", help="model file (.onnx/.keras/.pb) or model folder (default models/default)")
    p.add_argument("--labels", help="labels file (default: labels.txt beside the model)")
    p.add_argument("--size", type=int, help="input size (default: model.json, the model's input shape, or 224)")
    p.add_argument("--split", choices=["train", "val", "test", "all"],
                   help="split to evaluate (default: test where the data has splits, else all)")
    p.add_argument("--out", default="out/evaluate", help="folder for metrics.json and confusion.png")
    p.add_argument("--input-layer", default="input_1", help="frozen-graph input tensor name")
    p.add_argument("--output-layer", default="softmax/Softmax", help="frozen-graph output tensor name")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--rule-weight", type=float, default=None,
                   help="weight of the HSV colour rule mixed in (default: the model's model.json, else 0)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        from ..classify import ColorClassifier

        if args.boxes:
            if not args.video:
                raise DataError("--boxes needs --video")
            crops, y, cars = load_video_boxes(args.video, args.boxes)
        else:
            crops, y, _ = load_split(args.data, args.split)
        model, labels, size = resolve_model(args.model, args.labels, args.size)
        clf = ColorClassifier(model, labels, args.input_layer, args.output_layer, input_size=size,
                              threads=args.threads, rule_weight=args.rule_weight)
        metrics, probs = evaluate_classifier(clf, crops, y)
    except CarcolorError as e:
        print(f"carcolor evaluate: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = f"{args.boxes} in {args.video}" if args.boxes else str(args.data)
    metrics = dict(metrics, model=str(model), labels_file=str(labels), input_size=clf.input_size,
                   rule_weight=clf.rule_weight, data=data, split=None if args.boxes else args.split or "default")
    if args.boxes:
        metrics["per_car"] = per_car(y, probs, cars)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    M.plot_confusion(metrics, out / "confusion.png", f"{model.name}: top-1 {metrics['top1']:.3f}")
    where = data if args.boxes else f"{data} ({args.split or 'default split'})"
    print(M.format_table(metrics, f"{model} on {where}:"))
    if args.boxes:
        pc = metrics["per_car"]
        for r in pc["rows"]:
            print(f"  car {r['car']:>3}: {r['colour']:<7} -> {r['predicted']:<7} "
                  f"({r['crops_right']}/{r['crops']} crops right)")
        print(f"cars right: {pc['right']} / {pc['cars']} (probabilities summed over each car's crops)")
    print(f"saved {out / 'metrics.json'} and {out / 'confusion.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
