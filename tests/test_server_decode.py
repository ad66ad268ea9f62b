"""The server's bounded decoding of huge uploads: JPEGs decoded at reduced size, big decodes gated.

No shared data needed: the images are made here.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from stream import imageio
from stream.config import load_config
from stream.server import create_app

from conftest import ROOT


def jpeg(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(30, 230, (24, 32, 3), dtype=np.uint8), (width, height),
                     interpolation=cv2.INTER_LINEAR)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 40])[1].tobytes()


@pytest.mark.parametrize("size, limit, factor", [((640, 480), 4_000_000, 1), ((4000, 3000), 4_000_000, 2),
                                                 ((7000, 7000), 4_000_000, 4), ((7000, 7000), 1_000_000, 8),
                                                 ((30000, 30000), 1_000_000, 8)])
def test_reduction_factor(size, limit, factor):
    assert imageio.reduction(imageio.ImageInfo("jpeg", *size), limit) == factor
    assert imageio.reduction(imageio.ImageInfo("png", *size), limit) == 1  # libpng cannot decode smaller


def test_reduced_decode_is_the_picture_at_a_smaller_size():
    data = jpeg(4000, 3000)
    info = imageio.probe(data)
    small = imageio.decode_pixels(data, info, 4)
    assert small.shape == (750, 1000, 3)
    full = imageio.decode_pixels(data, info)
    ref = cv2.resize(full, (1000, 750), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - ref.astype(int)).mean() < 4


def test_boxes_on_a_reduced_scene_are_in_the_uploaded_image_s_pixels():
    cfg = load_config()
    client = create_app(cfg).test_client()
    scene = jpeg(6000, 4000, seed=3)
    boxes = [[1200, 800, 2400, 1600], [5000, 3000, 6000, 4000]]
    r = client.post("/classify", data={"image": (__import__("io").BytesIO(scene), "scene.jpg"),
                                       "boxes": json.dumps(boxes)})
    assert r.status_code == 200, r.get_json()
    results = r.get_json()["results"]
    assert [x["box"] for x in results] == boxes
    # The same crops cut from the full-size picture get the same answer.
    full = cv2.imdecode(np.frombuffer(scene, np.uint8), cv2.IMREAD_COLOR)
    clf = client.application.extensions["carcolor"].classifier
    probs = clf.predict_proba([full[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes])
    assert [x["colors"][0]["color"] for x in results] == [t[0][0] for t in clf.top(probs)]


MEASURE = textwrap.dedent("""
    import io, json, resource, sys, threading
    import cv2, numpy as np
    from stream.config import load_config
    from stream.server import create_app
    limit, slots, n, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    cfg = load_config()
    cfg = cfg.override(server={**cfg.server.model_dump(), "decode_max_pixels": limit, "decode_slots": slots,
                               "max_upload_mb": 200})
    app = create_app(cfg)
    big = open(path, "rb").read()
    small = cv2.imencode(".jpg", np.full((60, 80, 3), 128, np.uint8))[1].tobytes()
    c = app.test_client()
    assert c.post("/", data={"image": (io.BytesIO(small), "s.jpg")}).status_code == 200
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    codes = []
    def upload():
        codes.append(app.test_client().post("/", data={"image": (io.BytesIO(big), path)}).status_code)
    threads = [threading.Thread(target=upload) for _ in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(json.dumps({"codes": codes, "grew_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}))
""")


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    """A 7000x7000 picture (under the 50 MP limit) as JPEG and PNG files: 147 MB each when decoded."""
    d = tmp_path_factory.mktemp("huge")
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(30, 230, (24, 32, 3), dtype=np.uint8), (7000, 7000))
    cv2.imwrite(str(d / "big.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 40])
    cv2.imwrite(str(d / "big.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return d


def _grew(path, limit: int, slots: int, n: int = 8) -> float:
    """How far the server's peak memory grows (MiB) over n concurrent uploads of ``path``."""
    res = subprocess.run([sys.executable, "-c", MEASURE, str(limit), str(slots), str(n), str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["codes"] == [200] * n
    return out["grew_mib"]


def test_memory_stays_bounded_under_concurrent_huge_jpegs(huge):
    """8 concurrent 7000x7000 JPEGs (1.2 GB if decoded at full size at once): at 1/4 size, a few MB each."""
    assert _grew(huge / "big.jpg", 4_000_000, 2) < 150


def test_big_decodes_wait_for_a_slot(huge):
    """8 concurrent 7000x7000 PNGs (PNG has no reduced decoding): one decoded at a time."""
    assert _grew(huge / "big.png", 4_000_000, 1) < 600  # all 8 at once: 1.6 GB measured
