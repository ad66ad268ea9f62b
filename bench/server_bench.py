"""Load test of ``carcolor serve``: requests/s and latency, single images and batches of 8.

Starts the server in its own process (or targets a running one with ``--url``)
and fires a fixed number of requests at it over loopback from this process,
``--concurrency`` at a time, each thread with its own keep-alive connection.
Upload material: real JPEG car crops from the shared traffic-colors test split.

    python bench/server_bench.py                          # shipped model if trained, else a stand-in
    python bench/server_bench.py --requests 1000 --concurrency 16 --threads 8
    python bench/server_bench.py --url http://127.0.0.1:6002

Model, when the bench starts the server: ``--config`` if given; else the
shipped ``config.yaml`` when ``models/default/model.onnx`` exists; else a
random-weight ONNX export of the student CNN that ``carcolor train`` ships
(same architecture and input size, so the same compute); else (no TensorFlow)
the tests' tiny nearest-colour model. The model in use is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from _server_fixtures import ServerProcess, dataset_images, write_config  # noqa: E402

SHIPPED_MODEL = REPO / "models" / "default" / "model.onnx"


def stand_in_model(folder: Path, size: int = 64, width: int = 16) -> Optional[Path]:
    """A random-weight ONNX of the shipped student architecture + labels, or None without TF."""
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from stream.labels import LABELS
        from stream.training.export import export_onnx
        from stream.training.train import build_student
    except Exception as e:  # TensorFlow or the training module unavailable
        print(f"bench: no stand-in student model ({e}); using the tiny test model", file=sys.stderr)
        return None
    model = build_student(size, width, len(LABELS))
    onnx = export_onnx(model, folder / "model.onnx")
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return onnx


def server_config(args, folder: Path) -> Path:
    if args.config:
        return Path(args.config)
    if SHIPPED_MODEL.is_file():
        return REPO / "config.yaml"
    model = stand_in_model(folder)
    if model is None:
        return write_config(folder, model_threads=0)
    return write_config(folder, model, folder / "labels.txt", model_threads=0)


def percentile(values: List[float], q: float) -> float:
    values = sorted(values)
    i = (len(values) - 1) * q
    lo, hi = int(i), min(int(i) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (i - lo)


def run_load(url: str, payloads: List[bytes], batch: int, requests_n: int, concurrency: int) -> Dict:
    """``requests_n`` POSTs (``/`` with one image, or ``/classify`` with ``batch``), timed."""
    import requests

    local = threading.local()
    path = "/" if batch == 1 else "/classify"

    def one(i: int):
        s = getattr(local, "session", None)
        if s is None:
            s = local.session = requests.Session()
        files = [("image", (f"car{j}.jpg", payloads[(i * batch + j) % len(payloads)], "image/jpeg"))
                 for j in range(batch)]
        t = time.perf_counter()
        r = s.post(url + path, files=files, timeout=60)
        dt = time.perf_counter() - t
        ok = r.status_code == 200 and len(r.json().get("results", [None])) == batch
        return dt, ok

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(min(requests_n, 4 * concurrency))))       # warm-up: connections, caches
        t0 = time.perf_counter()
        results = list(pool.map(one, range(requests_n)))
        wall = time.perf_counter() - t0
    lat = [dt * 1000 for dt, _ in results]
    return {"endpoint": path, "batch": batch, "requests": requests_n, "concurrency": concurrency,
            "errors": sum(not ok for _, ok in results), "seconds": round(wall, 3),
            "requests_per_s": round(requests_n / wall, 1), "images_per_s": round(requests_n * batch / wall, 1),
            "p50_ms": round(percentile(lat, 0.50), 1), "p95_ms": round(percentile(lat, 0.95), 1),
            "p99_ms": round(percentile(lat, 0.99), 1), "mean_ms": round(statistics.fmean(lat), 1)}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="benchmark a running server instead of starting one")
    p.add_argument("--config", help="config for the server the bench starts")
    p.add_argument("--threads", type=int, help="server worker threads (default: the config's, 4)")
    p.add_argument("--requests", type=int, default=400, help="requests per scenario")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    p.add_argument("--batch", type=int, default=8, help="images per /classify request")
    p.add_argument("--json", action="store_true", help="print the figures as JSON lines")
    args = p.parse_args(argv)

    import requests

    payloads = [path.read_bytes() for path in dataset_images(20)]
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        url = args.url
        if url is None:
            cfg = server_config(args, Path(tmp))
            extra = ["--threads", str(args.threads)] if args.threads else []
            server = ServerProcess(cfg, *extra, timeout=120).start()
            url = server.url
        try:
            health = requests.get(url.rstrip("/") + "/health", timeout=10).json()
            print(f"server {url}: model {health['model']} ({health['input_size']}px, "
                  f"{len(health['labels'])} colours), {health['threads']} threads; "
                  f"client: {args.concurrency} concurrent, {args.requests} requests per scenario, "
                  f"{len(payloads)} distinct JPEG crops; {os.cpu_count()} CPU cores", flush=True)
            rows = [run_load(url.rstrip("/"), payloads, b, args.requests, args.concurrency)
                    for b in (1, args.batch)]
        finally:
            if server is not None:
                server.stop()
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'scenario':<22}{'req/s':>9}{'images/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for r in rows:
        name = "POST / (1 image)" if r["batch"] == 1 else f"POST /classify ({r['batch']})"
        print(f"{name:<22}{r['requests_per_s']:>9}{r['images_per_s']:>10}{r['p50_ms']:>9}"
              f"{r['p95_ms']:>9}{r['p99_ms']:>9}{r['errors']:>8}")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
