"""Where ``../shared`` (the training photos) is, and the one skip reason for tests that need it.

``CARCOLOR_SHARED`` points elsewhere (the tests use it to check that a clone without ``../shared``
skips cleanly).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("CARCOLOR_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
DATASET = SHARED / "datasets" / "traffic-colors"
TEST_SPLIT = DATASET / "images" / "test"
MISSING = None if TEST_SPLIT.is_dir() else f"needs ../shared/datasets/traffic-colors beside the clone ({DATASET} not found)"
needs_shared = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def require_shared() -> None:
    """Skip the calling test (with the reason) when the photos are not there."""
    if MISSING is not None:
        pytest.skip(MISSING)
