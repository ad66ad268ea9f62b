"""Colour model loading and batched inference.

``ColorClassifier`` is built once and classifies all crops of a frame in one
model call. The model file decides the runtime:

- ``.onnx``  -> ONNX Runtime (the fast CPU path; the shipped default model),
- ``.keras`` -> Keras 3 (TensorFlow),
- ``.pb``    -> a TensorFlow frozen graph addressed by ``input_layer`` /
  ``output_layer`` tensor names (the original server's format).

Every model takes RGB float32 NHWC in [-1, 1] (see ``stream.preprocess``) and
returns softmax probabilities over the labels file's lines.

    >>> clf = ColorClassifier.from_config(load_config())          # doctest: +SKIP
    >>> clf.classify([crop_bgr])                                   # doctest: +SKIP
    [(('white', 0.97), ('gray', 0.02), ('black', 0.004))]
"""
from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from . import preprocess
from .errors import ModelError
from .labels import UNKNOWN, load_labels
from .boxes import clip
from .geometry import to_pixels
from .cars import sharpness
from .record import Cars, TopK
from .rule import HSVRule, mix

# --- one shrink per crop -----------------------------------------------------------------------

THUMB_SIDE = 100  # the colour rule reads the central half of a crop at up to 50 px a side


def thumbnail(crop: np.ndarray, short_min: int, long_max: int = THUMB_SIDE) -> np.ndarray:
    """``crop`` area-shrunk once, to ``long_max`` px on its longer side but not below ``short_min`` on
    its shorter one (a crop already that small is returned as it is).

    The model input (the centre square at ``short_min``), the colour rule's central patch (at most
    ``long_max / 2`` a side) and the sharpness score are all made from this thumbnail: a large crop
    is resampled from full size once instead of three times.
    """
    h, w = crop.shape[:2]
    f = max(long_max / max(h, w), short_min / min(h, w))
    if f >= 1.0:
        return crop
    size = (max(1, round(w * f)), max(1, round(h * f)))
    if f <= 0.5:
        # OpenCV's area averaging is slow at a non-integer factor; bilinear to twice the size, then
        # area by exactly 2 (its fast path), averages alike at about a fifth of the cost.
        crop = cv2.resize(crop, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


# --- runtimes: each takes a float32 batch and returns (N, C) probabilities ------------------

class _OnnxRuntime:
    kind = "onnx"

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: the decode and encode threads (and other
        # processes) need those cores; measured 3x faster per crop on a busy 2-core machine.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"cannot load ONNX model {path}: {str(e).splitlines()[0]}") from e
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_hw = _static_hw(inp.shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


class _KerasRuntime:
    kind = "keras"

    def __init__(self, path: Path, threads: int):
        tf = _tensorflow(threads)
        import keras

        try:
            self.model = keras.saving.load_model(str(path), compile=False)
        except Exception as e:
            raise ModelError(f"cannot load Keras model {path}: {str(e).splitlines()[0]}") from e
        self.input_hw = _static_hw(self.model.inputs[0].shape)
        self._fn = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._fn(x))


class _FrozenGraphRuntime:
    kind = "pb"

    def __init__(self, path: Path, threads: int, input_layer: str, output_layer: str):
        tf = _tensorflow(threads)
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(path.read_bytes())
        except Exception as e:
            raise ModelError(f"{path} is not a TensorFlow frozen graph (.pb): cannot parse it") from e
        if not graph_def.node:
            raise ModelError(f"{path} is not a TensorFlow frozen graph (.pb): it has no nodes")
        graph = tf.Graph()
        with graph.as_default():
            try:
                tf.compat.v1.import_graph_def(graph_def, name="")
            except Exception as e:
                raise ModelError(f"cannot import frozen graph {path}: {str(e).splitlines()[0]}") from e
        names = {op.name for op in graph.get_operations()}
        for key, name in (("input_layer", input_layer), ("output_layer", output_layer)):
            if name not in names:
                raise ModelError(f"{key} '{name}' is not a node of {path}")
        self.inp = graph.get_tensor_by_name(input_layer + ":0")
        self.out = graph.get_tensor_by_name(output_layer + ":0")
        self.input_hw = _static_hw(self.inp.shape.as_list() if self.inp.shape.rank else None)
        conf = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)
        self.session = tf.compat.v1.Session(graph=graph, config=conf)
        graph.finalize()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self.out, {self.inp: x})


def _tensorflow(threads: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised by an earlier model in this process
    return tf


def _static_hw(shape) -> Optional[Tuple[int, int]]:
    if shape is None or len(shape) != 4:
        return None
    h, w = shape[1], shape[2]
    return (int(h), int(w)) if isinstance(h, int) and isinstance(w, int) else None


def open_runtime(path: Union[str, Path], threads: int = 0, input_layer: str = "input_1",
                 output_layer: str = "softmax/Softmax"):
    """The runtime for a model file, chosen from the file itself (suffix, then content)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    threads = threads or os.cpu_count() or 1
    suffix = path.suffix.lower()
    if suffix == ".keras" or (suffix not in (".onnx", ".pb") and zipfile.is_zipfile(path)):
        if not zipfile.is_zipfile(path):
            raise ModelError(f"{path} is not a Keras model (.keras files are zip archives)")
        return _KerasRuntime(path, threads)
    if suffix == ".onnx":
        return _OnnxRuntime(path, threads)
    if suffix == ".pb":
        return _FrozenGraphRuntime(path, threads, input_layer, output_layer)
    raise ModelError(f"unknown model kind for {path}: expected a .onnx, .keras or frozen-graph .pb file")


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` per row (temperature scaling of a softmax output)."""
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=1, keepdims=True)


def model_meta(model_file: Path) -> dict:
    """``model.json`` beside a model file (its calibrated settings), or {} when there is none."""
    meta = model_file.parent / "model.json"
    if not meta.is_file():
        return {}
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {meta}: {e}") from e
    if not isinstance(data, dict):
        raise ModelError(f"cannot read {meta}: expected a JSON object")
    t = data.get("temperature", 1.0)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.05 <= t <= 20:
        raise ModelError(f"{meta}: temperature must be a number in 0.05..20, got {t!r}")
    for key in ("unknown_threshold", "rule_weight"):
        value = data.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ModelError(f"{meta}: {key} must be a number in 0..1, got {value!r}")
    return data


class ColorClassifier:
    """Top-k colours for car crops, all crops of a call in batched model runs.

    Thread-safe: calls from several threads (the server's) are serialised on the
    model, which itself uses ``threads`` cores.
    """

    def __init__(self, model_file: Union[str, Path], label_file: Union[str, Path],
                 input_layer: str = "input_1", output_layer: str = "softmax/Softmax",
                 input_size: Union[int, Tuple[int, int]] = 224, top_k: int = 3,
                 unknown_threshold: Optional[float] = None, threads: int = 0, batch_size: int = 64,
                 rule_weight: Optional[float] = None):
        self.labels = load_labels(label_file)
        self.model_file = Path(model_file)
        meta = model_meta(self.model_file)
        self.runtime = open_runtime(model_file, threads, input_layer, output_layer)
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        hw = self.runtime.input_hw or (size[1], size[0])
        if hw[0] != hw[1]:
            raise ModelError(f"model input must be square, {self.model_file} takes {hw[1]}x{hw[0]}")
        self.input_size = hw[0]
        self.top_k = int(top_k)
        self.unknown_threshold = float(meta.get("unknown_threshold", 0.0) if unknown_threshold is None
                                       else unknown_threshold)
        self.rule_weight = float(meta.get("rule_weight", 0.0) if rule_weight is None else rule_weight)
        # calibrated on several cameras at training time: p -> softmax(log p / T), before the rule's vote
        self.temperature = float(meta.get("temperature", 1.0))
        if not 0.0 <= self.rule_weight < 1.0:
            raise ModelError(f"rule_weight must be in 0..1 (1 excluded), got {self.rule_weight}")
        self.rule = None
        self.batch_size = batch_size
        self._lock = threading.Lock()
        probe = self._run(np.zeros((1, self.input_size, self.input_size, 3), np.float32))
        if probe.ndim != 2 or probe.shape[1] != len(self.labels):  # before the rule: the count is the problem
            raise ModelError(
                f"labels file {label_file} has {len(self.labels)} labels but model "
                f"{self.model_file} gives {probe.shape[-1]} outputs")
        if not 1 <= self.top_k <= len(self.labels):  # the same rule as the HTTP API's ?top_k
            raise ModelError(f"top_k must be from 1 to {len(self.labels)} (the number of labels in "
                             f"{label_file}), got {top_k}")
        if self.rule_weight > 0:
            try:
                self.rule = HSVRule(self.labels)
            except ValueError as e:
                raise ModelError(f"rule_weight {self.rule_weight} with labels file {label_file}: {e}") from e

    @classmethod
    def from_config(cls, cfg) -> "ColorClassifier":
        return cls(cfg.model_file, cfg.label_file, cfg.input_layer, cfg.output_layer,
                   tuple(cfg.classifier_input_size), cfg.top_k, cfg.unknown_threshold,
                   cfg.threads, cfg.batch_size, cfg.rule_weight)

    @property
    def name(self) -> str:
        return f"{self.model_file.parent.name}/{self.model_file.name}"

    def _run(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self.runtime(x), dtype=np.float32)

    def predict_proba(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops of any size -> (N, C) probabilities, in batched calls.

        With a ``rule_weight`` w > 0 the answer is (1 - w) x the model's probabilities + w x
        the colour rule's one-hot vote (:mod:`stream.rule`): still a distribution over the labels.
        """
        return self._predict(crops)[0]

    def _predict(self, crops: Sequence[np.ndarray]) -> Tuple[np.ndarray, List[np.ndarray]]:
        """(probabilities, the thumbnail of each crop that the model and the rule read)."""
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), np.float32), []
        for i, c in enumerate(crops):
            if not isinstance(c, np.ndarray) or c.ndim != 3 or c.shape[2] != 3 or min(c.shape[:2]) < 1:
                shape = getattr(c, "shape", type(c).__name__)
                raise ValueError(f"crop {i} is not a BGR image with pixels (shape {shape}); for boxes on a "
                                 "frame use classify_boxes, which clips them to the frame")
        thumbs = [thumbnail(c, self.input_size) if c.ndim == 3 and c.shape[2] == 3 else c for c in crops]
        out = []
        for i in range(0, len(thumbs), self.batch_size):
            batch = preprocess.scale(preprocess.to_batch(thumbs[i:i + self.batch_size], self.input_size))
            out.append(self._run(batch))
        probs = np.concatenate(out)
        if self.temperature != 1.0:
            probs = soften(probs, self.temperature)
        if self.rule is not None:
            probs = mix(probs, self.rule.predict_proba(thumbs), self.rule_weight)
        return probs.astype(np.float32, copy=False), thumbs

    def top(self, probs: np.ndarray, k: Optional[int] = None) -> List[TopK]:
        """(N, C) probabilities -> N lists of the k best (label, prob), best first."""
        k = k or self.top_k
        if not 1 <= k <= len(self.labels):
            raise ValueError(f"top_k must be from 1 to {len(self.labels)} (the number of labels), got {k}")
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [tuple((self.labels[j], float(p[j])) for j in row) for p, row in zip(probs, order)]

    def decide(self, probs: np.ndarray) -> List[str]:
        """The colour per crop, or ``"unknown"`` when its top probability is below the threshold."""
        best = probs.argmax(axis=1)
        return [self.labels[j] if p[j] >= self.unknown_threshold else UNKNOWN for p, j in zip(probs, best)]

    def classify(self, crops: Sequence[np.ndarray], k: Optional[int] = None) -> List[TopK]:
        """Top-k (colour, prob) for each crop, in one batched pass."""
        return self.top(self.predict_proba(crops), k)

    def classify_cars(self, image: np.ndarray, cars: Cars) -> Cars:
        """``cars`` on ``image`` clipped to it (boxes with nothing inside dropped), with each crop's colours.

        The colours are ``Cars.crop_top`` (top-k) and ``Cars.crop_color`` (the
        decision, ``unknown`` below ``unknown_threshold``); ``Cars.crop_sharpness``
        is each crop's sharpness, from the same thumbnail (for ``CarVotes``' crop quality).
        """
        cars, _ = clip(cars, image.shape[1], image.shape[0])
        if len(cars) == 0:
            return cars
        crops = [image[y1:y2, x1:x2] for x1, y1, x2, y2 in cars.xyxy.tolist()]
        probs, thumbs = self._predict(crops)
        return cars.with_crop_colors(self.top(probs), self.decide(probs), [sharpness(t) for t in thumbs])

    def classify_boxes(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> Cars:
        """The colours of the cars at ``boxes`` ([x1, y1, x2, y2] pixels, clipped to ``image``)."""
        return self.classify_cars(image, Cars(to_pixels(np.asarray(boxes, np.float64).reshape(-1, 4))))
