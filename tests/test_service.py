"""The camera service in one process on real video files: config, one log with the camera on
every line (schema-valid, parsed back), colours of all cameras in shared model calls, night/IR.

The RTSP, MQTT, browser and signal tests are in test_service_live.py, test_service_mqtt.py and
test_service_web.py.
"""
from __future__ import annotations

import io
import json
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT, carcolor
from stream.config import load_config
from stream.errors import ConfigError
from stream.events import CarEvent, CountEvent, ModeEvent, parse

DEMO = ROOT / "demo" / "motorway-960x540.mp4"
# The demo clip's road: the count line across it, the detector's ROI around it.
COUNT_LINE = {"points": [[0.0, 0.62], [1.0, 0.62]], "directions": ["down", "up"], "interval": 1000}


def write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def grey_clip(tmp_path_factory) -> Path:
    """The demo clip made grey as an IR camera sends it (ffmpeg hue=s=0), first 6 s."""
    out = tmp_path_factory.mktemp("ir") / "grey.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(DEMO), "-t", "6", "-vf", "hue=s=0",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(resources.files("stream").joinpath("log.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def lines(path: Path):
    return [json.loads(x) for x in path.read_text().splitlines()]


# --- config --------------------------------------------------------------------------------------
def test_camera_overrides_merge_over_the_top_level_keys(tmp_path):
    cfg = load_config(write(tmp_path / "c.yaml", {
        "live": {"stall_timeout": 7},
        "cameras": [{"name": "gate", "source": "rtsp://127.0.0.1:1/a", "live": {"retry_interval": 0.3},
                     "roi": [[0, 0], [1, 0], [1, 1]], "vehicle": {"model": "net.xml"}, "every": 2},
                    {"name": "yard", "source": "rtsp://127.0.0.1:1/b", "detector": "motion"}],
        "mqtt": {"port": 1999, "topic_prefix": "home/cars"}, "web": {"port": 0}}))
    gate, yard = cfg.for_camera("gate"), cfg.for_camera("yard")
    assert (gate.live.retry_interval, gate.live.stall_timeout, gate.every) == (0.3, 7, 2)
    assert gate.vehicle.roi == gate.motion.roi == [(0, 0), (1, 0), (1, 1)]
    assert gate.vehicle.model == tmp_path / "net.xml"   # relative to the config file, like any path
    assert (yard.detector, yard.live.retry_interval, yard.vehicle.roi) == ("motion", 1.0, [])
    assert (cfg.mqtt.port, cfg.mqtt.qos, cfg.mqtt.topic_prefix, cfg.web.port) == (1999, 1, "home/cars", 0)
    assert yard.cameras == [] and yard.mqtt is None


@pytest.mark.parametrize("camera, message", [
    ({"name": "gate", "source": "x", "detectr": "motion"}, "unknown key 'cameras.0.detectr' (did you mean 'detector'?)"),
    ({"name": "Gate 1", "source": "x"}, "bad value for 'cameras.0.name'"),
    ({"name": "gate"}, "'cameras.0.source'"),
    ({"name": "gate", "source": "x", "live": {"stall": 1}}, "unknown key 'cameras.0.live.stall'"),
])
def test_bad_camera_config_names_the_key(tmp_path, camera, message):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path / "c.yaml", {"cameras": [camera]}))
    assert message in str(e.value)


def test_camera_names_are_unique(tmp_path):
    with pytest.raises(ConfigError, match="camera names must be unique, gate given twice"):
        load_config(write(tmp_path / "c.yaml", {"cameras": [{"name": "gate", "source": "a"},
                                                            {"name": "gate", "source": "b"}]}))


def test_run_without_source_or_cameras_is_a_one_line_error(tmp_path):
    r = carcolor("run", "--config", write(tmp_path / "c.yaml", {"detector": "none"}))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "carcolor: error: run needs --source (a video, webcam index or URL), or cameras: in the --config file"]


def test_a_missing_camera_file_names_the_camera(tmp_path):
    r = carcolor("run", "--config", write(tmp_path / "c.yaml", {"cameras": [
        {"name": "gate", "source": str(tmp_path / "nope.mp4")}]}))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("carcolor: error: camera 'gate': video file not found")


# --- the service on files ----------------------------------------------------------------------
def test_two_cameras_one_log_shared_model_calls(tmp_path, validator):
    """Two cameras on the demo clip, the shipped detector: every line valid and tagged with its
    camera, both cameras' cars found, and fewer model calls than frames with cars (shared batches)."""
    from stream.service import Service

    cfg = load_config(write(tmp_path / "c.yaml", {"cameras": [
        {"name": "north", "source": str(DEMO), "end": 4, "count_line": COUNT_LINE},
        {"name": "south", "source": str(DEMO), "end": 4}]}))
    log = tmp_path / "cams.jsonl"
    service = Service(cfg, log=log, stderr=io.StringIO())
    states = service.run()
    rows = lines(log)
    assert rows and all(not list(validator.iter_errors(r)) for r in rows)
    assert {r["camera"] for r in rows} == {"north", "south"}
    assert all(list(r)[0] == "camera" for r in rows)
    for name in ("north", "south"):
        mine = [r for r in rows if r["camera"] == name]
        assert mine[0]["event"] == "start"
        frames = [r for r in mine if "frame" in r]
        assert len(frames) == states[name]["frames"] == 120      # 4 s of a 29.97 fps clip
        cars = [parse(r) for r in mine if r.get("event") == "car"]
        assert len(cars) >= 3 and all(isinstance(c, CarEvent) for c in cars)
    final = [r for r in rows if r.get("event") == "count" and r.get("final")]
    assert [r["camera"] for r in final] == ["north"] and final[0]["total"] >= 1
    from stream.report import read_runs

    runs, bad = read_runs(log)   # carcolor report: one run of both cameras, every car
    assert bad == 0 and len(runs) == 1 and len(runs[0]) == sum(r.get("event") == "car" for r in rows)
    shared = service.shared                                    # one model for both cameras' crops
    assert shared.requests >= shared.calls > 0 and shared.crops >= shared.requests
    assert service.detectors.networks == 1                     # one vehicle network for both cameras


def test_shared_colors_batches_concurrent_cameras_and_answers_each_its_own():
    """Four threads (cameras) asking at once: their crops go into shared model calls (fewer calls than
    requests), and each gets the probabilities of its own crops, as a call of its own would give."""
    import threading

    import numpy as np

    from stream.classify import ColorClassifier
    from stream.service.batch import SharedColors

    clf = ColorClassifier.from_config(load_config())
    shared = SharedColors(clf)
    rng = np.random.default_rng(0)
    crops = {i: [rng.integers(0, 255, (40 + 5 * j, 60, 3), dtype=np.uint8) for j in range(3)] for i in range(4)}
    expected = {i: clf.predict_proba(c) for i, c in crops.items()}
    wrong, start = [], threading.Barrier(4)

    def camera(i):
        start.wait()
        for _ in range(40):
            if not np.allclose(shared.predict(crops[i]), expected[i], atol=1e-5):
                wrong.append(i)
    threads = [threading.Thread(target=camera, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    shared.close()
    assert not wrong
    assert shared.requests == 160 and shared.crops == 480
    assert shared.calls < shared.requests, (shared.calls, shared.requests)


def test_grey_ir_picture_cars_tracked_and_counted_colour_unknown_with_reason(tmp_path, grey_clip, validator):
    """A camera sending a grey picture (the demo clip, hue=s=0) is in IR mode: its cars are still
    tracked and counted, their colour unknown with reason "ir"; the colour camera is not affected."""
    from stream.service import Service

    cfg = load_config(write(tmp_path / "c.yaml", {"cameras": [
        {"name": "night", "source": str(grey_clip), "end": 5, "count_line": COUNT_LINE},
        {"name": "day", "source": str(DEMO), "end": 5, "count_line": COUNT_LINE}]}))
    log = tmp_path / "cams.jsonl"
    service = Service(cfg, log=log, stderr=io.StringIO())
    states = service.run()
    rows = lines(log)
    assert all(not list(validator.iter_errors(r)) for r in rows)
    night = [r for r in rows if r["camera"] == "night"]
    day = [r for r in rows if r["camera"] == "day"]
    modes = [parse(r) for r in night if r.get("event") == "mode"]
    assert [m.mode for m in modes] == ["ir"] and isinstance(modes[0], ModeEvent) and modes[0].chroma <= 4
    assert not [r for r in day if r.get("event") == "mode"]
    assert states["night"]["mode"] == "ir" and states["day"]["mode"] == "color"
    cars = [parse(r) for r in night if r.get("event") == "car"]
    day_cars = [parse(r) for r in day if r.get("event") == "car"]
    assert len(cars) >= 3
    assert all(c.color == "unknown" and c.reason == "ir" for c in cars)
    assert any(c.color != "unknown" for c in day_cars) and not any(c.reason for c in day_cars)
    counts = [parse(r) for r in night if r.get("event") == "count" and r.get("final")]
    assert isinstance(counts[0], CountEvent) and counts[0].total >= 1
    assert set(c for d in counts[0].counts.values() for c in d) == {"unknown"}
