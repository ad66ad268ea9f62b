"""The HTTP API: the real server (waitress, in a subprocess) called over loopback.

The model is a tiny ONNX nearest-colour classifier written by the fixture
(tests/_server_fixtures.py), so these tests need neither TensorFlow nor the
shipped model. Upload material: real crops from the shared traffic-colors set.
"""
from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:
    from _server_fixtures import DATASET, LABELS, ServerProcess, dataset_images, write_config
    from _shared import needs_shared
except ImportError:  # tests/ made a package
    from tests._server_fixtures import DATASET, LABELS, ServerProcess, dataset_images, write_config
    from tests._shared import needs_shared

from stream import imageio
from stream.config import load_config
from stream.imageio import ImageError, ImageTooLarge, UnsupportedImage, decode_image, probe

pytestmark = needs_shared  # real photos of the test split

N_LABELS = len(LABELS)


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def server(config_file):
    with ServerProcess(config_file) as srv:
        yield srv
    assert srv.proc.returncode == 0, "server did not exit cleanly on SIGTERM:\n" + "".join(srv.lines[-20:])


@pytest.fixture(scope="module")
def url(server) -> str:
    return server.url


@pytest.fixture(scope="module")
def http():
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="module")
def crops():
    """(path, bytes) of 2 real JPEG crops per colour."""
    return [(p, p.read_bytes()) for p in dataset_images(2)]


@pytest.fixture(scope="module")
def jpeg(crops) -> bytes:
    return crops[0][1]


@pytest.fixture(scope="module")
def png(jpeg) -> bytes:
    return _png_of(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))


def _png_of(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def _post(http, url, files, path="/", **kw):
    return http.post(url + path, files=files, timeout=30, **kw)


def _check_result(r: dict, k: int = 3) -> None:
    assert set(r) - {"box"} == {"colors", "color"}
    colors = r["colors"]
    assert len(colors) == k
    for c in colors:
        assert set(c) == {"color", "prob"}
        assert c["color"] in LABELS
        assert isinstance(c["prob"], float) and 0.0 <= c["prob"] <= 1.0
    probs = [c["prob"] for c in colors]
    assert probs == sorted(probs, reverse=True)
    assert len({c["color"] for c in colors}) == k
    assert r["color"] == colors[0]["color"]  # unknown_threshold 0: the decision is the top colour


def _same(a: dict, b: dict) -> None:
    """Two results agree: same colours in the same order, probabilities within float32 noise."""
    assert [c["color"] for c in a["colors"]] == [c["color"] for c in b["colors"]]
    assert [c["prob"] for c in a["colors"]] == pytest.approx([c["prob"] for c in b["colors"]], abs=1e-5)
    assert a["color"] == b["color"]


def _stats(http, url) -> dict:
    return http.get(url + "/health", timeout=10).json()["stats"]


def _assert_error(resp, status: int, *words: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    for w in words:
        assert w.lower() in body["error"].lower(), body["error"]


# --- the original API ---------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_seed_curl_command_literally(url, jpeg, tmp_path, http):
    (tmp_path / "car.jpg").write_bytes(jpeg)
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}",
         "-H", "Content-Type: multipart/form-data", "--form", "image=@car.jpg"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True).stdout
    body, code = out.rsplit("\n", 1)
    assert code == "200"
    result = json.loads(body)
    _check_result(result)
    assert '"prob":0.' in body or '"prob":1' in body   # a JSON number, not a string
    _same(result, _post(http, url, {"image": ("car.jpg", jpeg, "image/jpeg")}).json())


def test_seed_form_with_requests_from_a_file(url, jpeg, tmp_path):
    path = tmp_path / "car.jpg"
    path.write_bytes(jpeg)
    with path.open("rb") as f:
        resp = requests.post(f"{url}", files={"image": f}, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert list(body) == ["colors", "color"]   # the original's key first; the decision added
    _check_result(body)


def test_png_and_jpeg_of_same_pixels_agree(url, http, crops):
    for _, data in crops[:4]:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        a = _post(http, url, {"image": ("a.jpg", data)}).json()
        b = _post(http, url, {"image": ("a.png", _png_of(image))}).json()
        _same(a, b)


def test_probabilities_look_like_the_original(url, http, jpeg):
    body = _post(http, url, {"image": jpeg}).text
    for c in json.loads(body)["colors"]:
        # float32's shortest decimal (0.9554577), not float64 noise (0.95545768737792969)
        assert c["prob"] == float(str(np.float32(c["prob"])))


def test_top_k(url, http, jpeg):
    for k in (1, 5, N_LABELS):
        r = _post(http, url, {"image": jpeg}, params={"top_k": k})
        assert r.status_code == 200
        _check_result(r.json(), k)
        r = _post(http, url, [("image", jpeg), ("image", jpeg)], "/classify", params={"top_k": k})
        assert [len(x["colors"]) for x in r.json()["results"]] == [k, k]
    for bad in ("0", str(N_LABELS + 1), "-1", "two", "1.5", ""):
        for path in ("/", "/classify"):
            _assert_error(_post(http, url, {"image": jpeg}, path, params={"top_k": bad}), 400, "top_k")


def _variants(jpeg: bytes):
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    enc = lambda ext, a, *params: cv2.imencode(ext, a, list(params))[1].tobytes()  # noqa: E731
    return {
        "grey JPEG": enc(".jpg", cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)),
        "progressive JPEG": enc(".jpg", img, cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        "JPEG with restart markers": enc(".jpg", img, cv2.IMWRITE_JPEG_RST_INTERVAL, 1),
        "JPEG with trailing bytes": jpeg + b"\0" * 100,
        "RGBA PNG": enc(".png", cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)),
        "16-bit PNG": enc(".png", img.astype(np.uint16) * 257),
        "grey PNG": enc(".png", img[..., 0]),
        "1x1 PNG": enc(".png", img[:1, :1]),
        "1x500 PNG": enc(".png", cv2.resize(img, (500, 1))),
        "1920x1080 PNG": enc(".png", cv2.resize(img, (1920, 1080))),
    }


def test_unusual_but_valid_images_are_classified(url, http, jpeg):
    for name, data in _variants(jpeg).items():
        r = _post(http, url, {"image": ("x", data)})
        assert r.status_code == 200, f"{name}: {r.text}"
        _check_result(r.json())


# --- batches and boxes ----------------------------------------------------------------------

def test_batch_equals_single_calls_in_one_model_call(url, http, crops):
    singles = [_post(http, url, {"image": (p.name, d)}).json() for p, d in crops]
    before = _stats(http, url)
    r = _post(http, url, [("image", (p.name, d, "image/jpeg")) for p, d in crops], "/classify")
    after = _stats(http, url)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(crops)
    for single, batched in zip(singles, results):
        _check_result(batched)
        _same(single, batched)
    assert after["model_calls"] - before["model_calls"] == 1
    assert after["crops"] - before["crops"] == len(crops)


def test_classify_with_one_image(url, http, jpeg):
    r = _post(http, url, {"image": jpeg}, "/classify")
    assert r.status_code == 200
    single = _post(http, url, {"image": jpeg}).json()
    _same(r.json()["results"][0], single)


def _scene(crops):
    """A grey 640x360 PNG scene with three crops pasted at known places."""
    scene = np.full((360, 640, 3), 90, np.uint8)
    placed = []
    for (_, data), (x, y) in zip(crops, [(10, 20), (250, 100), (500, 200)]):
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:120, :120]
        h, w = img.shape[:2]
        scene[y:y + h, x:x + w] = img
        placed.append((img, [x, y, x + w, y + h]))
    return _png_of(scene), placed


def test_boxes_on_a_scene_give_one_result_per_box(url, http, crops):
    picks = [crops[0], crops[6], crops[12]]
    scene, placed = _scene(picks)
    boxes = [b for _, b in placed]
    before = _stats(http, url)
    r = _post(http, url, {"image": ("scene.png", scene)}, "/classify", data={"boxes": json.dumps(boxes)})
    assert _stats(http, url)["model_calls"] - before["model_calls"] == 1
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["box"] for x in results] == boxes
    for (img, _), res in zip(placed, results):
        _check_result(res)
        _same(_post(http, url, {"image": ("crop.png", _png_of(img))}).json(), res)
    # float coordinates (a detector's) and boxes touching the image border are fine
    r = _post(http, url, {"image": scene}, "/classify", data={"boxes": "[[0.4, 0, 640, 359.5]]"})
    assert r.status_code == 200 and r.json()["results"][0]["box"] == [0, 0, 640, 360]
    # boxes may also come as a file part; an empty list means no cars
    r = _post(http, url, {"image": scene, "boxes": ("b.json", json.dumps(boxes[:1]))}, "/classify")
    assert r.status_code == 200 and len(r.json()["results"]) == 1
    r = _post(http, url, {"image": scene}, "/classify", data={"boxes": "[]"})
    assert r.status_code == 200 and r.json() == {"results": []}


@pytest.mark.parametrize("boxes, words", [
    ("not json", ["not valid JSON"]),
    ("{\"x1\": 1}", ["list"]),
    ("[[1, 2, 3]]", ["box 0", "4 numbers"]),
    ("[[1, 2, 30, 40], [1, 2, \"3\", 4]]", ["box 1"]),
    ("[[true, 2, 30, 40]]", ["box 0"]),
    ("[[0, 0, 641, 100]]", ["outside", "640x360"]),
    ("[[-1, 0, 10, 10]]", ["outside"]),
    ("[[50, 50, 50, 60]]", ["empty"]),
    ("[[60, 50, 40, 70]]", ["empty"]),
    ("[[0, 0, 10, 1e999]]", ["box 0"]),
    ("[[0, 0, 10, NaN]]", ["box 0"]),
    ("[[0, 0, 10, 1" + "0" * 400 + "]]", ["outside"]),           # an int too big for a float
    ("[[0, 0, 10, 1" + "0" * 5000 + "]]", ["not valid JSON"]),    # past Python's int-parsing limit
    ("[" * 100_000 + "]" * 100_000, ["nested"]),
    ("[" + ",".join(["[0, 0, 1, 1]"] * 1025) + "]", ["at most"]),
])
def test_bad_boxes_are_400(url, http, crops, boxes, words):
    scene, _ = _scene(crops[:3])
    _assert_error(_post(http, url, {"image": scene}, "/classify", data={"boxes": boxes}), 400, *words)


def test_boxes_need_exactly_one_image_and_only_on_classify(url, http, jpeg):
    _assert_error(_post(http, url, [("image", jpeg), ("image", jpeg)], "/classify",
                        data={"boxes": "[[0, 0, 10, 10]]"}), 400, "exactly one")
    _assert_error(_post(http, url, {"image": jpeg}, "/", data={"boxes": "[[0, 0, 10, 10]]"}), 400, "/classify")
    _assert_error(_post(http, url, [("image", jpeg), ("image", jpeg)], "/"), 400, "/classify")


# --- bad input --------------------------------------------------------------------------------

def test_no_image_field_is_400(url, http):
    _assert_error(http.post(url, timeout=10), 400, "no 'image' field")
    _assert_error(http.post(url, files={"picture": b"abc"}, timeout=10), 400, "no 'image' field")
    _assert_error(http.post(url, json={"image": "abc"}, timeout=10), 400, "no 'image' field")
    _assert_error(http.post(url + "/classify", data={"other": "1"}, timeout=10), 400, "no 'image' field")
    _assert_error(http.post(url, data={"image": "car.jpg"}, timeout=10), 400, "file upload")
    # multipart header without a boundary, or a garbled body
    _assert_error(http.post(url, data=b"--x\r\n", headers={"Content-Type": "multipart/form-data"},
                            timeout=10), 400)


def test_empty_file_is_400(url, http, jpeg):
    _assert_error(_post(http, url, {"image": ("car.jpg", b"")}), 400, "empty")
    _assert_error(_post(http, url, [("image", jpeg), ("image", ("b.jpg", b""))], "/classify"), 400,
                  "image 2", "empty")


def _bad_crc_png(png: bytes) -> bytes:
    b = bytearray(png)
    idat = png.index(b"IDAT")
    b[idat + 8] ^= 0x55         # a data byte of the first IDAT chunk: its CRC no longer matches
    return bytes(b)


@pytest.mark.parametrize("make, status, words", [
    (lambda j, p: b"hello, I am not a picture", 415, ["not a JPEG or PNG"]),
    (lambda j, p: b"GIF89a" + b"\0" * 100, 415, ["GIF"]),
    (lambda j, p: b"BM" + b"\0" * 100, 415, ["BMP"]),
    (lambda j, p: j[: len(j) // 2], 400, ["truncated JPEG"]),
    (lambda j, p: j[:300], 400, ["truncated JPEG"]),
    (lambda j, p: j[:3], 400, ["JPEG"]),
    (lambda j, p: _bad_crc_png(p), 400, ["CRC"]),
    (lambda j, p: p[:-20], 400, ["truncated PNG"]),
    (lambda j, p: p[:20], 400, ["truncated PNG"]),
])
def test_corrupt_or_foreign_images(url, http, jpeg, png, make, status, words):
    data = make(jpeg, png)
    _assert_error(_post(http, url, {"image": ("x", data)}), status, *words)
    _assert_error(_post(http, url, [("image", jpeg), ("image", ("x", data))], "/classify"), status, "image 2")


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (imageio.PNG_SIGNATURE + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))


def _jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    b = bytearray(jpeg)
    pos = 2
    while True:  # walk the marker segments to the frame header
        marker, length = b[pos + 1], struct.unpack(">H", b[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            b[pos + 5:pos + 9] = struct.pack(">HH", height, width)
            return bytes(b)
        pos += 2 + length


def test_decompression_bombs_are_413_before_decoding(url, http, jpeg):
    for data in (_png_claiming(100_000, 100_000), _jpeg_claiming(jpeg, 65_000, 65_000),
                 _png_claiming(2**31 - 1, 1)):
        t = time.monotonic()
        resp = _post(http, url, {"image": ("bomb", data)})
        assert time.monotonic() - t < 2.0
        _assert_error(resp, 413, "pixels", "limit")
    # each under the 50 MP limit, together over it: refused before any is decoded
    pair = [("image", ("a.png", _png_claiming(6000, 5000))), ("image", ("b.png", _png_claiming(6000, 5000)))]
    _assert_error(_post(http, url, pair, "/classify"), 413, "total")


def test_upload_over_the_limit_is_413_json(url, http):
    big = b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024)
    _assert_error(_post(http, url, {"image": ("big.jpg", big)}), 413, "10 MB")
    # chunked (no Content-Length): waitress counts it, Flask refuses it
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
    _assert_error(http.post(url, data=chunks, headers={"Content-Type": "application/octet-stream"},
                            timeout=30), 413)
    assert http.get(url + "/health", timeout=10).status_code == 200


def test_absurd_content_length_is_refused_by_waitress_in_json(url):
    host, port = url[len("http://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                  b"Content-Length: 1000000000\r\n\r\n")
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            part = s.recv(65536)
            if not part:
                break
            raw += part
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/json" in head
    assert "error" in json.loads(body)


@pytest.mark.parametrize("method, path", [
    ("GET", "/"), ("PUT", "/"), ("DELETE", "/"), ("GET", "/classify"), ("POST", "/health"),
    ("POST", "/labels"), ("PATCH", "/openapi.json"),
])
def test_wrong_method_is_405_json(url, http, method, path):
    resp = http.request(method, url + path, timeout=10)
    _assert_error(resp, 405, method, "not allowed")
    assert resp.headers["Allow"]


def test_unknown_path_is_404_json(url, http):
    _assert_error(http.get(url + "/nope", timeout=10), 404, "/nope")


# --- the other endpoints ----------------------------------------------------------------------

def test_health_and_labels(url, http):
    h = http.get(url + "/health", timeout=10).json()
    assert h["status"] == "ok" and h["model"].endswith("model.onnx")
    assert h["labels"] == LABELS and h["uptime_s"] >= 0 and h["threads"] == 4
    assert http.get(url + "/labels", timeout=10).json() == {"labels": LABELS}


def test_openapi_document(url, http):
    resp = http.get(url + "/openapi.json", timeout=10)
    assert resp.status_code == 200
    spec = resp.json()
    assert spec["openapi"].startswith("3.")
    assert {"/", "/classify", "/health", "/labels", "/openapi.json"} <= set(spec["paths"])
    assert {"400", "413", "415"} <= set(spec["paths"]["/"]["post"]["responses"])
    assert spec["components"]["schemas"]["Color"]["properties"]["color"]["enum"] == LABELS
    try:
        from openapi_spec_validator import validate
    except ImportError:
        return  # listed in requirements-test.txt; the structural checks above still ran
    validate(spec)


def test_concurrent_requests_get_their_own_answers(url, crops):
    expected = {p.name: requests.post(url, files={"image": d}, timeout=30).json() for p, d in crops}

    def call(item):
        p, d = item
        with requests.Session() as s:
            return p.name, [s.post(url, files={"image": d}, timeout=30).json() for _ in range(3)]

    with ThreadPoolExecutor(12) as pool:
        for name, answers in pool.map(call, crops * 2):
            for a in answers:
                _same(a, expected[name])


# --- fuzzing: nothing a client sends gives a 5xx ------------------------------------------------

@st.composite
def _mutated(draw, base: bytes, keep: int):
    """``base`` with 1-4 random edits, mostly after its first ``keep`` (magic) bytes."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        # mostly in the headers, where the parsing is
        head = st.integers(min(keep, len(data) - 1), max(min(len(data) - 1, 700), keep))
        pos = min(draw(st.one_of(head, head, st.integers(0, len(data) - 1))), len(data) - 1)
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        byte = draw(st.integers(0, 255))
        if op == "flip":
            data[pos] ^= 1 << (byte % 8)
        elif op == "set":
            data[pos] = byte
        elif op == "insert":
            data[pos:pos] = bytes([byte]) * draw(st.integers(1, 8))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        else:
            del data[pos:]
    return bytes(data)


def test_fuzzed_uploads_never_5xx(url, http, jpeg, png):
    boxes = st.one_of(st.none(), st.text(max_size=20),
                      st.lists(st.lists(st.one_of(st.integers(-5, 700), st.floats(allow_nan=True),
                                                  st.integers(10**300, 10**400)),
                                        min_size=3, max_size=5), max_size=3).map(json.dumps))
    top_k = st.one_of(st.none(), st.integers(-2, N_LABELS + 2).map(str), st.text(max_size=4))
    payload = st.one_of(st.binary(max_size=2048), _mutated(jpeg, 2), _mutated(png, 8))

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=payload, path=st.sampled_from(["/", "/classify"]), boxes=boxes, k=top_k,
           name=st.text(max_size=10))
    def check(data, path, boxes, k, name):
        form = {"boxes": boxes} if boxes is not None and path == "/classify" else None
        params = {"top_k": k} if k is not None else None
        resp = http.post(url + path, files={"image": (name or "x", data)}, data=form, params=params,
                         timeout=30)
        assert resp.status_code in (200, 400, 413, 415), resp.text
        body = resp.json()
        if resp.status_code == 200:
            assert "error" not in body and ("colors" in body or "results" in body)
        else:
            assert isinstance(body["error"], str) and body["error"]

    check()
    assert http.get(url + "/health", timeout=10).status_code == 200
    assert _stats(http, url)["server_errors"] == 0


def test_no_server_errors_logged(url, http, server):
    assert _stats(http, url)["server_errors"] == 0
    assert not [line for line in server.lines if "Traceback" in line], "".join(server.lines[-40:])


# --- in-process: the app factory, main() and the decoder ---------------------------------------

def test_unknown_decision_without_changing_colors(config_file, jpeg):
    from stream.server import create_app

    cfg = load_config(config_file)
    plain = create_app(cfg).test_client().post("/", data={"image": (_io(jpeg), "car.jpg")}).get_json()
    strict = create_app(cfg.override(unknown_threshold=0.9999)).test_client().post(
        "/", data={"image": (_io(jpeg), "car.jpg")}).get_json()
    assert strict["color"] == "unknown"
    assert strict["colors"] == plain["colors"]


def test_model_is_built_once_in_the_factory(config_file, jpeg, monkeypatch):
    from stream.server import app as srv

    built = []
    real = srv.ColorClassifier.from_config
    monkeypatch.setattr(srv.ColorClassifier, "from_config", lambda cfg: built.append(1) or real(cfg))
    client = srv.create_app(load_config(config_file)).test_client()
    for _ in range(3):
        assert client.post("/", data={"image": (_io(jpeg), "c.jpg")}).status_code == 200
    assert built == [1]


def _io(data: bytes):
    import io
    return io.BytesIO(data)


def test_main_reports_expected_errors_on_one_line(tmp_path, capsys, config_file, server):
    from stream.server import main

    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("carcolor: error: config file not found") and "\n" not in err

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"model_file: {tmp_path / 'nope.onnx'}\nlabel_file: {tmp_path / 'labels.txt'}\n")
    (tmp_path / "labels.txt").write_text("red\n")
    assert main(["--config", str(bad)]) == 2
    assert "model file not found" in capsys.readouterr().err

    busy = server.url.rsplit(":", 1)[1]
    assert main(["--config", str(config_file), "--host", "127.0.0.1", "--port", busy]) == 2
    assert "cannot listen on 127.0.0.1:" + busy in capsys.readouterr().err

    assert main(["--config", str(config_file), "--threads", "0"]) == 2
    assert "server.threads" in capsys.readouterr().err


def test_decode_image_matches_opencv(crops):
    for path, data in crops:
        info = probe(data)
        ref = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert (info.format, info.height, info.width) == ("jpeg",) + ref.shape[:2]
        assert np.array_equal(decode_image(data), ref)
    img = cv2.imread(str(crops[0][0]))
    assert np.array_equal(decode_image(_png_of(img)), img)


def test_decode_image_errors(jpeg, tmp_path):
    with pytest.raises(ImageTooLarge, match="limit"):
        decode_image(_png_claiming(10_000, 10_000), max_pixels=1_000_000)
    with pytest.raises(UnsupportedImage):
        decode_image(b"GIF89a....")
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")
    with pytest.raises(ValueError):          # ImageError is a ValueError for library callers
        decode_image(jpeg[:-200])
    with pytest.raises(ImageError, match="not found"):
        imageio.read_image(tmp_path / "none.jpg")
