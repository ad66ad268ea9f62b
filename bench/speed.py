"""Speed benchmark: the original's way vs carcolor, in one process run on this machine.

    python bench/speed.py                     # full run (a few minutes on 2 cores)
    python bench/speed.py --repeats 3 --frames 100   # quicker

Prints one table:
1. baseline: a frozen TensorFlow MobileNetV2 .pb at 224x224 (random weights, the
   original's graph names input_1 -> softmax/Softmax), one crop per call, with the
   original's per-crop centre-crop + resize + scaling;
2. carcolor's ColorClassifier on the shipped model at batch 1, 8, 32 (and the same
   model through other runtimes, which is how ONNX Runtime was chosen);
3. end to end: `carcolor run` on a 1920x1080 30 fps H.264 clip (the real motorway
   clip from ../shared/media upscaled, 300 frames) with 10 boxes per frame from a
   boxes file, writing the JSON log, then also the annotated video; decode-only fps
   (the ceiling), and the built-in motion detector + tracking instead of the boxes
   file; peak RSS of each run.
Medians of repeats; ratios are from this same run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

MOTORWAY = ROOT.parent / "shared" / "media" / "motorway-960x540.mp4"


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def real_crops(n, seed=0):
    """Car-sized crops of the real motorway clip (any size, like a detector's boxes)."""
    cap = cv2.VideoCapture(str(MOTORWAY))
    ok, frame = cap.read()
    if not ok:
        frame = np.random.default_rng(seed).integers(0, 256, (540, 960, 3), np.uint8)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = int(rng.integers(60, 240)), int(rng.integers(50, 200))
        x, y = int(rng.integers(0, frame.shape[1] - w)), int(rng.integers(0, frame.shape[0] - h))
        out.append(frame[y:y + h, x:x + w].copy())
    return out


def baseline_pb(path: Path) -> Path:
    import keras

    from stream.training.export import freeze_pb

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=14)
    return freeze_pb(model, path, "input_1", "softmax/Softmax")


class OriginalWay:
    """The original server's classifier: TF1 session, one crop per call."""

    def __init__(self, pb: Path):
        import tensorflow as tf

        gd = tf.compat.v1.GraphDef()
        gd.ParseFromString(pb.read_bytes())
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(gd, name="import")
        self.inp = self.graph.get_operation_by_name("import/input_1").outputs[0]
        self.out = self.graph.get_operation_by_name("import/softmax/Softmax").outputs[0]
        self.sess = tf.compat.v1.Session(graph=self.graph)

    def predict(self, img):
        img = img[:, :, ::-1]
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        img = cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA)
        x = np.expand_dims(img, 0).astype(np.float32) / 127.5 - 1.0
        probs = np.squeeze(self.sess.run(self.out, {self.inp: x}))
        return probs.argsort()[-3:][::-1]


def tflite_crops_per_s(keras_file: Path, crops, repeats: int, batch: int = 8):
    """The shipped Keras model converted to TFLite and run by its XNNPACK CPU delegate (a candidate runtime)."""
    import tensorflow as tf
    import keras

    from stream import preprocess

    try:
        model = keras.saving.load_model(str(keras_file), compile=False)
        flat = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        itp = tf.lite.Interpreter(model_content=flat, num_threads=os.cpu_count())
    except Exception as e:  # TFLite is deprecated inside TensorFlow: report, don't fail the bench
        print(f"(TFLite row skipped: {str(e).splitlines()[0]})")
        return None
    inp, out = itp.get_input_details()[0], itp.get_output_details()[0]
    size = int(inp["shape"][1])
    itp.resize_tensor_input(inp["index"], [batch, size, size, 3])
    itp.allocate_tensors()
    batches = [crops[i:i + batch] for i in range(0, len(crops) - batch + 1, batch)]

    def run_all():
        for b in batches:
            itp.set_tensor(inp["index"], preprocess.scale(preprocess.to_batch(b, size)))
            itp.invoke()
            itp.get_tensor(out["index"])
    run_all()
    return len(batches) * batch / timed(run_all, repeats)


def make_clip(path: Path, frames: int) -> Path:
    if shutil.which("ffmpeg") is None:
        sys.exit("bench needs ffmpeg (make system-deps) to make the H.264 clip")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(MOTORWAY),
                    "-vf", "scale=1920:1080", "-r", "30", "-frames:v", str(frames), "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def make_boxes(path: Path, frames: int, per_frame: int = 10) -> Path:
    """10 car-sized boxes per frame, each driving steadily across the frame (as a detector would see cars)."""
    rng = np.random.default_rng(1)
    w = rng.integers(140, 420, per_frame)
    h = (w * rng.uniform(0.6, 0.9, per_frame)).astype(int)
    x = rng.uniform(0, 1920, per_frame)
    y = rng.uniform(250, 1080 - h)
    vx = rng.choice([-1, 1], per_frame) * rng.uniform(6, 20, per_frame)
    with open(path, "w") as f:
        for i in range(frames):
            xi = (x + vx * i) % (1920 - w)
            boxes = [[int(a), int(b), int(a + c), int(b + d)] for a, b, c, d in zip(xi, y, w, h)]
            f.write(json.dumps({"frame": i, "boxes": boxes}) + "\n")
    return path


def run_cli(args):
    """`carcolor run ...` in a child process -> (fps from its summary, peak RSS MB of that child)."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--quiet", *map(str, args)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS, not all children's
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        sys.exit(f"carcolor run failed: {text.strip()}")
    fps = float(re.search(r"([\d.]+) fps", text).group(1))
    return fps, usage.ru_maxrss / 1024


def decode_only(path: Path) -> float:
    from stream.capture import FileSource

    t = time.perf_counter()
    with FileSource(path) as src:
        n = sum(1 for _ in src)
    return n / (time.perf_counter() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models/default/model.onnx"))
    ap.add_argument("--labels", default=str(ROOT / "models/default/labels.txt"))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--crops", type=int, default=64, help="crops per timing repeat")
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args(argv)

    from stream.classify import ColorClassifier

    crops = real_crops(args.crops)
    model = Path(args.model)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="carcolor-bench-"))
    print(f"# carcolor speed benchmark — {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}", flush=True)

    # End to end first: a child process's peak RSS starts from its parent's at fork time
    # (Linux keeps it across exec), so the children must start before TensorFlow is loaded here.
    e2e_table = ""
    if not args.skip_e2e:
        clip = make_clip(tmp / "motorway-1080p.mp4", args.frames)
        boxes = make_boxes(tmp / "boxes.jsonl", args.frames)
        common = ["--source", clip, "--boxes", boxes, "--model", model, "--labels", args.labels]
        fps_log, rss_log = run_cli([*common, "--log", tmp / "a.jsonl"])
        fps_vid, rss_vid = run_cli([*common, "--log", tmp / "b.jsonl", "--output", tmp / "b.mp4"])
        # No boxes file: the built-in motion detector (tuned for this road in demo/config.yaml) + tracking.
        fps_mot, rss_mot = run_cli(["--source", clip, "--config", ROOT / "demo" / "config.yaml", "--detector", "motion",
                                    "--model", model,
                                    "--labels", args.labels, "--log", tmp / "c.jsonl"])
        dec = statistics.median(decode_only(clip) for _ in range(3))
        e2e_table = (
            f"\n| end to end, 1920x1080 H.264, {args.frames} frames, 10 boxes/frame | fps | x real time | peak RSS |\n"
            "|---|---:|---:|---:|\n"
            f"| decode only (the ceiling) | {dec:.1f} | {dec / 30:.1f}x | |\n"
            f"| carcolor run + JSON log | {fps_log:.1f} | {fps_log / 30:.1f}x | {rss_log:.0f} MB |\n"
            f"| carcolor run + JSON log + annotated video | {fps_vid:.1f} | {fps_vid / 30:.1f}x | {rss_vid:.0f} MB |\n"
            f"| carcolor run --detector motion (+ tracking) + JSON log | {fps_mot:.1f} | {fps_mot / 30:.1f}x "
            f"| {rss_mot:.0f} MB |\n")

    base = OriginalWay(baseline_pb(tmp / "mobilenetv2-224.pb"))
    base.predict(crops[0])
    n_base = min(len(crops), 24)
    t = timed(lambda: [base.predict(c) for c in crops[:n_base]], args.repeats)
    base_cps = n_base / t
    rows.append(("baseline: MobileNetV2-224 frozen .pb, 1 crop/call", 1, base_cps))

    runtimes = [("onnx", model)]
    if model.with_suffix(".keras").exists():
        runtimes.append(("keras", model.with_suffix(".keras")))
    runs = [(kind, path, None, (1, 8, 32) if kind == "onnx" else (8,)) for kind, path in runtimes]
    runs.insert(1, ("onnx", model, 0.0, (8,)))  # the CNN alone: comparable with TFLite below
    for kind, path, rule_weight, sizes in runs:
        clf = ColorClassifier(path, args.labels, rule_weight=rule_weight)
        what = f"CNN + colour rule {clf.rule_weight:.2f}" if clf.rule_weight else "CNN alone"
        for bs in sizes:
            batches = [crops[i:i + bs] for i in range(0, len(crops), bs)]
            clf.predict_proba(batches[0])
            t = timed(lambda: [clf.predict_proba(b) for b in batches], args.repeats)
            rows.append((f"carcolor {kind}: {model.parent.name} @{clf.input_size}px, {what}", bs, len(crops) / t))

    keras_file = model.with_suffix(".keras")
    if keras_file.exists():
        cps = tflite_crops_per_s(keras_file, crops, args.repeats)
        if cps:
            rows.append(("same CNN, TFLite + XNNPACK (not shipped), CNN alone", 8, cps))

    print("\n| classifier | batch | crops/s | ms/crop | x baseline |\n|---|---:|---:|---:|---:|")
    for name, bs, cps in rows:
        print(f"| {name} | {bs} | {cps:,.0f} | {1000 / cps:.2f} | {cps / base_cps:.1f}x |")
    sys.stdout.flush()

    print(e2e_table, end='')
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
