"""A clone with no ../shared beside it: the tests that need the photos skip with the reason, none fails."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT

NEED_PHOTOS = ["tests/test_rule.py", "tests/test_augment.py", "tests/test_effnet.py", "tests/test_shipped_model.py",
               "tests/test_server.py", "tests/test_track.py", "tests/test_synth.py"]


def _pytest(tmp_path, *args):
    env = {**os.environ, "CARCOLOR_SHARED": str(tmp_path / "no-shared")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_without_shared_the_suite_collects(tmp_path):
    res = _pytest(tmp_path, "--collect-only", "tests")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "error" not in res.stdout.splitlines()[-1].lower()


def test_without_shared_the_photo_tests_skip_with_the_reason(tmp_path):
    res = _pytest(tmp_path, *NEED_PHOTOS)
    tail = res.stdout.splitlines()[-1]
    assert res.returncode == 0, res.stdout[-4000:]
    assert "failed" not in tail and "error" not in tail, tail
    skipped = int(re.search(r"(\d+) skipped", tail).group(1))
    assert skipped >= 60, tail
    reasons = [ln for ln in res.stdout.splitlines() if ln.startswith("SKIPPED")]
    assert reasons and all(re.search(r"needs \.\./shared/\S+ beside the clone", ln) or "+SKIP" in ln
                           or "GStreamer" in ln or "not installed" in ln for ln in reasons), reasons
