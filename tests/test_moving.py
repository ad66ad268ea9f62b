"""Moving versus parked cars, and tracking on the shipped detector's boxes in the real motorway clip."""
from __future__ import annotations

import csv
from collections import Counter

import cv2
import numpy as np
import pytest

from stream.cars import CarVotes
from stream.config import TrackConfig, VehicleConfig
from stream.events import to_json
from stream.record import Cars, Frame, FrameRecord
from stream.geometry import iou_matrix
from stream.track import Tracker
from stream.detect.vehicle import VehicleDetector, _cars

from conftest import ROOT

CLIP = ROOT / "demo" / "motorway-960x540.mp4"
HAND = ROOT / "demo" / "motorway-cars.csv"
IMAGE = np.random.default_rng(1).integers(0, 255, (400, 600, 3), np.uint8)
RED = (("red", 0.9), ("blue", 0.1))


def rec(i, boxes, ids, fps=10.0):
    return FrameRecord("s", Frame(i, i / fps, IMAGE),
                       Cars(boxes, track_id=ids, crop_top=[RED] * len(ids), crop_color=["red"] * len(ids)))


def feed(votes, frames):
    """The log lines of the events ``votes`` gives over ``frames`` and at the end."""
    events = []
    for i, (boxes, ids) in enumerate(frames):
        events += votes(rec(i, boxes, ids)).events
    events += votes.finish(rec(len(frames), [], [])).events
    return [to_json(e) for e in events]


def test_a_passing_car_is_moving_and_a_standing_one_is_reported_parked_once():
    votes = CarVotes(TrackConfig(parked_after=3.0, min_frames=3, track_timeout=5))
    frames = []
    for i in range(60):  # 6 s at 10 fps: car 1 drives across, car 2 stands, jittering by a few pixels
        j = (i % 3) - 1
        frames.append(([[10 + 8 * i, 50, 60 + 8 * i, 80], [300 + j, 200 + j, 380 + j, 250]], [1, 2]))
    events = feed(votes, frames)
    parked = [e for e in events if e["event"] == "parked"]
    cars = [e for e in events if e["event"] == "car"]
    assert [e["id"] for e in parked] == [2]
    assert parked[0]["t"] == pytest.approx(3.0, abs=0.15) and parked[0]["color"] == "red"
    assert [(e["id"], e["moving"]) for e in cars] == [(1, True)]  # the parked car gives no car event
    assert votes.standing == 1


def test_a_parked_car_seen_again_under_a_new_id_is_not_reported_again_and_leaving_makes_it_moving():
    votes = CarVotes(TrackConfig(parked_after=2.0, min_frames=3, track_timeout=5))
    box = [300, 200, 380, 250]
    frames = [([box], [7])] * 30  # parked 3 s
    frames += [([], [])] * 10  # hidden 1 s (a truck passes): track 7 ends
    frames += [([box], [8])] * 30  # seen again, new id, still standing
    frames += [([[300 + 10 * k, 200, 380 + 10 * k, 250]], [8]) for k in range(1, 20)]  # drives off
    events = feed(votes, frames)
    assert [e["id"] for e in events if e["event"] == "parked"] == [7]
    cars = [e for e in events if e["event"] == "car"]
    assert [(e["id"], e["moving"]) for e in cars] == [(8, True)]
    assert votes.spots == []  # it left: the spot is free for the next car


def test_all_car_events_on_request_with_moving_false():
    votes = CarVotes(TrackConfig(parked_after=100.0, min_frames=3, car_events="all"))
    events = feed(votes, [([[300, 200, 380, 250]], [4])] * 10)
    assert [(e["event"], e["moving"]) for e in events] == [("car", False)]


def test_a_box_cut_by_the_border_continues_a_track_but_starts_none():
    tracker = Tracker(TrackConfig())
    size = (600, 400)
    ids, cut, half = [], [], []
    for i in range(50):  # a car 80 px long drives in at the left and out at the right, 15 px a frame
        x2 = 20 + 15 * i
        box = [max(0, x2 - 80), 100, min(600, x2), 150]
        if box[2] - box[0] < 10:
            break
        ids.append(int(tracker.assign(Cars([box], score=[0.9]), size)[0]))
        cut.append(box[0] <= 5 or box[2] >= 595)
        half.append(box[2] - box[0] >= 40)
    first = next(i for i, c in enumerate(cut) if not c)
    assert first == 5 and ids[:first] == [-1] * first  # cut on entering: no track yet
    tracked = [t for t, h in zip(ids[first + 1:], half[first + 1:]) if h]
    assert len(set(tracked)) == 1 and tracked[0] >= 0  # then one track, kept while it leaves (cut again)
    assert sum(c and h for c, h in zip(cut[first:], half[first:])) >= 2


# --- the real clip, the shipped detector ---------------------------------------------------


@pytest.fixture(scope="module")
def clip_frames():
    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    while len(frames) < 140:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def detector():
    return VehicleDetector(VehicleConfig())


def hand(car: int):
    return {int(r["frame"]): [int(r[k]) for k in ("x0", "y0", "x1", "y1")]
            for r in csv.DictReader(HAND.open()) if int(r["car"]) == car}


def track(detector, frames, change=lambda i, f: f):
    tracker = Tracker(TrackConfig())
    out = []
    for i, f in enumerate(frames):
        image = change(i, f)
        xyxy, score = detector.detect(image)
        record = tracker(FrameRecord("m", Frame(i, i / 30, image), _cars(xyxy, score)))
        out.append((record.cars.xyxy.astype(np.float64), record.cars.track_id.copy()))
    return out


def ids_of(run, car: int):
    ids = []
    for f, box in sorted(hand(car).items()):
        if f >= len(run) or not len(run[f][0]):
            continue
        iou = iou_matrix(np.array([box], np.float64), run[f][0])[0]
        if iou.max() >= 0.4:
            ids.append(int(run[f][1][iou.argmax()]))
    return ids


@pytest.fixture(scope="module")
def plain(detector, clip_frames):
    return track(detector, clip_frames)


def test_two_cars_side_by_side_keep_their_ids(plain):
    # Cars 1 (gray) and 2 (blue) drive next to each other down the clip, frames 19-70.
    one, two = ids_of(plain, 1), ids_of(plain, 2)
    tracked1, tracked2 = [i for i in one if i >= 0], [i for i in two if i >= 0]
    assert len(tracked1) >= 0.8 * len(one) and len(tracked2) >= 0.8 * len(two)
    main1, main2 = Counter(tracked1).most_common(1)[0][0], Counter(tracked2).most_common(1)[0][0]
    assert main1 != main2
    assert set(tracked1) == {main1} and set(tracked2) == {main2}  # no switch, no restart


def test_an_exposure_step_makes_no_new_track(detector, clip_frames, plain):
    def step(i, f):
        return cv2.convertScaleAbs(f, alpha=1.6) if i >= 50 else f
    stepped = track(detector, clip_frames, step)
    for car in (1, 2, 3):
        assert set(i for i in ids_of(stepped, car) if i >= 0) == set(i for i in ids_of(plain, car) if i >= 0)
    assert len({i for _, ids in stepped for i in ids if i >= 0}) <= len({i for _, ids in plain for i in ids if i >= 0})


def test_one_id_through_a_short_occlusion(detector, clip_frames):
    box = hand(1)

    def hide(i, f):  # a lamp post / sign in front of car 1 for 8 frames (a quarter of a second)
        if 44 <= i < 52:
            f = f.copy()
            x1, y1, x2, y2 = box[i]
            f[y1 - 5:y2 + 5, x1 - 5:x2 + 5] = (90, 90, 90)
        return f
    run = track(detector, clip_frames, hide)
    assert all(not len(run[i][0]) or iou_matrix(np.array([box[i]], np.float64), run[i][0]).max() < 0.4
               for i in range(45, 51))  # really hidden from the detector
    ids = [i for i in ids_of(run, 1) if i >= 0]
    assert len(set(ids)) == 1 and len(ids) >= 30
