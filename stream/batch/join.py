"""Chunk logs of one video joined into one log; the merged summary of a batch.

A long video is processed in time chunks (``plan.Chunk``): chunk k covers
``[start, end)`` of the video and runs on for ``overlap`` seconds past ``end``,
so the next chunk's first seconds are seen twice. In those shared frames each
track of chunk k is matched to the track of chunk k+1 whose boxes cover the
same car (IoU >= ``MATCH_IOU`` on at least ``MATCH_FRAMES`` frames): the two are
one car. Its car event is joined (first seen in k, last seen in k+1, the
colour vote of both weighted by their frames) and the ids of k+1's frame lines
are renumbered to continue k's. Each frame goes into the joined log once
(chunk k's frames before ``end``, then chunk k+1's).

What is not exact: a count line's crossing inside an overlap is counted by
both chunks (the joined final count is their sum), and a parked car standing
across a border is reported by each chunk that sees it stand ``parked_after``.

    >>> join_logs([chunk0_lines, chunk1_lines], borders=[(1798, 59.98), None])   # doctest: +SKIP
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..geometry import iou_matrix

MATCH_IOU = 0.5
MATCH_FRAMES = 3
Line = Dict


def read_lines(path: Path) -> List[Line]:
    """A JSON Lines log as dicts (a torn last line, from a crash, is left out)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for text in f:
            text = text.strip()
            if not text:
                continue
            try:
                out.append(json.loads(text))
            except ValueError:
                continue
    return out


def _frames(lines: Iterable[Line]) -> Dict[int, Line]:
    return {ln["frame"]: ln for ln in lines if "event" not in ln}


def match_tracks(a: Sequence[Line], b: Sequence[Line]) -> Dict[int, Tuple[int, int]]:
    """{b's track id: (a's track id, frames they shared)} for the tracks of two chunks that are one car.

    Counts, over the frames both chunks have, the frames where an ``a`` track's box and a
    ``b`` track's box overlap by ``MATCH_IOU``; pairs with at least ``MATCH_FRAMES`` such
    frames are matched, the most-shared first, each track once.
    """
    fa, fb = _frames(a), _frames(b)
    together: Dict[Tuple[int, int], int] = {}
    for index in sorted(set(fa) & set(fb)):
        ca = [c for c in fa[index]["cars"] if "id" in c]
        cb = [c for c in fb[index]["cars"] if "id" in c]
        if not ca or not cb:
            continue
        iou = iou_matrix(np.array([c["box"] for c in ca], np.float64), np.array([c["box"] for c in cb], np.float64))
        for i, j in zip(*np.nonzero(iou >= MATCH_IOU)):
            key = (ca[i]["id"], cb[j]["id"])
            together[key] = together.get(key, 0) + 1
    out: Dict[int, Tuple[int, int]] = {}
    used = set()
    for (ia, ib), n in sorted(together.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= MATCH_FRAMES and ia not in used and ib not in out:
            out[ib] = (ia, n)
            used.add(ia)
    return out


def join_cars(a: Mapping, b: Mapping, shared: int, unknown_threshold: float, top_k: int) -> Dict:
    """One car event from the same car's events in two chunks: a's id and start, b's end, both votes."""
    fa, fb = max(1, int(a["frames"])), max(1, int(b["frames"]))
    votes: Dict[str, float] = {}
    for event, weight in ((a, fa), (b, fb)):
        for c in event["colors"]:
            votes[c["color"]] = votes.get(c["color"], 0.0) + weight * float(c["prob"])
    total = float(fa + fb)
    ranked = sorted(((c, v / total) for c, v in votes.items()), key=lambda cv: (-cv[1], cv[0]))
    color, prob = ranked[0]
    joined = dict(a)
    joined.update(first=min(a["first"], b["first"]), last=max(a["last"], b["last"]),
                  frames=max(fa, fb, fa + fb - shared), color=color if prob >= unknown_threshold else "unknown",
                  prob=round(prob, 4), colors=[{"color": c, "prob": round(p, 4)} for c, p in ranked[:top_k]],
                  box=a["box"] if fa >= fb else b["box"], moving=bool(a.get("moving", True) or b.get("moving", True)))
    return joined


def join_logs(chunks: Sequence[Sequence[Line]], borders: Sequence[Optional[Tuple[int, float]]],
              unknown_threshold: float = 0.0, top_k: int = 3) -> List[Line]:
    """The lines of one video's chunk logs (in time order) as one log.

    ``borders``: where each chunk's own part ends, as (the next chunk's first frame, a time in
    seconds between that frame and the one before), None for the last chunk. Track ids are
    renumbered to be unique over the whole video; a car seen across a border keeps the id of its
    first chunk.
    """
    out: List[Line] = []
    finals: List[Mapping] = []
    offset = 0
    carry: Dict[int, Tuple[Dict, int]] = {}  # this chunk's local id -> (the earlier chunks' car event, frames shared)
    remap: Dict[int, int] = {}         # this chunk's local id -> the joined log's id
    for k, lines in enumerate(chunks):
        end_frame, end = borders[k] if borders[k] is not None else (None, None)
        nxt = chunks[k + 1] if k + 1 < len(chunks) else None
        matches = match_tracks(lines, nxt) if nxt is not None else {}
        continued = {ia for ia, _ in matches.values()}
        ids = [c["id"] for ln in lines if "event" not in ln for c in ln["cars"] if "id" in c]
        ids += [ln["id"] for ln in lines if ln.get("event") in ("car", "parked")]
        local = {i: remap.get(i, offset + i) for i in set(ids)}
        cars_now: Dict[int, Dict] = {}
        for ln in lines:
            kind = ln.get("event")
            if kind == "start":
                if k == 0:
                    out.append(ln)
            elif kind is None:
                if end_frame is None or ln["frame"] < end_frame:
                    cars = [dict(c, id=local[c["id"]]) if "id" in c else c for c in ln["cars"]]
                    out.append(dict(ln, cars=cars))
            elif kind == "car":
                event = dict(ln, id=local[ln["id"]])
                if ln["id"] in carry:
                    prev, shared = carry[ln["id"]]
                    event = join_cars(prev, event, shared, unknown_threshold, top_k)
                if ln["id"] in continued:
                    cars_now[ln["id"]] = event  # goes on in the next chunk
                elif end is not None and ln["first"] >= end and nxt is not None:
                    continue  # started in the overlap, unmatched: the next chunk owns it
                else:
                    out.append(event)
            elif kind == "count":
                if ln.get("final"):
                    finals.append(ln)
            elif kind == "parked":
                if end is None or ln["t"] < end:
                    out.append(dict(ln, id=local[ln["id"]]))
            else:
                out.append(ln)
        # a car still open in the next chunk: its event so far rides along (or is written if the
        # next chunk reports no car for it, e.g. it left within the overlap)
        next_carry: Dict[int, Tuple[Dict, int]] = {}
        next_remap: Dict[int, int] = {}
        for ib, (ia, shared) in matches.items():
            next_remap[ib] = local.get(ia, offset + ia)
            if ia in cars_now:
                next_carry[ib] = (cars_now.pop(ia), shared)
        if nxt is not None:
            reported = {ln["id"] for ln in nxt if ln.get("event") == "car"}
            for ib, (event, _) in list(next_carry.items()):
                if ib not in reported:
                    out.append(event)
                    del next_carry[ib]
        out.extend(cars_now.values())
        offset = max([offset, *local.values()]) + 1
        carry, remap = next_carry, next_remap
    if finals:
        counts: Dict[str, Dict[str, int]] = {}
        for ln in finals:
            for direction, by in ln["counts"].items():
                into = counts.setdefault(direction, {})
                for color, n in by.items():
                    into[color] = into.get(color, 0) + int(n)
        out.append(dict(finals[-1], counts={d: dict(sorted(c.items())) for d, c in counts.items()}))
    return out


def write_atomic(path: Path, data: bytes) -> None:
    """``path`` appears complete or not at all: written beside it, synced, then renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_lines(path: Path, lines: Iterable[Mapping]) -> None:
    write_atomic(path, "".join(json.dumps(ln, separators=(",", ":")) + "\n" for ln in lines).encode())


def file_summary(lines: Sequence[Line]) -> Dict:
    """Cars by colour in one joined log, in all and per hour of video (hour 0 = its first 3600 s)."""
    cars = [ln for ln in lines if ln.get("event") == "car"]
    frames = [ln for ln in lines if "event" not in ln]
    colors: Dict[str, int] = {}
    hours: Dict[str, Dict[str, int]] = {}
    for ev in cars:
        colors[ev["color"]] = colors.get(ev["color"], 0) + 1
        by = hours.setdefault(str(int(ev["first"] // 3600)), {})
        by[ev["color"]] = by.get(ev["color"], 0) + 1
    return {"cars": len(cars), "colors": dict(sorted(colors.items())),
            "hours": {h: dict(sorted(c.items())) for h, c in sorted(hours.items(), key=lambda kv: int(kv[0]))},
            "frames": len(frames), "seconds": round(frames[-1]["t"], 3) if frames else 0.0}


def summary(files: Mapping[str, Sequence[Line]]) -> Dict:
    """The batch's summary: each file's and the total's cars by colour (and per hour)."""
    per = {name: file_summary(lines) for name, lines in sorted(files.items())}
    total: Dict[str, int] = {}
    for s in per.values():
        for color, n in s["colors"].items():
            total[color] = total.get(color, 0) + n
    return {"files": per, "total": {"files": len(per), "cars": sum(s["cars"] for s in per.values()),
                                    "colors": dict(sorted(total.items()))}}


def summary_csv(data: Mapping) -> str:
    """``file,hour,color,cars``: one row per file, hour of video and colour."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "hour", "color", "cars"])
    for name, s in data["files"].items():
        for hour, by in s["hours"].items():
            for color, n in by.items():
                w.writerow([name, hour, color, n])
    return buf.getvalue()
