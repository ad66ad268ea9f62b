"""How soon a camera is read again after an outage: RTSP server killed for ``--outage`` seconds
and restarted, the shipped back-off (1 s doubling to 30 s), with the port probe
(``live.probe_interval: 0.5``, the default) and without it (``probe_interval: 0``, the old way).

    python bench/reconnect_outage.py                 # 10 s outages, 3 of each
    python bench/reconnect_outage.py --outage 20 --repeat 5

Prints per mode the median and max of: seconds from the restart to the first frame, and the
camera's down time (its first missing frame to its first new one). One run, shared machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from rtsp_server import RtspServer, gst_missing  # noqa: E402
from stream.capture import LiveSource  # noqa: E402
from stream.config import LiveConfig  # noqa: E402


def once(outage: float, probe: float):
    server = RtspServer().start()
    src = LiveSource(server.url, LiveConfig(probe_interval=probe))
    got = []

    def consume():
        for _ in src:
            got.append(time.monotonic())
    threading.Thread(target=consume, daemon=True).start()
    try:
        while len(got) < 10:
            time.sleep(0.05)
        server.kill()
        killed = time.monotonic()
        last = got[-1]
        time.sleep(outage)
        server.start()
        restarted = time.monotonic()
        while not got or got[-1] <= restarted:
            if time.monotonic() - restarted > 60:
                raise RuntimeError("no frame 60 s after the restart")
            time.sleep(0.02)
        first = next(g for g in got if g > restarted)
        return first - restarted, first - last, killed
    finally:
        src.close()
        server.kill()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outage", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if gst_missing():
        print(f"reconnect_outage: cannot run: {gst_missing()}", file=sys.stderr)
        return 2
    print(f"| back-off | outage s | restart -> first frame s (median / max) | down s (median / max) |")
    print("|---|---|---|---|")
    for name, probe in (("doubling, no probe (before)", 0.0), ("doubling + port probe every 0.5 s", 0.5)):
        runs = [once(args.outage, probe) for _ in range(args.repeat)]
        resume = [r[0] for r in runs]
        down = [r[1] for r in runs]
        print(f"| {name} | {args.outage:g} | {statistics.median(resume):.2f} / {max(resume):.2f} "
              f"| {statistics.median(down):.2f} / {max(down):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
