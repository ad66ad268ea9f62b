"""Labelled tracks: the file format, the found / missed / extra scoring, and `carcolor evaluate --tracks` on the real clip."""
from __future__ import annotations

import json

import pytest

from conftest import ROOT, carcolor, write_jsonl

from stream.tracks_eval import TracksError, load_tracks, score

CLIP = ROOT / "demo" / "motorway-960x540.mp4"
TRACKS = ROOT / "demo" / "motorway-tracks.jsonl"


def labels(tmp_path):
    return load_tracks(write_jsonl(tmp_path / "t.jsonl", [
        {"ignore": [[0, 0], [100, 0], [100, 20], [0, 20]]},
        {"car": 1, "colour": "red", "boxes": {"0": [10, 50, 30, 70], "10": [110, 50, 130, 70]}},
        {"car": 2, "colour": "black", "boxes": {"0": [10, 100, 30, 120], "4": [50, 100, 70, 120]}},
        {"car": 3, "colour": "white", "boxes": {"5": [200, 200, 240, 230]}},
        {"car": 4, "colour": "unknown", "ignore": True, "boxes": {"0": [300, 10, 310, 20]}},
    ]))


def test_interpolated_boxes_and_scoring(tmp_path):
    lab = labels(tmp_path)
    car1 = lab.cars[0].boxes()
    assert list(car1[5]) == [60, 50, 80, 70] and len(car1) == 11
    boxes = {
        7: {f: [10 + 10 * f, 50, 30 + 10 * f, 70] for f in range(0, 11)},  # car 1, right colour
        8: {f: [10 + 10 * f, 101, 30 + 10 * f, 121] for f in range(0, 2)},  # car 2, first half...
        9: {f: [10 + 10 * f, 99, 30 + 10 * f, 119] for f in range(2, 5)},  # ...and again: split
        10: {f: [500, 500, 520, 520] for f in range(5)},  # nothing there: extra
        11: {f: [40, 2, 60, 15] for f in range(5)},  # in the ignored area
        12: {0: [300, 10, 310, 20]},  # the ignored car
    }
    events = [{"event": "car", "id": 7, "color": "red"}, {"event": "car", "id": 8, "color": "gray"},
              {"event": "car", "id": 9, "color": "black"}, {"event": "car", "id": 10, "color": "white"},
              {"event": "car", "id": 11, "color": "white"}, {"event": "parked", "id": 12, "color": "white"}]
    s = score(lab, boxes, events)
    assert (s["labelled"], s["found"], s["missed"], s["extra"], s["split"], s["ignored"]) == (3, 2, 1, 1, 1, 1)
    rows = {r["car"]: r for r in s["rows"]}
    assert rows[1]["right"] and rows[1]["ids"] == [7]
    assert rows[2]["ids"] == [9, 8] and rows[2]["predicted"] == "black"  # the id covering it longest decides
    assert not rows[3]["found"]
    assert s["colour_right"] == 2 and s["colour_scored"] == 3
    assert [e["id"] for e in s["extras"]] == [10]


@pytest.mark.parametrize("line, why", [
    ("not json", "not valid JSON"),
    ('{"car": 1, "colour": "mauve", "boxes": {"0": [0, 0, 5, 5]}}', "unknown colour 'mauve'"),
    ('{"car": 1, "colour": "red"}', "needs 'boxes'"),
    ('{"car": 1, "colour": "red", "boxes": {"0": [5, 5, 1, 1]}}', "x1 > x0"),
    ('{"car": 1, "colour": "red", "boxes": {"x": [0, 0, 5, 5]}}', "frame numbers"),
    ('{"ignore": [[0, 0]]}', "expected a car"),
])
def test_bad_tracks_files_name_the_line(tmp_path, line, why):
    p = tmp_path / "t.jsonl"
    p.write_text('{"car": 9, "colour": "red", "boxes": {"0": [0, 0, 5, 5]}}\n' + line + "\n")
    with pytest.raises(TracksError, match=f"{p}:2: .*{why}"):
        load_tracks(p)
    with pytest.raises(TracksError, match="not found"):
        load_tracks(tmp_path / "none.jsonl")


def test_the_shipped_labels_load():
    lab = load_tracks(TRACKS)
    cars = [c for c in lab.cars if not c.ignore]
    assert len(cars) == 16 and len(lab.ignore) == 1
    assert all(c.colour != "unknown" for c in cars)


def test_evaluate_tracks_on_the_motorway_with_the_shipped_detector(tmp_path):
    res = carcolor("evaluate", "--video", CLIP, "--tracks", TRACKS, "--config", ROOT / "demo" / "config.yaml",
                   "--detector", "vehicle", "--out", tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / "tracks.json").read_text())
    assert s["found"] >= 13 and s["extra"] <= 3 and s["split"] <= 2, res.stdout
    assert "cars found" in res.stdout
    res = carcolor("evaluate", "--video", CLIP, "--tracks", tmp_path / "missing.jsonl")
    assert res.returncode == 2 and "labelled tracks file not found" in res.stderr
