"""The library's front (stream/__init__.py, stream/api.py): the README's example, and the traps it removes."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import stream
from stream.cars import CarVotes
from stream.classify import ColorClassifier
from stream.config import TrackConfig
from stream.labels import LABELS

from conftest import ROOT, carcolor

DEMO = ROOT / "demo" / "motorway-960x540.mp4"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "no ```python block in the README"
    return blocks[0]


def test_the_readme_example_runs_on_the_demo_clip():
    code = readme_example()
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 6
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    cars = [ln for ln in lines if re.match(r"car \d+ at +\d+\.\d+s: \w+ \(\d+%\)$", ln)]
    assert 10 <= len(cars) <= 26, lines
    assert lines[-1].startswith("[Colors(color='") and lines[-1].count("Colors(") == 1


def test_the_stream_reports_the_same_cars_as_the_cli(tmp_path):
    """Finishing the source flushes the tracks still open: the last cars come without any call."""
    log = tmp_path / "colors.jsonl"
    res = carcolor("run", "--source", DEMO, "--config", ROOT / "demo" / "config.yaml", "--end", "3", "--log", log,
                   "--quiet")
    assert res.returncode == 0, res.stderr
    cli = [ln for ln in log.read_text().splitlines() if '"event":"car"' in ln]
    with stream.open(DEMO, config=ROOT / "demo" / "config.yaml", end=3) as video:
        cars = list(video.cars())
        assert video.stages, "no tracking with the demo config"
    assert len(cars) == len(cli) >= 3
    assert [stream.to_json(c) for c in cars] == [json.loads(x) for x in cli]


def test_a_stream_is_read_once():
    video = stream.open(DEMO, end=0.2)
    assert len(list(video.records())) >= 5
    with pytest.raises(RuntimeError, match="read once"):
        list(video.records())


def test_classifier_clips_its_boxes_and_refuses_empty_crops():
    clf = ColorClassifier.from_config(stream.load_config())
    image = np.full((100, 200, 3), (0, 0, 200), np.uint8)
    cars = clf.classify_boxes(image, [[-50, -20, 80, 60], [150, 50, 400, 300], [300, 300, 400, 400]])
    assert cars.xyxy.tolist() == [[0, 0, 80, 60], [150, 50, 200, 100]]  # clipped; the one outside dropped
    assert len(cars.crop_color) == len(cars.crop_top) == 2
    with pytest.raises(ValueError, match="crop 1 is not a BGR image with pixels.*classify_boxes"):
        clf.predict_proba([image, image[50:20, 10:5]])


def test_the_vote_takes_top_k_from_the_classifier_and_its_own_unknown_threshold():
    clf = ColorClassifier.from_config(stream.load_config().override(top_k=2))
    votes = CarVotes(TrackConfig(), clf)
    assert votes.top_k == 2 and votes.unknown_threshold == TrackConfig().unknown_threshold == 0.3
    assert clf.unknown_threshold > 0.3  # one crop needs more than a vote over a track's crops
    # null: the classifier's per-crop threshold, as before
    assert CarVotes(TrackConfig(unknown_threshold=None), clf).unknown_threshold == clf.unknown_threshold
    assert CarVotes(TrackConfig(), clf, unknown_threshold=0.7).unknown_threshold == 0.7
    assert CarVotes(TrackConfig(unknown_threshold=0.9), clf).unknown_threshold == clf.unknown_threshold  # capped


def test_classify_images_paths_and_arrays():
    out = stream.classify_images([ROOT / "demo" / "car.jpg", np.full((40, 60, 3), (200, 60, 10), np.uint8)])
    assert len(out) == 2 and all(len(o.colors) == 3 for o in out)
    assert out[1].colors[0][0] == "blue" and out[0].color in (*LABELS, "unknown")
