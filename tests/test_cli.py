"""The real command line on a real video: outputs, boxes from every source, kills, errors."""
import json
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import CLIP_FRAMES, CLIP_SIZE, ROOT, carcolor, clip_boxes, write_clip, write_jsonl


def read_log(path, frames_only=True):
    """The log's per-frame lines (or every line); every line must parse."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [ln for ln in lines if "event" not in ln] if frames_only else lines


def test_run_writes_video_and_log(clip, tiny_config, tmp_path):
    out, log = tmp_path / "out.mp4", tmp_path / "colors.jsonl"
    r = carcolor("run", "--source", clip, "--config", tiny_config, "--output", out, "--log", log)
    assert r.returncode == 0, r.stderr
    assert f"done: {CLIP_FRAMES} frames" in r.stderr
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == CLIP_FRAMES
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == CLIP_SIZE
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0, abs=0.01)
    lines = read_log(log)
    assert [ln["frame"] for ln in lines] == list(range(CLIP_FRAMES))
    car = lines[0]["cars"][0]
    assert car["box"] == [0, 0, *CLIP_SIZE]
    assert len(car["colors"]) == 3 and car["color"] == car["colors"][0]["color"]
    assert all(isinstance(c["prob"], float) for c in car["colors"])
    # The overlay really drew on the frames.
    ok, first = cap.read()
    plain = cv2.VideoCapture(str(clip)).read()[1]
    assert ok and np.abs(first.astype(int) - plain.astype(int)).mean() > 1.0


def test_jsonl_boxes_reach_the_classifier(clip, tiny_config, tmp_path):
    boxes = write_jsonl(tmp_path / "boxes.jsonl",
                        [{"frame": i, "boxes": clip_boxes(i)} for i in range(0, CLIP_FRAMES, 2)])
    log = tmp_path / "log.jsonl"
    r = carcolor("run", "--source", clip, "--config", tiny_config, "--boxes", boxes, "--log", log, "--every", 2)
    assert r.returncode == 0, r.stderr
    lines = read_log(log)
    assert [ln["frame"] for ln in lines] == list(range(0, CLIP_FRAMES, 2))
    w, h = CLIP_SIZE
    for ln in lines:
        expect = [[max(0, x1), max(0, y1), min(w, x2), min(h, y2)] for x1, y1, x2, y2 in clip_boxes(ln["frame"])]
        expect = [b for b in expect if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]
        assert [c["box"] for c in ln["cars"]] == expect
        assert all(len(c["colors"]) == 3 for c in ln["cars"])
        assert ln.get("skipped", 0) == 3 - len(expect)


def test_mot_boxes_and_ids(clip, tiny_config, tmp_path):
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{i + 1},{k + 1},{x1},{y1},{x2 - x1},{y2 - y1},0.9,-1,-1,-1\n"
                           for i in range(CLIP_FRAMES) for k, (x1, y1, x2, y2) in enumerate(clip_boxes(i))
                           if x1 >= 0 and x2 <= CLIP_SIZE[0]))
    log = tmp_path / "log.jsonl"
    r = carcolor("run", "--source", clip, "--config", tiny_config, "--boxes", det, "--log", log, "--end", 0.5)
    assert r.returncode == 0, r.stderr
    lines = read_log(log)
    assert len(lines) == 15
    ids = {c["id"] for ln in lines for c in ln["cars"]}
    assert ids == {1, 2, 3} or ids <= {1, 2, 3} and len(ids) >= 2
    assert all(c["score"] == pytest.approx(0.9) for ln in lines for c in ln["cars"])


def test_config_regions(clip, tiny_model, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model_file: {tiny_model['onnx']}\nlabel_file: {tiny_model['labels']}\n"
                   "boxes:\n  - {name: left, xyxy: [0, 0, 0.5, 1.0]}\n  - {name: right, xyxy: [320, 0, 640, 360]}\n")
    log = tmp_path / "log.jsonl"
    r = carcolor("run", "--source", clip, "--config", cfg, "--log", log, "--end", 0.2)
    assert r.returncode == 0, r.stderr
    for ln in read_log(log):
        assert [(c["name"], c["box"]) for c in ln["cars"]] == [("left", [0, 0, 320, 360]),
                                                                 ("right", [320, 0, 640, 360])]


def test_log_survives_a_killed_process(tmp_path, tiny_config):
    """SIGKILL mid-run: every line already written parses; nothing torn."""
    long_clip = write_clip(tmp_path / "long.mp4", frames=900, size=(320, 180))
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--source", str(long_clip), "--config",
                             str(tiny_config), "--log", str(log), "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # 21 lines: the start event and 20 frames
    while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 21):
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    lines = read_log(log)
    assert 20 <= len(lines) < 900
    assert [ln["frame"] for ln in lines] == list(range(len(lines)))
    assert log.read_text().endswith("\n")


def test_sigterm_finalises_video_and_log(tmp_path, tiny_config):
    long_clip = write_clip(tmp_path / "long.mp4", frames=900, size=(320, 180))
    log, out = tmp_path / "log.jsonl", tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "stream", "run", "--source", str(long_clip), "--config",
                             str(tiny_config), "--log", str(log), "--output", str(out), "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not log.exists() or log.read_text().count("\n") < 20:
        time.sleep(0.02)
        assert proc.poll() is None
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 2.0
    assert proc.returncode == 130 and "interrupted" in err
    n = len(read_log(log))
    cap = cv2.VideoCapture(str(out))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert n <= frames <= n + 1  # playable, and holds every frame that was logged


def test_classify_prints_the_original_shape(tiny_config, tmp_path):
    imgs = []
    for i, color in enumerate([(0, 0, 255), (255, 0, 0)]):
        p = tmp_path / f"car{i}.{'png' if i else 'jpg'}"
        cv2.imwrite(str(p), np.full((60, 90, 3), color, np.uint8))
        imgs.append(p)
    r = carcolor("classify", *imgs, "--config", tiny_config, "--top-k", 3)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["image"] for o in out] == [str(p) for p in imgs]
    for o in out:
        assert len(o["colors"]) == 3 and set(o["colors"][0]) == {"color", "prob"}
        probs = [c["prob"] for c in o["colors"]]
        assert probs == sorted(probs, reverse=True)


def _one_line_error(r, *fragments):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("carcolor: error: ")
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in lines[0]


def test_error_missing_video(tiny_config, tmp_path):
    _one_line_error(carcolor("run", "--source", tmp_path / "nope.mp4", "--config", tiny_config), "not found",
                    "nope.mp4")


def test_error_not_a_video(tiny_config, tmp_path):
    p = tmp_path / "text.avi"
    p.write_text("hello\n" * 500)
    _one_line_error(carcolor("run", "--source", p, "--config", tiny_config), "text.avi")


def test_error_bad_image(tiny_config, tmp_path):
    p = tmp_path / "broken.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    _one_line_error(carcolor("classify", p, "--config", tiny_config), "truncated JPEG", "broken.jpg")
    p.write_text("hello")
    _one_line_error(carcolor("classify", p, "--config", tiny_config), "not a JPEG or PNG image", "broken.jpg")
    _one_line_error(carcolor("classify", tmp_path / "none.png", "--config", tiny_config), "not found")


def test_error_unknown_model_kind(clip, tiny_model, tmp_path):
    p = tmp_path / "model.tflite"
    p.write_bytes(b"\x00" * 64)
    _one_line_error(carcolor("run", "--source", clip, "--model", p, "--labels", tiny_model["labels"]),
                    "unknown model kind")


def test_error_labels_mismatch(clip, tiny_model, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    _one_line_error(carcolor("run", "--source", clip, "--model", tiny_model["onnx"], "--labels", labels),
                    "3 labels", "10 outputs")


def test_error_bad_config_key(clip, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("top_kk: 2\n")
    _one_line_error(carcolor("run", "--source", clip, "--config", cfg), "unknown key 'top_kk'", "top_k")
    cfg.write_text("every: 0\n")
    _one_line_error(carcolor("run", "--source", clip, "--config", cfg), "'every'")


def test_error_bad_boxes_file(clip, tiny_config, tmp_path):
    p = tmp_path / "b.jsonl"
    p.write_text('{"frame": 0, "boxes": [[1, 2]]}\n')
    _one_line_error(carcolor("run", "--source", clip, "--config", tiny_config, "--boxes", p), "b.jsonl:1")


def test_an_original_style_frozen_graph_drops_in_via_config(tiny_model, tmp_path):
    """A user's .pb with the original's config keys classifies like the same weights in ONNX."""
    img = tmp_path / "car.png"
    cv2.imwrite(str(img), np.random.default_rng(3).integers(0, 256, (70, 110, 3), dtype=np.uint8))
    cfg = tmp_path / "orig.yaml"
    cfg.write_text(f"model_file: {tiny_model['pb']}\nlabel_file: {tiny_model['labels']}\n"
                   "input_layer: input_1\noutput_layer: softmax/Softmax\nclassifier_input_size: [32, 32]\n")
    by_pb = carcolor("classify", img, "--config", cfg)
    by_onnx = carcolor("classify", img, "--model", tiny_model["onnx"], "--labels", tiny_model["labels"])
    assert by_pb.returncode == 0 and by_onnx.returncode == 0, by_pb.stderr + by_onnx.stderr
    pb, ox = json.loads(by_pb.stdout), json.loads(by_onnx.stdout)
    assert [c["color"] for c in pb["colors"]] == [c["color"] for c in ox["colors"]]
    assert [c["prob"] for c in pb["colors"]] == pytest.approx([c["prob"] for c in ox["colors"]], abs=1e-5)
