"""ColorClassifier: three model formats agree, batches equal singles, bad models are named."""
import numpy as np
import pytest

from conftest import LABELS
from stream import preprocess
from stream.classify import ColorClassifier, load_labels
from stream.errors import ModelError


def crops(n=7, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(50, 80), (100, 30), (32, 32), (17, 200), (240, 240), (9, 9), (64, 48)]
    return [rng.integers(0, 256, (*shapes[i % len(shapes)], 3), dtype=np.uint8) for i in range(n)]


def test_frozen_graph_keras_and_onnx_agree(tiny_model):
    probs = {k: ColorClassifier(tiny_model[k], tiny_model["labels"]).predict_proba(crops())
             for k in ("keras", "pb", "onnx")}
    assert probs["keras"].shape == (7, len(LABELS))
    np.testing.assert_allclose(probs["pb"], probs["keras"], atol=1e-5)
    np.testing.assert_allclose(probs["onnx"], probs["keras"], atol=1e-5)
    assert np.allclose(probs["keras"].sum(axis=1), 1.0, atol=1e-5)
    # The random model must still tell crops apart, or the comparison proves nothing.
    assert np.ptp(probs["keras"], axis=0).max() > 1e-3


@pytest.mark.parametrize("kind", ["onnx", "keras", "pb"])
def test_batched_equals_one_by_one(tiny_model, kind):
    clf = ColorClassifier(tiny_model[kind], tiny_model["labels"], batch_size=4)
    cs = crops(9)
    batched = clf.predict_proba(cs)
    single = np.concatenate([clf.predict_proba([c]) for c in cs])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_input_size_comes_from_the_model(tiny_model):
    clf = ColorClassifier(tiny_model["onnx"], tiny_model["labels"], input_size=224)
    assert clf.input_size == 32


def test_top_k_sorted_and_decision(tiny_model):
    clf = ColorClassifier(tiny_model["onnx"], tiny_model["labels"], top_k=3)
    probs = clf.predict_proba(crops(3))
    for p, top in zip(probs, clf.top(probs)):
        assert len(top) == 3
        assert [c for c, _ in top] == [LABELS[j] for j in np.argsort(-p)[:3]]
        assert top[0][1] >= top[1][1] >= top[2][1]
    assert clf.decide(probs) == [LABELS[j] for j in probs.argmax(1)]
    strict = ColorClassifier(tiny_model["onnx"], tiny_model["labels"], unknown_threshold=0.99)
    assert strict.decide(probs) == ["unknown"] * 3
    assert len(clf.top(probs, k=len(LABELS))[0]) == len(LABELS)
    with pytest.raises(ValueError, match="top_k must be from 1 to 10"):
        clf.top(probs, k=100)


def test_preprocess_centre_crops_then_resizes():
    img = np.zeros((40, 100, 3), np.uint8)
    img[:, 30:70] = (255, 0, 0)  # a blue (BGR) centre square, red-free borders
    img[:, :30] = (0, 0, 255)
    batch = preprocess.to_batch([img], 8)
    assert batch.shape == (1, 8, 8, 3)
    assert (batch[0, :, :, 2] == 255).all() and (batch[0, :, :, 0] == 0).all()  # RGB order, centre only
    scaled = preprocess.scale(batch)
    assert scaled.dtype == np.float32 and scaled.min() == -1.0 and scaled.max() == 1.0


def test_labels_count_must_match(tiny_model, tmp_path):
    bad = tmp_path / "labels.txt"
    bad.write_text("red\nblue\n")
    with pytest.raises(ModelError, match="2 labels but model .* 10 outputs"):
        ColorClassifier(tiny_model["onnx"], bad)


def test_cp1251_labels(tmp_path):
    p = tmp_path / "l.txt"
    p.write_bytes("белый\nчерный\n".encode("cp1251"))
    assert load_labels(p) == ["белый", "черный"]


@pytest.mark.parametrize("name, content, fragment", [
    ("model.h5", b"\x89HDF\r\n", "unknown model kind"),
    ("model.pb", b"\xff\xd8\xff\xe0 a jpeg, not a graph", "not a TensorFlow frozen graph"),
    ("model.onnx", b"garbage" * 10, "cannot load ONNX model"),
    ("model.keras", b"not a zip", "not a Keras model"),
])
def test_wrong_model_files(tmp_path, tiny_model, name, content, fragment):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ModelError, match=fragment):
        ColorClassifier(p, tiny_model["labels"])


def test_missing_model_and_wrong_tensor_names(tmp_path, tiny_model):
    with pytest.raises(ModelError, match="not found"):
        ColorClassifier(tmp_path / "none.onnx", tiny_model["labels"])
    with pytest.raises(ModelError, match="output_layer 'logits' is not a node"):
        ColorClassifier(tiny_model["pb"], tiny_model["labels"], output_layer="logits")


def _model_with_json(tiny_model, tmp_path, meta):
    """The tiny ONNX model in tmp_path/m with ``meta`` as its model.json (rewritten on each call)."""
    import json
    import shutil

    d = tmp_path / "m"
    d.mkdir(exist_ok=True)
    if not (d / "model.onnx").exists():
        shutil.copy(tiny_model["onnx"], d / "model.onnx")
    (d / "model.json").write_text(json.dumps(meta))
    return d / "model.onnx"


def test_unknown_threshold_from_model_json(tiny_model, tmp_path):
    """null in the config = the model's calibrated threshold; a model without model.json: never unknown."""
    assert ColorClassifier(tiny_model["onnx"], tiny_model["labels"]).unknown_threshold == 0.0
    model = _model_with_json(tiny_model, tmp_path, {"unknown_threshold": 0.42})
    assert ColorClassifier(model, tiny_model["labels"]).unknown_threshold == 0.42
    assert ColorClassifier(model, tiny_model["labels"], unknown_threshold=0.1).unknown_threshold == 0.1
    _model_with_json(tiny_model, tmp_path, {"unknown_threshold": 7})
    with pytest.raises(ModelError, match="unknown_threshold must be a number in 0..1"):
        ColorClassifier(model, tiny_model["labels"])


def test_rule_weight_mixes_the_colour_rule_in(tiny_model, tmp_path):
    """w > 0: probabilities = (1 - w) CNN + w one-hot rule vote, still a distribution; from model.json."""
    from stream.rule import HSVRule

    plain = ColorClassifier(tiny_model["onnx"], tiny_model["labels"])
    assert plain.rule_weight == 0.0
    cs = crops(5) + [np.full((40, 60, 3), (0, 0, 210), np.uint8)]  # the last one: plain red
    p0 = plain.predict_proba(cs)
    mixed = ColorClassifier(tiny_model["onnx"], tiny_model["labels"], rule_weight=0.3)
    p = mixed.predict_proba(cs)
    vote = HSVRule(LABELS).predict_proba(cs)
    np.testing.assert_allclose(p, 0.7 * p0 + 0.3 * vote, atol=1e-6)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert p[-1, LABELS.index("red")] >= 0.3
    # batches equal singles with the rule too
    np.testing.assert_allclose(np.concatenate([mixed.predict_proba([c]) for c in cs]), p, atol=1e-6)

    model = _model_with_json(tiny_model, tmp_path, {"rule_weight": 0.3})
    assert ColorClassifier(model, tiny_model["labels"]).rule_weight == 0.3
    assert ColorClassifier(model, tiny_model["labels"], rule_weight=0).rule_weight == 0.0
    _model_with_json(tiny_model, tmp_path, {"rule_weight": "much"})
    with pytest.raises(ModelError, match="rule_weight must be a number in 0..1"):
        ColorClassifier(model, tiny_model["labels"])


def test_rule_weight_needs_the_rules_colours(tiny_model, tmp_path):
    """A user's own labels (e.g. the original's 14) can't take the ten-colour rule: a clear error."""
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(["silver", "beige", "golden", "bordeaux", "violet", "white", "gray", "black",
                                 "red", "blue"]) + "\n")
    assert ColorClassifier(tiny_model["onnx"], labels).rule is None
    with pytest.raises(ModelError, match="colour rule needs labels"):
        ColorClassifier(tiny_model["onnx"], labels, rule_weight=0.2)
    with pytest.raises(ModelError, match="rule_weight must be in 0..1"):
        ColorClassifier(tiny_model["onnx"], tiny_model["labels"], rule_weight=1.0)


def test_one_thumbnail_per_crop_feeds_the_model_the_rule_and_the_sharpness():
    import cv2

    from stream.cars import crop_quality, sharpness
    from stream.classify import THUMB_SIDE, thumbnail
    from stream.config import load_config
    from stream.record import Cars

    rng = np.random.default_rng(3)
    big = cv2.resize(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8), (900, 600), interpolation=cv2.INTER_NEAREST)
    t = thumbnail(big, 48)
    assert t.shape[:2] == (67, THUMB_SIDE)                     # shrunk once, aspect kept
    assert thumbnail(big[:120, :900], 48).shape[:2] == (48, 360)  # a long crop keeps the model's 48 px
    small = big[:50, :80]
    assert thumbnail(small, 48) is small                        # a small crop is used as it is
    clf = ColorClassifier.from_config(load_config())  # the shipped model and its colour rule
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[100:700, 200:1100] = big
    frame[100:700, 1200:1650] = cv2.GaussianBlur(big, (0, 0), 8)[:, :450]
    cars = clf.classify_cars(frame, Cars(np.array([[200, 100, 1100, 700], [1200, 100, 1650, 700]])))
    assert len(cars.crop_sharpness) == 2 and cars.crop_sharpness[0] > 3 * cars.crop_sharpness[1]
    # the model reads the thumbnail: the same answer as classifying the thumbnail itself
    np.testing.assert_allclose(clf.predict_proba([big]), clf.predict_proba([t]), atol=1e-6)
    # the quality from the thumbnail's sharpness is close to the one measured on the full crop
    box = (200, 100, 1100, 700)
    full, thumb = crop_quality(frame, box), crop_quality(frame, box, cars.crop_sharpness[0])
    assert abs(full - thumb) < 0.05 * full and sharpness(big) > 0
