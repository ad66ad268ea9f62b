"""Shared fixtures: a synthetic traffic clip, a small Keras colour model in three formats.

Everything is generated in a temporary folder once per session; nothing is downloaded.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
from _shared import DATASET, SHARED  # noqa: E402,F401  (re-exported: one place for ../shared)
LABELS = ["white", "gray", "black", "red", "blue", "green", "yellow", "orange", "brown", "purple"]

# Cars of the synthetic clip: BGR colour, size, start x, y, speed (px/frame).
CLIP_CARS = [((40, 40, 210), (90, 50), -60, 60, 9),
             ((200, 90, 20), (110, 60), 700, 190, -7),
             ((245, 245, 245), (80, 45), 100, 280, 4)]
CLIP_SIZE = (640, 360)
CLIP_FPS = 30.0
CLIP_FRAMES = 45


def wait_for(cond, timeout: float, what: str, poll: float = 0.05) -> None:
    """Poll ``cond()`` until it is true; an AssertionError naming ``what`` after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def clip_boxes(index: int):
    """True [x1, y1, x2, y2] boxes of the synthetic clip at frame ``index`` (unclipped)."""
    out = []
    for _, (w, h), x0, y, v in CLIP_CARS:
        x = x0 + v * index
        out.append([x, y, x + w, y + h])
    return out


def write_clip(path: Path, frames: int = CLIP_FRAMES, size=CLIP_SIZE, fps: float = CLIP_FPS) -> Path:
    """A road-like background with coloured car-like shapes driving across; frame number drawn in."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.dstack([60 + 40 * yy / h, 70 + 30 * xx / w, 60 + 20 * yy / h]).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        img = bg.copy()
        for (color, _, _, _, _), (x1, y1, x2, y2) in zip(CLIP_CARS, clip_boxes(i)):
            cv2.rectangle(img, (x1, y1), (x2, y2), color, -1)
            cv2.rectangle(img, (x1 + 10, y1 + 8), (x2 - 10, y1 + 18), (50, 50, 50), -1)  # windscreen
        cv2.putText(img, str(i), (10, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        writer.write(img)
    writer.release()
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "traffic.mp4")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A small random-weight Keras CNN saved as .keras, frozen .pb (input_1 -> softmax/Softmax) and .onnx."""
    import keras

    from stream.training.export import export_onnx, freeze_pb

    d = tmp_path_factory.mktemp("model")
    keras.utils.set_random_seed(7)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.DepthwiseConv2D(3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(LABELS)),
        keras.layers.Softmax(),
    ])
    # Non-trivial batch-norm statistics, so the formats must really agree.
    bn = model.layers[1]
    bn.set_weights([w + np.random.default_rng(0).normal(0, 0.3, w.shape).astype("float32") for w in bn.get_weights()])
    paths = {"keras": d / "model.keras", "pb": d / "model.pb", "onnx": d / "model.onnx"}
    model.save(paths["keras"])
    freeze_pb(model, paths["pb"])
    export_onnx(model, paths["onnx"])
    labels = d / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    paths["labels"] = labels
    return paths


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory, tiny_model) -> Path:
    """A config.yaml using the tiny ONNX model."""
    d = tmp_path_factory.mktemp("config")
    p = d / "config.yaml"
    p.write_text(f"model_file: {tiny_model['onnx']}\nlabel_file: {tiny_model['labels']}\n"
                 "classifier_input_size: 32\ndetector: none\n")  # the whole frame is one car
    return p


def carcolor(*args, timeout=120, **kw) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess."""
    kw.setdefault("cwd", ROOT)
    return subprocess.run([sys.executable, "-m", "stream", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
