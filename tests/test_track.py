"""Tracking, one voted colour per car, car events, the count line, on the generated fixed-camera clip."""
from __future__ import annotations

import json
from collections import Counter

import cv2
import numpy as np
import pytest

from stream.cars import CarVotes, LineCounter, crop_name, crop_quality, crosses
from stream.classify import ColorClassifier
from stream.config import CountLineConfig, MotionConfig, TrackConfig
from stream.detect import MotionDetector
from stream.events import CarEvent, to_json
from stream.pipeline import ColorStage, process
from stream.record import Cars, Frame, FrameRecord
from stream.track import Tracker

from _car_clip import CAR_H, CAR_W, CARS, COUNT_LINE, SIZE, Clip, crop_path, match
from conftest import ROOT, carcolor

SHIPPED = ROOT / "models" / "default"
CAR_KEYS = ["event", "id", "first", "last", "frames", "color", "prob", "colors", "box", "moving"]
# Left-to-right is "out" for the vertical mid-frame line (see cars.LineCounter); truth by construction.
DIRECTION = {c.color: ("out" if c.speed > 0 else "in") for c in CARS}


def run_clip(classifier, clip=None, save_crops=None):
    """The whole chain on the clip: per-frame (index, boxes, ids, colours) and every event, in order."""
    clip = clip or Clip()
    cfg = TrackConfig()
    counter = LineCounter(CountLineConfig(points=COUNT_LINE), cfg.min_frames)
    stages = [Tracker(cfg), CarVotes(cfg, top_k=3, save_crops=save_crops), counter]
    frames, events = [], []

    def keep(record: FrameRecord) -> None:
        frames.append((record.frame.index, record.cars.xyxy.tolist(), record.cars.track_id.tolist(),
                       list(record.cars.shown_color)))
        events.extend(to_json(e) for e in record.events)

    process(clip, "clip", MotionDetector(MotionConfig()), ColorStage(classifier), stages, [keep],
            on_event=lambda e: events.append(to_json(e)))
    return clip, frames, events, counter


@pytest.fixture(scope="module")
def tiny_run(tiny_model):
    clf = ColorClassifier(tiny_model["onnx"], tiny_model["labels"], input_size=32)
    return run_clip(clf)


def ids_per_car(clip, frames, entered=False):
    """For each true car, the track ids of the boxes matching it (IoU >= 0.5), frame by frame (-1 = none).

    ``entered``: only from the frame a car is wholly in view (a car cut by the border starts no track).
    """
    out = {k: [] for k in range(len(clip.cars))}
    inside = set()
    for index, boxes, ids, _ in frames:
        for k, tb, visible in clip.truth(index):
            if visible >= 1.0:
                inside.add(k)
            if entered and k not in inside:
                continue
            j = match(tb, boxes)
            if j >= 0:
                out[k].append(ids[j])
    return out


def test_one_track_per_car(tiny_run):
    clip, frames, events, _ = tiny_run
    per_car = ids_per_car(clip, frames, entered=True)
    switches = 0
    owners = {}
    for k, ids in per_car.items():
        tracked = [i for i in ids if i >= 0]
        assert len(tracked) >= 0.8 * len(ids), f"car {k} mostly untracked: {ids}"
        switches += sum(1 for a, b in zip(tracked, tracked[1:]) if a != b)
        main = Counter(tracked).most_common(1)[0][0]
        assert main not in owners, f"cars {owners.get(main)} and {k} share track {main}"
        owners[main] = k
    assert switches <= 1, per_car
    cars = [e for e in events if e["event"] == "car"]
    assert sorted(e["id"] for e in cars) == sorted(owners), "one car event per car, none for phantoms"


def test_car_events_shape_and_timing(tiny_run):
    clip, frames, events, _ = tiny_run
    cars = [e for e in events if e["event"] == "car"]
    assert len(cars) == len(CARS)
    per_car = ids_per_car(clip, frames)
    for e in cars:
        assert list(e) == CAR_KEYS
        k = next(k for k, ids in per_car.items() if Counter(i for i in ids if i >= 0).most_common(1)[0][0] == e["id"])
        car = clip.cars[k]
        whole = next(i for i in range(car.start, car.start + 200) if any(
            kk == k and v >= 1.0 for kk, _, v in clip.truth(i)))  # tracked once clear of the border
        assert car.start / 30 <= e["first"] <= whole / 30 + 0.2
        assert e["last"] > e["first"] and e["frames"] >= 40
        assert e["color"] == e["colors"][0]["color"] and e["prob"] == pytest.approx(e["colors"][0]["prob"], abs=1e-4)
        assert len(e["colors"]) == 3
        x1, y1, x2, y2 = e["box"]
        # The best crop shows the whole car, away from the frame edge.
        assert x2 - x1 >= CAR_W - 6 and y2 - y1 >= CAR_H - 6
        assert x1 > 0 and y1 > 0 and x2 < SIZE[0] and y2 < SIZE[1]
    # Cars that left end during the clip, the black one (still leaving at the end) when it ends.
    order = [e["id"] for e in events if e["event"] == "car"]
    assert len(order) == len(set(order))


def test_overlay_label_is_the_vote_and_does_not_flicker(tiny_run):
    clip, frames, events, _ = tiny_run
    final = {e["id"]: e["color"] for e in events if e["event"] == "car"}
    shown = {}
    for _, _, ids, colors in frames:
        for i, c in zip(ids, colors):
            if i >= 0:
                shown.setdefault(i, []).append(c)
    for tid, seq in shown.items():
        changes = sum(1 for a, b in zip(seq, seq[1:]) if a != b)
        assert changes <= 2, (tid, seq)
        assert seq[-1] == final[tid]


def test_count_line_counts_each_car_once(tiny_run):
    clip, frames, events, counter = tiny_run
    cars = {e["id"]: e["color"] for e in events if e["event"] == "car"}
    final = [e for e in events if e["event"] == "count"]
    assert final[-1]["final"] is True and final[-1]["total"] == len(CARS)
    # By direction, truth by construction; by colour, each car under its voted colour.
    per_car = ids_per_car(clip, frames)
    want = {"in": Counter(), "out": Counter()}
    for k, ids in per_car.items():
        tid = Counter(i for i in ids if i >= 0).most_common(1)[0][0]
        want[DIRECTION[clip.cars[k].color]][cars[tid]] += 1
    assert final[-1]["counts"] == {d: dict(sorted(c.items())) for d, c in want.items()}
    assert counter.totals == {"in": 2, "out": 2}


def test_external_mot_ids_are_used_as_given():
    tracker = Tracker(TrackConfig())
    frame = Frame(0, 0.0, np.zeros((100, 100, 3), np.uint8))
    cars = Cars([[0, 0, 10, 10], [20, 20, 40, 40]], track_id=[7, 42])
    out = tracker(FrameRecord("s", frame, cars))
    assert out.cars.track_id.tolist() == [7, 42]
    out = tracker(FrameRecord("s", frame, Cars([[1, 1, 11, 11]])))  # later boxes without ids stay unmatched
    assert tracker.external and out.cars.track_id.tolist() == [-1]


def test_track_ends_after_timeout_and_flushes_at_the_end():
    cfg = TrackConfig(track_timeout=5, min_frames=2, car_events="all")  # the boxes stand still
    votes = CarVotes(cfg)
    image = np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)
    top = (("red", 0.8), ("blue", 0.2))

    def rec(i, cars):
        return FrameRecord("s", Frame(i, i / 10, image), cars)

    seen = []
    for i in range(3):  # car 1 in the middle of the frame for 3 frames, then gone
        r = votes(rec(i, Cars([[50, 50, 100, 100]], track_id=[1], crop_top=[top], crop_color=["red"])))
        seen += r.events
    for i in range(3, 8):
        r = votes(rec(i, Cars([[150, 150, 190, 190]], track_id=[2], crop_top=[(("blue", 0.9),)], crop_color=["blue"])))
        seen += r.events
        if i < 7:
            assert not [e for e in r.events if e.id == 1]
    assert [e.id for e in seen] == [1]  # ended after 5 unseen frames
    assert seen[0].first == 0.0 and seen[0].last == 0.2 and seen[0].frames == 3
    assert seen[0].color == "red" and seen[0].prob == pytest.approx(0.8)
    end = votes.finish(rec(8, Cars.empty()))
    assert [e.id for e in end.events] == [2] and end.events[0].color == "blue"


def test_vote_weights_quality():
    image = np.zeros((300, 300, 3), np.uint8)
    image[::2] = 255  # sharp stripes
    big, small = crop_quality(image, (100, 100, 200, 200)), crop_quality(image, (100, 100, 120, 120))
    edge = crop_quality(image, (0, 100, 100, 200))
    blurred = crop_quality(cv2.GaussianBlur(image, (0, 0), 5), (100, 100, 200, 200))
    assert big > small and big > edge and big > blurred
    # One sharp whole view outvotes several small edge views.
    votes = CarVotes(TrackConfig())
    for i, (box, top) in enumerate([((0, 100, 20, 120), (("gray", 1.0),))] * 3 + [((100, 100, 200, 200), (("red", 1.0),))]):
        votes(FrameRecord("s", Frame(i, i / 30, image), Cars([box], track_id=[1], crop_top=[top], crop_color=[top[0][0]])))
    assert votes.finish(FrameRecord("s", Frame(9, 0.3, image), Cars.empty())).events[0].color == "red"


def test_a_vote_is_unknown_below_the_tracks_threshold_not_the_crops():
    """Crops that split 0.45 white / 0.40 gray: no single crop reaches the per-crop 0.5, the vote's
    0.45 passes the track's 0.3; with the threshold at the per-crop 0.5 the car is unknown."""
    image = np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8)
    top = (("white", 0.45), ("gray", 0.40), ("black", 0.15))

    def car(votes):
        for i in range(4):
            votes(FrameRecord("s", Frame(i, i / 10, image),
                              Cars([[50, 50, 120, 120]], track_id=[1], crop_top=[top], crop_color=["unknown"])))
        return votes.finish(FrameRecord("s", Frame(9, 0.9, image), Cars.empty())).events[0]

    clf = ColorClassifier(SHIPPED / "model.onnx", SHIPPED / "labels.txt")
    assert clf.unknown_threshold == 0.5
    assert car(CarVotes(TrackConfig(car_events="all"), clf)).color == "white"
    late = car(CarVotes(TrackConfig(car_events="all", unknown_threshold=None), clf))  # the per-crop 0.5
    assert late.color == "unknown" and late.prob == pytest.approx(0.45)
    # a model that never says unknown (threshold 0) gives votes that never do; no classifier: 0 too
    never = ColorClassifier(SHIPPED / "model.onnx", SHIPPED / "labels.txt", unknown_threshold=0.0)
    assert car(CarVotes(TrackConfig(car_events="all"), never)).color == "white"
    assert CarVotes(TrackConfig()).unknown_threshold == 0.0


def test_crossing_geometry():
    a, b = np.array([0.0, 0.0]), np.array([10.0, 0.0])
    assert crosses(a, b, np.array([5.0, -1.0]), np.array([5.0, 1.0])) == 1   # downwards: right-hand side
    assert crosses(a, b, np.array([5.0, 1.0]), np.array([5.0, -1.0])) == -1
    assert crosses(a, b, np.array([15.0, -1.0]), np.array([15.0, 1.0])) == 0  # beyond the segment
    assert crosses(a, b, np.array([5.0, 1.0]), np.array([6.0, 2.0])) == 0


# --- the shipped colour model: real crops it gets right on their own --------------------------

needs_model = pytest.mark.skipif(not (SHIPPED / "model.onnx").exists(), reason="shipped model not trained yet")


@needs_model
def test_voted_colour_is_the_label_with_the_shipped_model(tmp_path):
    clf = ColorClassifier(SHIPPED / "model.onnx", SHIPPED / "labels.txt")
    # Each car is the first crop of its colour (sorted by file name) that the model gets right on its
    # own at the size it has in the clip: the test is about voting over a track, not the model.
    crops = {}
    for car in CARS:
        for path in sorted(crop_path(car.color).parent.glob("*.jpg")):
            sprite = cv2.resize(cv2.imread(str(path)), (CAR_W, CAR_H), interpolation=cv2.INTER_AREA)
            if clf.decide(clf.predict_proba([sprite]))[0] == car.color:
                crops[car.color] = path.name
                break
        assert car.color in crops, f"the shipped model gets no {car.color} crop right"
    clip, frames, events, counter = run_clip(clf, Clip(crops=crops), save_crops=tmp_path / "crops")
    per_car = ids_per_car(clip, frames)
    cars = {e["id"]: e for e in events if e["event"] == "car"}
    assert len(cars) == len(CARS)
    for k, ids in per_car.items():
        tid = Counter(i for i in ids if i >= 0).most_common(1)[0][0]
        assert cars[tid]["color"] == clip.cars[k].color, (crops, cars[tid])
    truth = {"in": {}, "out": {}}
    for car in CARS:
        truth[DIRECTION[car.color]][car.color] = 1
    final = [e for e in events if e["event"] == "count"][-1]
    assert final["counts"] == {d: dict(sorted(c.items())) for d, c in truth.items()}
    saved = sorted(p.name for p in (tmp_path / "crops").iterdir())
    assert saved == sorted(crop_name(CarEvent.from_json(e)) for e in cars.values())


# --- end to end through the CLI ---------------------------------------------------------------


def test_cli_run_with_motion_detector(tmp_path, tiny_model):
    video = Clip().write(tmp_path / "road.mp4")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"model_file: {tiny_model['onnx']}\nlabel_file: {tiny_model['labels']}\n"
                   "classifier_input_size: 32\n"
                   f"count_line:\n  points: {json.dumps([list(p) for p in COUNT_LINE])}\n"
                   "tracking:\n  track_timeout: 20\n")
    log = tmp_path / "colors.jsonl"
    res = carcolor("run", "--source", video, "--config", cfg, "--detector", "motion", "--log", log,
                   "--save-crops", tmp_path / "crops", "--output", tmp_path / "out.mp4", "--quiet")
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    cars = [e for e in lines if e.get("event") == "car"]
    assert len(cars) == len(CARS)
    assert all(list(e) == CAR_KEYS for e in cars)
    assert lines[-1]["event"] == "count" and lines[-1]["final"] and lines[-1]["total"] == len(CARS)
    assert "count: in 2" in res.stderr and "out 2" in res.stderr
    assert len(list((tmp_path / "crops").glob("car-*.jpg"))) == len(CARS)
    frames = [x for x in lines if "frame" in x]
    assert len(frames) == Clip().frames and any(c.get("id") for f in frames for c in f["cars"])


# --- the real motorway clip (demo/): regression figures of the tuned demo config ----------------


def test_demo_config_on_the_real_motorway_clip(tmp_path, tiny_model):
    """The README demo's settings on the real clip: about 20 vehicles, nothing flooding the log."""
    from stream.config import load_config
    from stream.pipeline import run

    demo = ROOT / "demo"
    cfg = load_config(demo / "config.yaml").override(model_file=tiny_model["onnx"], label_file=tiny_model["labels"],
                                                     classifier_input_size=(32, 32))
    log = tmp_path / "colors.jsonl"
    summary = run(cfg, demo / "motorway-960x540.mp4", log=log, progress=False, stderr=open(tmp_path / "err", "w"))
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    cars = [e for e in lines if e.get("event") == "car"]
    frames = [e for e in lines if "frame" in e]
    assert summary.frames == len(frames) == 335
    assert 14 <= len(cars) <= 26, len(cars)  # ~20 vehicles; the far, tiny ones are below min_area
    assert max(len(f["cars"]) for f in frames) <= 10  # no flood from drift or light changes
    final = lines[-1]
    assert final["event"] == "count" and final["final"] and 10 <= sum(final["counts"]["towards"].values()) <= 20
