"""The car-colour HTTP API as a Flask app, compatible with the original Flask server.

The original's call keeps working byte for byte::

    curl "http://127.0.0.1:6002" -H "Content-Type: multipart/form-data" --form "image=@car.jpg"
    {"colors":[{"color":"orange","prob":0.9554577},{"color":"red","prob":0.03},...],"color":"orange"}

``colors`` is the original's top-k list (best first, ``prob`` a JSON number);
``color`` is new: the decision (the top colour, or ``"unknown"`` when its
probability is below ``unknown_threshold``). Old callers never look at it.

Endpoints (described at ``GET /openapi.json``):

- ``POST /``          one ``image`` field -> ``{"colors": [...], "color": ...}``
- ``POST /classify``  several ``image`` fields -> ``{"results": [one per image, in order]}``,
  all crops in one batched model call; or one scene image plus a ``boxes`` field
  (JSON ``[[x1, y1, x2, y2], ...]`` in pixels of the decoded image, EXIF
  orientation applied as ``cv2.imread`` does) -> one result per box, with its ``box``.
  ``?top_k=N`` (1..number of labels) on both POST endpoints.
- ``GET /health``, ``GET /labels``, ``GET /openapi.json``.

Every client mistake gets a 4xx with ``{"error": "..."}``: 400 (no image, empty
or corrupt file, bad ``boxes``/``top_k``), 413 (request over
``server.max_upload_mb``, or an image whose header claims more than
``server.max_image_pixels`` pixels, refused before decoding), 415 (not JPEG or
PNG), 404, 405. A 5xx means a bug in carcolor.

Library use (no CLI needed)::

    >>> from stream.config import load_config                         # doctest: +SKIP
    >>> app = create_app(load_config())                                # doctest: +SKIP
    >>> from stream.server import serve                               # doctest: +SKIP
    >>> serve(app, load_config())                                      # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException

from .. import imageio
from ..classify import ColorClassifier
from ..config import Config, load_config
from ..errors import ImageError
from ..events import colors_json
from .openapi import openapi_spec

log = logging.getLogger("carcolor.server")

MB = 1024 * 1024
MAX_BOXES = 1024          # boxes per scene image
MAX_IMAGES = 256          # image fields per /classify request
_EXT = "carcolor"


class ApiError(Exception):
    """A client mistake: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _State:
    """What the app keeps between requests: built once in ``create_app``."""

    cfg: Config
    classifier: ColorClassifier
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stats: Dict[str, int] = field(default_factory=lambda: dict(
        requests=0, images=0, crops=0, model_calls=0, client_errors=0, server_errors=0, reduced_decodes=0))
    decode_gate: threading.BoundedSemaphore = None  # type: ignore[assignment]  # big decodes at once

    def __post_init__(self) -> None:
        self.decode_gate = threading.BoundedSemaphore(self.cfg.server.decode_slots)

    def count(self, **inc: int) -> None:
        with self.lock:
            for k, v in inc.items():
                self.stats[k] += v

    def predict(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """All crops of a request in one ``predict_proba`` call (batched by ``batch_size``)."""
        probs = self.classifier.predict_proba(crops)
        self.count(crops=len(crops), model_calls=math.ceil(len(crops) / self.classifier.batch_size))
        return probs


def max_upload_bytes(cfg: Config) -> int:
    """``server.max_upload_mb`` in bytes (1 MB = 2**20 bytes)."""
    return int(cfg.server.max_upload_mb * MB)


def create_app(cfg: Optional[Config] = None, classifier: Optional[ColorClassifier] = None) -> Flask:
    """The Flask app with its ``ColorClassifier`` built once, here (never per request).

    ``classifier`` lets a caller (a test, or an app serving several endpoints)
    pass one already built; by default it comes from ``cfg``'s model keys.
    Raises ``ModelError``/``ConfigError`` for a model that cannot be loaded.
    """
    cfg = cfg if cfg is not None else load_config()
    clf = classifier if classifier is not None else ColorClassifier.from_config(cfg)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes(cfg)
    app.json.sort_keys = False       # "colors" first, as the original
    app.json.compact = True
    app.extensions[_EXT] = _State(cfg, clf)
    app.register_blueprint(_api)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _state() -> _State:
    return current_app.extensions[_EXT]


# --- errors: always JSON ------------------------------------------------------------------

def _error(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> Response:
    resp = jsonify(error=message)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    if 400 <= status < 500:
        _state().count(client_errors=1)
        log.info("%s %s -> %d %s", request.method, request.path, status, message)
    return resp


def _api_error(e: ApiError) -> Response:
    return _error(e.status, e.message)


_MESSAGES = {
    404: lambda e: f"no such endpoint: {request.path} (see GET /openapi.json)",
    405: lambda e: f"method {request.method} not allowed on {request.path}; "
                   f"allowed: {', '.join(sorted(e.valid_methods or []))}",
    413: lambda e: (f"request body larger than the {_state().cfg.server.max_upload_mb:g} MB limit"
                    if (request.content_length or 0) > max_upload_bytes(_state().cfg) else e.description),
}


def _http_error(e: HTTPException) -> Response:
    code = e.code or 500
    message = _MESSAGES[code](e) if code in _MESSAGES else (e.description or e.name)
    headers = {k: v for k, v in e.get_headers() if k.lower() not in ("content-type", "content-length")}
    return _error(code, message, headers)


def _unexpected(e: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    _state().count(server_errors=1)
    return _error(500, "internal server error")


# --- request parsing ------------------------------------------------------------------------

def _top_k(default: int) -> int:
    raw = request.args.get("top_k")
    n = len(_state().classifier.labels)
    if raw is None:
        return default
    try:
        k = int(raw)
    except ValueError:
        raise ApiError(400, f"top_k must be an integer from 1 to {n}, got {raw[:40]!r}") from None
    if not 1 <= k <= n:
        raise ApiError(400, f"top_k must be from 1 to {n} (the number of labels), got {k}")
    return k


def _uploads() -> List[FileStorage]:
    files = request.files.getlist("image")
    if not files:
        if "image" in request.form:
            raise ApiError(400, "field 'image' must be a file upload (curl --form \"image=@car.jpg\")")
        raise ApiError(400, "no 'image' field: send multipart/form-data with the image file "
                            "in a field named 'image' (curl --form \"image=@car.jpg\")")
    if len(files) > MAX_IMAGES:
        raise ApiError(413, f"at most {MAX_IMAGES} images per request, got {len(files)}")
    return files


@dataclass(frozen=True)
class _Decoded:
    """An upload's pixels, decoded at 1/``scale`` of its size; ``size`` is the upload's own (w, h) as shown."""

    image: np.ndarray
    scale: int
    size: Tuple[int, int]


def _decode(data: bytes, info: imageio.ImageInfo) -> _Decoded:
    """Pixels at a bounded size: a JPEG over ``decode_max_pixels`` at 1/2, 1/4 or 1/8 size; big images one
    ``decode_slots`` at a time, so memory stays bounded whatever is uploaded and small ones never wait."""
    st = _state()
    big = info.pixels > st.cfg.server.decode_max_pixels
    f = imageio.reduction(info, st.cfg.server.decode_max_pixels)
    if big:
        with st.decode_gate:
            image = imageio.decode_pixels(data, info, f)
    else:
        image = imageio.decode_pixels(data, info, f)
    if f > 1:
        st.count(reduced_decodes=1)
    rotated = (image.shape[0] > image.shape[1]) != (info.height > info.width)  # EXIF orientation
    return _Decoded(image, f, (info.height, info.width) if rotated else (info.width, info.height))


def _decode_all(files: Sequence[FileStorage]) -> List[_Decoded]:
    """Read, size-check (headers only, before any decoding) and decode every upload."""
    max_px = _state().cfg.server.max_image_pixels
    several = len(files) > 1
    blobs, infos = [], []
    for i, fs in enumerate(files):
        where = _where(i, fs, several)
        data = fs.read()
        if not data:
            raise ApiError(400, f"{where} is an empty file")
        try:
            info = imageio.probe(data)
            imageio.check_size(info, max_px)
        except ImageError as e:
            raise _image_error(e, where) from e
        blobs.append(data)
        infos.append(info)
    total = sum(i.pixels for i in infos)
    if total > max_px:
        raise ApiError(413, f"images total {total:,} pixels, more than the limit of {max_px:,} per request")
    images = []
    for i, (data, info) in enumerate(zip(blobs, infos)):
        where = _where(i, files[i], several)
        try:
            imageio.check_integrity(data, info)
            images.append(_decode(data, info))
        except ImageError as e:
            raise _image_error(e, where) from e
    return images


def _where(i: int, fs: FileStorage, several: bool) -> str:
    return f"image {i + 1} ({(fs.filename or 'no name')[:60]})" if several else "image"


def _image_error(e: ImageError, where: str) -> ApiError:
    status = 413 if isinstance(e, imageio.ImageTooLarge) else 415 if isinstance(e, imageio.UnsupportedImage) else 400
    return ApiError(status, f"{where}: {e}")


def _boxes_field() -> Optional[str]:
    if "boxes" in request.files:
        return request.files["boxes"].read(MB).decode("utf-8", "replace")
    return request.form.get("boxes")


def _parse_boxes(raw: str, width: int, height: int) -> List[Tuple[int, int, int, int]]:
    """``[[x1, y1, x2, y2], ...]`` pixels inside the image -> integer crop boxes."""
    try:
        boxes = json.loads(raw)
    except ValueError as e:
        raise ApiError(400, f"boxes is not valid JSON: {str(e)[:120]}") from None
    except RecursionError:
        raise ApiError(400, "boxes is not a list of boxes: JSON nested too deeply") from None
    if not isinstance(boxes, list):
        raise ApiError(400, "boxes must be a JSON list of [x1, y1, x2, y2] boxes")
    if len(boxes) > MAX_BOXES:
        raise ApiError(400, f"at most {MAX_BOXES} boxes per image, got {len(boxes)}")
    out = []
    for i, b in enumerate(boxes):
        if (not isinstance(b, list) or len(b) != 4
                or not all(_finite_number(c) for c in b)):
            raise ApiError(400, f"box {i} must be [x1, y1, x2, y2] (4 numbers), got {json.dumps(b)[:80]}")
        x1, y1, x2, y2 = b
        if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
            raise ApiError(400, f"box {i} {json.dumps(b)[:80]} is empty or outside the {width}x{height} image "
                                f"(need 0 <= x1 < x2 <= {width}, 0 <= y1 < y2 <= {height})")
        out.append((int(math.floor(x1)), int(math.floor(y1)), int(math.ceil(x2)), int(math.ceil(y2))))
    return out


def _finite_number(c: Any) -> bool:
    if isinstance(c, bool):
        return False
    return isinstance(c, int) or (isinstance(c, float) and math.isfinite(c))  # huge ints: no float()


def _results(probs: np.ndarray, k: int) -> List[Dict[str, Any]]:
    clf = _state().classifier
    return [{"colors": colors_json(top), "color": decision}
            for top, decision in zip(clf.top(probs, k), clf.decide(probs))]


# --- endpoints --------------------------------------------------------------------------

_api = Blueprint("carcolor", __name__)


@_api.before_request
def _count_request():
    _state().count(requests=1)


@_api.route("/", methods=["POST"])
def classify_one():
    """The original endpoint: one image -> ``{"colors": [...top-k...], "color": decision}``."""
    st = _state()
    k = _top_k(st.classifier.top_k)
    files = _uploads()
    if len(files) > 1:
        raise ApiError(400, f"POST / takes one 'image' field, got {len(files)}; use POST /classify for several")
    if _boxes_field() is not None:
        raise ApiError(400, "boxes are accepted by POST /classify, not POST /")
    images = _decode_all(files)
    st.count(images=1)
    return jsonify(_results(st.predict([d.image for d in images]), k)[0])


@_api.route("/classify", methods=["POST"])
def classify_many():
    """Several images (one result each, in order) or one scene image + boxes (one per box)."""
    st = _state()
    k = _top_k(st.classifier.top_k)
    files = _uploads()
    raw_boxes = _boxes_field()
    if raw_boxes is not None and len(files) != 1:
        raise ApiError(400, f"boxes need exactly one scene image, got {len(files)} 'image' fields")
    images = _decode_all(files)
    st.count(images=len(images))
    if raw_boxes is None:
        return jsonify(results=_results(st.predict([d.image for d in images]), k))
    scene = images[0]
    boxes = _parse_boxes(raw_boxes, *scene.size)  # in the upload's pixels, whatever size it was decoded at
    f, (h, w) = scene.scale, scene.image.shape[:2]
    crops = [scene.image[min(y1 // f, h - 1):max(-(-y2 // f), y1 // f + 1), min(x1 // f, w - 1):max(-(-x2 // f), x1 // f + 1)]
             for x1, y1, x2, y2 in boxes]
    results = _results(st.predict(crops), k) if crops else []
    for r, b in zip(results, boxes):
        r["box"] = list(b)
    return jsonify(results=results)


@_api.route("/health", methods=["GET"])
def health():
    st = _state()
    clf = st.classifier
    with st.lock:
        stats = dict(st.stats)
    return jsonify(status="ok", model=clf.name, labels=list(clf.labels), input_size=clf.input_size,
                   top_k=clf.top_k, unknown_threshold=clf.unknown_threshold,
                   uptime_s=round(time.monotonic() - st.started, 3), threads=st.cfg.server.threads,
                   max_upload_mb=st.cfg.server.max_upload_mb, max_image_pixels=st.cfg.server.max_image_pixels,
                   stats=stats)


@_api.route("/labels", methods=["GET"])
def labels():
    return jsonify(labels=list(_state().classifier.labels))


@_api.route("/openapi.json", methods=["GET"])
def openapi():
    st = _state()
    return jsonify(openapi_spec(st.classifier.labels, st.classifier.top_k, st.cfg.server, MAX_IMAGES))
