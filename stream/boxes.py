"""Where the cars are: every source of boxes returns the same ``Cars`` record.

- ``WholeFrame``: no boxes given, the frame is one car (an already-cropped car).
- ``FixedRegions``: named regions from ``config.yaml`` (pixels or 0..1 fractions).
- ``DetectionsFile``: an external detections file, either JSON Lines
  (``{"frame": 12, "boxes": [[x1,y1,x2,y2], ...]}``, or ``"t"`` seconds instead of
  ``"frame"``; a box may also be ``{"xyxy": [...], "id": 3, "score": 0.9}``) or a
  MOT Challenge ``det.txt`` CSV (``frame,id,x,y,w,h,score,...``, frames from 1).

Boxes are clipped to the frame; empty or degenerate ones are dropped and
counted (``clip``), never a crash. Built-in detectors live in ``detect.py``.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .config import Region
from .errors import BoxesError, json_lines, read_input
from .geometry import clip_boxes, to_pixels
from .record import Cars, Frame

def clip(cars: Cars, width: int, height: int) -> Tuple[Cars, int]:
    """``cars`` clipped to a width x height frame, minus the degenerate ones; and how many were dropped."""
    if len(cars) == 0:
        return cars, 0
    xyxy, keep = clip_boxes(cars.xyxy.astype(np.int64), width, height)
    return replace(cars, xyxy=xyxy).select(keep), int((~keep).sum())


class WholeFrame:
    """The whole frame is one car."""

    def __call__(self, frame: Frame) -> Cars:
        w, h = frame.size
        return Cars([[0, 0, w, h]], name=("frame",))


class FixedRegions:
    """Fixed regions from the config; 0..1 coordinates scale with the frame."""

    def __init__(self, regions: Sequence[Region]):
        if not regions:
            raise ValueError("FixedRegions needs at least one region")
        self.regions = list(regions)

    def __call__(self, frame: Frame) -> Cars:
        w, h = frame.size
        rows = []
        for r in self.regions:
            x1, y1, x2, y2 = r.xyxy
            rows.append([x1 * w, y1 * h, x2 * w, y2 * h] if r.relative else [x1, y1, x2, y2])
        names = tuple(r.name or f"region{i}" for i, r in enumerate(self.regions))
        return Cars(to_pixels(np.asarray(rows, np.float64)), name=names)


class DetectionsFile:
    """Boxes per frame from a JSON Lines or MOT ``det.txt`` file, read once at start.

    Frames are matched by index (JSONL ``frame`` counts from 0 like carcolor's
    log; MOT counts from 1) or, for JSONL ``t``, by the nearest frame timestamp
    within half a frame period (``fps``).
    """

    def __init__(self, path: Union[str, Path], fps: float = 30.0):
        self.path = Path(path)
        try:
            text = read_input(self.path, "boxes file", BoxesError).decode("utf-8")
        except UnicodeDecodeError as e:
            raise BoxesError(f"cannot read boxes file {self.path}: not UTF-8 text") from e
        self.tolerance = 0.5 / (fps or 30.0)
        self.by_frame: Dict[int, List[tuple]] = {}
        self.by_time: List[Tuple[float, List[tuple]]] = []
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        if first.startswith("{"):
            self._parse_jsonl(text)
        elif first:
            self._parse_mot(text)
        self.by_time.sort(key=lambda item: item[0])
        self._times = [t for t, _ in self.by_time]
        self.frames_with_boxes = 0  # processed frames that got at least one box from the file

    def _fail(self, line_no: int, why: str) -> BoxesError:
        return BoxesError(f"{self.path}:{line_no}: {why}")

    def _parse_jsonl(self, text: str) -> None:
        for n, obj in json_lines(text, self.path, BoxesError):
            if not isinstance(obj, dict) or not isinstance(obj.get("boxes", None), list):
                raise self._fail(n, 'expected {"frame": N, "boxes": [[x1, y1, x2, y2], ...]}')
            boxes = [self._box(n, b) for b in obj["boxes"]]
            if "frame" in obj:
                if not isinstance(obj["frame"], int) or obj["frame"] < 0:
                    raise self._fail(n, f"'frame' must be a frame number >= 0, got {obj['frame']!r}")
                self.by_frame.setdefault(obj["frame"], []).extend(boxes)
            elif "t" in obj:
                if not isinstance(obj["t"], (int, float)) or not math.isfinite(obj["t"]):
                    raise self._fail(n, f"'t' must be seconds, got {obj['t']!r}")
                self.by_time.append((float(obj["t"]), boxes))
            else:
                raise self._fail(n, "each line needs 'frame' or 't'")

    def _box(self, n: int, b) -> tuple:
        box_id, score = -1, math.nan
        if isinstance(b, dict):
            box_id = b.get("id", -1)
            score = b.get("score", math.nan)
            b = b.get("xyxy", b.get("box"))
        if (not isinstance(b, list) or len(b) != 4
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in b)):
            raise self._fail(n, f"a box must be [x1, y1, x2, y2] numbers, got {b!r}")
        if not isinstance(box_id, int) or not isinstance(score, (int, float)):
            raise self._fail(n, "box 'id' must be an integer and 'score' a number")
        return (*map(float, b), box_id, float(score))

    def _parse_mot(self, text: str) -> None:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.replace(" ", "").split(",")
            try:
                frame, box_id = int(float(parts[0])), int(float(parts[1]))
                x, y, w, h = map(float, parts[2:6])
                score = float(parts[6]) if len(parts) > 6 else math.nan
            except (ValueError, IndexError) as e:
                raise self._fail(n, "expected MOT 'frame,id,x,y,w,h,score,...' or a JSON Lines file") from e
            if frame < 1:
                raise self._fail(n, f"MOT frame numbers start at 1, got {frame}")
            self.by_frame.setdefault(frame - 1, []).append((x, y, x + w, y + h, box_id, score))

    def _rows(self, frame: Frame) -> List[tuple]:
        rows = self.by_frame.get(frame.index, [])
        if self._times:
            i = bisect.bisect_left(self._times, frame.timestamp - self.tolerance)
            while i < len(self._times) and self._times[i] <= frame.timestamp + self.tolerance:
                rows = rows + self.by_time[i][1]
                i += 1
        return rows

    def span(self) -> str:
        """Where the file's boxes are: "frames A-B" and/or "A-B s", or "" when it has none."""
        parts = []
        if self.by_frame:
            parts.append(f"frames {min(self.by_frame)}-{max(self.by_frame)}")
        if self._times:
            parts.append(f"{self._times[0]:g}-{self._times[-1]:g} s")
        return " and ".join(parts)

    def __call__(self, frame: Frame) -> Cars:
        rows = self._rows(frame)
        if not rows:
            return Cars.empty()
        self.frames_with_boxes += 1
        arr = np.asarray([r[:4] for r in rows], np.float64)
        return Cars(to_pixels(arr), score=[r[5] for r in rows], track_id=[r[4] for r in rows])


def finds_cars(cfg, boxes_file=None) -> bool:
    """Do the boxes come from a detector or a file (cars to track), not from fixed regions or the whole frame?"""
    return boxes_file is not None or (not cfg.boxes and cfg.detector != "none")


def box_source(cfg, boxes_file: Optional[Union[str, Path]] = None, fps: float = 30.0):
    """The box source the config and command line ask for: a boxes file, else the config's fixed
    regions, else the detector (``detector: vehicle`` by default; ``none``: the whole frame is one car)."""
    if boxes_file is not None:
        return DetectionsFile(boxes_file, fps)
    if cfg.boxes:
        return FixedRegions(cfg.boxes)
    if cfg.detector != "none":
        from .detect import build_detector

        return build_detector(cfg.detector, cfg)
    return WholeFrame()
