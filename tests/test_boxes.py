"""Every box source returns the same record; bad boxes are clipped or skipped, bad files named."""

import numpy as np
import pytest

from conftest import write_jsonl
from stream.boxes import DetectionsFile, FixedRegions, WholeFrame, box_source, clip
from stream.config import Config, Region
from stream.errors import BoxesError
from stream.record import Cars, Frame


def frame(index=0, t=0.0, w=200, h=100):
    return Frame(index, t, np.zeros((h, w, 3), np.uint8))


def test_whole_frame():
    cars = WholeFrame()(frame())
    assert cars.xyxy.tolist() == [[0, 0, 200, 100]]


def test_fixed_regions_pixels_and_fractions():
    src = FixedRegions([Region(name="a", xyxy=(10, 20, 50, 60)), Region(xyxy=(0.5, 0.0, 1.0, 0.5))])
    cars = src(frame())
    assert cars.xyxy.tolist() == [[10, 20, 50, 60], [100, 0, 200, 50]]
    assert cars.name == ("a", "region1")
    assert src(frame(w=400, h=200)).xyxy.tolist()[1] == [200, 0, 400, 100]


def test_clip_and_skip_degenerate():
    cars = Cars([[-10, -5, 50, 50], [190, 90, 260, 140], [300, 10, 320, 20], [5, 5, 5, 40], [10, 10, 11, 30]])
    kept, skipped = clip(cars, 200, 100)
    assert kept.xyxy.tolist() == [[0, 0, 50, 50], [190, 90, 200, 100]]
    assert skipped == 3


def test_jsonl_by_frame_with_ids_and_scores(tmp_path):
    p = write_jsonl(tmp_path / "b.jsonl", [
        {"frame": 0, "boxes": [[1, 2, 30, 40]]},
        {"frame": 2, "boxes": [{"xyxy": [5.5, 6.2, 50.1, 60.9], "id": 7, "score": 0.8}, [0, 0, 10, 10]]},
    ])
    src = DetectionsFile(p)
    assert src(frame(0)).xyxy.tolist() == [[1, 2, 30, 40]]
    assert len(src(frame(1))) == 0
    cars = src(frame(2))
    assert cars.xyxy.tolist() == [[5, 6, 51, 61], [0, 0, 10, 10]]
    assert cars.track_id.tolist() == [7, -1]
    assert cars.score[0] == pytest.approx(0.8) and np.isnan(cars.score[1])


def test_jsonl_by_time_matches_nearest_frame(tmp_path):
    p = write_jsonl(tmp_path / "t.jsonl", [{"t": 1.0, "boxes": [[0, 0, 9, 9]]}])
    src = DetectionsFile(p, fps=30)
    assert len(src(frame(30, 1.0 + 0.01))) == 1
    assert len(src(frame(31, 1.0 + 1 / 30))) == 0
    assert len(src(frame(29, 1.0 - 1 / 30))) == 0


def test_mot_det_txt_frames_from_one(tmp_path):
    p = tmp_path / "det.txt"
    p.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n1,3,0,0,5,5,0.5\n3,4,1,1,10,10,1\n")
    src = DetectionsFile(p)
    cars = src(frame(0))
    assert cars.xyxy.tolist() == [[10, 20, 40, 60], [0, 0, 5, 5]]
    assert cars.track_id.tolist() == [-1, 3]
    assert len(src(frame(1))) == 0 and len(src(frame(2))) == 1


@pytest.mark.parametrize("content, fragment", [
    ('{"frame": 0, "boxes": [[1, 2, 3]]}\n', "x1, y1, x2, y2"),
    ('{"frame": 0, "boxes": [[1, 2, 3, 4]]}\n{"frame": 1, "boxes"\n', ":2: not valid JSON"),
    ('{"boxes": [[1, 2, 3, 4]]}\n', "'frame' or 't'"),
    ('{"frame": -1, "boxes": []}\n', "'frame'"),
    ("1,2,three,4,5,6\n", "MOT"),
    ("0,1,1,1,5,5,1\n", "start at 1"),
])
def test_bad_boxes_files_name_the_line(tmp_path, content, fragment):
    p = tmp_path / "bad.jsonl"
    p.write_text(content)
    with pytest.raises(BoxesError, match="bad.jsonl") as e:
        DetectionsFile(p)
    assert fragment in str(e.value)


def test_missing_boxes_file(tmp_path):
    with pytest.raises(BoxesError, match="not found"):
        DetectionsFile(tmp_path / "none.jsonl")


def test_box_source_precedence(tmp_path):
    p = write_jsonl(tmp_path / "b.jsonl", [{"frame": 0, "boxes": [[1, 1, 9, 9]]}])
    cfg = Config(boxes=[Region(xyxy=(0, 0, 10, 10))])
    assert isinstance(box_source(cfg, p), DetectionsFile)
    assert isinstance(box_source(cfg), FixedRegions)
    assert isinstance(box_source(Config(detector="none")), WholeFrame)
    from stream.detect.vehicle import Coast, VehicleDetector
    assert isinstance(box_source(Config()), (Coast, VehicleDetector))  # the shipped detector by default
    assert isinstance(box_source(Config(detector="motion", boxes=[Region(xyxy=(0, 0, 10, 10))])), FixedRegions)


def test_record_checks_shapes():
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        Cars(np.zeros(3))
    with pytest.raises(ValueError, match="score"):
        Cars([[0, 0, 1, 1]], score=[0.1, 0.2])
    c = Cars([[0, 0, 4, 4]])
    with pytest.raises(ValueError):
        c.xyxy[0, 0] = 3  # read-only: stages make new records
