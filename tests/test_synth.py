"""carcolor synth: scene sampling, the camera/detector 'develop' step, and real Blender renders."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from stream.training import synth as S

from _shared import SHARED  # noqa: E402

ASSETS = SHARED / "assets" / "render"


def test_scene_is_a_pure_function_of_seed_and_index(tmp_path):
    a = S.sample_scene(7, 3, ["gray", "red"], ASSETS, tmp_path)
    b = S.sample_scene(7, 3, ["gray", "red"], ASSETS, tmp_path)
    c = S.sample_scene(8, 3, ["gray", "red"], ASSETS, tmp_path)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["scene"] != c["scene"] and a["views"][0]["camera"] != c["views"][0]["camera"]
    # one scene, one view per label, each with its own paint and camera
    assert [v["label"] for v in a["views"]] == ["gray", "red"]
    assert a["views"][0]["camera"] != a["views"][1]["camera"]
    assert a["views"][1]["paint"]["label"] == "red"


@pytest.mark.parametrize("label", S.LABELS)
def test_paint_shades_stay_in_the_colour_a_person_would_name(label):
    import colorsys

    rng = np.random.default_rng(0)
    for _ in range(200):
        p = S.sample_paint(rng, label)
        h, s, v = colorsys.rgb_to_hsv(*p["srgb"])
        assert p["label"] == label
        if label == "white":
            assert v >= 0.8 and s <= 0.1
        elif label == "black":
            assert v <= 0.08
        elif label == "gray":
            assert 0.19 <= v <= 0.76 and s <= 0.07
        else:
            assert s >= 0.14, (label, p)
        assert 0 <= p["metallic"] <= 1 and 0 < p["roughness"] < 1


def _scene_hdr(albedo_car, light):
    """A flat 'render': road of albedo 0.1 with a car patch, under ``light``."""
    img = np.full((60, 80, 3), 0.1 * light, np.float32)
    img[20:40, 25:55] = albedo_car * light
    return img


def test_exposure_is_metered_on_the_background_not_on_the_car():
    p = {"key": 0.18, "ev_jitter": 0.0, "awb_strength": 0.0, "tone": "plain", "saturation": 1.0,
         "margin": [0.05] * 4, "short_side": 100, "blur": 0.0, "noise": 0.0, "jpeg": 0}
    box = (25, 20, 55, 40)
    rng = np.random.default_rng(0)
    dim_white = S.develop(_scene_hdr(0.8, 0.05), box, p, rng)
    bright_white = S.develop(_scene_hdr(0.8, 20.0), box, p, rng)
    gray = S.develop(_scene_hdr(0.25, 20.0), box, p, rng)
    # the same car under any light comes out the same; a gray car stays darker than a white one
    centre = (slice(8, 14), slice(12, 20))
    assert abs(int(dim_white[centre].mean()) - int(bright_white[centre].mean())) <= 2
    assert bright_white[centre].mean() > gray[centre].mean() + 60


def test_develop_crops_the_box_with_its_margin_and_downscales():
    p = {"key": 0.18, "ev_jitter": 0.0, "awb_strength": 1.0, "tone": "filmic", "saturation": 1.0,
         "margin": [0.1, 0.1, 0.1, 0.1], "short_side": 10, "blur": 0.5, "noise": 2.0, "jpeg": 60}
    crop = S.develop(_scene_hdr(0.5, 1.0), (25, 20, 55, 40), p, np.random.default_rng(1))
    assert crop.dtype == np.uint8 and crop.shape[2] == 3
    assert min(crop.shape[:2]) == 10


def test_missing_assets_is_a_clear_error(tmp_path):
    with pytest.raises(S.SynthError, match="render assets not found"):
        S.synth(tmp_path / "out", 1, assets=tmp_path / "nothing")


@pytest.mark.skipif(shutil.which("blender") is None, reason="Blender is not installed (scripts/install-system-deps.sh)")
@pytest.mark.skipif(not (ASSETS / "hdri").is_dir(), reason=f"needs ../shared/assets/render beside the clone ({ASSETS} not found)")
def test_blender_renders_crops_with_a_manifest_and_resumes(tmp_path):
    out = tmp_path / "renders"
    manifest = S.synth(out, 3, seed=5, workers=1, assets=ASSETS, samples=2, per_job=3)
    rows = list(csv.DictReader(open(manifest)))
    assert 1 <= len(rows) <= 3                       # a car cut by the frame edge is dropped
    for r in rows:
        img = S.cv2.imread(str(out / r["path"]))
        assert img is not None and img.shape[2] == 3 and min(img.shape[:2]) >= 8
        assert r["colour"] in S.LABELS and r["colour"] == Path(r["path"]).parent.name
        params = json.loads(r["params"])
        assert params["view"]["id"] == r["id"] and "camera" in params["view"] and "develop" in params["view"]
        assert params["hdri"] == r["hdri"] and "ground" in params and "car" in params
        # the crop is not a flat colour: a car and its surroundings
        assert img.std() > 3
    # same call again: nothing to do, manifest unchanged
    before = manifest.read_text()
    S.synth(out, 3, seed=5, workers=1, assets=ASSETS, samples=2, per_job=3)
    assert manifest.read_text() == before
    assert not list((out / "hdr").glob("*.hdr"))      # linear renders are intermediate files


def test_cli_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    for argv, message in ((["--count", "0"], "--count must be at least 1"),
                          (["--assets", str(tmp_path)], "render assets not found")):
        proc = subprocess.run([sys.executable, "-m", "stream", "synth", "--out", str(tmp_path / "o"), *argv],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_a_larger_count_extends_the_set_and_never_reshuffles_it():
    small = S.colour_schedule(300, 0, len(S.LABELS), S.DEFAULT_SHARE)
    large = S.colour_schedule(900, 0, len(S.LABELS), S.DEFAULT_SHARE)
    assert (large[:300] == small).all()
    share = np.bincount(large, minlength=len(S.LABELS)) / 900
    assert abs(share[S.LABELS.index("gray")] - 0.18) < 0.05 and share.min() > 0
