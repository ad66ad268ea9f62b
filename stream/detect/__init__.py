"""Built-in car detectors: each is a box source, ``frame -> Cars``, like ``boxes.py``'s.

One module per detector, each with a ``build(cfg)`` that constructs it from its
own config section; ``DETECTORS`` maps the config's ``detector:`` names to those
modules (imported only when that detector is asked for, so a detector's heavy
runtime is never loaded by the others).

- ``motion`` (:mod:`stream.detect.motion`): background subtraction, fixed camera.
- ``onnx`` (:mod:`stream.detect.onnx`): a YOLO-family ONNX model you supply.
- ``vehicle`` (:mod:`stream.detect.vehicle`): the shipped OpenVINO vehicle detector (the default).

    >>> sorted(DETECTORS)
    ['motion', 'onnx', 'vehicle']
    >>> build_detector("radar", None)
    Traceback (most recent call last):
    ...
    stream.errors.ConfigError: unknown detector 'radar': valid detectors are motion, onnx, vehicle
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict

from ..errors import ConfigError
from ..record import Cars, Frame
from .motion import MotionDetector
from .onnx import COCO, OnnxDetector, decode, letterbox

Detector = Callable[[Frame], Cars]

# detector name in the config -> module with ``build(cfg) -> Detector``
DETECTORS: Dict[str, str] = {
    "motion": "stream.detect.motion",
    "onnx": "stream.detect.onnx",
    "vehicle": "stream.detect.vehicle",
}


def build_detector(name: str, cfg) -> Detector:
    """The detector ``name`` built from its section of ``cfg`` (a ``Config``)."""
    if name not in DETECTORS:
        raise ConfigError(f"unknown detector '{name}': valid detectors are {', '.join(sorted(DETECTORS))}")
    return importlib.import_module(DETECTORS[name]).build(cfg)


__all__ = ["COCO", "DETECTORS", "Detector", "MotionDetector", "OnnxDetector", "build_detector", "decode",
           "letterbox"]
