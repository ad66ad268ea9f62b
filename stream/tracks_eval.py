"""Labelled tracks of a clip, and how a run of carcolor does on them (``carcolor evaluate --video V --tracks T``).

    carcolor evaluate --video demo/motorway-960x540.mp4 --tracks demo/motorway-tracks.jsonl
    carcolor evaluate --video V --tracks T --config my.yaml --detector motion
    carcolor evaluate --video V --tracks T --detections boxes.jsonl     # a boxes file instead of a detector

A labelled-tracks file is JSON Lines, one object per line:

- a car: ``{"car": 3, "colour": "red", "first": 91, "last": 138, "moving": true,
  "boxes": {"91": [x0, y0, x1, y1], "120": [...], "138": [...]}}`` — frames count
  from 0; ``boxes`` holds a few key frames (pixels), the box in between is
  interpolated linearly; ``colour`` may be ``unknown`` (not scored);
  ``"ignore": true`` marks a vehicle seen but too small or unclear to label
  (finding it is neither a hit nor an extra); ``moving`` defaults to true;
- an area not labelled: ``{"ignore": [[x, y], ...]}`` (a polygon, pixels):
  a reported car whose box centres lie mostly inside it is not counted as extra.

A reported car (a ``car`` or ``parked`` event of the run) covers a labelled car
on a frame when its box overlaps the labelled one by IoU >= 0.3, or each box
holds the other's centre. Each reported car goes to the labelled car it covers
on most frames; a labelled car is found when at least one reported car went to
it (more than one: the extra ones are ``split``); its colour is the colour of
the reported car that covers it longest. A reported car that covers no labelled
car and lies outside the ignored areas is ``extra``.

    >>> labels = load_tracks("demo/motorway-tracks.jsonl")     # doctest: +SKIP
    >>> score(labels, boxes_by_id, events)["found"]            # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .errors import CarcolorError, json_lines, read_input
from .events import to_json
from .geometry import iou_matrix
from .labels import LABELS, UNKNOWN, canonical_label


class TracksError(CarcolorError, ValueError):
    """A labelled-tracks file that cannot be read, or an evaluation that cannot run."""


IOU = 0.3
Box = Tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelledCar:
    car: int
    colour: str  # one of LABELS, or "unknown"
    first: int
    last: int
    keys: Tuple[Tuple[int, Box], ...]  # key frames, sorted
    moving: bool = True
    ignore: bool = False

    def boxes(self) -> Dict[int, np.ndarray]:
        """The box on every frame from the first key frame to the last (linear in between)."""
        out: Dict[int, np.ndarray] = {}
        for (f0, b0), (f1, b1) in zip(self.keys, self.keys[1:]):
            a, b = np.asarray(b0, np.float64), np.asarray(b1, np.float64)
            for f in range(f0, f1):
                out[f] = a + (b - a) * (f - f0) / (f1 - f0)
        f, b = self.keys[-1]
        out[f] = np.asarray(b, np.float64)
        return out


@dataclass(frozen=True)
class Labels:
    cars: Tuple[LabelledCar, ...]
    ignore: Tuple[np.ndarray, ...] = field(default_factory=tuple)  # polygons (K, 2) float32


def _box(path: Path, n: int, v) -> Box:
    if (not isinstance(v, list) or len(v) != 4
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in v)):
        raise TracksError(f"{path}:{n}: a box must be [x0, y0, x1, y1] numbers, got {v!r}")
    if v[2] <= v[0] or v[3] <= v[1]:
        raise TracksError(f"{path}:{n}: a box needs x1 > x0 and y1 > y0, got {v!r}")
    return tuple(float(c) for c in v)


def load_tracks(path: Union[str, Path]) -> Labels:
    """Read and check a labelled-tracks file; a bad line raises ``TracksError`` naming it."""
    path = Path(path)
    try:
        text = read_input(path, "labelled tracks file", TracksError).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TracksError(f"{path} is not UTF-8 text") from e
    cars: List[LabelledCar] = []
    ignore: List[np.ndarray] = []
    seen = set()
    for n, obj in json_lines(text, path, TracksError):
        if not isinstance(obj, dict):
            raise TracksError(f"{path}:{n}: expected an object")
        if "car" not in obj:
            poly = obj.get("ignore")
            if not isinstance(poly, list) or len(poly) < 3:
                raise TracksError(f"{path}:{n}: expected a car ({{\"car\": id, ...}}) or {{\"ignore\": [[x, y], ...]}}")
            try:
                ignore.append(np.asarray(poly, np.float32).reshape(-1, 2))
            except (ValueError, TypeError) as e:
                raise TracksError(f"{path}:{n}: 'ignore' must be [[x, y], ...] points") from e
            continue
        car = obj["car"]
        if not isinstance(car, int) or car in seen:
            raise TracksError(f"{path}:{n}: 'car' must be a unique integer id, got {car!r}")
        seen.add(car)
        raw = str(obj.get("colour", ""))
        colour = UNKNOWN if raw == UNKNOWN else canonical_label(raw)
        if colour is None:
            raise TracksError(f"{path}:{n}: unknown colour {raw!r} (one of {', '.join(LABELS)}, or unknown)")
        boxes = obj.get("boxes")
        if not isinstance(boxes, dict) or not boxes:
            raise TracksError(f"{path}:{n}: car {car} needs 'boxes': {{\"frame\": [x0, y0, x1, y1], ...}}")
        try:
            keys = tuple(sorted((int(f), _box(path, n, b)) for f, b in boxes.items()))
        except ValueError as e:
            if isinstance(e, TracksError):
                raise
            raise TracksError(f"{path}:{n}: box keys must be frame numbers, got {list(boxes)}") from e
        first, last = obj.get("first", keys[0][0]), obj.get("last", keys[-1][0])
        if not isinstance(first, int) or not isinstance(last, int) or last < first:
            raise TracksError(f"{path}:{n}: 'first' and 'last' must be frame numbers, first <= last")
        cars.append(LabelledCar(car, colour, first, last, keys, bool(obj.get("moving", True)),
                                bool(obj.get("ignore", False))))
    if not cars:
        raise TracksError(f"{path} labels no car")
    return Labels(tuple(cars), tuple(ignore))


def _covers(a: np.ndarray, b: np.ndarray) -> bool:
    """Does box ``a`` cover box ``b``: IoU >= 0.3, or each holds the other's centre?"""
    if iou_matrix(a[None], b[None])[0, 0] >= IOU:
        return True

    def inside(box, p):
        return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]
    return inside(a, ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)) and inside(b, ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2))


def score(labels: Labels, boxes: Mapping[int, Mapping[int, Sequence[float]]],
          events: Sequence[Mapping]) -> Dict:
    """Cars found / missed / extra and colours right.

    ``boxes``: track id -> frame -> box of the run; ``events``: its log lines
    (``car`` and ``parked`` count; their ``id`` is the track id).
    """
    reported = [e for e in events if e.get("event") in ("car", "parked")]
    gt = [(c, c.boxes()) for c in labels.cars]
    hits: Dict[int, Dict[int, int]] = {}  # reported index -> labelled car -> frames covered
    for k, e in enumerate(reported):
        track = boxes.get(int(e["id"]), {})
        for car, gboxes in gt:
            n = sum(1 for f, b in track.items() if f in gboxes and _covers(np.asarray(b, np.float64), gboxes[f]))
            if n:
                hits.setdefault(k, {})[car.car] = n
    by_car: Dict[int, List[Tuple[int, int]]] = {}  # labelled car -> [(frames, reported index)]
    extra, ignored = [], 0
    for k, e in enumerate(reported):
        if k in hits:
            car = max(hits[k], key=lambda c: (hits[k][c], -c))
            by_car.setdefault(car, []).append((hits[k][car], k))
            continue
        track = boxes.get(int(e["id"]), {})
        centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in track.values()]
        inside = sum(any(cv2.pointPolygonTest(p, (float(x), float(y)), False) >= 0 for p in labels.ignore)
                     for x, y in centres)
        if centres and inside * 2 > len(centres):
            ignored += 1
        else:
            extra.append({"id": int(e["id"]), "event": e["event"], "color": e.get("color"),
                          "first": e.get("first"), "frames": e.get("frames")})
    rows = []
    for car in labels.cars:
        if car.ignore:
            continue
        got = sorted(by_car.get(car.car, []), reverse=True)
        row = {"car": car.car, "colour": car.colour, "moving": car.moving, "found": bool(got),
               "ids": [int(reported[k]["id"]) for _, k in got]}
        if got:
            best = reported[got[0][1]]
            row["predicted"] = best.get("color")
            row["reported_moving"] = best.get("moving", False)  # a parked event: not moving
            row["right"] = None if car.colour == UNKNOWN else best.get("color") == car.colour
        rows.append(row)
    found = [r for r in rows if r["found"]]
    scored = [r for r in found if r["right"] is not None]
    return {"labelled": len(rows), "found": len(found), "missed": len(rows) - len(found),
            "extra": len(extra), "split": sum(len(r["ids"]) - 1 for r in found), "ignored": ignored,
            "colour_scored": sum(1 for r in rows if r["colour"] != UNKNOWN),
            "colour_right": sum(1 for r in scored if r["right"]), "rows": rows, "extras": extra,
            "moving_right": sum(1 for r in found if r.get("reported_moving") == r["moving"])}


def format_score(s: Mapping, title: str = "") -> str:
    lines = [title] if title else []
    for r in s["rows"]:
        if r["found"]:
            mark = "" if r["right"] is None else (" ok" if r["right"] else " WRONG")
            ids = ",".join(str(i) for i in r["ids"])
            lines.append(f"  car {r['car']:>3}: {r['colour']:<7} -> {str(r['predicted']):<7}{mark:<7} id {ids}")
        else:
            lines.append(f"  car {r['car']:>3}: {r['colour']:<7} -> MISSED")
    for e in s["extras"]:
        lines.append(f"  extra: id {e['id']} ({e['event']}, {e['color']}, from {e['first']} s, {e['frames']} frames)")
    lines.append(f"cars found {s['found']} / {s['labelled']}, missed {s['missed']}, extra {s['extra']}, "
                 f"split {s['split']}; colours right {s['colour_right']} / {s['colour_scored']}; "
                 f"moving/parked right {s['moving_right']} / {s['found']}")
    return "\n".join(lines)


def run_tracks(cfg, video: Union[str, Path], boxes_file: Optional[Union[str, Path]] = None,
               classifier=None) -> Tuple[Dict[int, Dict[int, List[int]]], List[Dict]]:
    """Run carcolor on ``video`` as ``cfg`` says: (track id -> frame -> box, the events as log lines)."""
    from .boxes import box_source
    from .capture import open_source
    from .classify import ColorClassifier
    from .pipeline import ColorStage, process
    from .pipeline.wiring import car_stages_for

    classifier = classifier or ColorClassifier.from_config(cfg)
    stages = car_stages_for(cfg, boxes_file is not None, classifier)
    if not stages:
        raise TracksError("evaluating tracks needs tracking: a detector (not 'none', no fixed regions) "
                          "or a boxes file")
    events: List[Dict] = []
    tracks: Dict[int, Dict[int, List[int]]] = {}

    def collect(record) -> None:
        cars = record.cars
        for tid, box in zip(cars.track_id.tolist(), cars.xyxy.tolist()):
            if tid >= 0:
                tracks.setdefault(tid, {})[record.frame.index] = box
        events.extend(to_json(e) for e in record.events)

    src = open_source(str(video), every=cfg.every, start=cfg.start, end=cfg.end, live=cfg.live)
    try:
        boxes = box_source(cfg, boxes_file, fps=src.fps or 30.0)
        process(src, src.name, boxes, ColorStage(classifier), stages, [collect],
                on_event=lambda e: events.append(to_json(e)))
    finally:
        src.close()
    return tracks, events


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carcolor evaluate", description="cars found / missed / extra and colours "
                                "right of a carcolor run on a clip with labelled tracks")
    p.add_argument("--video", required=True, help="the clip")
    p.add_argument("--tracks", required=True, help="its labelled tracks (JSON Lines, see stream/tracks_eval.py)")
    p.add_argument("--config", help="the run's config (default: the shipped config.yaml)")
    p.add_argument("--detector", choices=["vehicle", "motion", "onnx"], help="the car finder (default: the config's)")
    p.add_argument("--detections", help="a boxes file (JSON Lines or MOT, as carcolor run --boxes) instead of a detector")
    p.add_argument("--model", type=Path, help="colour model file (default: the config's)")
    p.add_argument("--labels", type=Path, help="its labels file")
    p.add_argument("--out", default="out/evaluate", help="folder for tracks.json")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from .config import load_config

    try:
        labels = load_tracks(args.tracks)
        cfg = load_config(args.config).override(detector=args.detector, model_file=args.model,
                                                label_file=args.labels)
        boxes, events = run_tracks(cfg, args.video, args.detections)
    except CarcolorError as e:
        print(f"carcolor evaluate: error: {e}", file=sys.stderr)
        return 2
    s = score(labels, boxes, events)
    how = f"boxes from {args.detections}" if args.detections else f"detector: {cfg.detector}"
    print(format_score(s, f"{args.video}, {how}, against {args.tracks}:"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tracks.json").write_text(json.dumps(dict(s, video=str(args.video), tracks=str(args.tracks), finder=how),
                                                indent=1) + "\n", encoding="utf-8")
    print(f"saved {out / 'tracks.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
