"""The service's web view in a real headless browser (Debian's chromium driven by selenium, nothing
downloaded), against two real RTSP cameras serving the demo clip (one of them grey: IR mode), plus
the JSON, snapshot, MJPEG and Prometheus endpoints with a real HTTP client."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
import yaml

from conftest import ROOT, wait_for
from rtsp_server import RtspServer, gst_missing, raw_clip

CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
_MISSING = gst_missing() or (None if Path(CHROMIUM).exists() and Path(DRIVER).exists()
                             else "chromium / chromium-driver not installed; run scripts/install-system-deps.sh")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
DEMO = ROOT / "demo" / "motorway-960x540.mp4"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from stream.config import load_config
    from stream.service import Service

    folder = tmp_path_factory.mktemp("web")
    color = RtspServer().start(640, 360, 25, clip=raw_clip(DEMO, folder / "day.yuv", seconds=8))
    grey = RtspServer().start(640, 360, 25, clip=raw_clip(DEMO, folder / "night.yuv", seconds=8, grey=True))
    cfg = folder / "cams.yaml"
    cfg.write_text(yaml.safe_dump({
        "live": {"open_timeout": 3, "read_timeout": 2, "stall_timeout": 2, "stats_interval": 2},
        "cameras": [{"name": "motorway", "source": color.url}, {"name": "night", "source": grey.url}],
        "web": {"port": 0}}))
    svc = Service(load_config(cfg), stderr=io.StringIO()).start()
    try:
        yield svc
    finally:
        svc.close()
        color.kill()
        grey.kill()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=DriverService(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_page_shows_every_camera_its_status_and_updates_on_a_car(service, browser, tmp_path):
    from selenium.webdriver.common.by import By

    day, night = service.cameras["motorway"], service.cameras["night"]
    wait_for(lambda: day.frames > 10 and night.frames > 10, 60, "frames of both cameras")
    browser.get(service.web.url + "/")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".cam")) == 2, 10, "two camera cards")

    # The page redraws its cards as the JSON changes: read them in one script call each, never through
    # element handles that a redraw may make stale between two WebDriver calls.
    def text(selector):
        return browser.execute_script("const e=document.querySelector(arguments[0]); return e && e.innerText;",
                                      selector)

    def displayed(selector):
        return browser.execute_script("const e=document.querySelector(arguments[0]); "
                                      "return !!e && e.getClientRects().length > 0;", selector)

    for name in ("motorway", "night"):  # the MJPEG view decoded by the browser, the status shown
        wait_for(lambda: browser.execute_script(
            "const i=document.querySelector('#cam-%s img'); return i.complete && i.naturalWidth;" % name) == 640,
            15, f"{name}'s live image")
        wait_for(lambda: text(f"#cam-{name} .status") == "online", 10, f"{name} online")
    wait_for(lambda: night.ir.ir, 10, "the grey camera in IR mode")
    wait_for(lambda: displayed("#cam-night .ir"), 5, "the IR badge")
    assert not displayed("#cam-motorway .ir")

    def shown():
        return browser.execute_script(
            "return [...document.querySelectorAll('#cam-motorway li.car')].map(li => li.innerText);")
    wait_for(lambda: len(shown()) == min(day.cars_total, 8), 5, "the page to list the cars so far")
    before = shown()

    def unseen_car():  # a car event newer than the page's snapshot (cars may end while it is taken)
        cars = list(day.last_cars)
        return bool(cars) and not any(f"#{cars[0]['id']} " in t for t in before)
    wait_for(unseen_car, 60, "a car event the page has not shown yet")
    newest = day.last_cars[0]
    wait_for(lambda: f"#{newest['id']} " in (shown() or [""])[0] or f"#{newest['id']} " in " ".join(shown()), 5,
             "the page to show the new car without a reload")
    assert shown() != before
    line = next(t for t in shown() if f"#{newest['id']} " in t)
    assert line.startswith(f"{newest['color']} #{newest['id']} ")
    shot = tmp_path / "service.png"
    browser.save_screenshot(str(shot))
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] >= 1200 and float(image.std()) > 10
    if os.environ.get("CARCOLOR_SCREENSHOT"):
        shutil.copy(shot, os.environ["CARCOLOR_SCREENSHOT"])


def test_json_snapshot_mjpeg_and_metrics_endpoints(service):
    from prometheus_client.parser import text_string_to_metric_families

    base = service.web.url
    wait_for(lambda: service.cameras["motorway"].frames > 5, 60, "frames")
    api = requests.get(base + "/api/cameras", timeout=5).json()
    assert [c["name"] for c in api["cameras"]] == ["motorway", "night"]
    assert {c["status"] for c in api["cameras"]} == {"online"}
    assert all(c["size"] == [640, 360] and c["fps_in"] > 5 for c in api["cameras"])
    snap = requests.get(base + "/cameras/motorway/snapshot.jpg", timeout=5)
    assert snap.status_code == 200 and snap.headers["Content-Type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR).shape == (360, 640, 3)
    missing = requests.get(base + "/cameras/nope/snapshot.jpg", timeout=5)
    assert missing.status_code == 404 and missing.json()["cameras"] == ["motorway", "night"]
    with requests.get(base + "/cameras/night/stream.mjpg", stream=True, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
        data = b""
        for chunk in r.iter_content(8192):
            data += chunk
            if data.count(b"\xff\xd9") >= 2:   # two whole JPEGs
                break
    first = data[data.index(b"\xff\xd8"):data.index(b"\xff\xd9") + 2]
    assert cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR).shape == (360, 640, 3)
    text = requests.get(base + "/metrics", timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    up = {s.labels["camera"]: s.value for s in families["carcolor_camera_up"].samples}
    assert up == {"motorway": 1.0, "night": 1.0}
    ir = {s.labels["camera"]: s.value for s in families["carcolor_camera_ir_mode"].samples}
    assert ir == {"motorway": 0.0, "night": 1.0}
    fps = {s.labels["camera"]: s.value for s in families["carcolor_camera_fps_processed"].samples}
    assert all(v > 0 for v in fps.values())
    assert "carcolor_model_calls" in families and "carcolor_cars" in families
