"""The log's lines, typed: one class per kind of line, one ``to_json`` for all of them.

A carcolor log (``carcolor run --log``) is JSON Lines; every line is one of:

- a frame line (no ``"event"`` key): a ``FrameRecord`` written by :func:`to_json`;
- ``StartEvent`` ``{"event": "start", ...}``: the first line of each run appended to the log;
- ``CarEvent`` ``{"event": "car", ...}``: one tracked car, written when its track ends;
- ``ParkedEvent`` ``{"event": "parked", ...}``: a car standing still, written once while it stands;
- ``CountEvent`` ``{"event": "count", ...}``: the count line's totals (``"final": true`` at the end);
- ``StatsEvent`` ``{"event": "stats", ...}``: a live source's rates every ``stats_interval``;
- ``StatusEvent`` ``{"event": "online" | "offline" | "reconnected" | "max_retries", ...}``: a live source's state;
- ``ModeEvent`` ``{"event": "mode", "mode": "ir" | "color", ...}``: a camera's picture turned grey (night/IR) or back.

Lines written by the camera service (``cameras:`` in the config) also carry
``"camera"``: the camera's name, first on the line (:func:`tagged`).

``stream/log.schema.json`` is the JSON Schema of these lines; :func:`parse` reads
one back (the report and anything else reading a log use it, never their own
parsing).

    >>> car = CarEvent(id=3, first=1.0, last=2.5, frames=40, color="red", prob=0.91,
    ...                colors=(("red", 0.91), ("orange", 0.05)), box=(10, 20, 110, 90))
    >>> to_json(car)["colors"]
    [{'color': 'red', 'prob': 0.91}, {'color': 'orange', 'prob': 0.05}]
    >>> parse(to_json(car)) == car
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from .record import FrameRecord, TopK

STATUSES = ("online", "offline", "reconnected", "max_retries")


def colors_json(top: TopK) -> List[Dict[str, Any]]:
    """Top-k as the original server answered: ``[{"color": ..., "prob": ...}, ...]``.

    ``prob`` is float32's shortest decimal, as the original printed it (0.9554577).
    """
    return [{"color": c, "prob": float(str(np.float32(p)))} for c, p in top]


def _top(items) -> TopK:
    return tuple((str(d["color"]), float(d["prob"])) for d in items)


@dataclass(frozen=True)
class CarEvent:
    """One tracked car: its voted colour (``unknown`` below the threshold), its share, when and where.

    ``colors`` are vote shares over the track's crops (not one crop's
    probabilities); ``box`` is its best crop's box; ``moving`` is False for a
    car that stood still the whole time it was seen (parked); ``reason`` says
    why a colour is ``unknown`` when the picture could not tell (``ir``: the
    camera sent a grey night picture while the car was seen).
    """

    kind: ClassVar[str] = "car"
    id: int
    first: float
    last: float
    frames: int
    color: str
    prob: float
    colors: TopK
    box: Tuple[int, int, int, int]
    moving: bool = True
    reason: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        out = {"event": "car", "id": self.id, "first": round(self.first, 3), "last": round(self.last, 3),
               "frames": self.frames, "color": self.color, "prob": round(self.prob, 4),
               "colors": [{"color": c, "prob": round(p, 6)} for c, p in self.colors],
               "box": [int(v) for v in self.box], "moving": self.moving}
        if self.reason is not None:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CarEvent":
        return cls(int(d["id"]), float(d["first"]), float(d["last"]), int(d["frames"]), str(d["color"]),
                   float(d["prob"]), _top(d.get("colors", ())), tuple(int(v) for v in d["box"]),
                   bool(d.get("moving", True)), d.get("reason"))


@dataclass(frozen=True)
class ParkedEvent:
    """A car that has stood still for ``tracking.parked_after`` seconds: reported once while it stands.

    ``first`` is when its track began, ``t`` when it was found standing; the
    colour is the vote so far; ``box`` is where it stands. If it drives off
    later, its track ends with a moving ``CarEvent`` like any passing car.
    """

    kind: ClassVar[str] = "parked"
    id: int
    first: float
    t: float
    color: str
    prob: float
    colors: TopK
    box: Tuple[int, int, int, int]

    def to_json(self) -> Dict[str, Any]:
        return {"event": "parked", "id": self.id, "first": round(self.first, 3), "t": round(self.t, 3),
                "color": self.color, "prob": round(self.prob, 4),
                "colors": [{"color": c, "prob": round(p, 6)} for c, p in self.colors],
                "box": [int(v) for v in self.box]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ParkedEvent":
        return cls(int(d["id"]), float(d["first"]), float(d["t"]), str(d["color"]), float(d["prob"]),
                   _top(d.get("colors", ())), tuple(int(v) for v in d["box"]))


@dataclass(frozen=True)
class CountEvent:
    """Cars counted crossing the line so far, per direction and colour."""

    kind: ClassVar[str] = "count"
    t: float
    counts: Mapping[str, Mapping[str, int]]
    final: bool = False

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def to_json(self) -> Dict[str, Any]:
        out = {"event": "count", "t": round(self.t, 3),
               "counts": {d: dict(sorted(c.items())) for d, c in self.counts.items()}, "total": self.total}
        if self.final:
            out["final"] = True
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CountEvent":
        counts = {str(k): {str(c): int(n) for c, n in v.items()} for k, v in d["counts"].items()}
        return cls(float(d["t"]), counts, bool(d.get("final", False)))


@dataclass(frozen=True)
class StatsEvent:
    """A live source's rates over the last ``stats_interval`` seconds."""

    kind: ClassVar[str] = "stats"
    source: str
    t: float
    fps_in: float
    fps_processed: float
    dropped: int
    reconnects: int

    def to_json(self) -> Dict[str, Any]:
        return {"event": "stats", "source": self.source, "t": round(self.t, 3), "fps_in": round(self.fps_in, 2),
                "fps_processed": round(self.fps_processed, 2), "dropped": self.dropped,
                "reconnects": self.reconnects}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "StatsEvent":
        return cls(str(d["source"]), float(d["t"]), float(d["fps_in"]), float(d["fps_processed"]),
                   int(d["dropped"]), int(d["reconnects"]))


@dataclass(frozen=True)
class StatusEvent:
    """A live source went ``online``, ``offline``, ``reconnected``, or gave up (``max_retries``).

    ``details`` holds the status's own fields: ``size``/``fps`` (online,
    reconnected), ``count``/``downtime`` (reconnected), ``reason``/``attempt``/
    ``retry_in`` (offline), ``retries``/``reason`` (max_retries).
    """

    kind: ClassVar[str] = "status"
    status: str
    source: str
    t: float
    wall: Optional[float] = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"event": self.status, "source": self.source, "t": round(self.t, 3)}
        if self.wall is not None:
            out["wall"] = round(self.wall, 3)
        out.update(self.details)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "StatusEvent":
        details = {k: v for k, v in d.items() if k not in ("event", "source", "t", "wall", "camera")}
        return cls(str(d["event"]), str(d["source"]), float(d["t"]), d.get("wall"), details)


@dataclass(frozen=True)
class ModeEvent:
    """A camera's picture changed mode: ``ir`` (grey, no chroma: a night/IR picture, colours
    cannot be known) or ``color``; ``chroma`` is the measure that decided (see ``stream.service.ir``)."""

    kind: ClassVar[str] = "mode"
    source: str
    t: float
    mode: str
    chroma: float
    wall: Optional[float] = None

    def __post_init__(self) -> None:
        if self.mode not in ("ir", "color"):
            raise ValueError(f"mode must be ir or color, got {self.mode!r}")

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"event": "mode", "source": self.source, "t": round(self.t, 3)}
        if self.wall is not None:
            out["wall"] = round(self.wall, 3)
        out.update(mode=self.mode, chroma=round(self.chroma, 2))
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ModeEvent":
        return cls(str(d["source"]), float(d["t"]), str(d["mode"]), float(d["chroma"]), d.get("wall"))


@dataclass(frozen=True)
class StartEvent:
    """The first line of a run: which source, which carcolor, when (so two runs in one log can be told apart)."""

    kind: ClassVar[str] = "start"
    source: str
    wall: float
    version: str

    def to_json(self) -> Dict[str, Any]:
        return {"event": "start", "source": self.source, "wall": round(self.wall, 3), "version": self.version}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "StartEvent":
        return cls(str(d["source"]), float(d["wall"]), str(d.get("version", "")))


Event = Union[CarEvent, ParkedEvent, CountEvent, StatsEvent, StatusEvent, ModeEvent, StartEvent]


@dataclass(frozen=True)
class FrameLine:
    """A frame line read back: its source, frame number, time and cars (dicts as written)."""

    kind: ClassVar[str] = "frame"
    source: str
    frame: int
    t: float
    cars: Tuple[Mapping[str, Any], ...] = ()
    wall: Optional[float] = None
    skipped: int = 0

    def to_json(self) -> Dict[str, Any]:
        line: Dict[str, Any] = {"source": self.source, "frame": self.frame, "t": self.t}
        if self.wall is not None:
            line["wall"] = self.wall
        line["cars"] = [dict(c) for c in self.cars]
        if self.skipped:
            line["skipped"] = self.skipped
        return line


def frame_json(record: FrameRecord) -> Dict[str, Any]:
    """One log line for a frame: where each car is and its colours (the vote's once tracked)."""
    cars = record.cars
    out = []
    colors, tops = cars.shown_color, cars.shown_top
    for i in range(len(cars)):
        car: Dict[str, Any] = {"box": cars.xyxy[i].tolist()}
        if cars.track_id[i] >= 0:
            car["id"] = int(cars.track_id[i])
        if not math.isnan(cars.score[i]):
            car["score"] = round(float(cars.score[i]), 4)
        if cars.name[i]:
            car["name"] = cars.name[i]
        if colors:
            car["color"] = colors[i]
            car["colors"] = colors_json(tops[i])
        out.append(car)
    line: Dict[str, Any] = {"source": record.source, "frame": record.frame.index,
                            "t": round(record.frame.timestamp, 4)}
    if record.frame.wall is not None:
        line["wall"] = round(record.frame.wall, 3)
    line["cars"] = out
    if record.skipped:
        line["skipped"] = record.skipped
    return line


def to_json(item: Union[Event, FrameLine, FrameRecord]) -> Dict[str, Any]:
    """The log line (a JSON-able dict) of an event, a frame line or a frame record."""
    if isinstance(item, FrameRecord):
        return frame_json(item)
    return item.to_json()


def tagged(item: Union[Event, FrameRecord], camera: str) -> Dict[str, Any]:
    """The log line of ``item`` from the camera service: ``{"camera": name, ...the line...}``."""
    return {"camera": camera, **to_json(item)}


_KINDS = {"car": CarEvent, "parked": ParkedEvent, "count": CountEvent, "stats": StatsEvent, "start": StartEvent,
          "mode": ModeEvent,
          **{s: StatusEvent for s in STATUSES}}


def parse(line: Mapping[str, Any]) -> Union[Event, FrameLine]:
    """A log line (decoded JSON) back as its typed event or ``FrameLine``.

    Raises ``ValueError`` for a line that is none of them (a foreign or torn line).
    """
    if not isinstance(line, Mapping):
        raise ValueError(f"a log line must be a JSON object, got {type(line).__name__}")
    try:
        if "event" not in line:
            return FrameLine(str(line["source"]), int(line["frame"]), float(line["t"]), tuple(line["cars"]),
                             line.get("wall"), int(line.get("skipped", 0)))
        cls = _KINDS.get(line["event"])
        if cls is None:
            raise ValueError(f"unknown event {line['event']!r}")
        return cls.from_json(line)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a carcolor log line ({type(e).__name__}: {e})") from e


def describe(event: Event) -> str:
    """One human line for stderr: ``[source] kind: key=value, ...``."""
    d = event.to_json()
    detail = ", ".join(f"{k}={v}" for k, v in d.items() if k not in ("event", "source", "wall", "t"))
    return f"[{d.get('source', '')}] {d['event']}{': ' + detail if detail else ''}"
