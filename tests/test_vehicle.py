"""The shipped vehicle detector (OpenVINO) on the real motorway clip; its bad-input errors; every-Nth coasting."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream.config import Config, VehicleConfig
from stream.errors import ModelError
from stream.record import Frame
from stream.detect.vehicle import Coast, VehicleDetector, build
from stream.geometry import iou_matrix

from conftest import ROOT, carcolor

CLIP = ROOT / "demo" / "motorway-960x540.mp4"
HAND = ROOT / "demo" / "motorway-cars.csv"


def frames(first: int, last: int):
    cap = cv2.VideoCapture(str(CLIP))
    out, i = {}, 0
    while i <= last:
        ok, f = cap.read()
        if not ok:
            break
        if i >= first:
            out[i] = f
        i += 1
    cap.release()
    return out


@pytest.fixture(scope="module")
def clip_frames():
    return frames(0, 120)


@pytest.fixture(scope="module")
def detector():
    return VehicleDetector(VehicleConfig())


def hand_boxes(frame: int) -> np.ndarray:
    rows = [r for r in csv.DictReader(HAND.open()) if int(r["frame"]) == frame]
    return np.array([[int(r[k]) for k in ("x0", "y0", "x1", "y1")] for r in rows], np.float64)


def test_finds_the_hand_labelled_cars_and_reshapes_to_the_stream(detector, clip_frames):
    assert detector.input_size(960, 540) == (512, 288)  # 16:9
    assert detector.input_size(640, 480) == (512, 384)  # 4:3
    for f in (40, 60, 100):
        truth = hand_boxes(f)
        xyxy, score = detector.detect(clip_frames[f])
        assert len(truth) and len(xyxy)
        assert (score >= 0.5).all()
        best = iou_matrix(truth, xyxy).max(axis=1)
        assert (best >= 0.5).sum() >= len(truth) - 1, (f, best)  # every hand-labelled car but at most one


def test_nothing_on_an_empty_road_and_the_same_cars_after_an_exposure_change(detector, clip_frames):
    road = clip_frames[0].copy()
    road[:200] = road[300:500]  # the markings and arrows of the empty near road, no car anywhere
    xyxy, _ = detector.detect(road[200:])
    assert len(xyxy) == 0
    image = clip_frames[60]
    base, _ = detector.detect(image)
    for gain in (0.6, 1.5):  # auto exposure stepping down / up
        changed, _ = detector.detect(cv2.convertScaleAbs(image, alpha=gain))
        assert len(changed) >= len(base) - 1
        assert (iou_matrix(base, changed).max(axis=1) >= 0.6).sum() >= len(base) - 1


def test_roi_searches_only_its_part_of_the_frame(clip_frames):
    right = VehicleDetector(VehicleConfig(roi=[[0.6, 0.0], [1.0, 0.0], [1.0, 1.0], [0.6, 1.0]]))
    full, _ = VehicleDetector(VehicleConfig()).detect(clip_frames[100])
    part, _ = right.detect(clip_frames[100])
    assert right.input_size(384, 540)[1] > 512  # the ROI's own (portrait) aspect
    centre = (part[:, 0] + part[:, 2]) / 2
    assert (centre >= 0.6 * 960).all()
    assert ((full[:, 0] + full[:, 2]) / 2 < 0.6 * 960).any()  # the whole frame had cars outside it


def test_every_nth_coasts_boxes_between_detections(clip_frames):
    every = Coast(VehicleDetector(VehicleConfig()), every=3)
    truth = VehicleDetector(VehicleConfig())
    ious = []
    for i in range(40, 76):
        cars = every(Frame(i, i / 30, clip_frames[i]))
        if (i - 40) % 3:
            real, _ = truth.detect(clip_frames[i])
            if len(real) and len(cars):
                ious.extend(iou_matrix(real, cars.xyxy).max(axis=1))
    assert every.runs == 12 and every.frames == 36
    assert np.median(ious) >= 0.7  # the moved-on boxes stay on the cars


def test_a_still_scene_costs_one_network_run(clip_frames):
    coast = Coast(VehicleDetector(VehicleConfig()), every=1, skip_static=True)
    image = clip_frames[10]
    boxes = [coast(Frame(i, i / 30, image)).xyxy for i in range(10)]
    assert coast.runs == 1
    assert all(np.array_equal(b, boxes[0]) for b in boxes)
    coast(Frame(10, 10 / 30, clip_frames[40]))  # the scene changed: the network runs again
    assert coast.runs == 2
    plain = Config.model_validate({"vehicle": {"detect_every": 1, "skip_static": False}})
    assert isinstance(build(plain), VehicleDetector)


def test_bad_detector_files_fail_at_start_with_the_file_named(tmp_path):
    src = Path(VehicleConfig().model)
    with pytest.raises(ModelError, match="not found: .*nope.xml"):
        VehicleDetector(VehicleConfig(model=tmp_path / "nope.xml"))
    with pytest.raises(ModelError, match="expected an OpenVINO IR .xml"):
        VehicleDetector(VehicleConfig(model=tmp_path / "model.onnx"))
    only_xml = tmp_path / "a" / src.name
    only_xml.parent.mkdir()
    shutil.copy(src, only_xml)
    with pytest.raises(ModelError, match=r"weights not found: .*\.bin"):
        VehicleDetector(VehicleConfig(model=only_xml))
    bad = tmp_path / "b" / src.name
    bad.parent.mkdir()
    bad.write_bytes(src.read_bytes()[:5000])  # a truncated download
    shutil.copy(src.with_suffix(".bin"), bad.with_suffix(".bin"))
    with pytest.raises(ModelError, match=f"cannot load vehicle detector {bad}"):
        VehicleDetector(VehicleConfig(model=bad))
    short_bin = tmp_path / "c" / src.name
    short_bin.parent.mkdir()
    shutil.copy(src, short_bin)
    short_bin.with_suffix(".bin").write_bytes(src.with_suffix(".bin").read_bytes()[:1000])
    with pytest.raises(ModelError, match=str(short_bin)):
        VehicleDetector(VehicleConfig(model=short_bin))


def test_an_ir_that_does_not_take_an_image_is_refused(tmp_path):
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 10], np.float32, name="x")
    ov.save_model(ov.Model([ops.relu(x)], [x], "not-a-detector"), str(tmp_path / "vector.xml"))
    with pytest.raises(ModelError, match=r"input must be an image \[N, 3, H, W\]"):
        VehicleDetector(VehicleConfig(model=tmp_path / "vector.xml"))
    img = ops.parameter([1, 3, 64, 64], np.float32, name="image")
    ov.save_model(ov.Model([ops.relu(img)], [img], "not-ssd"), str(tmp_path / "image.xml"))
    with pytest.raises(ModelError, match=r"output must be SSD rows"):
        VehicleDetector(VehicleConfig(model=tmp_path / "image.xml"))


def test_cli_bad_detector_is_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model_file: {ROOT / 'models/default/model.onnx'}\nlabel_file: {ROOT / 'models/default/labels.txt'}\n"
                   f"detector: vehicle\nvehicle:\n  model: {tmp_path / 'missing.xml'}\n")
    res = carcolor("run", "--source", CLIP, "--config", cfg, "--log", tmp_path / "x.jsonl")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == [f"carcolor: error: vehicle detector model not found: {tmp_path / 'missing.xml'}"]


def test_config_picks_the_vehicle_detector():
    from stream.boxes import box_source

    cfg = Config.model_validate({"detector": "vehicle", "vehicle": {"detect_every": 2}})
    det = box_source(cfg)
    assert isinstance(det, Coast) and det.every == 2
    with pytest.raises(ValueError, match="at least 3 points"):
        VehicleConfig(roi=[[0, 0], [1, 1]])


def test_run_with_no_config_finds_and_tracks_the_cars(tmp_path):
    log = tmp_path / "log.jsonl"
    res = carcolor("run", "--source", CLIP, "--end", 4, "--log", log, "--quiet", timeout=300)
    assert res.returncode == 0, res.stderr
    import json

    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    cars = [e for e in lines if e.get("event") == "car"]
    frames = [e for e in lines if "cars" in e]
    assert len(cars) >= 5 and all(e["moving"] for e in cars)  # hand labels: 6 cars pass in these 4 s
    assert max(len(f["cars"]) for f in frames) >= 2
    assert not any(c["box"] == [0, 0, 960, 540] for f in frames for c in f["cars"])  # not the whole frame


def test_shrink_averages_like_area_resizing(clip_frames):
    from stream.detect.vehicle import shrink

    big = cv2.resize(clip_frames[60], (1920, 1080))
    fast = shrink(big, (512, 288))
    area = cv2.resize(big, (512, 288), interpolation=cv2.INTER_AREA)
    assert fast.shape == area.shape == (288, 512, 3)
    assert np.abs(fast.astype(int) - area).mean() < 3  # grey levels: the same picture
    assert shrink(clip_frames[0], (512, 288)).shape == (288, 512, 3)  # less than 2x: bilinear
