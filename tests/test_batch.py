"""`carcolor batch` on a real local Ray: chunked files joined, resumed, and a worker killed mid-chunk.

One Ray session for the module (it takes seconds to start here); the CLI runs in a subprocess
that joins it with ``--ray ADDRESS``, as it would join a cluster.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, carcolor
from stream.batch import join_logs, match_tracks
from stream.batch.runner import PARTS

DEMO = ROOT / "demo" / "motorway-960x540.mp4"


def _lines(path: Path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _cars(lines):
    return sorted((ln["first"], ln["last"], ln["color"]) for ln in lines if ln.get("event") == "car")


def _same_cars(joined, whole, borders=(2.5, 5.0)):
    """One car event per car as in one run of the whole file, start and end within a few frames (the
    next chunk's tracker starts fresh inside the overlap); the same colour for every car that does not
    cross a border, and at most one car crossing one with another colour (its vote is joined from the
    two chunks' vote shares, not from every crop's)."""
    print("joined", joined, "\nwhole", whole)
    assert len(joined) == len(whole)
    left = list(joined)
    crossing_changed = 0
    for first, last, color in whole:
        near = [c for c in left if abs(c[0] - first) <= 0.3 and abs(c[1] - last) <= 0.3]
        assert near, f"no joined car for {(first, last, color)}"
        same = [c for c in near if c[2] == color]
        if same:
            left.remove(same[0])
            continue
        assert any(first < b < last for b in borders), f"{(first, last, color)} became {near[0]}"
        crossing_changed += 1
        left.remove(near[0])
    assert crossing_changed <= 1


def _frame(index, cars, t=None):
    return {"source": "v.mp4", "frame": index, "t": index / 10 if t is None else t, "cars": cars}


def _car(tid, first, last, frames, color, prob=0.9):
    return {"event": "car", "id": tid, "first": first, "last": last, "frames": frames, "color": color,
            "prob": prob, "colors": [{"color": color, "prob": prob}], "box": [0, 0, 10, 10], "moving": True}


# --- joining chunk logs: no Ray needed ---------------------------------------------------------

def test_a_car_across_a_border_is_one_car_with_both_chunks_votes():
    # chunk 0: frames 0-14 (nominal 0-1 s, overlap to 1.5 s); chunk 1: frames 10-19 (1 s-)
    box = lambda i: [10 * i, 0, 10 * i + 40, 30]  # noqa: E731 - one car driving right
    a = [{"event": "start", "source": "v.mp4", "wall": 0.0, "version": "x"}]
    a += [_frame(i, [{"box": box(i), "id": 3}, {"box": [500, 500, 540, 530], "id": 4}]) for i in range(15)]
    a += [_car(3, 0.0, 1.4, 15, "red", 0.8), _car(4, 0.0, 1.4, 15, "blue")]
    b = [{"event": "start", "source": "v.mp4", "wall": 1.0, "version": "x"}]
    b += [_frame(i, [{"box": box(i), "id": 1}] + ([{"box": [700, 0, 740, 30], "id": 2}] if i >= 15 else []))
          for i in range(10, 20)]
    b += [_car(1, 1.0, 1.9, 10, "red", 0.6), _car(2, 1.5, 1.9, 5, "white")]
    assert match_tracks(a, b) == {1: (3, 5)}  # the red car, on the 5 shared frames; the blue one left
    out = join_logs([a, b], [(10, 0.95), None])
    frames = [ln["frame"] for ln in out if "event" not in ln]
    assert frames == list(range(20))  # every frame once
    assert sum(ln.get("event") == "start" for ln in out) == 1
    cars = {ln["color"]: ln for ln in out if ln.get("event") == "car"}
    assert sorted(cars) == ["blue", "red", "white"]
    red = cars["red"]
    assert (red["first"], red["last"], red["frames"]) == (0.0, 1.9, 20)  # 15 + 10 - 5 shared
    assert red["prob"] == pytest.approx((15 * 0.8 + 10 * 0.6) / 25, abs=1e-4)
    ids_red = {c["id"] for ln in out if "event" not in ln for c in ln["cars"] if c["box"][1] == 0 and c["box"][0] < 700}
    assert ids_red == {red["id"]}  # chunk 1's frames carry chunk 0's id for the same car
    assert len({c["id"] for c in cars.values()}) == 3


def test_a_car_starting_in_the_overlap_is_the_next_chunks_only():
    a = [_frame(i, [{"box": [0, 0, 40, 30], "id": 1}] if i >= 12 else []) for i in range(15)]
    a += [_car(1, 1.2, 1.4, 3, "red")]
    b = [_frame(i, [{"box": [300, 0, 340, 30], "id": 1}] if i >= 12 else []) for i in range(10, 20)]  # elsewhere
    b += [_car(1, 1.2, 1.9, 8, "red")]
    out = join_logs([a, b], [(10, 0.95), None])
    cars = [ln for ln in out if ln.get("event") == "car"]
    assert [(c["first"], c["last"]) for c in cars] == [(1.2, 1.9)]


# --- on Ray ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_address():
    ray = pytest.importorskip("ray", reason="carcolor batch needs the [batch] extra (ray)")
    ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ctx.address_info["address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two 6 s pieces of the real motorway clip (H.264), under different names."""
    d = tmp_path_factory.mktemp("videos")
    a = d / "first.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", DEMO, "-t", "6", "-c", "copy", a], check=True)
    b = d / "second.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-ss", "5", "-i", DEMO, "-t", "6", "-c:v", "libx264",
                    "-preset", "veryfast", b], check=True)
    return a, b


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(resources.files("stream").joinpath("log.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _batch(address, out, *videos, extra=(), timeout=300):
    return carcolor("batch", *videos, "--out", out, "--config", ROOT / "demo" / "config.yaml", "--ray", address,
                    "--chunk", "2.5", "--overlap", "1", "--quiet", *extra, timeout=timeout)


def test_batch_joins_chunks_like_one_run_and_resumes(ray_address, clips, tmp_path, validator):
    out = tmp_path / "out"
    res = _batch(ray_address, out, *clips)
    assert res.returncode == 0, res.stderr
    assert "2 to do in 6 chunks" in res.stderr
    for clip in clips:
        log = out / f"{clip.stem}.jsonl"
        lines = _lines(log)
        for ln in lines:
            assert not list(validator.iter_errors(ln)), ln
        frames = [ln["frame"] for ln in lines if "event" not in ln]
        assert frames == sorted(set(frames)) and len(frames) >= 175  # 6 s at 29.97 fps, each frame once
        whole = tmp_path / f"{clip.stem}-whole.jsonl"
        r = carcolor("run", "--source", clip, "--config", ROOT / "demo" / "config.yaml", "--log", whole, "--quiet")
        assert r.returncode == 0, r.stderr
        # the same cars as one run of the whole file (tracks cut at 2.5 and 5 s joined again)
        _same_cars(_cars(lines), _cars(_lines(whole)))
    summary = json.loads((out / "summary.json").read_text())
    for clip in clips:
        cars = [ln for ln in _lines(out / f"{clip.stem}.jsonl") if ln.get("event") == "car"]
        assert summary["files"][clip.stem]["cars"] == len(cars) > 0
        assert sum(summary["files"][clip.stem]["hours"]["0"].values()) == len(cars)
    assert summary["total"]["cars"] == sum(s["cars"] for s in summary["files"].values())
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0] == "file,hour,color,cars" and sum(int(r.rsplit(",", 1)[1]) for r in rows[1:]) == summary["total"]["cars"]
    assert not any((out / PARTS).iterdir())

    # a rerun skips both; without one log, only that one is redone
    kept = (out / f"{clips[0].stem}.jsonl").stat()
    res = _batch(ray_address, out, *clips)
    assert res.returncode == 0, res.stderr
    assert "2 already done (skipped), 0 to do" in res.stderr
    (out / f"{clips[1].stem}.jsonl").unlink()
    res = _batch(ray_address, out, *clips)
    assert res.returncode == 0, res.stderr
    assert "1 already done (skipped), 1 to do in 3 chunks" in res.stderr
    now = (out / f"{clips[0].stem}.jsonl").stat()
    assert (now.st_ino, now.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    assert json.loads((out / "summary.json").read_text()) == summary


def test_a_worker_killed_mid_chunk_redoes_only_its_chunk(ray_address, clips, tmp_path):
    out = tmp_path / "out"
    short, long = tmp_path / "short.mp4", clips[0]
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", DEMO, "-t", "2", "-c", "copy", short], check=True)
    assert _batch(ray_address, out, short).returncode == 0
    done = (out / "short.jsonl").stat()
    proc = subprocess.Popen([sys.executable, "-m", "stream", "batch", short, long, "--out", out, "--config",
                             ROOT / "demo" / "config.yaml", "--ray", ray_address, "--chunk", "2.5", "--overlap", "1",
                             "--workers", "2", "--quiet"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    parts = out / PARTS / long.stem
    killed, attempts = None, {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            victim = parts / "00001.attempts"
            if killed is None and victim.is_file() and not (parts / "00001.jsonl").exists():
                pids = victim.read_text().split()
                if pids:
                    killed = int(pids[0])
                    os.kill(killed, signal.SIGKILL)
            if killed is not None and victim.is_file() and len(victim.read_text().split()) >= 2:
                # the retry has started: read every chunk's attempts before the parts are removed
                attempts = {p.name: p.read_text().split() for p in parts.glob("*.attempts")}
                break
            time.sleep(0.02)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "the chunk ended before it could be killed"
    assert proc.returncode == 0, err
    assert attempts["00001.attempts"][0] == str(killed) and len(attempts["00001.attempts"]) == 2
    assert all(len(v) == 1 for k, v in attempts.items() if k != "00001.attempts"), attempts
    assert "1 already done (skipped), 1 to do in 3 chunks" in err
    lines = _lines(out / f"{long.stem}.jsonl")
    frames = [ln["frame"] for ln in lines if "event" not in ln]
    assert frames == list(range(frames[0], frames[0] + len(frames))) and len(frames) >= 175
    whole = tmp_path / "whole.jsonl"
    assert carcolor("run", "--source", long, "--config", ROOT / "demo" / "config.yaml", "--log", whole,
                    "--quiet").returncode == 0
    _same_cars(_cars(lines), _cars(_lines(whole)))
    now = (out / "short.jsonl").stat()
    assert (now.st_ino, now.st_mtime_ns) == (done.st_ino, done.st_mtime_ns)  # the finished file untouched


def test_batch_errors_name_the_problem(tmp_path):
    res = carcolor("batch", tmp_path / "nope.mp4", "--out", tmp_path / "out")
    assert res.returncode == 2 and "video file not found" in res.stderr and str(tmp_path / "nope.mp4") in res.stderr
    res = carcolor("batch", DEMO, "--out", tmp_path / "no" / "out")
    assert res.returncode == 2 and "--out folder's parent does not exist" in res.stderr
    shutil.copy(DEMO, tmp_path / "motorway-960x540.mp4")
    res = carcolor("batch", DEMO, tmp_path / "motorway-960x540.mp4", "--out", tmp_path / "out")
    assert res.returncode == 2 and "same log motorway-960x540.jsonl" in res.stderr
    assert not (tmp_path / "out").exists()
