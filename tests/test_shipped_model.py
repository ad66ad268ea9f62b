"""The shipped default colour model (models/default) on real photos from the test split."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from stream.labels import LABELS

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "default"
from _shared import SHARED, TEST_SPLIT as TEST_IMAGES, needs_shared  # noqa: E402

# Test-split photos the shipped model gets right with a wide margin (top-1 probability >= 0.8 and >= 0.6 above the runner-up when the
# model was shipped; asserted below with slack: >= 0.6 and >= 0.4 above the runner-up). Picked after
# training, among confidently correct ones, two per common colour; not used for any choice in training.
# (Picked for the first shipped model; the current one, CNN + colour rule, still clears the same bar.)
PHOTOS = {
    "white": ["car-car190.jpg", "minibus-minibus787.jpg"],
    "gray": ["car-car183.jpg", "car-car757.jpg"],
    "black": ["car-car402.jpg", "pickup-pickup24.jpg"],
    "red": ["car-car445.jpg", "truck-truck150.jpg"],
    "blue": ["car-car754.jpg", "minibus-minibus800.jpg"],
}


def _classifier():
    from stream.classify import ColorClassifier

    meta = json.loads((MODEL / "model.json").read_text())
    return ColorClassifier(MODEL / "model.onnx", MODEL / "labels.txt", input_size=meta["input_size"]), meta


def test_shipped_files_fit_the_contract():
    meta = json.loads((MODEL / "model.json").read_text())
    assert (MODEL / "labels.txt").read_text().split() == list(LABELS) == meta["labels"]
    assert meta["input_range"] == [-1, 1] and 0 < meta["unknown_threshold"] < 1
    total = sum(p.stat().st_size for p in (ROOT / "models").rglob("*") if p.is_file())
    assert total < 20 * 2**20
    assert 0.05 <= meta["temperature"] <= 20
    for name in ("MODEL_CARD.md", "confusion.png", "reliability.png", "renders.png", "metrics.json", "model.keras"):
        assert (MODEL / name).is_file(), name


@needs_shared
def test_shipped_model_gets_real_photos_right_with_margin():
    clf, meta = _classifier()
    assert clf.input_size == meta["input_size"]
    files = [(colour, TEST_IMAGES / colour / name) for colour, names in PHOTOS.items() for name in names]
    assert files
    probs = clf.predict_proba([cv2.imread(str(p)) for _, p in files])
    for (colour, path), p in zip(files, probs):
        order = np.argsort(-p)
        assert clf.labels[order[0]] == colour, (path.name, clf.labels[order[0]])
        assert p[order[0]] >= 0.6 and p[order[0]] - p[order[1]] >= 0.4, (path.name, p.round(3).tolist())
    assert clf.decide(probs) == [c for c, _ in files] or clf.unknown_threshold == 0


def test_keras_and_onnx_copies_agree():
    import keras

    from stream.preprocess import scale

    clf, meta = _classifier()
    model = keras.saving.load_model(MODEL / "model.keras", compile=False)
    x = scale(np.random.default_rng(0).integers(0, 256, (4, meta["input_size"], meta["input_size"], 3),
                                                dtype=np.uint8))
    np.testing.assert_allclose(model.predict(x, verbose=0), clf.runtime(x), atol=1e-4)


def test_shipped_classifier_on_another_camera():
    """The demo clip's 14 cars labelled by eye (demo/motorway-cars.csv): a camera unlike the training one.

    When shipped: 10 / 14 cars right with the colour rule mixed in, 5 / 14 for the CNN alone (the model
    before, trained without renders: 9 / 14). A guard with one car of slack.
    """
    from stream.classify import ColorClassifier
    from stream.training.evaluate import evaluate_classifier, load_video_boxes, per_car

    crops, y, cars = load_video_boxes(ROOT / "demo" / "motorway-960x540.mp4", ROOT / "demo" / "motorway-cars.csv")
    shipped = ColorClassifier(MODEL / "model.onnx", MODEL / "labels.txt")
    alone = ColorClassifier(MODEL / "model.onnx", MODEL / "labels.txt", rule_weight=0.0)
    assert shipped.rule_weight > 0
    right = {name: per_car(y, evaluate_classifier(c, crops, y)[1], cars)["right"]
             for name, c in (("shipped", shipped), ("alone", alone))}
    assert right["shipped"] >= 9 and right["shipped"] > right["alone"], right


OTHER = SHARED / "datasets" / "other-cameras"


def test_shipped_classifier_on_other_cameras():
    """other-cameras (ten scenes the model never trained on). When shipped: val 72.6%, test 50.0% (the
    model before: 66.1% and 35.7%). Guards with about one crop in twenty of slack."""
    import pytest

    if not (OTHER / "labels.csv").is_file():
        pytest.skip(f"needs ../shared/datasets/other-cameras beside the clone ({OTHER} not found)")
    from stream.training.dataset import load_split

    clf, _ = _classifier()
    top1 = {}
    for split in ("val", "test"):
        crops, y, _ = load_split(OTHER, split)
        top1[split] = float((clf.predict_proba(crops).argmax(1) == y).mean())
    assert top1["val"] >= 0.68 and top1["test"] >= 0.45, top1
