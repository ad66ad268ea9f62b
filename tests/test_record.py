"""The records (stream/record.py) on their own: shapes checked, immutable, the two colour columns apart."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stream.record import Cars, Frame, FrameRecord

TOP = (("red", 0.7), ("orange", 0.2))


def test_cars_checks_shapes_with_a_message():
    with pytest.raises(ValueError, match=r"xyxy must have shape \(N, 4\), got \(3,\)"):
        Cars([1, 2, 3])
    with pytest.raises(ValueError, match=r"score must have shape \(2,\), got \(1,\)"):
        Cars([[0, 0, 5, 5], [1, 1, 6, 6]], score=[0.5])
    with pytest.raises(ValueError, match="crop_top must have 2 entries, got 1"):
        Cars([[0, 0, 5, 5], [1, 1, 6, 6]], crop_top=[TOP])
    with pytest.raises(ValueError, match="vote_color must have 1 entries, got 2"):
        Cars([[0, 0, 5, 5]], vote_color=["red", "blue"])


def test_cars_are_immutable_and_own_their_arrays():
    boxes = np.array([[0, 0, 10, 10]])
    cars = Cars(boxes, score=[0.9])
    boxes[0, 0] = 5
    assert cars.xyxy[0, 0] == 0
    with pytest.raises(ValueError):
        cars.xyxy[0, 0] = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cars.name = ("x",)


def test_defaults_and_empty():
    cars = Cars([[0, 0, 10, 10], [5, 5, 9, 9]])
    assert np.isnan(cars.score).all() and (cars.track_id == -1).all() and cars.name == ("", "")
    assert not cars.classified and cars.shown_color == () and len(Cars.empty()) == 0


def test_crop_and_vote_columns_and_what_is_shown():
    cars = Cars([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], track_id=[1, -1, 2])
    crops = cars.with_crop_colors([TOP, (("blue", 0.9),), (("gray", 0.5),)], ["red", "blue", "unknown"])
    assert crops.classified and crops.shown_color == ("red", "blue", "unknown")
    voted = crops.with_votes([(("white", 0.6),), (), (("black", 0.8),)], ["white", "", "black"])
    assert voted.shown_color == ("white", "blue", "black")
    assert voted.shown_top == ((("white", 0.6),), (("blue", 0.9),), (("black", 0.8),))
    assert voted.crop_color == crops.crop_color  # the classifier's answer stays as it was
    picked = voted.select(np.array([False, True, True]))
    assert picked.xyxy.tolist() == [[20, 0, 30, 10], [40, 0, 50, 10]] and picked.vote_color == ("", "black")


def test_frame_and_record():
    frame = Frame(3, 0.1, np.zeros((20, 40, 3), np.uint8))
    assert frame.size == (40, 20)
    rec = FrameRecord("s", frame, Cars.empty())
    assert rec.events == () and rec.skipped == 0
