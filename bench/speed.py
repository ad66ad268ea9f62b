"""Speed benchmark: the original's way vs carcolor, before vs after, one machine, one process run.

    python bench/speed.py                                  # everything (10-15 min on 2 shared cores)
    python bench/speed.py --before /tmp/before             # + the same rows for an older source tree
    python bench/speed.py --skip-classifier --skip-batch   # the end-to-end table only

Prints:
1. the classifier table: a frozen TensorFlow MobileNetV2 .pb at 224x224 (random weights, the
   original's graph names), one crop per call, against carcolor's ColorClassifier at batch 1, 8, 32;
2. end to end on a 1920x1080 30 fps H.264 clip (the real motorway clip upscaled, made here with
   ffmpeg in a temp folder): decode only (the ceiling), `carcolor run` with 10 boxes a frame from a
   boxes file + the JSON log, the same + the annotated video, and the shipped defaults (the vehicle
   detector) on that real traffic; per row fps after start-up, fps including start-up, the cores
   busy ((user+sys) / wall of the child process), peak RSS, and x the original's way (decode + the
   original's classifier one crop at a time on the same 10 boxes a frame); with --before PATH the
   same rows for that source tree (e.g. `git archive main | tar -x -C /tmp/before`), in the same run;
3. the video writer per 1080p frame: H.264 through PyAV (fragmented MP4) against OpenCV's mp4v;
4. `carcolor batch` on 8 copies of the demo clip on a local Ray with 1 and 2 workers: wall, speed-up,
   the per-file cost and Ray's overhead, and from them an estimate for N machines.
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
if not MOTORWAY.is_file():
    MOTORWAY = ROOT / "demo" / "motorway-960x540.mp4"  # the same clip, shipped for the demo
TEN = "run, 10 boxes/frame (boxes file) + tracking + JSON log"


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


def run_cli(args, before=None):
    """`carcolor run ...` in a child process (of ``before``'s source tree if given) -> its figures:
    fps from its summary (after start-up), frames / wall (including start-up), (user+sys) / wall, RSS."""
    env = dict(os.environ)
    cwd = ROOT
    if before is not None:
        env["PYTHONPATH"] = str(before)
        cwd = before
    with tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--quiet", *map(str, args)], cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS and CPU time, not all children's
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        sys.exit(f"carcolor run failed: {text.strip()}")
    m = re.search(r"done: (\d+) frames.* ([\d.]+) fps", text)
    frames, fps = int(m.group(1)), float(m.group(2))
    return {"fps": fps, "fps_all": frames / wall, "busy": (usage.ru_utime + usage.ru_stime) / wall,
            "rss": usage.ru_maxrss / 1024, "wall": wall}


def original_fps(clip: Path, boxes: Path, base: "OriginalWay", frames: int = 20) -> float:
    """The original's way on the same workload: decode, then each of the 10 crops through the original
    classifier one call at a time (its start-up not counted)."""
    rows = [json.loads(x) for x in boxes.read_text().splitlines()[:frames]]
    cap = cv2.VideoCapture(str(clip))
    t = time.perf_counter()
    for row in rows:
        ok, frame = cap.read()
        for x1, y1, x2, y2 in row["boxes"]:
            base.predict(frame[max(0, y1):y2, max(0, x1):x2])
    return len(rows) / (time.perf_counter() - t)


def video_writers(clip: Path, n: int = 60):
    """ms per 1080p frame (wall of write + close, and CPU of the process) for each writer."""
    from stream.sinks import VideoSink, open_writer

    cap = cv2.VideoCapture(str(clip))
    images = [cap.read()[1] for _ in range(n)]
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name in ("h264", "mp4v"):
            t, c = time.perf_counter(), time.process_time()
            if name == "h264":
                with VideoSink(Path(d) / "a.mp4", 30.0) as sink:
                    for im in images:
                        sink.write(im)
            else:
                writer, _ = open_writer(Path(d) / "b.mp4", 30.0, (images[0].shape[1], images[0].shape[0]),
                                        codecs=("mp4v",))
                for im in images:
                    writer.write(im)
                writer.release()
            out[name] = (1000 * (time.perf_counter() - t) / n, 1000 * (time.process_time() - c) / n,
                         os.path.getsize(Path(d) / ("a.mp4" if name == "h264" else "b.mp4")) / n / 1024)
    return out


def batch_bench(copies: int, tmp: Path):
    """`carcolor batch` on copies of the demo clip with 1 and 2 local workers (each its own Ray)."""
    from stream.batch import run_batch
    from stream.config import load_config

    videos = []
    for i in range(copies):
        v = tmp / f"copy{i}.mp4"
        shutil.copy(ROOT / "demo" / "motorway-960x540.mp4", v)
        videos.append(v)
    cfg = load_config(ROOT / "demo" / "config.yaml")
    out = {}
    for workers in (1, 2):
        d = tmp / f"batch{workers}"
        t = time.perf_counter()
        res = run_batch(cfg, videos, d, workers=workers, progress=False, stderr=open(os.devnull, "w"))
        out[workers] = {"wall": time.perf_counter() - t, "tasks": res.task_seconds, "frames": res.frames,
                        "cars": res.summary["total"]["cars"]}
    return out


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
    ap.add_argument("--skip-classifier", action="store_true")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--e2e-repeats", type=int, default=3)
    ap.add_argument("--copies", type=int, default=8, help="demo clip copies for the batch bench")
    ap.add_argument("--before", help="an older source tree: its end-to-end rows in the same run")
    args = ap.parse_args(argv)

    from stream.classify import ColorClassifier

    crops = real_crops(args.crops)
    model = Path(args.model)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="carcolor-bench-"))
    print(f"# carcolor speed benchmark — {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}", flush=True)

    # End to end first: a child process's peak RSS starts from its parent's at fork time
    # (Linux keeps it across exec), so the children must start before TensorFlow is loaded here.
    e2e = {}
    clip = boxes = None
    if not args.skip_e2e:
        clip = make_clip(tmp / "motorway-1080p.mp4", args.frames)
        boxes = make_boxes(tmp / "boxes.jsonl", args.frames)
        common = ["--source", clip, "--boxes", boxes]
        configs = {
            TEN: [*common, "--log", tmp / "a.jsonl"],
            TEN + " + annotated video": [*common, "--log", tmp / "b.jsonl", "--output", tmp / "b.mp4"],
            "shipped defaults (vehicle detector, real traffic) + JSON log": ["--source", clip, "--log", tmp / "c.jsonl"],
        }
        trees = [("after", None)] + ([("before", Path(args.before).resolve())] if args.before else [])
        for what, argv in configs.items():
            runs = {label: [] for label, _ in trees}
            for i in range(args.e2e_repeats):  # before and after in turn: a load change hits both
                for label, tree in trees:
                    print(f"  e2e: {what} ({label}, {i + 1}/{args.e2e_repeats})", file=sys.stderr, flush=True)
                    runs[label].append(run_cli(argv, tree))
            for label, rs in runs.items():
                e2e[(what, label)] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        dec = statistics.median(decode_only(clip) for _ in range(3))
        e2e[("decode only (the ceiling)", "after")] = {"fps": dec, "fps_all": dec, "busy": float("nan"), "rss": 0}

    base = OriginalWay(baseline_pb(tmp / "mobilenetv2-224.pb"))
    base.predict(crops[0])
    n_base = min(len(crops), 24)
    t = timed(lambda: [base.predict(c) for c in crops[:n_base]], args.repeats)
    base_cps = n_base / t
    rows.append(("baseline: MobileNetV2-224 frozen .pb, 1 crop/call", 1, base_cps))
    orig_fps = original_fps(clip, boxes, base) if clip is not None else None

    if not args.skip_classifier:
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

    if e2e:
        print(f"\n| end to end, 1920x1080 H.264, {args.frames} frames (medians of {args.e2e_repeats}) | version "
              "| fps | fps incl. start-up | cores busy (user+sys)/wall | share of decode-only | x the original's way "
              "| peak RSS |\n|---|---|---:|---:|---:|---:|---:|---:|")
        dec = e2e[("decode only (the ceiling)", "after")]["fps"]
        for (what, label), r in e2e.items():
            busy = "" if r["busy"] != r["busy"] else f"{r['busy']:.2f}"
            x = f"{r['fps_all'] / orig_fps:.1f}x" if orig_fps and what.startswith(TEN) else ""
            print(f"| {what} | {label} | {r['fps']:.1f} | {r['fps_all']:.1f} | {busy} | {100 * r['fps_all'] / dec:.0f}% "
                  f"| {x} | {r['rss']:.0f} MB |" if r["rss"] else
                  f"| {what} | | {r['fps']:.1f} | | | 100% | | |")
        if orig_fps:
            print(f"\nthe original's way on the 10-box workload: {orig_fps:.2f} fps (decode + 10 crops one call each, "
                  "its start-up not counted); x the original = fps incl. start-up / that")
        writers = video_writers(clip)
        print("\n| video writer, 1080p frames of the clip | ms/frame (wall, write + close) | CPU ms/frame | KB/frame |\n"
              "|---|---:|---:|---:|")
        for name, label in (("h264", "H.264, PyAV libx264 ultrafast, fragmented MP4 (now)"),
                            ("mp4v", "MPEG-4 Part 2 mp4v, OpenCV (before)")):
            w, c, kb = writers[name]
            print(f"| {label} | {w:.1f} | {c:.1f} | {kb:.0f} |")
        print(f"(H.264 / mp4v wall: {writers['h264'][0] / writers['mp4v'][0]:.2f}x)")
    sys.stdout.flush()

    if not args.skip_batch:
        b = batch_bench(args.copies, tmp)
        one, two = b[1], b[2]
        per_file = statistics.median(two["tasks"])  # both cores busy, as on a 2-core worker machine
        overhead = max(0.0, one["wall"] - sum(one["tasks"]))  # Ray start-up, scheduling, joining, summary
        print(f"\n| carcolor batch, {args.copies} copies of the demo clip (960x540, 335 frames), local Ray "
              "| wall s | speed-up | frames/s | cars |\n|---|---:|---:|---:|---:|")
        for w in (1, 2):
            r = b[w]
            print(f"| {w} worker{'s' if w > 1 else ''} | {r['wall']:.1f} | {one['wall'] / r['wall']:.2f}x "
                  f"| {r['frames'] / r['wall']:.1f} | {r['cars']} |")
        print(f"\nper file (median task, 2 workers): {per_file:.1f} s (1 worker: {statistics.median(one['tasks']):.1f} s); "
              f"Ray overhead (start-up, scheduling, joining: 1-worker wall - its tasks): {overhead:.1f} s")
        print("\n| estimate: 1,000 such files on N machines of 2 cores | wall | x one machine |\n|---|---:|---:|")
        single = overhead + -(-1000 // 2) * per_file
        for n in (1, 4, 16, 64):
            est = overhead + -(-1000 // (2 * n)) * per_file
            print(f"| {n} | {est / 60:.1f} min | {single / est:.1f}x |")
        print("(ideal split of whole files; a cluster adds network start-up per task, not measured here)")

    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
