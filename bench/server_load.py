"""Memory and latency of ``carcolor serve`` under a storm of huge JPEGs (issue 14).

Starts the server in its own process, uploads one ``--size`` x ``--size`` JPEG
(about 1.5 MB, under the pixel limit) from ``--clients`` clients at once, while
another client keeps sending a small car photo; samples the server's RSS every
20 ms from /proc. Prints the server's RSS before and at its peak, and the small
client's worst and median latency during the storm.

    python bench/server_load.py                      # 20 clients, 7000x7000
    python bench/server_load.py --clients 40 --rounds 3

Target (issue 14): the peak stays within a few hundred MiB of the idle RSS whatever
is uploaded, and the small client is never held up by seconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _server_fixtures import ServerProcess  # noqa: E402


def big_jpeg(size: int, target_mb: float = 1.5) -> bytes:
    """A smooth, road-like picture of size x size px, JPEG-compressed to about ``target_mb``."""
    rng = np.random.default_rng(0)
    small = cv2.resize(rng.integers(40, 220, (64, 64, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    small = cv2.add(small, rng.integers(0, 6, (size, size, 3), dtype=np.uint8))
    data = b""
    for q in (20, 35, 50, 65, 80):
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, q])
        data = buf.tobytes()
        if len(data) >= target_mb * 2**20:
            break
    return data


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--size", type=int, default=7000)
    ap.add_argument("--rounds", type=int, default=1, help="storms in a row")
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml")
    args = ap.parse_args(argv)
    import requests

    big = big_jpeg(args.size)
    ok, buf = cv2.imencode(".jpg", cv2.imread(str(REPO / "demo" / "car.jpg")))
    small = buf.tobytes()
    print(f"big image: {args.size}x{args.size}, {len(big) / 2**20:.2f} MB JPEG; small: {len(small)} bytes",
          file=sys.stderr)
    with tempfile.TemporaryDirectory():
        server = ServerProcess(args.config).start()
        pid = server.proc.pid
        try:
            for _ in range(5):
                requests.post(server.url, files={"image": ("car.jpg", small)}, timeout=30).raise_for_status()
            idle = rss_mib(pid)
            peak, stop = [idle], threading.Event()

            def sample():
                while not stop.is_set():
                    peak.append(rss_mib(pid))
                    time.sleep(0.02)

            lat, codes, big_s = [], [], []

            def small_client():
                s = requests.Session()
                while not stop.is_set():
                    t = time.perf_counter()
                    r = s.post(server.url, files={"image": ("car.jpg", small)}, timeout=120)
                    lat.append(time.perf_counter() - t)
                    codes.append(r.status_code)

            def big_client(barrier):
                barrier.wait()
                t = time.perf_counter()
                r = requests.post(server.url, files={"image": ("big.jpg", big)}, timeout=300)
                big_s.append(time.perf_counter() - t)
                codes.append(r.status_code)

            threads = [threading.Thread(target=sample, daemon=True), threading.Thread(target=small_client, daemon=True)]
            for t in threads:
                t.start()
            for _ in range(args.rounds):
                barrier = threading.Barrier(args.clients)
                clients = [threading.Thread(target=big_client, args=(barrier,)) for _ in range(args.clients)]
                for c in clients:
                    c.start()
                for c in clients:
                    c.join()
            stop.set()
            for t in threads:
                t.join(120)
            after = rss_mib(pid)
        finally:
            server.stop()
    result = {"clients": args.clients, "size": args.size, "jpeg_mb": round(len(big) / 2**20, 2),
              "rss_idle_mib": round(idle), "rss_peak_mib": round(max(peak)), "rss_after_mib": round(after),
              "small_max_s": round(max(lat), 3), "small_p50_s": round(statistics.median(lat), 3),
              "small_requests": len(lat), "big_max_s": round(max(big_s), 2),
              "codes": {str(c): codes.count(c) for c in sorted(set(codes))}}
    print(f"RSS {result['rss_idle_mib']} MiB idle -> {result['rss_peak_mib']} MiB peak "
          f"({result['rss_after_mib']} after); small request during the storm: max {result['small_max_s']} s, "
          f"median {result['small_p50_s']} s over {len(lat)}; big uploads took up to {result['big_max_s']} s; "
          f"status codes {result['codes']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
