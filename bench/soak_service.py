"""Soak: the camera service (``carcolor run`` with ``cameras:``) on four RTSP cameras and an MQTT
broker that keep dying, for ten minutes or more.

Four test RTSP servers (``tests/rtsp_server.py``) serve the demo clip (640x360, raw
frames in a loop) to one ``carcolor run --config ... --log ...`` process with the
shipped vehicle detector, MQTT to a real ``mosquitto`` (persistence on) and the
web view. For ``--seconds`` each camera's server is SIGKILLed at random moments
and restarted on the same port 1-12 s later; the broker is SIGKILLed twice (at
1/3 and 2/3) for 5-10 s. A persistent MQTT subscriber records what arrives; the
service's RSS is sampled every second. At the end, every camera up again, the
service gets SIGTERM and the soak checks:

- no torn log line; every camera came back after each outage (``offline`` runs
  each followed by ``reconnected``; at least ``--min-restarts`` per camera);
- messages arrived after each broker restart;
- every QoS 1 line of the log (car, count, status, mode) reached the subscriber,
  or the publisher counted drops (``/metrics``: queued, sent, dropped);
- RSS flat (median of the first and last tenth after warm-up, and the trend);
- SIGTERM -> exit 130 within a few seconds.

    python bench/soak_service.py                 # 600 s
    python bench/soak_service.py --seconds 900 --seed 3

Exit status 1 when a check fails. The machine's load is printed: on a shared
machine the figures are what they are.
"""
from __future__ import annotations

import argparse
import json
import os
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

import psutil  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402

from mqtt_broker import Mosquitto, Subscriber, mosquitto_missing  # noqa: E402
from rtsp_server import RtspServer, free_port, gst_missing, raw_clip  # noqa: E402
from _soak import report, terminate, wait_started  # noqa: E402

DEMO = REPO / "demo" / "motorway-960x540.mp4"
LIVE = {"stall_timeout": 5, "stats_interval": 10}   # open and read timeouts as shipped (10 s)
QOS1 = ("car", "count", "online", "offline", "reconnected", "mode", "parked")


def parse_log(path: Path):
    raw = path.read_bytes()
    rows, torn = [], 0
    for line in raw.decode(errors="replace").split("\n")[:-1]:
        try:
            rows.append(json.loads(line))
        except ValueError:
            torn += 1
    return rows, torn + (0 if raw.endswith(b"\n") else 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--fps", type=int, default=10, help="each camera's frame rate (default 10)")
    ap.add_argument("--min-restarts", type=int, default=3, help="outages per camera at least (default 3)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    missing = gst_missing() or mosquitto_missing()
    if missing:
        print(f"soak_service: cannot run: {missing}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 16)
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="soak_service_"))
    clip = raw_clip(DEMO, work / "clip.yuv", 640, 360, args.fps, seconds=11)
    servers = [RtspServer().start(640, 360, args.fps, clip=clip) for _ in range(args.cameras)]
    names = [f"cam{i}" for i in range(args.cameras)]
    broker = Mosquitto(persistence=True).start()
    sub = Subscriber(broker.port, "carcolor/#", persistent=True)
    web = free_port()
    config = work / "cams.yaml"
    config.write_text(yaml.safe_dump({
        "live": LIVE, "mqtt": {"port": broker.port}, "web": {"port": web},
        "cameras": [{"name": n, "source": s.url} for n, s in zip(names, servers)]}))
    log, errfile = work / "soak.jsonl", work / "stderr.txt"
    with open(errfile, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--config", str(config), "--log", str(log)],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
    ps = psutil.Process(proc.pid)
    rss: List[tuple] = []
    cpu: List[float] = []
    stop = threading.Event()

    def sample() -> None:
        ps.cpu_percent(None)
        while not stop.wait(1.0):
            try:
                rss.append((time.monotonic(), ps.memory_info().rss / 2 ** 20))
                cpu.append(ps.cpu_percent(None))
            except psutil.Error:
                return

    failures: List[str] = []
    outages = {n: 0 for n in names}
    broker_restarts: List[float] = []
    print(f"soak_service: seed {seed}, {args.seconds:.0f} s, {args.cameras} cameras at {args.fps} fps, "
          f"work folder {work}, load {os.getloadavg()[0]:.1f}", flush=True)
    try:
        wait_started(proc, lambda: log.exists() and sum(1 for _ in open(log)) >= 4 * args.cameras, errfile, 0.5)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        # Each camera: up for 20-70 s, down for 1-12 s; the broker down twice.
        plan = []
        for i in range(args.cameras):
            t = rng.uniform(10, 40)
            while t < args.seconds - 20:
                down = rng.uniform(1, 12)
                plan.append((t, "kill", i))
                plan.append((t + down, "start", i))
                t += down + rng.uniform(20, 70)
        for frac in (1 / 3, 2 / 3):
            t = frac * args.seconds
            plan.append((t, "broker-kill", -1))
            plan.append((t + rng.uniform(5, 10), "broker-start", -1))
        plan.sort()
        for at, what, i in plan:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            if proc.poll() is not None:
                failures.append(f"carcolor died during the soak (exit {proc.returncode})")
                break
            if what == "kill":
                servers[i].kill()
                outages[names[i]] += 1
            elif what == "start":
                servers[i].start(640, 360, args.fps, clip=clip)
            elif what == "broker-kill":
                broker.kill()
            else:
                broker.start()
                broker_restarts.append(time.monotonic())
            print(f"  {time.monotonic() - t0:6.1f} s  {what} {names[i] if i >= 0 else ''}", flush=True)
        time.sleep(max(0.0, t0 + args.seconds - time.monotonic()))
        # Every camera back, then stop it as a user would.
        deadline = time.monotonic() + 60
        metrics = {}
        while time.monotonic() < deadline:
            try:
                api = requests.get(f"http://127.0.0.1:{web}/api/cameras", timeout=5).json()
                if all(c["status"] in ("online", "reconnected") for c in api["cameras"]) and \
                        api["mqtt"]["connected"] and api["mqtt"]["pending"] == 0:
                    metrics = api["mqtt"]
                    break
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.5)
        else:
            failures.append("not every camera back (or MQTT not drained) 60 s after the soak")
        time.sleep(2.0)
        shutdown = terminate(proc, 15)
        time.sleep(1.0)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        for s in servers:
            s.kill()
        sub.close()
        broker.kill()

    rows, torn = parse_log(log)
    per: Dict[str, Dict] = {}
    for n in names:
        ev = [r for r in rows if r.get("camera") == n and "event" in r]
        groups, in_outage, up = 0, False, False
        for e in ev:   # an outage: a run of offline lines after the camera was up once
            if e["event"] == "offline" and e.get("reason") != "service stopped" and up and not in_outage:
                groups, in_outage = groups + 1, True
            elif e["event"] in ("reconnected", "online"):
                in_outage, up = False, True
        rec = [e for e in ev if e["event"] == "reconnected"]
        per[n] = {"made": outages[n], "outages": groups, "reconnected": len(rec), "unanswered": int(in_outage),
                  "downtime": [e.get("downtime", 0.0) for e in rec],
                  "frames": sum(1 for r in rows if r.get("camera") == n and "frame" in r),
                  "cars": sum(1 for e in ev if e["event"] == "car")}
        if in_outage:
            failures.append(f"{n}: the last offline was never followed by reconnected")
        if len(rec) != groups:
            failures.append(f"{n}: {groups} outages in the log but {len(rec)} reconnected")
        if outages[n] < args.min_restarts:
            failures.append(f"{n}: only {outages[n]} outages made (< {args.min_restarts}): run longer")
    if torn:
        failures.append(f"{torn} torn line(s) in the log")
    got = {json.dumps(p, sort_keys=True) for t, p, _ in sub.messages if isinstance(p, dict)}
    qos1 = [r for r in rows if r.get("event") in QOS1]
    stopped = [r for r in qos1 if r.get("reason") == "service stopped"]
    undelivered = [r for r in qos1 if json.dumps(r, sort_keys=True) not in got]
    dropped = metrics.get("dropped", 0)
    if len(undelivered) > dropped:
        failures.append(f"{len(undelivered)} QoS 1 lines never reached the subscriber, {dropped} counted dropped: "
                        f"{[(r['camera'], r['event']) for r in undelivered[:5]]}")
    after = []
    for i, r in enumerate(broker_restarts):
        end = broker_restarts[i + 1] if i + 1 < len(broker_restarts) else float("inf")
        after.append(sum(1 for t in sub.received if r < t < end))
    if len(after) < 2 or min(after) == 0:
        failures.append(f"messages after each broker restart: {after}")
    mib = [m for _, m in rss]
    warm = mib[len(mib) // 10:] or mib
    head = statistics.median(warm[:max(1, len(warm) // 10)]) if warm else 0.0
    tail = statistics.median(warm[-max(1, len(warm) // 10):]) if warm else 0.0
    slope = statistics.linear_regression([t for t, _ in rss], mib).slope * 60 if len(rss) > 2 else 0.0
    if tail - head > max(30.0, 0.15 * head):
        failures.append(f"RSS grew from {head:.0f} to {tail:.0f} MiB")
    if proc.returncode != 130:
        failures.append(f"exit status {proc.returncode} after SIGTERM (expected 130)")
    if shutdown > 5.0:
        failures.append(f"SIGTERM took {shutdown:.2f} s (> 5 s)")

    downs = [d for p in per.values() for d in p["downtime"]]
    table = [
        ("duration", f"{args.seconds:.0f} s, seed {seed}, {args.cameras} cameras x {args.fps} fps 640x360, "
                     f"vehicle detector"),
        ("camera outages made / in log / reconnected",
         " ".join(f"{n} {p['made']}/{p['outages']}/{p['reconnected']}" for n, p in per.items())),
        ("reconnect downtime s (median / max)",
         f"{statistics.median(downs):.2f} / {max(downs):.2f}" if downs else "-"),
        ("frames / cars per camera", " ".join(f"{n} {p['frames']}/{p['cars']}" for n, p in per.items())),
        ("broker restarts / messages after each", f"{len(broker_restarts)} / {after}"),
        ("QoS 1 lines in log / delivered / dropped",
         f"{len(qos1)} / {len(qos1) - len(undelivered)} / {dropped} (service stopped: {len(stopped)})"),
        ("mqtt queued / sent (end)", f"{metrics.get('queued', '-')} / {metrics.get('sent', '-')}"),
        ("log lines / torn", f"{len(rows)} / {torn}"),
        ("RSS MiB first / last / max (after warm-up)",
         f"{head:.1f} / {tail:.1f} / {max(mib) if mib else 0:.1f}"),
        ("RSS trend", f"{slope:+.2f} MiB/min over {len(mib)} samples"),
        ("CPU % of one core (median)", f"{statistics.median(cpu):.0f}" if cpu else "-"),
        ("SIGTERM -> exit", f"{shutdown:.2f} s, status {proc.returncode}"),
        ("load average at the end", f"{os.getloadavg()[0]:.1f} (shared machine)"),
    ]
    return report(table, failures, work, args.keep, "log, config, stderr")


if __name__ == "__main__":
    sys.exit(main())
