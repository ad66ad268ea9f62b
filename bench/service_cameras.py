"""CPU and memory per camera of the camera service: 1, 2, 4, 8 cameras in one process.

Each point: one test RTSP server (``tests/rtsp_server.py --shared``: one encoder, so the
server's own CPU stays the same whatever the number of cameras) serves the demo clip at
640x360, 25 fps, in a loop; ``carcolor run`` with N cameras on it (each its own RTSP
connection, decoder, detector state, tracker) runs with the web view; after every camera is
online and a warm-up, CPU (of the carcolor process: 100 % = one core) and RSS are sampled
for ``--seconds``, and each camera's frames in and processed are read from ``/api/cameras``.
A camera keeps up when it processes at least 95 % of the frames it receives (a live
camera drops the rest: newest frame only).

    python bench/service_cameras.py                          # 1 2 4 8 cameras, vehicle and motion, 40 s each
    python bench/service_cameras.py --cameras 1 3 --detectors vehicle --seconds 30

Prints one table row per point, medians over the samples; the machine's load average at the
start and end of each point is in the row: on a shared machine, read the figures with it.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import psutil  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402

from rtsp_server import RtspServer, free_port, gst_missing, raw_clip  # noqa: E402

DEMO = REPO / "demo" / "motorway-960x540.mp4"


def api(port: int):
    return requests.get(f"http://127.0.0.1:{port}/api/cameras", timeout=5).json()["cameras"]


def point(n: int, detector: str, url: str, seconds: float, work: Path, warmup: float):
    port = free_port()
    cfg = work / f"cams-{n}-{detector}.yaml"
    cfg.write_text(yaml.safe_dump({
        "detector": detector, "web": {"port": port},
        "live": {"open_timeout": 10, "read_timeout": 5, "stall_timeout": 5},
        "cameras": [{"name": f"cam{i}", "source": url} for i in range(n)]}))
    load0 = os.getloadavg()[0]
    proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--config", str(cfg)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=open(work / f"err-{n}-{detector}.txt", "w"))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                cams = api(port)
                if all(c["frames"] > 0 for c in cams):
                    break
            except (requests.RequestException, ValueError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{n} cameras did not start: {(work / f'err-{n}-{detector}.txt').read_text()[-1500:]}")
            time.sleep(0.5)
        time.sleep(warmup)
        ps = psutil.Process(proc.pid)
        before = {c["name"]: c for c in api(port)}
        ps.cpu_percent(None)
        t0 = time.monotonic()
        cpu, rss = [], []
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            cpu.append(ps.cpu_percent(None))
            rss.append(ps.memory_info().rss / 2 ** 20)
        dt = time.monotonic() - t0
        after = {c["name"]: c for c in api(port)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    fin = [(after[k]["frames_read"] - before[k]["frames_read"]) / dt for k in after]
    fdone = [(after[k]["frames"] - before[k]["frames"]) / dt for k in after]
    ratio = min(d / i if i else 0.0 for d, i in zip(fdone, fin))
    return {"n": n, "detector": detector, "cpu": statistics.median(cpu), "rss": statistics.median(rss),
            "fps_in": statistics.median(fin), "fps_done": statistics.median(fdone), "worst": ratio,
            "kept_up": ratio >= 0.95, "load": (load0, os.getloadavg()[0])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--detectors", nargs="+", default=["vehicle", "motion"])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    args = ap.parse_args(argv)
    missing = gst_missing()
    if missing:
        print(f"service_cameras: cannot run: {missing}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench_cams_"))
    clip = raw_clip(DEMO, work / "clip.yuv", 640, 360, 25, seconds=11)
    server = RtspServer().start(640, 360, 25, clip=clip, shared=True)
    server_ps = psutil.Process(server.proc.pid)
    print(f"service_cameras: 640x360 25 fps demo clip over RTSP, {args.seconds:.0f} s per point, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} (shared machine)", flush=True)
    head = (f"| detector | cameras | CPU % (1 core = 100) | CPU % per camera | RSS MiB | RSS MiB per camera "
            f"| fps in / processed per camera (median) | worst camera processed / in | kept up | load avg start-end |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    rows = []
    try:
        for det in args.detectors:
            for n in args.cameras:
                server_ps.cpu_percent(None)
                r = point(n, det, server.url, args.seconds, work, args.warmup)
                r["server_cpu"] = server_ps.cpu_percent(None)
                rows.append(r)
                print(f"| {det} | {n} | {r['cpu']:.0f} | {r['cpu'] / n:.0f} | {r['rss']:.0f} | {r['rss'] / n:.0f} "
                      f"| {r['fps_in']:.1f} / {r['fps_done']:.1f} | {r['worst']:.2f} | {'yes' if r['kept_up'] else 'no'} "
                      f"| {r['load'][0]:.1f}-{r['load'][1]:.1f} |", flush=True)
    finally:
        server.kill()
    for det in args.detectors:
        ok = [r["n"] for r in rows if r["detector"] == det and r["kept_up"]]
        print(f"{det}: most cameras kept up with (of {args.cameras}): {max(ok) if ok else 0}")
        pts = [r for r in rows if r["detector"] == det]
        if len(pts) >= 2:
            a, b = pts[0], pts[-1]
            print(f"{det}: RSS per extra camera {(b['rss'] - a['rss']) / (b['n'] - a['n']):.1f} MiB "
                  f"({a['n']} -> {b['n']} cameras)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
