"""Training and evaluation code paths on a tiny generated data set (one short run, no teacher)."""
from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from stream.dataset import LABELS, DataError, canonical_label, list_samples

BGR = {"white": (235, 235, 235), "gray": (128, 128, 128), "black": (20, 20, 20), "red": (30, 30, 200),
       "blue": (200, 60, 30), "green": (40, 170, 40), "yellow": (30, 220, 230), "orange": (20, 130, 240),
       "brown": (40, 70, 110), "purple": (150, 40, 140)}


def _car(colour: str, rng: np.random.Generator) -> np.ndarray:
    img = np.full((60, 80, 3), (110, 115, 112), np.uint8)  # road
    img += rng.integers(0, 20, img.shape, dtype=np.uint8)
    body = np.array(BGR[colour], np.int32) + rng.integers(-15, 15, 3)
    cv2.rectangle(img, (18, 14), (62, 46), tuple(int(c) for c in np.clip(body, 0, 255)), -1)
    return img


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for colour in LABELS:
        (root / colour).mkdir()
        for i in range(14):
            cv2.imwrite(str(root / colour / f"{colour}{i:02d}.jpg"), _car(colour, rng))
    return root


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory, capsys_module=None):
    from stream.train import main

    out = tmp_path_factory.mktemp("models") / "tiny"
    argv = ["--data", str(tiny_data), "--out", str(out), "--teacher", "none", "--sweep", "16:4",
            "--views", "1", "--passes", "1", "--batch", "32", "--threads", "2"]
    return out, main, argv


def test_train_writes_every_artefact_and_evaluate_reproduces_it(trained, capsys, tmp_path):
    out, main, argv = trained
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for name in ("model.keras", "model.onnx", "labels.txt", "model.json", "MODEL_CARD.md", "confusion.png",
                 "coverage.png", "metrics.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not (out / ".work").exists()
    assert (out / "labels.txt").read_text().split() == list(LABELS)
    meta = json.loads((out / "model.json").read_text())
    assert meta["input_size"] == 16 and meta["labels"] == list(LABELS) and meta["input_range"] == [-1, 1]
    assert 0 <= meta["unknown_threshold"] <= 1 and meta["architecture"] and "--data" in meta["trained_with"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "Zenodo record 6634554" in card and "HSV rule" in card and "Robustness" in card
    trained_metrics = json.loads((out / "metrics.json").read_text())["test"]
    line = re.search(r"top-1 (\S+)\s+top-2 (\S+)\s+macro-F1 (\S+)", printed)
    assert line and float(line.group(1)) == pytest.approx(trained_metrics["top1"], abs=5e-5)

    from stream.evaluate import main as evaluate

    eval_out = tmp_path / "eval"
    assert evaluate(["--data", str(trained_metrics_dir(argv)), "--model", str(out), "--split", "test",
                     "--out", str(eval_out)]) == 0
    again = json.loads((eval_out / "metrics.json").read_text())
    assert (eval_out / "confusion.png").is_file()
    for key in ("n", "top1", "top2", "macro_f1", "confusion"):
        assert again[key] == trained_metrics[key], key
    assert re.search(r"top-1 (\S+)", capsys.readouterr().out).group(1) == line.group(1)

    # a .keras model evaluates too, with the same predictions up to float noise
    assert evaluate(["--data", str(trained_metrics_dir(argv)), "--model", str(out / "model.keras"),
                     "--split", "test", "--out", str(tmp_path / "k")]) == 0
    assert json.loads((tmp_path / "k" / "metrics.json").read_text())["n"] == trained_metrics["n"]


def trained_metrics_dir(argv):
    return argv[argv.index("--data") + 1]


def test_original_labels_fold_into_the_ten():
    from stream.evaluate import evaluate_classifier

    class Original:  # the classifier protocol, with the original's label names
        labels = ["Silver", "beige", "Bordeaux", "violet", "tartan", "White"]

        def predict_proba(self, crops):
            return np.eye(6, dtype=np.float32)[[0, 1, 2, 3, 4, 5]]

    y = np.array([LABELS.index(c) for c in ("gray", "brown", "red", "purple", "green", "white")])
    m, probs = evaluate_classifier(Original(), [None] * 6, y)
    assert m["top1"] == pytest.approx(5 / 6)  # 'tartan' maps to nothing: counted wrong
    assert probs.shape == (6, 10)
    assert canonical_label("GOLDEN") == "brown" and canonical_label("grey") == "gray"


def test_bad_inputs_give_one_clear_line(tmp_path, capsys):
    from stream.evaluate import main as evaluate
    from stream.train import main as train

    assert evaluate(["--data", str(tmp_path / "nope")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "data folder not found" in err

    (tmp_path / "empty").mkdir()
    assert train(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "m")]) != 0
    assert "no images" in capsys.readouterr().err

    bad = tmp_path / "bad" / "red"
    bad.mkdir(parents=True)
    (bad / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot read image"):
        from stream.dataset import load_split
        load_split(tmp_path / "bad", "all")
    model = tmp_path / "m.xyz"
    model.write_bytes(b"?")
    (tmp_path / "labels.txt").write_text("red\n")
    assert evaluate(["--data", str(tmp_path / "bad"), "--model", str(model),
                     "--labels", str(tmp_path / "labels.txt")]) != 0
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_folder_without_split_dirs_is_split_deterministically(tiny_data):
    parts = {s: {x.path for x in list_samples(tiny_data, s)} for s in ("train", "val", "test")}
    assert not (parts["train"] & parts["test"]) and not (parts["val"] & parts["test"])
    assert sum(map(len, parts.values())) == len(list_samples(tiny_data)) == 140
