"""Typed, validated settings from ``config.yaml``.

One schema; unknown keys and bad values fail at start-up with the key's name
(and the closest valid key when it looks like a typo). Load once, pass the
object down.

The resolution rule, wherever a config file lives:

1. relative paths in a config file are relative to the folder of that file;
2. every key a user's file does not set comes from the shipped ``config.yaml``
   (``stream/defaults/config.yaml`` in the package: the colour model, its
   labels, the detector settings...), section by section: a file that sets
   only ``motion: {min_area: 0.002}`` keeps every other ``motion`` key shipped;
3. command-line flags override both (``Config.override``).

    >>> cfg = load_config()            # the shipped config.yaml
    >>> cfg.top_k, cfg.model_file.name
    (3, 'model.onnx')
"""
from __future__ import annotations

import difflib
import os
import typing
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple, Union

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError, read_input


def shipped(relative: str) -> Path:
    """A file shipped with the package (``stream/defaults/...``: the default config, the models)."""
    return Path(os.fspath(resources.files("stream").joinpath("defaults", *relative.split("/")))).resolve()


DEFAULT_CONFIG = shipped("config.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Section):
    """A fixed region: pixel coordinates, or 0..1 fractions of the frame size."""

    name: str = ""
    xyxy: Tuple[float, float, float, float]

    @field_validator("xyxy")
    @classmethod
    def _ordered(cls, v):
        if v[2] <= v[0] or v[3] <= v[1]:
            raise ValueError(f"x2 > x1 and y2 > y1 required, got {list(v)}")
        return v

    @property
    def relative(self) -> bool:
        return all(0.0 <= c <= 1.0 for c in self.xyxy)


class ServerConfig(_Section):
    """``carcolor serve``: the original server listened on 0.0.0.0:6002."""

    host: str = "0.0.0.0"
    port: int = Field(6002, ge=0, le=65535)
    threads: int = Field(4, ge=1, le=256)
    max_upload_mb: float = Field(10.0, gt=0)
    max_image_pixels: int = Field(50_000_000, gt=0)
    decode_max_pixels: int = Field(4_000_000, ge=10_000, description="larger JPEGs are decoded at 1/2, 1/4 "
                                   "or 1/8 size (the model reads a few dozen pixels)")
    decode_slots: int = Field(2, ge=1, le=256, description="images above decode_max_pixels decoded at once; "
                              "more wait (small ones never do)")


class LiveConfig(_Section):
    """Webcams and network cameras: timeouts and reconnect policy (seconds)."""

    open_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(10.0, gt=0)
    stall_timeout: float = Field(10.0, gt=0)
    retry_interval: float = Field(1.0, gt=0)
    retry_max_interval: float = Field(30.0, gt=0)
    max_retries: Optional[int] = Field(None, ge=0)
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    stats_interval: float = Field(60.0, gt=0)
    decode_threads: int = Field(1, ge=0, description="decoder threads for URLs; each extra one "
                                "holds back a frame (latency); 0 = one per core")
    probe_interval: float = Field(0.5, ge=0, description="while waiting to retry a URL, check this often "
                                  "whether its host:port accepts connections again; when it comes back "
                                  "the retry starts at once, whatever the back-off reached (0 = off)")


Point = Tuple[float, float]


def _polygon(v: List[Point]) -> List[Point]:
    if v and len(v) < 3:
        raise ValueError(f"a region of interest needs at least 3 points, got {len(v)}")
    return v


Polygon = Annotated[List[Point], AfterValidator(_polygon)]  # [] = none; else at least 3 points


class MotionConfig(_Section):
    """``detector: motion``: background subtraction for a fixed camera.

    Areas are fractions of the frame area; aspect is width / height; ``roi`` is
    a polygon (pixels, or 0..1 fractions of the frame) outside which nothing moves.
    """

    method: Literal["mog2", "knn"] = "mog2"
    history: int = Field(300, ge=2, description="frames the background model remembers")
    threshold: Optional[float] = Field(None, gt=0, description="MOG2 varThreshold / KNN dist2Threshold; null = OpenCV's")
    learning_rate: float = Field(-1.0, le=1.0, description="-1 = automatic (1/history)")
    shadow_threshold: float = Field(0.5, gt=0, lt=1, description="darker than the background by down to "
                                    "this ratio, same hue = shadow (removed)")
    warmup: int = Field(15, ge=0, description="first frames only learn the background; no boxes")
    process_width: int = Field(480, ge=0, description="subtract at this width (0 = full size)")
    blur: int = Field(5, ge=0)
    open_kernel: int = Field(3, ge=0, description="removes specks")
    close_kernel: int = Field(9, ge=0, description="joins a car's parts")
    min_area: float = Field(0.001, ge=0, le=1)
    max_area: float = Field(0.25, gt=0, le=1)
    min_aspect: float = Field(0.3, gt=0)
    max_aspect: float = Field(4.0, gt=0)
    roi: Polygon = []
    normalize_light: bool = True
    stabilize: bool = Field(True, description="undo a slowly drifting camera's shift (tracked scene corners)")
    max_foreground: float = Field(0.4, gt=0, le=1, description="more moving than this = global change, no boxes")
    relearn_frames: int = Field(10, ge=0)

    @model_validator(mode="after")
    def _ranges(self):
        if self.max_area <= self.min_area:
            raise ValueError(f"max_area ({self.max_area}) must be above min_area ({self.min_area})")
        if self.max_aspect <= self.min_aspect:
            raise ValueError(f"max_aspect ({self.max_aspect}) must be above min_aspect ({self.min_aspect})")
        return self


class OnnxDetectorConfig(_Section):
    """``detector: onnx``: a YOLO-family ONNX model you supply (no weights ship)."""

    model: Optional[Path] = None
    labels: Optional[Path] = Field(None, description="class names, one a line; else the model's metadata")
    layout: Literal["auto", "ultralytics", "yolov5"] = "auto"
    input_size: Tuple[int, int] = Field((640, 640), description="(w, h) when the model's input is dynamic")
    confidence: float = Field(0.25, ge=0, le=1)
    iou: float = Field(0.45, ge=0, le=1, description="NMS overlap")
    classes: List[str] = ["car", "truck", "bus"]
    agnostic_nms: bool = True
    max_detections: int = Field(100, ge=1)


class VehicleConfig(_Section):
    """``detector: vehicle``: the shipped OpenVINO vehicle detector (Open Model Zoo vehicle-detection-0202).

    The network is reshaped to the stream's aspect: ``input_width`` wide, the height
    following the frame (or the ``roi``'s bounding box), rounded to a multiple of 32,
    unless ``input_height`` fixes it.
    """

    model: Path = Field(default_factory=lambda: shipped("models/vehicle-detection-0202/vehicle-detection-0202.xml"),
                        description="OpenVINO IR .xml (its .bin beside it)")
    confidence: float = Field(0.5, gt=0, le=1)
    input_width: int = Field(512, ge=32, le=4096)
    input_height: Optional[int] = Field(None, ge=32, le=4096, description="null = from the stream's aspect")
    roi: Polygon = Field([], description="polygon: only this part of the frame is searched; "
                             "boxes whose centre is outside are dropped")
    detect_every: int = Field(2, ge=1, description="run the network every Nth frame; boxes in between "
                              "are moved on at each car's measured speed")
    skip_static: bool = Field(True, description="a frame that did not change since the last detection "
                              "reuses its boxes (nothing moved: no network call)")
    min_size: int = Field(8, ge=1, description="boxes with a shorter side in pixels are dropped")


class TrackConfig(_Section):
    """Tracking (ByteTrack) and the per-car colour vote."""

    enabled: bool = True
    track_timeout: int = Field(30, ge=1, description="frames unseen before a track ends")
    activation: float = Field(0.25, ge=0, le=1, description="ByteTrack track_activation_threshold")
    match_iou: float = Field(0.2, gt=0, le=1, description="least IoU to continue a track")
    min_frames: int = Field(3, ge=1, description="shorter tracks are noise: no car event")
    hold_merged: bool = Field(True, description="a box over two tracks (cars passing) is not tracked")
    edge_margin: float = Field(0.01, ge=0, le=0.5, description="box this close to the border (fraction) = leaving")
    switch_margin: float = Field(0.1, ge=0, le=1, description="shown colour changes only when beaten by this much")
    start_at_edge: bool = Field(False, description="a box cut by the frame border may start a track (else it "
                                "only continues one: a car is tracked once enough of it is in)")
    moving_distance: float = Field(1.0, gt=0, description="a track moved when its centre went this many of "
                                   "its own sizes (square root of the box area) from where it stood")
    parked_after: float = Field(10.0, gt=0, description="seconds standing before a track is reported parked")
    car_events: Literal["moving", "all"] = Field("moving", description="which ended tracks give a car event: "
                                                 "the ones that moved, or all (standing ones with moving: false)")
    unknown_threshold: Optional[float] = Field(
        0.3, ge=0.0, le=1.0, description="a track's voted share of its leading colour below which the car is "
        "unknown, never above the classifier's per-crop threshold (null = that one). Lower: a vote over a track's crops "
        "is flatter than one crop's probability (its crops see the car in changing light and size)")


class CountLineConfig(_Section):
    """A counting line: two points (pixels or 0..1 fractions); ``directions`` name its two sides."""

    points: Tuple[Point, Point]
    directions: Tuple[str, str] = ("in", "out")
    interval: float = Field(60.0, gt=0, description="seconds of video between count lines in the log")

    @field_validator("points")
    @classmethod
    def _distinct(cls, v):
        if tuple(v[0]) == tuple(v[1]):
            raise ValueError("the two points of a count line must differ")
        return v


CAMERA_NAME = r"^[a-z0-9_-]+$"


class CameraConfig(_Section):
    """One camera of the service (``cameras:``): a name, a source, and its own values of the
    top-level keys that make sense per camera. A section given here (``live``, ``vehicle``...)
    is merged key by key over the top-level one; ``roi`` is the detector's region of interest
    (``vehicle.roi`` and ``motion.roi``)."""

    name: str = Field(pattern=CAMERA_NAME, max_length=64)
    source: str = Field(min_length=1)
    boxes: Optional[List[Region]] = None
    detector: Optional[Literal["none", "motion", "onnx", "vehicle"]] = None
    roi: Optional[Polygon] = None
    count_line: Optional[CountLineConfig] = None
    every: Optional[int] = Field(None, ge=1)
    start: Optional[float] = Field(None, ge=0, description="a file camera: start at this many seconds")
    end: Optional[float] = Field(None, gt=0, description="a file camera: stop at this many seconds")
    unknown_threshold: Optional[float] = Field(None, ge=0.0, le=1.0)
    live: Optional[LiveConfig] = None
    motion: Optional[MotionConfig] = None
    vehicle: Optional[VehicleConfig] = None
    onnx_detector: Optional[OnnxDetectorConfig] = None
    tracking: Optional[TrackConfig] = None


class MqttConfig(_Section):
    """``mqtt:``: where the service publishes its events (``<topic_prefix>/<camera>/<event>``)."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: Optional[str] = None
    password: Optional[str] = None
    tls: bool = False
    ca_file: Optional[Path] = Field(None, description="CA certificates for tls (default: the system's)")
    qos: int = Field(1, ge=0, le=2, description="QoS of car, parked, count and status messages (stats: 0)")
    topic_prefix: str = Field("carcolor", pattern=r"^[^#+]+$")
    retain: bool = Field(False, description="retain car/count/stats messages too (status is always retained)")
    client_id: str = ""
    keepalive: int = Field(30, ge=5)
    queue_size: int = Field(10000, ge=1, description="messages kept while the broker is away; "
                            "the oldest are dropped (and counted) beyond this")


class WebConfig(_Section):
    """``web:``: the live view, ``/api/cameras`` and ``/metrics``."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    threads: int = Field(16, ge=2, le=256, description="waitress threads: each open MJPEG view holds one")
    stream_fps: float = Field(5.0, gt=0, le=30, description="MJPEG frames per second per viewer")
    jpeg_quality: int = Field(80, ge=10, le=100)


class Config(_Section):
    """The whole configuration. The first six keys are the original server's."""

    model_file: Path = Field(default_factory=lambda: shipped("models/default/model.onnx"))
    label_file: Path = Field(default_factory=lambda: shipped("models/default/labels.txt"))
    input_layer: str = "input_1"
    output_layer: str = "softmax/Softmax"
    classifier_input_size: Tuple[int, int] = (224, 224)
    top_k: int = Field(3, ge=1)
    unknown_threshold: Optional[float] = Field(
        None, ge=0.0, le=1.0, description="null = the model's calibrated value (model.json beside it), else 0")
    rule_weight: Optional[float] = Field(
        None, ge=0.0, lt=1.0, description="weight of the HSV colour rule mixed into the model's "
        "probabilities; null = the model's value (model.json beside it), else 0")
    threads: int = Field(0, ge=0, description="inference threads; 0 = all cores")
    batch_size: int = Field(64, ge=1)

    boxes: List[Region] = []
    detector: Literal["none", "motion", "onnx", "vehicle"] = "vehicle"

    every: int = Field(1, ge=1)
    start: float = Field(0.0, ge=0)
    end: Optional[float] = Field(None, gt=0)

    server: ServerConfig = ServerConfig()
    live: LiveConfig = LiveConfig()
    motion: MotionConfig = MotionConfig()
    onnx_detector: OnnxDetectorConfig = OnnxDetectorConfig()
    vehicle: VehicleConfig = VehicleConfig()
    tracking: TrackConfig = TrackConfig()
    count_line: Optional[CountLineConfig] = None

    cameras: List[CameraConfig] = Field([], description="the service: every camera in one process")
    mqtt: Optional[MqttConfig] = None
    web: Optional[WebConfig] = None

    @field_validator("cameras")
    @classmethod
    def _unique(cls, v):
        names = [c.name for c in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"camera names must be unique, {', '.join(twice)} given twice")
        return v

    def for_camera(self, name: str) -> "Config":
        """The config one camera runs with: the top-level keys, its own values over them."""
        cam = next((c for c in self.cameras if c.name == name), None)
        if cam is None:
            raise ConfigError(f"no camera '{name}' (cameras: {', '.join(c.name for c in self.cameras)})")
        data = self.model_dump(exclude={"cameras", "mqtt", "web"})
        over = cam.model_dump(exclude_unset=True, exclude={"name", "source", "roi"})
        data = _merge(data, over)
        if cam.roi is not None:
            data["vehicle"]["roi"] = data["motion"]["roi"] = cam.roi
        return _validate(data, f"camera '{name}'")

    @field_validator("classifier_input_size", mode="before")
    @classmethod
    def _size(cls, v):
        if isinstance(v, int):
            return (v, v)
        return v

    @field_validator("classifier_input_size")
    @classmethod
    def _positive(cls, v):
        if min(v) < 8:
            raise ValueError(f"must be at least 8 pixels, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _range(self):
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def override(self, **values: Any) -> "Config":
        """A copy with command-line values (None = not given) validated like the file's."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        data = self.model_dump()
        data.update(given)
        return _validate(data, "command line")


def _keys_of(model: type, path: Tuple[str, ...]) -> List[str]:
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        inner = getattr(ann, "__args__", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif inner and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
            model = inner[0]
        else:
            return []
    return list(model.model_fields)


def _message(err: ValidationError, origin: str) -> str:
    e = err.errors()[0]
    loc = [str(p) for p in e["loc"]]
    key = ".".join(loc) or "(top level)"
    if e["type"] == "extra_forbidden":
        names = [p for p in loc if not p.isdigit()]
        valid = _keys_of(Config, tuple(names[:-1]))
        close = difflib.get_close_matches(loc[-1], valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(valid)})"
        return f"{origin}: unknown key '{key}'{hint}"
    got = e.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{origin}: bad value for '{key}': {e['msg']}{shown}"


def _validate(data: Any, origin: str) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of keys to values, got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_message(err, origin)) from err


def _path_field(annotation: Any) -> bool:
    return annotation is Path or (typing.get_origin(annotation) is Union and Path in typing.get_args(annotation))


def _section_of(annotation: Any) -> Optional[type]:
    """The config section (a model class) a field holds, directly or as Optional[...]."""
    for a in (annotation, *typing.get_args(annotation)):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _resolve_paths(data: Any, model: type, base: Path) -> Any:
    """``data`` (a raw mapping for ``model``) with relative paths made absolute against ``base``.

    Path-typed keys are found from the schema, so a new section's paths follow the rule too.
    """
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None or value is None:
            continue
        if _path_field(field.annotation) and isinstance(value, (str, Path)):
            p = Path(os.path.expanduser(str(value)))
            out[key] = str(p if p.is_absolute() else (base / p).resolve())
        elif (section := _section_of(field.annotation)) is not None:
            out[key] = ([_resolve_paths(v, section, base) for v in value] if isinstance(value, list)
                        else _resolve_paths(value, section, base))
    return out


def _merge(base: Dict, over: Dict) -> Dict:
    """``over``'s keys on top of ``base``'s, mappings merged key by key (lists and values replaced)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read(path: Path) -> Dict:
    text = read_input(path, "config file", ConfigError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(data).__name__}")
    return _resolve_paths(data, Config, path.resolve().parent)


def load_config(path: Union[str, Path, None] = None) -> Config:
    """Read and validate a YAML config on top of the shipped one; ``None`` means the shipped one alone.

    See the module docstring for the rule; raises ``ConfigError`` naming the file and the key.
    """
    data = _read(DEFAULT_CONFIG)
    origin = DEFAULT_CONFIG
    if path is not None:
        path = Path(os.path.expanduser(str(path)))
        if not (path.is_file() and DEFAULT_CONFIG.is_file() and path.samefile(DEFAULT_CONFIG)):
            data = _merge(data, _read(path))
            origin = path
    return _validate(data, str(origin))
