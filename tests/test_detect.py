"""Built-in detectors: motion on a generated fixed-camera clip; YOLO ONNX decoding on constant graphs."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stream.boxes import DetectionsFile, box_source
from stream.config import Config, MotionConfig, OnnxDetectorConfig
from stream.detect import COCO, MotionDetector, OnnxDetector, decode, letterbox
from stream.geometry import nms
from stream.errors import ConfigError, ModelError
from stream.record import Frame

from _car_clip import BRIGHT_FROM, Clip, iou, match

WARMUP = MotionConfig().warmup


@pytest.fixture(scope="module", params=["mog2", "knn"])
def motion_run(request):
    """Every frame's motion boxes and truth for the generated clip (brightness step included)."""
    clip = Clip()
    det = MotionDetector(MotionConfig(method=request.param))
    out = []
    for frame in clip:
        out.append((frame.index, det(frame).xyxy.tolist(), clip.truth(frame.index)))
    return out, det


def test_motion_boxes_match_truth(motion_run):
    runs, _ = motion_run
    hits = total = 0
    for index, boxes, truth in runs:
        if index <= WARMUP:
            assert boxes == []  # warm-up frames only learn the background
            continue
        for _, tb, visible in truth:
            if visible < 0.3:  # a car's nose at the edge: too little to see
                continue
            total += 1
            hits += match(tb, boxes) >= 0
    assert total > 250
    assert hits / total >= 0.9, f"{hits}/{total} visible car-frames matched with IoU >= 0.5"


def test_motion_no_phantoms_through_brightness_change_and_shadows(motion_run):
    runs, det = motion_run
    phantoms = [(i, b) for i, boxes, truth in runs for b in boxes
                if all(iou(b, tb) < 0.1 for _, tb, _ in truth)]
    assert phantoms == []
    assert det.gain == pytest.approx(1 / 1.3, abs=0.02)  # the step was measured and undone
    # Around the step the cars are still found, with their boxes (not their shadows).
    step = [(boxes, truth) for i, boxes, truth in runs if BRIGHT_FROM <= i < BRIGHT_FROM + 5]
    for boxes, truth in step:
        for _, tb, visible in truth:
            if visible >= 0.5:
                assert match(tb, boxes) >= 0


def test_motion_slow_camera_drift_is_held_still():
    """The picture drifts 9 px right and 5 px up over the clip: no phantoms along the scene's edges."""
    clip = Clip(drift=(0.05, -0.03))
    det = MotionDetector(MotionConfig())
    hits = total = 0
    for frame in clip:
        boxes = det(frame).xyxy.tolist()
        truth = clip.truth(frame.index)
        if frame.index <= WARMUP:
            continue
        assert all(any(iou(b, tb) >= 0.1 for _, tb, _ in truth) for b in boxes), (frame.index, boxes)
        for _, tb, visible in truth:
            if visible >= 0.3:
                total += 1
                hits += match(tb, boxes) >= 0
    assert hits / total >= 0.9
    scale = det.small[0] / clip.bg.shape[1]
    assert det.shift == pytest.approx((0.05 * 179 * scale, -0.03 * 179 * scale), abs=1.0)


def test_motion_flood_is_a_global_change_not_cars():
    """A jump no gain can undo (lights off in half the frame) gives no boxes, then re-learns."""
    clip = Clip(cars=(), frames=60, bright_from=None)
    det = MotionDetector(MotionConfig())
    counts = []
    for frame in clip:
        image = frame.image
        if frame.index >= 30:
            image = image.copy()
            image[:, : image.shape[1] // 2] //= 4
        counts.append(len(det(Frame(frame.index, frame.timestamp, image))))
    assert sum(counts) == 0
    assert det.flooded >= 1


def last_boxes(det, frames=71):
    for f in Clip(frames=frames):
        boxes = det(f).xyxy.tolist()
    return boxes


def test_motion_roi_and_area_filters():
    # At frame 70 the red and blue cars are in the top half, the white one below.
    assert len(last_boxes(MotionDetector(MotionConfig()))) == 3
    # ROI: the top half only (fractions); the white car's lane is outside it.
    boxes = last_boxes(MotionDetector(MotionConfig(roi=[(0, 0), (1, 0), (1, 0.45), (0, 0.45)])))
    assert len(boxes) == 2 and all((b[1] + b[3]) / 2 < 0.45 * 360 for b in boxes)
    assert last_boxes(MotionDetector(MotionConfig(min_area=0.05))) == []  # cars are 2.8% of the frame
    assert last_boxes(MotionDetector(MotionConfig(max_aspect=1.2))) == []  # cars are 100x64


def test_motion_config_validation():
    with pytest.raises(ConfigError, match="motion.roi"):
        Config.model_validate({}).override(motion={"roi": [[0, 0], [1, 1]]})
    with pytest.raises(ConfigError, match="did you mean 'min_area'"):
        Config.model_validate({}).override(motion={"min_aera": 0.1})


# --- ONNX (YOLO) -------------------------------------------------------------------------------


def constant_model(path, output: np.ndarray, input_shape=(1, 3, 640, 640), names=None) -> str:
    """An ONNX graph taking an image tensor and returning ``output`` whatever the image."""
    out = numpy_helper.from_array(output.astype(np.float32), "raw")
    nodes = [helper.make_node("Constant", [], ["y"], value=out)]
    graph = helper.make_graph(nodes, "yolo", [helper.make_tensor_value_info("images", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(output.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if names is not None:
        onnx.helper.set_model_props(model, {"names": repr(dict(enumerate(names)))})
    onnx.save(model, str(path))
    return str(path)


NAMES = ["person", "car", "truck"]
# Model-pixel boxes (cx, cy, w, h) and class scores (person, car, truck) of six candidates.
CANDIDATES = np.array([
    [320, 320, 100, 60, 0.05, 0.90, 0.10],   # car A
    [324, 322, 100, 60, 0.05, 0.80, 0.10],   # car A again, lower: NMS drops it
    [100, 200, 40, 20, 0.05, 0.20, 0.10],    # below the confidence threshold
    [500, 400, 50, 100, 0.95, 0.05, 0.00],   # a person: not a vehicle class
    [330, 318, 96, 64, 0.00, 0.30, 0.70],    # a truck over car A: agnostic NMS drops it
    [150, 330, 80, 40, 0.00, 0.10, 0.60],    # truck B
], np.float64)


def frame_of(w, h) -> Frame:
    return Frame(0, 0.0, np.zeros((h, w, 3), np.uint8))


def expected(rows, r, px, py):
    cx, cy, bw, bh = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    return (xyxy - [px, py, px, py]) / r


def test_onnx_ultralytics_layout_decoding_rescaling_nms(tmp_path):
    out = CANDIDATES.T[None]  # (1, 4+3, 6)
    path = constant_model(tmp_path / "u.onnx", out, names=NAMES)
    det = OnnxDetector(OnnxDetectorConfig(model=path))
    assert det.names == NAMES and det.input_size == (640, 640)
    # 1280x720 -> ratio 0.5, 640x360 content centred: 140 px of padding above and below.
    xyxy, score, cls = det.detect(frame_of(1280, 720).image)
    want = expected(CANDIDATES[[0, 5]], 0.5, 0.0, 140.0)
    np.testing.assert_allclose(xyxy, want, atol=1e-4)
    np.testing.assert_allclose(score, [0.90, 0.60], atol=1e-6)
    assert cls.tolist() == [1, 2]
    cars = det(frame_of(1280, 720))
    assert cars.name == ("car", "truck")
    assert cars.xyxy.tolist() == [[540, 300, 740, 420], [220, 340, 380, 420]]


def test_onnx_yolov5_layout_objectness_and_labels_file(tmp_path):
    rows = np.concatenate([CANDIDATES[:, :4], np.ones((6, 1)), CANDIDATES[:, 4:]], axis=1)
    rows[0, 4] = 0.5  # car A: objectness 0.5 x 0.9 = 0.45; its twin 1.0 x 0.8 = 0.8 now wins NMS
    out = rows[None]  # (1, 6, 5+3)
    labels = tmp_path / "names.txt"
    labels.write_text("\n".join(NAMES) + "\n")
    path = constant_model(tmp_path / "v5.onnx", out, input_shape=(1, 3, 640, 640))
    det = OnnxDetector(OnnxDetectorConfig(model=path, labels=labels))
    # A portrait 360x720 frame: ratio 640/720, padding left and right.
    r = 640 / 720
    px = (640 - round(360 * r)) / 2
    xyxy, score, cls = det.detect(frame_of(360, 720).image)
    want = expected(CANDIDATES[[1, 5]], r, px, 0.0)
    want[:, [0, 2]] = want[:, [0, 2]].clip(0, 360)
    np.testing.assert_allclose(xyxy, want, atol=1e-3)
    np.testing.assert_allclose(score, [0.80, 0.60], atol=1e-6)
    assert cls.tolist() == [1, 2]


def test_onnx_class_aware_nms_classes_and_max(tmp_path):
    path = constant_model(tmp_path / "u.onnx", CANDIDATES.T[None], names=NAMES)
    det = OnnxDetector(OnnxDetectorConfig(model=path, agnostic_nms=False))
    _, score, cls = det.detect(frame_of(640, 640).image)
    assert cls.tolist() == [1, 2, 2] and np.allclose(score, [0.9, 0.7, 0.6])  # the truck over car A stays
    det = OnnxDetector(OnnxDetectorConfig(model=path, classes=["person"], max_detections=1))
    _, score, cls = det.detect(frame_of(640, 640).image)
    assert cls.tolist() == [0] and np.allclose(score, [0.95])
    det = OnnxDetector(OnnxDetectorConfig(model=path, confidence=0.95))
    assert det.detect(frame_of(640, 640).image)[0].shape == (0, 4)


def test_onnx_dynamic_input_coco_names_by_default(tmp_path):
    rows = np.zeros((84, 2))
    rows[:4, 0] = [100, 100, 20, 20]
    rows[4 + COCO.index("bus"), 0] = 0.9
    rows[:4, 1] = [300, 300, 20, 20]
    rows[4 + COCO.index("dog"), 1] = 0.9
    path = constant_model(tmp_path / "d.onnx", rows[None], input_shape=(1, 3, "h", "w"))
    det = OnnxDetector(OnnxDetectorConfig(model=path, input_size=(320, 320)))
    assert det.input_size == (320, 320) and len(det.names) == 80
    cars = det(frame_of(320, 320))
    assert cars.name == ("bus",) and cars.xyxy.tolist() == [[90, 90, 110, 110]]


def test_onnx_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelError, match="onnx_detector.model"):
        OnnxDetector(OnnxDetectorConfig())
    with pytest.raises(ModelError, match="not found"):
        OnnxDetector(OnnxDetectorConfig(model=tmp_path / "missing.onnx"))
    path = constant_model(tmp_path / "x.onnx", np.zeros((1, 9, 5)))
    with pytest.raises(ModelError, match="labels"):
        OnnxDetector(OnnxDetectorConfig(model=path))
    path = constant_model(tmp_path / "p.onnx", CANDIDATES.T[None], names=["person", "dog", "cat"])
    with pytest.raises(ModelError, match="none of the classes"):
        OnnxDetector(OnnxDetectorConfig(model=path))
    with pytest.raises(ModelError, match="fits neither"):
        decode(np.zeros((1, 10, 10)), 3)


def test_letterbox_and_nms_primitives():
    canvas, r, pad = letterbox(np.full((100, 200, 3), 255, np.uint8), (64, 64))
    assert canvas.shape == (64, 64, 3) and r == 0.32 and pad == (0.0, 16.0)
    assert (canvas[:16] == 114).all() and (canvas[16:48] == 255).all() and (canvas[48:] == 114).all()
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.1, 0.5]), 0.5).tolist() == [1, 2]
    assert nms(boxes, np.array([0.5, 0.9, 0.1, 0.5]), 0.9).tolist() == [1, 0, 2]


def test_box_source_picks_the_detector(tmp_path):
    cfg = Config.model_validate({"detector": "motion"})
    assert isinstance(box_source(cfg), MotionDetector)
    path = constant_model(tmp_path / "u.onnx", CANDIDATES.T[None], names=NAMES)
    cfg = Config.model_validate({"detector": "onnx", "onnx_detector": {"model": path}})
    assert isinstance(box_source(cfg), OnnxDetector)
    boxes = tmp_path / "b.jsonl"
    boxes.write_text('{"frame": 0, "boxes": [[0, 0, 5, 5]]}\n')
    assert isinstance(box_source(cfg, boxes), DetectionsFile)  # a boxes file still wins
