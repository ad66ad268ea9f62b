"""The package as a user gets it: a wheel built from this tree, installed into a fresh venv, run anywhere."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import stream
from stream.labels import LABELS, load_labels

from conftest import ROOT

TREE = ["pyproject.toml", "README.md", "requirements.txt", "config.yaml", "labels.txt", "models", "stream"]
HEAVY = ("tensorflow", "keras", "flask", "waitress", "matplotlib", "sklearn", "tf2onnx", "scipy", "requests",
         "supervision")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel`` (no build isolation: offline) of a copy of the source tree (the build writes build/)."""
    src = tmp_path_factory.mktemp("src")
    for name in TREE:
        path = ROOT / name
        if path.is_dir() and not path.is_symlink():
            shutil.copytree(path, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".work"))
        else:
            shutil.copy(path, src / name, follow_symlinks=False)
    dist = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    (whl,) = dist.glob("carcolor-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel and its base dependencies (from the package index or pip's cache)."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return env_dir


def test_version():
    assert stream.__version__ == "0.1.0"


def test_top_level_labels_are_the_shipped_models_and_the_code_s():
    assert load_labels(ROOT / "labels.txt") == load_labels(ROOT / "models" / "default" / "labels.txt") == list(LABELS)


def test_wheel_ships_the_defaults_and_only_base_requirements(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(f"carcolor-{stream.__version__}.dist-info/METADATA").decode()
    for f in ("stream/defaults/config.yaml", "stream/defaults/models/default/model.onnx",
              "stream/defaults/models/default/model.json", "stream/defaults/models/default/labels.txt",
              "stream/log.schema.json", "stream/training/train.py", "stream/detect/motion.py"):
        assert f in names, f
    assert not [n for n in names if n.endswith(".keras")], "training artefacts in the wheel"
    base = [ln.split(":", 1)[1].strip() for ln in meta.splitlines()
            if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert base and not [r for r in base if r.split(">")[0].split("=")[0].split("<")[0] in
                         ("tensorflow-cpu", "tensorflow", "keras", "flask", "waitress", "matplotlib", "tf2onnx")], base
    assert wheel.stat().st_size < 10 * 2**20


def test_installed_wheel_runs_from_an_empty_folder(installed, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clip = ROOT / "demo" / "motorway-960x540.mp4"
    res = subprocess.run([str(installed / "bin" / "carcolor"), "run", "--source", str(clip), "--end", "1",
                          "--log", "colors.jsonl", "--quiet"], cwd=empty, capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in (empty / "colors.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "start" and len([x for x in lines if "frame" in x]) >= 25
    assert all(c["color"] in (*LABELS, "unknown") for x in lines if "frame" in x for c in x["cars"])
    assert sorted(p.name for p in empty.iterdir()) == ["colors.jsonl"]
    # It is the installed copy that ran, with its own defaults, and the base install stays light.
    probe = ("import sys, stream, stream.pipeline, stream.config as c; print(stream.__file__); "
             "print(c.DEFAULT_CONFIG); print([m for m in %r if m in sys.modules])" % (HEAVY,))
    out = subprocess.run([str(installed / "bin" / "python"), "-c", probe], cwd=empty, capture_output=True,
                         text=True, timeout=120, env=env).stdout.splitlines()
    assert out[0].startswith(str(installed)) and out[1].startswith(str(installed)), out
    assert out[2] == "[]", out


def test_an_extra_missing_is_named(installed, tmp_path):
    res = subprocess.run([str(installed / "bin" / "carcolor"), "serve"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2
    assert "pip install 'carcolor[server]'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
