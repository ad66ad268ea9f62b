"""Soak: ``carcolor run`` on an RTSP camera that keeps dying, for minutes.

Starts the test RTSP server (``tests/rtsp_server.py``, system Python with
GStreamer) and ``carcolor run --source rtsp://... --log --output`` against it,
then for ``--seconds`` kills the server (SIGKILL) or pauses it (SIGSTOP, a
stalled camera) at random moments and brings it back on the same port, now and
then at another frame size. RSS of the carcolor process is sampled every
second. At the end the server is left up until carcolor has reconnected, the
run gets SIGTERM, and the soak checks:

- the JSON log has no torn line (every line parses, the file ends in a newline);
- every ``offline`` is followed by a ``reconnected`` (an outage = a run of offline
  events), and the ``reconnected`` count equals the outages in the log;
- at least ``--min-restarts`` outages were made;
- RSS stayed flat (last vs first after warm-up, and the trend);
- SIGTERM exits with 130 within 2 s and the video is playable.

    python bench/soak_rtsp.py                      # 120 s
    python bench/soak_rtsp.py --seconds 150 --seed 3

Model: ``--config`` if given, else the shipped config.yaml when its model
exists, else the tests' tiny nearest-colour ONNX model. Exit status 1 when a
check fails.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402

from rtsp_server import RtspServer, gst_missing  # noqa: E402
from _soak import report, terminate, wait_started  # noqa: E402

SIZES = [(320, 240), (384, 288)]
LIVE = {"open_timeout": 2, "read_timeout": 2, "stall_timeout": 2, "retry_interval": 0.2,
        "retry_max_interval": 2.0, "stats_interval": 10}


def make_config(base: Path | None, folder: Path) -> Path:
    """The base config (model paths made absolute) with a region and fast live timeouts."""
    if base is None and (REPO / "models" / "default" / "model.onnx").exists():
        base = REPO / "config.yaml"
    if base is None:
        from _server_fixtures import write_config
        base = write_config(folder / "model")
    data = yaml.safe_load(base.read_text()) or {}
    for key in ("model_file", "label_file"):
        if key in data:
            data[key] = str((base.parent / data[key]).resolve())
    data.pop("server", None)
    data["boxes"] = [{"name": "lane", "xyxy": [0.1, 0.5, 0.6, 0.95]}]
    data["live"] = {**data.get("live", {}), **LIVE}
    out = folder / "soak.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def read_log(path: Path) -> List[Dict]:
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="soak duration (default 120)")
    ap.add_argument("--min-restarts", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--config", type=Path, default=None, help="carcolor config (model); live: is overridden")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (log, video)")
    args = ap.parse_args(argv)

    missing = gst_missing()
    if missing:
        print(f"soak_rtsp: cannot run: {missing}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 16)
    rng = random.Random(seed)
    # Mean uptime short enough for ~1.3x the outages asked for, but never under 5 s: a reconnect
    # takes the back-off delay (up to 2 s) plus ~2 s of FFmpeg probing the stream.
    uptime = max(7.0, args.seconds / (1.6 * args.min_restarts))
    work = Path(tempfile.mkdtemp(prefix="soak_rtsp_"))
    log, video, errfile = work / "soak.jsonl", work / "soak.mp4", work / "stderr.txt"
    config = make_config(args.config, work)

    server = RtspServer().start()
    with open(errfile, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--source", server.url, "--config",
                                 str(config), "--log", str(log), "--output", str(video), "--quiet"],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
    ps = psutil.Process(proc.pid)
    rss: List[tuple] = []  # (seconds, MiB) after the first frame
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(1.0):
            try:
                rss.append((time.monotonic(), ps.memory_info().rss / 2 ** 20))
            except psutil.Error:
                return

    outages = {"kill": 0, "stall": 0}
    print(f"soak_rtsp: seed {seed}, {args.seconds:.0f} s, work folder {work}", flush=True)
    failures: List[str] = []
    try:
        wait_started(proc, lambda: any("frame" in x for x in read_log(log)), errfile, 0.2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            time.sleep(rng.uniform(5.0, 2 * uptime - 5.0))
            if time.monotonic() - t0 >= args.seconds or proc.poll() is not None:
                break
            if rng.random() < 0.25:  # a stalled camera: connection open, nothing sent
                outages["stall"] += 1
                server.stop()
                time.sleep(rng.uniform(LIVE["stall_timeout"] + 0.5, LIVE["stall_timeout"] + 3))
                server.kill()
            else:
                outages["kill"] += 1
                server.kill()
                time.sleep(rng.uniform(0.2, 3.0))
            w, h = rng.choice(SIZES) if rng.random() < 0.3 else SIZES[0]
            server.start(width=w, height=h)
        # Leave the camera up until carcolor is back, then stop it as a user would.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            names = [x["event"] for x in read_log(log) if x.get("event") in ("offline", "reconnected", "online")]
            if names and names[-1] != "offline" and (time.monotonic() - t0) > args.seconds:
                break
            time.sleep(0.2)
        time.sleep(2.0)
        if proc.poll() is not None:
            failures.append(f"carcolor died during the soak (exit {proc.returncode})")
        shutdown = terminate(proc, 10)
    finally:
        stop_sampling.set()
        if proc.poll() is None:
            proc.kill()
        server.kill()

    # --- checks -------------------------------------------------------------------------------------
    raw = log.read_bytes()
    torn = 0
    lines = []
    for line in raw.decode(errors="replace").split("\n")[:-1]:
        try:
            lines.append(json.loads(line))
        except ValueError:
            torn += 1
    if not raw.endswith(b"\n"):
        torn += 1
    events = [x for x in lines if "event" in x]
    frames = [x for x in lines if "frame" in x]
    groups, unanswered, in_outage = 0, 0, False
    for e in events:
        if e["event"] == "offline" and not in_outage:
            groups, in_outage = groups + 1, True
        elif e["event"] in ("reconnected", "online"):
            in_outage = False
    unanswered = int(in_outage)
    reconnected = [e for e in events if e["event"] == "reconnected"]
    offline = [e for e in events if e["event"] == "offline"]
    stats = [e for e in events if e["event"] == "stats"]
    made = outages["kill"] + outages["stall"]
    downtimes = [e.get("downtime", 0.0) for e in reconnected]
    cap = cv2.VideoCapture(str(video))
    video_frames = 0
    while cap.read()[0]:
        video_frames += 1
    cap.release()

    mib = [m for _, m in rss]
    warm = mib[len(mib) // 10:] or mib
    first, last, peak = (warm[0], mib[-1], max(mib)) if mib else (0.0, 0.0, 0.0)
    head = statistics.median(warm[:max(1, len(warm) // 10)])
    tail = statistics.median(warm[-max(1, len(warm) // 10):])
    if len(rss) > 2:
        ts = [t for t, _ in rss]
        slope = statistics.linear_regression(ts, mib).slope * 60  # MiB per minute
    else:
        slope = 0.0

    if torn:
        failures.append(f"{torn} torn line(s) in the log")
    if unanswered:
        failures.append("the last offline was never followed by reconnected")
    if len(reconnected) != groups:
        failures.append(f"{groups} outages in the log but {len(reconnected)} reconnected events")
    if made < args.min_restarts:
        failures.append(f"only {made} outages made (< {args.min_restarts}): run longer")
    if groups < made:
        failures.append(f"{made} outages made but only {groups} seen in the log")
    if tail - head > max(30.0, 0.15 * head):
        failures.append(f"RSS grew from {head:.0f} to {tail:.0f} MiB")
    if proc.returncode != 130:
        failures.append(f"exit status {proc.returncode} after SIGTERM (expected 130)")
    if shutdown > 2.0:
        failures.append(f"SIGTERM took {shutdown:.2f} s (> 2 s)")
    if video_frames != len(frames):
        failures.append(f"video has {video_frames} frames, log {len(frames)}")

    rows = [
        ("duration", f"{args.seconds:.0f} s (seed {seed})"),
        ("outages made", f"{made} ({outages['kill']} killed, {outages['stall']} stalled)"),
        ("outages in log / reconnected", f"{groups} / {len(reconnected)}"),
        ("offline events (retries incl.)", f"{len(offline)}"),
        ("reconnect downtime s (median/max)",
         f"{statistics.median(downtimes):.2f} / {max(downtimes):.2f}" if downtimes else "-"),
        ("frames logged / in video", f"{len(frames)} / {video_frames}"),
        ("frames dropped (stats events)", f"{sum(e.get('dropped', 0) for e in stats)}"),
        ("log lines / torn", f"{len(lines)} / {torn}"),
        ("RSS MiB first / last / max", f"{first:.1f} / {last:.1f} / {peak:.1f}"),
        ("RSS trend", f"{slope:+.2f} MiB/min over {len(mib)} samples"),
        ("SIGTERM -> exit", f"{shutdown:.2f} s, status {proc.returncode}"),
    ]
    return report(rows, failures, work, args.keep, "log, video, stderr")


if __name__ == "__main__":
    sys.exit(main())
