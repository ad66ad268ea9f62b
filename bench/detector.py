"""Detector benchmark: the shipped vehicle detector's cost, what it finds, and whether it keeps up.

    python bench/detector.py                 # everything (about 5 minutes on 2 cores)
    python bench/detector.py --skip-live     # without the 4-camera run

Prints, from one run on this machine (medians; ratios from the same run):
1. cars found / missed / extra and colours right on the labelled motorway clip
   (``demo/motorway-tracks.jsonl``) for the motion detector (demo/config.yaml's
   settings for that road), the shipped detector with the shipped defaults and with
   the demo's ROI, and the hand-drawn boxes (``demo/motorway-cars.csv``) as a boxes file;
2. ms per frame of the detector at each input size (the network alone, and with
   every-Nth-frame detection, boxes coasting in between), 16:9 and the square
   512x512 it ships with; batching 4 frames per call; cars found at each size;
3. end to end with the shipped defaults on real 1080p traffic (the motorway clip
   scaled to 1920x1080, 30 fps, looped to 900 frames): `carcolor run --log` wall
   time including start-up (and start-up alone), against decode-only;
4. 4 live cameras at 640x360, 25 fps (4 local HTTP MPEG-TS streams paced in real
   time by ffmpeg, looping the motorway clip), one `carcolor run` each, all at once:
   frames in, processed and dropped from their `stats` events.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

CLIP = ROOT / "demo" / "motorway-960x540.mp4"
TRACKS = ROOT / "demo" / "motorway-tracks.jsonl"
HAND = ROOT / "demo" / "motorway-cars.csv"
MODEL = ROOT / "models" / "default"


def ffmpeg(*args) -> None:
    if shutil.which("ffmpeg") is None:
        sys.exit("bench needs ffmpeg (make system-deps)")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *map(str, args)], check=True)


def frames_of(path: Path, n: int):
    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


def hand_boxes_file(path: Path) -> Path:
    """The hand-drawn boxes of demo/motorway-cars.csv as a JSON Lines boxes file (no ids: carcolor tracks them)."""
    by_frame = {}
    for r in csv.DictReader(HAND.open()):
        by_frame.setdefault(int(r["frame"]), []).append([int(r[k]) for k in ("x0", "y0", "x1", "y1")])
    with open(path, "w") as f:
        for frame in sorted(by_frame):
            f.write(json.dumps({"frame": frame, "boxes": by_frame[frame]}) + "\n")
    return path


def accuracy(tmp: Path) -> str:
    from stream.config import load_config
    from stream.tracks_eval import load_tracks, run_tracks, score

    labels = load_tracks(TRACKS)
    demo = load_config(ROOT / "demo" / "config.yaml")
    runs = [("motion detector, demo/config.yaml (motion settings for this road, ROI)", demo.override(detector="motion"),
             None),
            ("shipped detector, shipped defaults (no config)", load_config(), None),
            ("shipped detector, demo/config.yaml (ROI; colour threshold 0.3) = make demo", demo, None),
            ("hand-drawn boxes (14 of the 16 cars) as a boxes file, demo/config.yaml", demo,
             hand_boxes_file(tmp / "hand.jsonl"))]
    out = ["| finder | found | missed | extra | split | colours right |", "|---|---:|---:|---:|---:|---:|"]
    for name, cfg, boxes in runs:
        s = score(labels, *run_tracks(cfg, CLIP, boxes))
        out.append(f"| {name} | {s['found']} / {s['labelled']} | {s['missed']} | {s['extra']} | {s['split']} "
                   f"| {s['colour_right']} / {s['colour_scored']} |")
    return "\n".join(out)


def detector_speed(repeats: int) -> str:
    from stream.config import VehicleConfig, load_config
    from stream.detect.vehicle import Coast, VehicleDetector
    from stream.record import Frame
    from stream.tracks_eval import load_tracks, run_tracks, score

    frames = frames_of(CLIP, 300)
    labels = load_tracks(TRACKS)
    out = ["| network input | ms/frame, every frame | every 2nd | every 3rd | cars found (every 2nd, the default) |",
           "|---|---:|---:|---:|---:|"]
    for width, height in ((384, None), (512, None), (640, None), (768, None), (512, 512)):
        det = VehicleDetector(VehicleConfig(input_width=width, input_height=height))
        size = det.input_size(960, 540)
        det.detect(frames[0])
        per_n = []
        for n in (1, 2, 3):
            times = []
            for _ in range(repeats):
                coast = Coast(det, every=n)
                t = time.perf_counter()
                for i, f in enumerate(frames[:150]):
                    coast(Frame(i, i / 30, f))
                times.append((time.perf_counter() - t) / 150)
            per_n.append(1000 * statistics.median(times))
        cfg = load_config().override(vehicle={"input_width": width, "input_height": height})
        s = score(labels, *run_tracks(cfg, CLIP))
        out.append(f"| {size[0]}x{size[1]} | {per_n[0]:.1f} | {per_n[1]:.1f} | {per_n[2]:.1f} "
                   f"| {s['found']} / {s['labelled']} |")
    # Batching: 4 frames in one call at 512x288.
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(VehicleConfig().model))
    model.reshape({model.inputs[0].get_any_name(): [4, 3, 288, 512]})
    req = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
    blobs = [np.stack([cv2.resize(f, (512, 288)).transpose(2, 0, 1) for f in frames[i:i + 4]]).astype(np.float32)
             for i in range(0, 120, 4)]
    req.infer({0: blobs[0]})
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for b in blobs:
            req.infer({0: b})
        times.append((time.perf_counter() - t) / 120)
    single = VehicleDetector(VehicleConfig())
    times1 = []
    for _ in range(repeats):
        t = time.perf_counter()
        for f in frames[:120]:
            single.detect(f)
        times1.append((time.perf_counter() - t) / 120)
    out.append(f"\nbatching at 512x288: 4 frames per call {1000 * statistics.median(times):.1f} ms/frame "
               f"(network only) against 1 frame per call {1000 * statistics.median(times1):.1f} ms/frame "
               f"(with resizing)")
    return "\n".join(out)


def wall(args, env=None) -> float:
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "stream", "run", "--quiet", *map(str, args)], cwd=ROOT,
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"carcolor run failed: {res.stderr.strip()[-500:]}")
    return time.perf_counter() - t


def end_to_end(tmp: Path, repeats: int, frames: int) -> str:
    from stream.capture import FileSource

    clip = tmp / "motorway-1080p.mp4"
    ffmpeg("-stream_loop", "-1", "-i", CLIP, "-vf", "scale=1920:1080", "-r", "30", "-frames:v", frames,
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", clip)

    def decode():
        t = time.perf_counter()
        with FileSource(clip) as src:
            k = sum(1 for _ in src)
        return k / (time.perf_counter() - t)
    dec = statistics.median(decode() for _ in range(repeats))
    rows = [("decode only (the ceiling)", dec, None)]
    configs = {}
    for n in (1, 3):
        configs[n] = tmp / f"every{n}.yaml"
        configs[n].write_text(f"model_file: {MODEL / 'model.onnx'}\nlabel_file: {MODEL / 'labels.txt'}\n"
                              f"vehicle:\n  detect_every: {n}\n")
    empty = tmp / "empty.mp4"  # start-up alone: the same run on a 1-frame clip
    ffmpeg("-i", clip, "-frames:v", 1, "-c:v", "libx264", "-pix_fmt", "yuv420p", empty)
    start = statistics.median(wall(["--source", empty, "--log", tmp / "e.jsonl"]) for _ in range(repeats))
    for name, extra in (("carcolor run --log, shipped defaults (network every 2nd frame)", []),
                        ("the same with vehicle.detect_every: 1", ["--config", configs[1]]),
                        ("the same with vehicle.detect_every: 3", ["--config", configs[3]]),
                        ("shipped defaults + annotated video", ["--output", tmp / "o.mp4"])):
        t = statistics.median(wall(["--source", clip, "--log", tmp / "l.jsonl", *extra]) for _ in range(repeats))
        rows.append((name, frames / t, frames / max(1e-6, t - start)))
    out = [f"| end to end, 1920x1080 H.264, {frames} frames ({frames / 30:.0f} s), wall time | fps incl. start-up "
           f"| share of decode-only | fps after start-up ({start:.1f} s) |", "|---|---:|---:|---:|"]
    out += [f"| {name} | {fps:.1f} | {100 * fps / dec:.0f}% | {'' if run is None else f'{run:.1f}'} |"
            for name, fps, run in rows]
    return "\n".join(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live(tmp: Path, seconds: float, cameras: int = 4, extra: str = "") -> str:
    """4 paced HTTP streams (ffmpeg -re -listen 1), one carcolor run each; their stats events."""
    small = tmp / "cam-640x360-25.mp4"
    ffmpeg("-i", CLIP, "-vf", "scale=640:360", "-r", "25", "-c:v", "libx264", "-preset", "veryfast", "-g", "25",
           "-pix_fmt", "yuv420p", small)
    cfg = tmp / "live.yaml"
    cfg.write_text(f"model_file: {MODEL / 'model.onnx'}\nlabel_file: {MODEL / 'labels.txt'}\n"
                   "live:\n  stats_interval: 5\n" + extra)
    servers, runs = [], []
    try:
        for k in range(cameras):
            port = free_port()
            servers.append(subprocess.Popen(
                ["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(small), "-c", "copy",
                 "-flush_packets", "1", "-muxdelay", "0", "-f", "mpegts", "-listen", "1", f"http://127.0.0.1:{port}/cam"], stdin=subprocess.DEVNULL))
            time.sleep(0.3)
            runs.append(subprocess.Popen(
                [sys.executable, "-m", "stream", "run", "--quiet", "--source", f"http://127.0.0.1:{port}/cam",
                 "--config", str(cfg), "--log", str(tmp / f"cam{k}.jsonl")], cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(seconds)
    finally:
        for p in runs:
            p.send_signal(signal.SIGTERM)
        for p in runs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for p in servers:
            p.kill()
            p.wait()
    out = ["| camera | stats lines | fps in | fps processed | dropped | cars |", "|---|---:|---:|---:|---:|---:|"]
    for k in range(cameras):
        lines = [json.loads(ln) for ln in (tmp / f"cam{k}.jsonl").read_text().splitlines() if ln.strip()]
        stats = [e for e in lines if e.get("event") == "stats"][1:]  # the first interval holds start-up
        cars = sum(1 for e in lines if e.get("event") == "car")
        if not stats:
            out.append(f"| {k + 1} | 0 | | | | {cars} |")
            continue
        fin = statistics.median(e["fps_in"] for e in stats)
        fpr = statistics.median(e["fps_processed"] for e in stats)
        out.append(f"| {k + 1} | {len(stats)} | {fin:.1f} | {fpr:.1f} | {sum(e['dropped'] for e in stats)} "
                   f"| {cars} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--live-seconds", type=float, default=40.0)
    ap.add_argument("--frames", type=int, default=900, help="length of the 1080p clip (the motorway clip looped)")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="carcolor-detbench-"))
    print(f"# carcolor detector benchmark — {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    try:
        print("\n" + accuracy(tmp), flush=True)
        print("\n" + detector_speed(args.repeats), flush=True)
        if not args.skip_e2e:
            print("\n" + end_to_end(tmp, args.repeats, args.frames), flush=True)
        if not args.skip_live:
            print("\n" + live(tmp, args.live_seconds), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
