"""``carcolor report colors.jsonl``: cars per colour from a run's JSON Lines log.

Reads the ``{"event": "car", ...}`` lines (one per tracked car), prints a table
(colour, cars, share) and draws a PNG chart of cars per colour over time
(stacked bars per time bin, by each car's first sighting).

    carcolor report colors.jsonl                    # table + colors.png beside the log
    carcolor report colors.jsonl --chart chart.png --bin 60 --json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .errors import CarcolorError
from .events import CarEvent, FrameLine, StartEvent, parse


def read_runs(path: Path) -> Tuple[List[List[CarEvent]], int]:
    """The car events of a log, run by run, and how many lines could not be read (torn or foreign).

    A new run starts at each ``start`` event, and (for logs without them) where a
    source's frame numbers go back: ``carcolor run --log`` appends, so one file
    may hold several runs. The camera service's log (lines with ``"camera"``)
    starts a run with one ``start`` line per camera: a new run begins when a
    camera starts again.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as e:
        raise CarcolorError(f"log not found: {path}") from e
    except OSError as e:
        raise CarcolorError(f"cannot read log {path}: {e.strerror}") from e
    runs: List[List[CarEvent]] = [[]]
    last_frame: Dict[tuple, int] = {}
    cameras: set = set()  # cameras started in the current run (the service's log)
    started = False  # the current run has content (a start event, a frame or a car)
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            item = parse(raw)
        except ValueError:  # json.JSONDecodeError is a ValueError too
            bad += 1
            continue
        camera = raw.get("camera")
        if isinstance(item, StartEvent) and camera is not None:
            new_run = camera in cameras
        else:
            new_run = isinstance(item, StartEvent) or (
                isinstance(item, FrameLine) and item.frame <= last_frame.get((camera, item.source), -1))
        if new_run and started:
            runs.append([])
            last_frame, cameras = {}, set()
        started = True
        if isinstance(item, StartEvent) and camera is not None:
            cameras.add(camera)
        if isinstance(item, FrameLine):
            last_frame[(camera, item.source)] = item.frame
        elif isinstance(item, CarEvent):
            runs[-1].append(item)
    return runs, bad


def read_cars(path: Path) -> Tuple[List[CarEvent], int]:
    """The car events of a log (every run), and how many lines could not be read."""
    runs, bad = read_runs(path)
    return [c for run in runs for c in run], bad


def table(cars: Sequence[CarEvent]) -> List[Tuple[str, int, float]]:
    """(colour, cars, share) rows, most common first (ties by name)."""
    counts = Counter(c.color for c in cars)
    total = sum(counts.values())
    return [(c, n, n / total) for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def format_table(rows: Sequence[Tuple[str, int, float]]) -> str:
    width = max([len("colour")] + [len(c) for c, _, _ in rows])
    lines = [f"{'colour':<{width}}  {'cars':>6}  {'share':>6}"]
    for c, n, share in rows:
        lines.append(f"{c:<{width}}  {n:>6}  {share * 100:>5.1f}%")
    lines.append(f"{'total':<{width}}  {sum(n for _, n, _ in rows):>6}  {100.0 if rows else 0.0:>5.1f}%")
    return "\n".join(lines)


def nice_bin(span: float) -> float:
    """A round bin width (s) giving about 10-20 bins over ``span`` seconds."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400):
        if span / step <= 20:
            return float(step)
    return 86400.0


def chart(cars: Sequence[CarEvent], path: Path, bin_s: Optional[float] = None, title: str = "") -> float:
    """A stacked bar PNG of cars per colour per time bin; returns the bin width used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .overlay import swatch

    times = [c.first for c in cars]
    span = (max(times) - min(times)) if times else 0.0
    bin_s = bin_s or nice_bin(span)
    start = math.floor(min(times) / bin_s) * bin_s if times else 0.0
    nbins = max(1, int(math.floor((max(times) - start) / bin_s)) + 1) if times else 1
    order = [c for c, _, _ in table(cars)]
    counts = {c: np.zeros(nbins) for c in order}
    for car in cars:
        counts[car.color][min(nbins - 1, int((car.first - start) // bin_s))] += 1
    unit, scale = ("min", 60.0) if bin_s >= 60 else ("s", 1.0)
    x = start / scale + (np.arange(nbins) + 0.5) * bin_s / scale
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    bottom = np.zeros(nbins)
    for c in order:
        b, g, r = swatch(c)
        ax.bar(x, counts[c], width=0.9 * bin_s / scale, bottom=bottom, color=(r / 255, g / 255, b / 255),
               edgecolor="black", linewidth=0.5, label=f"{c} ({int(counts[c].sum())})")
        bottom += counts[c]
    ax.set_xlabel(f"time ({unit}, first sighting)")
    ax.set_ylabel(f"cars per {bin_s / scale:g} {unit}")
    ax.set_title(title or f"cars per colour over time ({len(cars)} cars)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    if order:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return bin_s


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="carcolor report",
                                     description="Cars per colour (table and PNG chart) from a carcolor JSON Lines log.")
    parser.add_argument("log", type=Path, help="the log of `carcolor run --log` (car events need tracking)")
    parser.add_argument("--chart", type=Path, default=None, help="PNG to write (default: LOG with .png)")
    parser.add_argument("--no-chart", action="store_true", help="print the table only")
    parser.add_argument("--bin", type=float, default=None, help="chart bin width in seconds (default: automatic)")
    parser.add_argument("--json", action="store_true", help="print the table as JSON instead")
    parser.add_argument("--run", type=int, default=None, metavar="N",
                        help="only the Nth run appended to the log (1 = first, -1 = last; default: all runs)")
    args = parser.parse_args(argv)
    try:
        if args.bin is not None and not args.bin > 0:
            raise CarcolorError(f"--bin must be a positive number of seconds, got {args.bin}")
        runs, bad = read_runs(args.log)
        if args.run is not None:
            if not (1 <= args.run <= len(runs) or -len(runs) <= args.run <= -1):
                raise CarcolorError(f"--run {args.run}: {args.log} holds {len(runs)} run(s)")
            cars = runs[args.run - 1 if args.run > 0 else args.run]
        else:
            cars = [c for run in runs for c in run]
            if len(runs) > 1:
                print(f"warning: {args.log} holds {len(runs)} runs (each `carcolor run --log` appends): "
                      f"counting the cars of all of them; --run N picks one", file=sys.stderr)
        rows = table(cars)
        if args.json:
            print(json.dumps({"cars": len(cars), "colors": [{"color": c, "count": n, "share": round(s, 4)}
                                                             for c, n, s in rows]}))
        else:
            print(format_table(rows))
        if bad:
            print(f"warning: {bad} unreadable line(s) in {args.log} skipped", file=sys.stderr)
        if not cars:
            print(f"warning: no car events in {args.log} (run with a detector or --boxes to track cars)",
                  file=sys.stderr)
        if not args.no_chart:
            out = args.chart or args.log.with_suffix(".png")
            chart(cars, out, args.bin, title=f"{args.log.name}: cars per colour over time ({len(cars)} cars)")
            print(f"chart: {out}", file=sys.stderr)
    except CarcolorError as e:
        print(f"carcolor: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"carcolor: error: cannot write chart: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
