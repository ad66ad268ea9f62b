"""``carcolor report``: per-colour table and chart from a run's JSON Lines log."""
from __future__ import annotations

import json

import cv2

from stream.report import main, nice_bin, read_cars, table

from conftest import carcolor


def car(i, t, color, prob=0.9):
    return {"event": "car", "id": i, "first": t, "last": t + 2, "frames": 40, "color": color, "prob": prob,
            "colors": [{"color": color, "prob": prob}], "box": [0, 0, 10, 10]}


def write_log(path):
    rows = [{"source": "a.mp4", "frame": 0, "t": 0.0, "cars": []}]
    rows += [car(i, t, c) for i, (t, c) in enumerate([(1, "white"), (3, "red"), (12, "white"), (25, "gray"),
                                                      (31, "white"), (58, "red")])]
    rows.append({"event": "count", "t": 60.0, "counts": {"in": {"white": 3}}, "total": 3, "final": True})
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"event": "car", "id": 99, "fir'  # a torn last line
    path.write_text(text)
    return path


def test_table_counts_and_shares(tmp_path):
    cars, bad = read_cars(write_log(tmp_path / "colors.jsonl"))
    assert bad == 1 and len(cars) == 6
    assert table(cars) == [("white", 3, 0.5), ("red", 2, 2 / 6), ("gray", 1, 1 / 6)]


def test_report_prints_table_and_writes_chart(tmp_path, capsys):
    log = write_log(tmp_path / "colors.jsonl")
    assert main([str(log)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["colour", "cars", "share"]
    assert lines[1].split() == ["white", "3", "50.0%"]
    assert lines[-1].split() == ["total", "6", "100.0%"]
    assert "1 unreadable line" in err
    png = cv2.imread(str(tmp_path / "colors.png"))
    assert png is not None and png.shape[0] >= 300 and png.shape[1] >= 600


def test_report_json_and_bins(tmp_path, capsys):
    log = write_log(tmp_path / "colors.jsonl")
    assert main([str(log), "--json", "--chart", str(tmp_path / "c.png"), "--bin", "10"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cars"] == 6 and data["colors"][0] == {"color": "white", "count": 3, "share": 0.5}
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert nice_bin(57) == 5 and nice_bin(3600) == 300 and nice_bin(0) == 1


def test_report_errors_and_empty_logs(tmp_path, capsys):
    assert main([str(tmp_path / "missing.jsonl")]) == 2
    assert "log not found" in capsys.readouterr().err
    empty = tmp_path / "frames.jsonl"
    empty.write_text(json.dumps({"frame": 0, "t": 0, "cars": []}) + "\n")
    assert main([str(empty), "--no-chart"]) == 0
    out, err = capsys.readouterr()
    assert "no car events" in err and out.splitlines()[-1].split() == ["total", "0", "0.0%"]
    assert main([str(empty), "--bin", "0"]) == 2


def test_report_through_the_cli(tmp_path):
    log = write_log(tmp_path / "colors.jsonl")
    res = carcolor("report", log, "--chart", tmp_path / "chart.png")
    assert res.returncode == 0, res.stderr
    assert "white" in res.stdout and (tmp_path / "chart.png").exists()
