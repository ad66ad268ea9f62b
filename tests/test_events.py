"""The typed log lines (stream/events.py) and the log's JSON Schema (stream/log.schema.json), on real logs."""
from __future__ import annotations

import json
from importlib import resources

import jsonschema
import numpy as np
import pytest

from stream.events import (CarEvent, CountEvent, StartEvent, StatsEvent, StatusEvent, describe, parse,
                           to_json)
from stream.record import Cars, Frame, FrameRecord

from conftest import ROOT, carcolor


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(resources.files("stream").joinpath("log.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator, line):
    return [e.message for e in validator.iter_errors(line)]


def test_a_real_demo_log_validates_and_parses_back(tmp_path, tiny_model, validator):
    """The demo's settings (motion detector, tracking, count line) on the real motorway clip."""
    cfg = tmp_path / "demo.yaml"
    cfg.write_text((ROOT / "demo" / "config.yaml").read_text()
                   + f"model_file: {tiny_model['onnx']}\nlabel_file: {tiny_model['labels']}\n")
    log = tmp_path / "colors.jsonl"
    res = carcolor("run", "--source", ROOT / "demo" / "motorway-960x540.mp4", "--config", cfg,
                   "--end", "4", "--log", log, "--quiet")
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    kinds = {type(parse(x)).__name__ for x in lines}
    assert {"StartEvent", "FrameLine", "CarEvent", "CountEvent"} <= kinds, kinds
    for x in lines:
        assert not _errors(validator, x), (x, _errors(validator, x))
        assert to_json(parse(x)) == x  # every line reads back as what was written


def test_live_events_validate(validator):
    for event in (StatusEvent("online", "rtsp://cam", 0.5, 1.7e9, {"size": [640, 480], "fps": 25.0}),
                  StatusEvent("offline", "rtsp://cam", 3.0, 1.7e9, {"reason": "stalled: no frame for 10.0s",
                                                                    "attempt": 1, "retry_in": 1.0}),
                  StatusEvent("reconnected", "0", 9.0, None, {"count": 1, "size": [640, 480], "fps": 30.0,
                                                              "downtime": 6.0}),
                  StatsEvent("0", 60.0, 29.97, 29.5, 3, 0),
                  StartEvent("0", 1.7e9, "0.1.0")):
        line = to_json(event)
        assert not _errors(validator, line), (line, _errors(validator, line))
        assert parse(line) == event


def test_the_schema_rejects_what_no_carcolor_writes(validator):
    car = to_json(CarEvent(1, 0.0, 1.0, 5, "red", 0.8, (("red", 0.8),), (0, 0, 10, 10)))
    assert not _errors(validator, car)
    assert _errors(validator, {**car, "prob": 1.5})
    assert _errors(validator, {k: v for k, v in car.items() if k != "moving"})
    assert _errors(validator, {**car, "colour": "red"})  # a misspelt key
    assert _errors(validator, {"source": "a.mp4", "frame": -1, "t": 0.0, "cars": []})
    assert _errors(validator, {"event": "teleported", "source": "a"})


def test_frame_line_shows_the_vote_where_there_is_one():
    cars = Cars([[0, 0, 10, 10], [20, 20, 40, 40]], track_id=[3, -1]).with_crop_colors(
        [(("gray", 0.6), ("white", 0.4)), (("blue", 0.9),)], ["gray", "blue"])
    voted = cars.with_votes([(("white", 0.7), ("gray", 0.3)), ()], ["white", ""])
    line = to_json(FrameRecord("a.mp4", Frame(4, 0.2, np.zeros((50, 50, 3), np.uint8)), voted))
    assert [c["color"] for c in line["cars"]] == ["white", "blue"]
    assert line["cars"][0]["colors"] == [{"color": "white", "prob": 0.7}, {"color": "gray", "prob": 0.3}]
    assert voted.crop_color == ("gray", "blue") and voted.crop_top[0][0] == ("gray", 0.6)


def test_count_event_total_and_describe():
    e = CountEvent(12.0, {"in": {"red": 2, "white": 1}, "out": {}}, final=True)
    assert to_json(e) == {"event": "count", "t": 12.0, "counts": {"in": {"red": 2, "white": 1}, "out": {}},
                          "total": 3, "final": True}
    assert describe(StatusEvent("offline", "cam", 1.0, None, {"reason": "x"})) == "[cam] offline: reason=x"


def test_parse_refuses_foreign_lines():
    for bad in ([1, 2], {"event": "car", "id": 1}, {"frame": 3}, {"event": "nope"}):
        with pytest.raises(ValueError):
            parse(bad)
