"""``OnnxDetector`` (``detector: onnx``): cars from a user-supplied YOLO-family ONNX model,
in the ultralytics export layout ``(1, 4+C, N)`` or the YOLOv5 layout
``(1, N, 5+C)``; letterbox preprocessing, confidence threshold, class filter
(car, truck, bus by default; names from a labels file, the model's metadata or
COCO's when the model has 80 classes), NMS. ``decode`` is the pure part.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np

from ..config import OnnxDetectorConfig
from ..errors import ModelError
from ..geometry import clip_boxes, nms, to_pixels
from ..labels import load_labels
from ..record import Cars, Frame

COCO = ("person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
        "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella "
        "handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard "
        "surfboard tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange "
        "broccoli carrot hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop "
        "mouse remote keyboard cell_phone microwave oven toaster sink refrigerator book clock vase scissors "
        "teddy_bear hair_drier toothbrush")
COCO = tuple(n.replace("_", " ") for n in COCO.split())  # the 80 classes of ultralytics' COCO models



def letterbox(image: np.ndarray, size: Tuple[int, int], pad_value: int = 114) -> Tuple[np.ndarray, float, Tuple[float, float]]:
    """``image`` scaled to fit ``size`` (w, h) keeping its aspect, centred on grey padding.

    Returns (canvas, ratio, (pad_x, pad_y)); a model box maps back as
    ``(x - pad_x) / ratio``.
    """
    h, w = image.shape[:2]
    tw, th = size
    r = min(tw / w, th / h)
    nw, nh = int(round(w * r)), int(round(h * r))
    px, py = (tw - nw) / 2, (th - nh) / 2
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else image
    top, left = int(round(py - 0.1)), int(round(px - 0.1))
    canvas = cv2.copyMakeBorder(resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT,
                                value=(pad_value, pad_value, pad_value))
    return canvas, r, (float(left), float(top))


def decode(output: np.ndarray, num_classes: int, layout: str = "auto") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A YOLO output tensor -> (xyxy float (N, 4) in model pixels, score (N,), class (N,)).

    ``layout``: "ultralytics" ``(1, 4+C, N)`` rows cx, cy, w, h, class scores;
    "yolov5" ``(1, N, 5+C)`` columns cx, cy, w, h, objectness, class scores
    (score = objectness x class score); "auto" picks by shape.
    """
    out = np.asarray(output, np.float32)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise ModelError(f"detector output must have batch 1, got shape {out.shape}")
        out = out[0]
    if out.ndim != 2:
        raise ModelError(f"detector output must be (1, 4+C, N) or (1, N, 5+C), got shape {output.shape}")
    if layout == "auto":
        if out.shape[0] == 4 + num_classes and out.shape[1] != 5 + num_classes:
            layout = "ultralytics"
        elif out.shape[1] == 5 + num_classes and out.shape[0] != 4 + num_classes:
            layout = "yolov5"
        elif out.shape[0] == 4 + num_classes:
            layout = "ultralytics"
        else:
            raise ModelError(f"detector output shape {tuple(output.shape)} fits neither (1, 4+{num_classes}, N) "
                             f"nor (1, N, 5+{num_classes}); check the labels or set onnx_detector.layout")
    if layout == "ultralytics":
        if out.shape[0] != 4 + num_classes:
            raise ModelError(f"ultralytics layout needs (1, 4+{num_classes}, N), got {tuple(output.shape)}")
        rows = out.T
        cls_scores = rows[:, 4:]
    else:
        if out.shape[1] != 5 + num_classes:
            raise ModelError(f"yolov5 layout needs (1, N, 5+{num_classes}), got {tuple(output.shape)}")
        rows = out
        cls_scores = rows[:, 5:] * rows[:, 4:5]
    cls = cls_scores.argmax(axis=1) if num_classes else np.zeros(len(rows), np.int64)
    score = cls_scores[np.arange(len(rows)), cls] if num_classes else np.zeros(len(rows), np.float32)
    cx, cy, bw, bh = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return xyxy, score.astype(np.float32), cls.astype(np.int64)


def _metadata_names(session) -> Optional[List[str]]:
    """Class names from an ultralytics export's metadata (``names: {0: 'person', ...}``)."""
    meta = session.get_modelmeta().custom_metadata_map or {}
    raw = meta.get("names")
    if not raw:
        return None
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    return None


class OnnxDetector:
    """Cars from a YOLO-family ONNX model (see the module docstring)."""

    def __init__(self, cfg: OnnxDetectorConfig, threads: int = 0):
        import onnxruntime as ort

        self.cfg = cfg
        if cfg.model is None:
            raise ModelError("detector: onnx needs onnx_detector.model (a YOLO .onnx file) in the config")
        path = Path(cfg.model)
        if not path.is_file():
            raise ModelError(f"detector model not found: {path}")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own error types
            raise ModelError(f"cannot load detector model {path}: {str(e).splitlines()[0]}") from e
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        if len(shape) != 4:
            raise ModelError(f"detector input must be NCHW, {path} takes {shape}")
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            self.input_size = (int(shape[3]), int(shape[2]))
        else:
            self.input_size = tuple(cfg.input_size)
        out_shape = self.session.get_outputs()[0].shape
        if cfg.labels is not None:
            self.names = load_labels(cfg.labels)
        else:
            self.names = _metadata_names(self.session)
        if self.names is None:
            c = self._classes_from_shape(out_shape)
            if c == len(COCO):
                self.names = list(COCO)
            else:
                raise ModelError(f"no class names for {path}: give onnx_detector.labels (one name per line)")
        self.num_classes = len(self.names)
        wanted = [c.lower() for c in cfg.classes]
        lower = [n.lower() for n in self.names]
        missing = [c for c in wanted if c not in lower]
        if missing and len(missing) == len(wanted):
            raise ModelError(f"none of the classes {cfg.classes} is among the model's: {', '.join(self.names)}")
        self.keep_classes = np.array([n in wanted for n in lower], bool) if wanted else np.ones(len(lower), bool)

    def _classes_from_shape(self, shape) -> Optional[int]:
        dims = [d for d in shape[1:] if isinstance(d, int)]
        if self.cfg.layout == "yolov5" and len(shape) == 3 and isinstance(shape[2], int):
            return shape[2] - 5
        if len(shape) == 3 and isinstance(shape[1], int):
            return shape[1] - 4
        return dims[0] - 4 if dims else None

    def preprocess(self, image: np.ndarray) -> Tuple[np.ndarray, float, Tuple[float, float]]:
        canvas, r, pad = letterbox(image, self.input_size)
        x = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), r, pad

    def detect(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(xyxy float in frame pixels, score, class index) after threshold, class filter and NMS."""
        x, r, (px, py) = self.preprocess(image)
        out = self.session.run(None, {self.input_name: x})[0]
        xyxy, score, cls = decode(out, self.num_classes, self.cfg.layout)
        ok = (score >= self.cfg.confidence) & self.keep_classes[cls]
        xyxy, score, cls = xyxy[ok], score[ok], cls[ok]
        xyxy = (xyxy - [px, py, px, py]) / r
        h, w = image.shape[:2]
        xyxy, _ = clip_boxes(xyxy, w, h)
        if len(xyxy):
            if self.cfg.agnostic_nms:
                keep = nms(xyxy, score, self.cfg.iou)
            else:  # per class: offset boxes so classes never overlap
                offset = cls[:, None].astype(np.float64) * (max(w, h) + 1)
                keep = nms(xyxy + offset, score, self.cfg.iou)
            keep = keep[: self.cfg.max_detections]
            xyxy, score, cls = xyxy[keep], score[keep], cls[keep]
        return xyxy, score, cls

    def __call__(self, frame: Frame) -> Cars:
        xyxy, score, cls = self.detect(frame.image)
        if not len(xyxy):
            return Cars.empty()
        return Cars(to_pixels(xyxy), score=score, name=tuple(self.names[c] for c in cls))


def build(cfg) -> OnnxDetector:
    """The registry's builder: ``detector: onnx`` with its ``onnx_detector`` section."""
    return OnnxDetector(cfg.onnx_detector, threads=cfg.threads)
