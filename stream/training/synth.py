"""``carcolor synth``: seeded, physically based renders of cars for colour training.

    carcolor synth --out build/renders --count 6000 --workers 2 --seed 0

Every random choice is made here, from ``--seed``, and written to ``manifest.csv``
(one row per image, every parameter); Blender (Debian's ``blender`` package, Cycles on
the CPU; a training-time tool only) then renders each scene to a linear ``.hdr`` with
:mod:`stream.training.render_scene`, and this module turns it into a crop the way a
camera and a detector would: exposure metered on the background only (never on the car,
or every car comes out mid-gray), partial auto white balance, a filmic or plain tone
curve, the detector's box with a margin, downscaling, blur, noise and JPEG.

Light and reflections come from real outdoor skies (``../shared/assets/render/hdri``,
Poly Haven, CC0): the paint of a black, silver or white car is mostly reflected sky and
ground, which is where gray vs white is decided. Cars are the Kenney Car Kit models
(CC0, repainted) and procedural curved-shell bodies of several proportions.

Output: ``<out>/images/<colour>/<id>.png``, ``<out>/manifest.csv``, ``<out>/sheet_<colour>.png``.
A rerun with the same arguments skips images already made (resumable).
"""
from __future__ import annotations

import argparse
import colorsys
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..labels import LABELS
from ..errors import CarcolorError

ASSETS = Path("..") / "shared" / "assets" / "render"
SCENE_SCRIPT = Path(__file__).with_name("render_scene.py")
MODELS = ("sedan", "sedan-sports", "hatchback-sports", "suv", "suv-luxury", "van", "truck", "taxi", "delivery")
PROCEDURAL_KINDS = ("sedan", "hatchback", "suv", "van", "pickup", "estate")

# HDRIs by light; night and dusk get fewer samples than day, as in traffic video.
HDRI_LIGHT = {
    "kloofendal_43d_clear_puresky": "clear", "immenstadter_horn": "clear", "forest_slope": "shade",
    "mpumalanga_veld_puresky": "low_sun", "quarry_01": "low_sun", "rooitou_park": "low_sun",
    "shanghai_riverside": "low_sun", "kloofendal_overcast": "overcast", "potsdamer_platz": "overcast",
    "kloppenheim_06": "overcast", "spruit_sunrise": "dusk", "blouberg_sunrise_2": "dusk",
    "kiara_1_dawn": "dusk", "venice_sunset": "dusk", "industrial_sunset_puresky": "dusk",
    "pedestrian_overpass": "dusk", "dikhololo_night": "night", "moonless_golf": "night",
}
LIGHT_WEIGHT = {"clear": 0.26, "shade": 0.06, "low_sun": 0.2, "overcast": 0.26, "dusk": 0.16, "night": 0.06}


class SynthError(CarcolorError, RuntimeError):
    """Renders cannot be made (no Blender, no assets, a failed job)."""


# ---------------------------------------------------------------- colours a person would name
def _srgb_to_linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def sample_paint(rng: np.random.Generator, label: str) -> Dict:
    """A paint for ``label``: sRGB base colour from per-class shade ranges, metallic/roughness/clearcoat.

    The ranges were checked on rendered sheets (``sheet_<colour>.png``): what a person
    would call that colour, including silver (gray, metallic), pearl white, maroon,
    navy, beige/champagne/gold (brown) and pink (purple).
    """
    u = rng.uniform
    metallic = float(u(0.0, 0.6)) if rng.random() < 0.55 else 0.0
    variant = label
    if label == "white":
        variant = "pearl" if rng.random() < 0.25 else "white"
        h, s, v = u(0, 1), u(0, 0.05), u(0.82, 0.96)
        if variant == "pearl":
            h, s, v = u(0.09, 0.16), u(0.03, 0.09), u(0.80, 0.92)
        metallic = min(metallic, 0.25)
    elif label == "gray":
        r = rng.random()
        if r < 0.5:
            variant, h, s, v = "silver", u(0, 1), u(0, 0.05), u(0.45, 0.75)
            metallic = float(u(0.6, 1.0))
        elif r < 0.88:
            variant, h, s, v = "mid_gray", u(0, 1), u(0, 0.06), u(0.30, 0.55)
        else:
            variant, h, s, v = "dark_gray", u(0, 1), u(0, 0.06), u(0.2, 0.32)
    elif label == "black":
        h, s, v = u(0, 1), u(0, 0.12), u(0.01, 0.07)
    elif label == "red":
        if rng.random() < 0.3:
            variant, h, s, v = "maroon", u(-0.02, 0.01) % 1, u(0.6, 0.95), u(0.22, 0.42)
        else:
            h, s, v = u(-0.025, 0.015) % 1, u(0.7, 1.0), u(0.45, 0.92)
    elif label == "blue":
        r = rng.random()
        if r < 0.3:
            variant, h, s, v = "navy", u(0.6, 0.68), u(0.5, 0.9), u(0.10, 0.28)
        elif r < 0.5:
            variant, h, s, v = "light_blue", u(0.54, 0.6), u(0.35, 0.6), u(0.6, 0.88)
        else:
            h, s, v = u(0.56, 0.66), u(0.55, 1.0), u(0.3, 0.8)
    elif label == "green":
        if rng.random() < 0.35:
            variant, h, s, v = "dark_green", u(0.3, 0.45), u(0.4, 0.85), u(0.12, 0.3)
        else:
            h, s, v = u(0.22, 0.45), u(0.45, 1.0), u(0.3, 0.75)
    elif label == "yellow":
        h, s, v = u(0.12, 0.17), u(0.7, 1.0), u(0.78, 1.0)
    elif label == "orange":
        h, s, v = u(0.045, 0.095), u(0.8, 1.0), u(0.75, 1.0)
    elif label == "brown":
        r = rng.random()
        if r < 0.4:
            variant, h, s, v = "beige", u(0.07, 0.12), u(0.15, 0.35), u(0.55, 0.8)
        elif r < 0.65:
            variant, h, s, v = "gold", u(0.09, 0.13), u(0.35, 0.6), u(0.5, 0.75)
            metallic = float(u(0.5, 0.9))
        else:
            variant, h, s, v = "brown", u(0.03, 0.09), u(0.4, 0.8), u(0.15, 0.42)
    elif label == "purple":
        if rng.random() < 0.3:
            variant, h, s, v = "pink", u(0.88, 0.97), u(0.3, 0.6), u(0.7, 0.95)
        else:
            h, s, v = u(0.72, 0.86), u(0.35, 0.85), u(0.2, 0.6)
    else:
        raise SynthError(f"unknown colour '{label}'")
    srgb = colorsys.hsv_to_rgb(float(h), float(s), float(v))
    return {
        "label": label, "variant": variant, "srgb": [round(c, 4) for c in srgb],
        "rgb_linear": [round(_srgb_to_linear(c), 5) for c in srgb],
        "metallic": round(metallic, 3), "roughness": round(float(u(0.08, 0.4)), 3),
        "clearcoat": round(float(u(0.3, 1.0)), 3), "clearcoat_roughness": round(float(u(0.02, 0.12)), 3),
    }


# ---------------------------------------------------------------- scene sampling
def _car_spec(rng: np.random.Generator, label: str, assets: Path, procedural_share: float) -> Dict:
    u = rng.uniform
    paint = sample_paint(rng, label)
    tint = float(u(0.004, 0.03))
    glass = [round(tint, 4), round(tint * u(0.95, 1.1), 4), round(tint * u(1.0, 1.25), 4)]
    if rng.random() >= procedural_share:
        name = str(rng.choice(MODELS))
        length = {"van": u(4.6, 5.2), "delivery": u(5.0, 6.0), "truck": u(5.0, 5.6), "suv": u(4.4, 4.9),
                  "suv-luxury": u(4.6, 5.1)}.get(name, u(4.0, 4.8))
        return {"kind": "model", "model": name, "model_path": str(assets / "cars" / "kenney_car_kit" / f"{name}.glb"),
                "length": round(float(length), 3), "width_scale": round(float(u(0.95, 1.15)), 3),
                "height_scale": round(float(u(0.8, 1.0)), 3), "paint": paint, "glass_tint": glass}
    kind = str(rng.choice(PROCEDURAL_KINDS))
    base = {
        "sedan": dict(length=u(4.3, 4.9), body_height=u(0.55, 0.7), cabin_height=u(0.42, 0.52),
                      cabin_length=u(0.42, 0.52), cabin_offset=u(-0.08, 0.0)),
        "hatchback": dict(length=u(3.7, 4.3), body_height=u(0.55, 0.7), cabin_height=u(0.45, 0.55),
                          cabin_length=u(0.5, 0.6), cabin_offset=u(-0.15, -0.08)),
        "estate": dict(length=u(4.5, 4.9), body_height=u(0.55, 0.7), cabin_height=u(0.45, 0.55),
                       cabin_length=u(0.58, 0.66), cabin_offset=u(-0.14, -0.08)),
        "suv": dict(length=u(4.3, 4.9), body_height=u(0.72, 0.9), cabin_height=u(0.5, 0.62),
                    cabin_length=u(0.55, 0.65), cabin_offset=u(-0.12, -0.05)),
        "van": dict(length=u(4.7, 5.4), body_height=u(0.8, 1.0), cabin_height=u(0.8, 1.0),
                    cabin_length=u(0.72, 0.8), cabin_offset=u(-0.1, -0.06)),
        "pickup": dict(length=u(5.0, 5.6), body_height=u(0.7, 0.85), cabin_height=u(0.5, 0.6),
                       cabin_length=u(0.3, 0.36), cabin_offset=u(0.06, 0.14)),
    }[kind]
    spec = {k: round(float(v), 3) for k, v in base.items()}
    spec.update({
        "kind": kind, "width": round(float(u(1.7, 1.95)), 3), "ground_clearance": round(float(u(0.15, 0.3)), 3),
        "wheel_radius": round(float(u(0.3, 0.38)), 3), "wheelbase": round(float(u(0.58, 0.66)), 3),
        "roundness": round(float(u(0.15, 0.45)), 3), "cabin_top_x": round(float(u(0.75, 0.92)), 3),
        "cabin_top_y": round(float(u(0.55, 0.85)), 3), "cabin_top_shift": round(float(u(-0.25, 0.05)), 3),
        "dark_bumpers": bool(rng.random() < 0.35), "paint": paint, "glass_tint": glass,
    })
    return spec


def _neighbour_label(rng: np.random.Generator) -> str:
    return str(rng.choice(LABELS, p=_WORLD_SHARE))


# How often each colour is seen on roads (roughly; neighbours only).
_WORLD_SHARE = np.array([0.3, 0.22, 0.2, 0.1, 0.09, 0.03, 0.015, 0.015, 0.02, 0.01])
_WORLD_SHARE = _WORLD_SHARE / _WORLD_SHARE.sum()


def _view(rng: np.random.Generator, vid: str, label: str, car_length: float, out_dir: Path) -> Dict:
    """One picture of a scene: the target's paint, the camera, and what camera + detector do afterwards."""
    u = rng.uniform
    # camera: overhead traffic cameras, oblique CCTV, front-on roads and photos
    r = rng.random()
    elevation = u(35, 80) if r < 0.4 else u(14, 35) if r < 0.75 else u(2, 14)
    focal = float(u(30, 90))
    size = max(car_length, 2.0)
    aspect = float(rng.choice([4 / 3, 1.0, 16 / 9, 3 / 4]))
    # Blender fits the 36 mm sensor to the longer side: the shorter side's field of view decides
    fov_short = 2 * math.atan(18 / focal / max(aspect, 1 / aspect))
    distance = size / (2 * math.tan(fov_short / 2)) / u(0.45, 0.75)
    res_long = 96
    resolution = [res_long, int(round(res_long / aspect))] if aspect >= 1 else [int(round(res_long * aspect)), res_long]
    return {
        "id": vid, "label": label, "paint": sample_paint(rng, label), "resolution": resolution,
        "camera": {"elevation": round(float(elevation), 2), "azimuth": round(float(u(0, 360)), 2),
                   "focal_mm": round(focal, 1), "distance": round(float(distance), 3),
                   "target": [round(float(u(-0.2, 0.2)), 3), round(float(u(-0.25, 0.25)), 3),
                              round(float(u(0.5, 0.8)), 3)],
                   "roll": round(float(u(-4, 4)), 2)},
        "develop": {
            "key": round(float(np.exp(u(np.log(0.1), np.log(0.3)))), 4), "ev_jitter": round(float(u(-0.6, 0.6)), 3),
            "awb_strength": round(float(u(0.0, 1.0)), 3), "tone": str(rng.choice(["filmic", "plain", "plain_soft"])),
            "saturation": round(float(u(0.8, 1.2)), 3),
            "margin": [round(float(u(0.0, 0.15)), 3) for _ in range(4)],
            "short_side": int(rng.integers(24, 101)),
            "blur": round(float(u(0, 1.2)) if rng.random() < 0.5 else 0.0, 3),
            "noise": round(float(u(0, 4.0)), 2), "jpeg": int(rng.integers(35, 96)) if rng.random() < 0.8 else 0,
        },
        "out_hdr": str(out_dir / "hdr" / f"{vid}.hdr"),
    }


def sample_scene(index: int, seed: int, labels: Sequence[str], assets: Path, out_dir: Path,
                 samples: int = 8, procedural_share: float = 0.4) -> Dict:
    """Every random choice of one scene and its views (one per label), from (seed, index) alone.

    A scene (sky, ground, the car's shape, neighbours) is built once and seen in
    ``len(labels)`` views, each with its own paint colour, camera and camera/detector
    processing: Blender's scene set-up costs ~10x one small render, so this is how the
    renders stay affordable on a CPU without repeating a picture.
    """
    rng = np.random.default_rng([seed, index])
    u = rng.uniform
    hdris = sorted(HDRI_LIGHT)
    weights = np.array([LIGHT_WEIGHT[HDRI_LIGHT[h]] / sum(1 for x in hdris if HDRI_LIGHT[x] == HDRI_LIGHT[h])
                        for h in hdris])
    hdri = str(rng.choice(hdris, p=weights / weights.sum()))
    light = HDRI_LIGHT[hdri]
    car = _car_spec(rng, labels[0], assets, procedural_share)
    car["yaw"] = round(float(u(0, 360)), 2)
    scene = {
        "scene": f"{seed:03d}_{index:05d}", "seed": int(seed) * 1_000_003 + index,
        "hdri": hdri, "light": light, "hdri_path": str(assets / "hdri" / f"{hdri}_1k.hdr"),
        "hdri_rotation": round(float(u(0, 360)), 2), "hdri_strength": round(float(u(0.7, 1.4)), 3),
        "samples": samples, "car": car,
    }
    albedo = float(np.exp(u(np.log(0.04), np.log(0.35))))     # fresh asphalt .. worn concrete
    warm = u(-0.06, 0.08)
    lo = [albedo * (1 + warm) * 0.75, albedo * 0.75, albedo * (1 - warm) * 0.75]
    hi = [min(0.9, albedo * (1 + warm) * 1.2), min(0.9, albedo * 1.2), min(0.9, albedo * (1 - warm) * 1.2)]
    markings = []
    for _ in range(int(rng.integers(0, 3))):
        white = rng.random() < 0.8
        c = [0.7, 0.7, 0.7] if white else [0.7, 0.5, 0.05]
        markings.append({"width": round(float(u(0.1, 0.3)), 3), "length": round(float(u(3, 30)), 2),
                         "x": round(float(u(-4, 4)), 2), "y": round(float(u(-6, 6)), 2),
                         "angle": round(float(u(0, 180)), 1), "rgb_linear": c})
    scene["ground"] = {"albedo_lo": [round(v, 4) for v in lo], "albedo_hi": [round(v, 4) for v in hi],
                       "roughness": round(float(u(0.55, 0.95)), 3), "noise_scale": round(float(u(2, 40)), 2),
                       "markings": markings}
    # High sun is missing from the maps (nothing above ~43 deg): add a sun lamp to clear skies.
    if light in ("clear", "shade") and rng.random() < 0.5:
        scene["sun"] = {"strength": round(float(u(2.5, 6.0)), 2), "angle": round(float(u(0.5, 3.0)), 2),
                        "elevation": round(float(u(45, 85)), 1), "azimuth": round(float(u(0, 360)), 1),
                        "color": [1.0, round(float(u(0.95, 1.0)), 3), round(float(u(0.88, 0.98)), 3)]}
    if light == "night":
        scene["lamps"] = [{"power": round(float(u(800, 4000)), 0),
                           "color": [1.0, round(float(u(0.6, 0.95)), 3), round(float(u(0.3, 0.8)), 3)],
                           "location": [round(float(u(-8, 8)), 2), round(float(u(-8, 8)), 2), round(float(u(5, 9)), 2)]}
                          for _ in range(int(rng.integers(1, 3)))]
    neighbours = []
    if rng.random() < 0.3:                      # parked-car neighbours and partial occlusion
        for _ in range(int(rng.integers(1, 3))):
            nb = _car_spec(rng, _neighbour_label(rng), assets, procedural_share)
            side = rng.choice([-1, 1])
            if rng.random() < 0.6:
                loc = [float(side * u(2.1, 3.2)), float(u(-1.5, 1.5)), 0.0]
                nb["yaw"] = round(car["yaw"] + float(u(-8, 8)), 2)
            else:
                loc = [float(u(-0.8, 0.8)), float(side * u(5.0, 6.5)), 0.0]
                nb["yaw"] = round(car["yaw"] + float(u(-10, 10)), 2)
            # neighbours sit around the target in the target's own frame
            yaw = math.radians(car["yaw"])
            nb["location"] = [round(loc[0] * math.cos(yaw) - loc[1] * math.sin(yaw), 3),
                              round(loc[0] * math.sin(yaw) + loc[1] * math.cos(yaw), 3), 0.0]
            neighbours.append(nb)
    scene["neighbours"] = neighbours
    scene["views"] = [_view(rng, f"{seed:03d}_{index:05d}_{k}", lab, car["length"], out_dir)
                      for k, lab in enumerate(labels)]
    car["paint"] = scene["views"][0]["paint"]
    return scene


# ---------------------------------------------------------------- develop: camera + detector, in Python
def _luminance(img: np.ndarray) -> np.ndarray:
    return 0.0722 * img[..., 0] + 0.7152 * img[..., 1] + 0.2126 * img[..., 2]   # BGR


def _tone(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "filmic":   # Hable/ACES-like shoulder: highlights roll off instead of clipping
        a, b, c, d, e = 2.51, 0.03, 2.43, 0.59, 0.14
        x = np.clip((x * (a * x + b)) / (x * (c * x + d) + e), 0, 1)
    elif kind == "plain_soft":
        x = x / (1 + 0.15 * x)
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def develop(hdr: np.ndarray, box: Sequence[float], p: Dict, rng: np.random.Generator) -> np.ndarray:
    """A linear render -> an 8-bit BGR crop as a camera and a detector would give it."""
    h, w = hdr.shape[:2]
    img = np.nan_to_num(hdr.astype(np.float32), nan=0.0, posinf=50.0)
    x1, y1, x2, y2 = box
    bg = np.ones((h, w), bool)
    bg[int(y1):int(math.ceil(y2)), int(x1):int(math.ceil(x2))] = False
    if bg.sum() < 0.05 * h * w:
        bg[:] = True
    lum = _luminance(img)
    logavg = float(np.exp(np.mean(np.log(lum[bg] + 1e-4))))
    img *= p["key"] / max(logavg, 1e-5) * 2 ** p["ev_jitter"]
    means = img[bg].mean(0)
    gains = means.mean() / np.maximum(means, 1e-6)
    img *= gains ** p["awb_strength"]
    out = _tone(img, p["tone"])
    if p["saturation"] != 1.0:
        gray = _luminance(out)[..., None]
        out = np.clip(gray + (out - gray) * p["saturation"], 0, 1)
    bw, bh = x2 - x1, y2 - y1
    m = p["margin"]
    cx1, cy1 = max(0, int(round(x1 - m[0] * bw))), max(0, int(round(y1 - m[1] * bh)))
    cx2, cy2 = min(w, int(round(x2 + m[2] * bw))), min(h, int(round(y2 + m[3] * bh)))
    crop = (out[cy1:cy2, cx1:cx2] * 255 + 0.5).astype(np.uint8)
    ch, cw = crop.shape[:2]
    s = p["short_side"] / min(ch, cw)
    if s < 1:
        crop = cv2.resize(crop, (max(1, round(cw * s)), max(1, round(ch * s))), interpolation=cv2.INTER_AREA)
    if p["blur"] > 0:
        crop = cv2.GaussianBlur(crop, (0, 0), p["blur"])
    if p["noise"] > 0:
        crop = np.clip(crop + rng.normal(0, p["noise"], crop.shape), 0, 255).astype(np.uint8)
    if p["jpeg"]:
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, p["jpeg"]])
        crop = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return crop


# ---------------------------------------------------------------- running Blender
def find_blender(explicit: Optional[str] = None) -> str:
    path = explicit or shutil.which("blender")
    if not path:
        raise SynthError("Blender not found: install Debian's 'blender' package "
                         "(scripts/install-train-deps.sh) or pass --blender PATH")
    return path


def _numpy_path() -> str:
    return str(Path(np.__file__).resolve().parent.parent)


def run_job(blender: str, job: Dict, job_path: Path, timeout: float) -> List[Dict]:
    job_path.write_text(json.dumps(job))
    boxes = job_path.with_suffix(".boxes.jsonl")
    boxes.unlink(missing_ok=True)
    cmd = [blender, "-b", "--factory-startup", "-noaudio", "--python", str(SCENE_SCRIPT), "--", str(job_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc = None
    recs = [json.loads(line) for line in boxes.read_text().splitlines()] if boxes.exists() else []
    if not recs:
        tail = (proc.stderr or proc.stdout)[-800:] if proc else "timed out"
        raise SynthError(f"Blender job {job_path.name} produced nothing: {tail}")
    return recs


MANIFEST_FIELDS = ("id", "path", "colour", "variant", "car_kind", "model", "light", "hdri", "elevation",
                   "azimuth", "focal_mm", "short_side", "hidden", "tone", "key", "awb", "neighbours", "params")


def _manifest_row(scene: Dict, view: Dict, rel: Path, hidden: float) -> Dict:
    car = scene["car"]
    params = {k: v for k, v in scene.items() if k not in ("views", "hdri_path")}
    params["car"] = {k: v for k, v in car.items() if k not in ("paint", "model_path")}
    params["view"] = {k: v for k, v in view.items() if k != "out_hdr"}
    return {
        "id": view["id"], "path": rel.as_posix(), "colour": view["label"], "variant": view["paint"]["variant"],
        "car_kind": car["kind"], "model": car.get("model", ""), "light": scene["light"], "hdri": scene["hdri"],
        "elevation": view["camera"]["elevation"], "azimuth": view["camera"]["azimuth"],
        "focal_mm": view["camera"]["focal_mm"], "short_side": view["develop"]["short_side"],
        "hidden": hidden, "tone": view["develop"]["tone"], "key": view["develop"]["key"],
        "awb": view["develop"]["awb_strength"], "neighbours": len(scene["neighbours"]),
        "params": json.dumps(params, separators=(",", ":")),
    }


def colour_schedule(count: int, seed: int, n_labels: int, class_share: Optional[Sequence[float]] = None) -> np.ndarray:
    """The colour index of images 0..count-1: drawn per image from ``class_share`` with (seed, i), so the
    first N images are the same whatever ``count`` is (a larger --count extends a set, never reshuffles it)."""
    share = np.ones(n_labels) if class_share is None else np.asarray(class_share, float)
    share = share / share.sum()
    cum = np.cumsum(share)
    return np.array([min(int(np.searchsorted(cum, np.random.default_rng([seed, i, 11]).random(), side="right")),
                         n_labels - 1) for i in range(count)], np.int64)


def synth(out: Path, count: int, seed: int = 0, workers: int = 1, assets: Path = ASSETS,
          samples: int = 8, per_job: int = 12, labels: Sequence[str] = LABELS,
          class_share: Optional[Sequence[float]] = None, blender: Optional[str] = None,
          procedural_share: float = 0.4, views_per_scene: int = 6, progress=sys.stderr) -> Path:
    """Render ``count`` crops into ``out`` (scenes of ``views_per_scene`` views); returns the manifest path.

    Resumable: images already in the manifest, or dropped before (``dropped.txt``), are not made again.
    """
    assets = Path(assets)
    if not (assets / "hdri").is_dir() or not (assets / "cars").is_dir():
        raise SynthError(f"render assets not found: {assets} (needs hdri/ and cars/; see ../shared/assets/render)")
    exe = find_blender(blender)
    out = Path(out)
    (out / "hdr").mkdir(parents=True, exist_ok=True)
    (out / "jobs").mkdir(exist_ok=True)
    schedule = colour_schedule(count, seed, len(labels), class_share)
    manifest = out / "manifest.csv"
    dropped_log = out / "dropped.txt"          # views that were rendered but give no crop (cut, hidden, failed)
    done = set()
    if manifest.exists():
        with open(manifest, newline="") as f:
            done = {r["id"] for r in csv.DictReader(f)}
    if dropped_log.exists():
        done |= {line.split()[0] for line in dropped_log.read_text().splitlines() if line.strip()}
    v = max(1, views_per_scene)
    todo = []
    for k in range(math.ceil(count / v)):
        scene_labels = [labels[schedule[i]] for i in range(k * v, min(count, (k + 1) * v))]
        scene = sample_scene(k, seed, scene_labels, assets, out, samples, procedural_share)
        scene["views"] = [view for view in scene["views"] if view["id"] not in done]
        if scene["views"]:
            todo.append(scene)
    n_todo = sum(len(sc["views"]) for sc in todo)
    jobs = [todo[k:k + per_job] for k in range(0, len(todo), per_job)]
    new_file = not manifest.exists()
    mf = open(manifest, "a", newline="")
    writer = csv.DictWriter(mf, fieldnames=MANIFEST_FIELDS)
    if new_file:
        writer.writeheader()
    t0 = time.monotonic()
    made = failed = 0
    views = {view["id"]: (sc, view) for sc in todo for view in sc["views"]}

    def one(job_scenes):
        job = {"scenes": job_scenes, "sys_path": [_numpy_path()], "threads": 1}
        n = sum(len(sc["views"]) for sc in job_scenes)
        return run_job(exe, job, out / "jobs" / f"job_{job_scenes[0]['scene']}.json", timeout=120 + 10 * n)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for recs in pool.map(one, jobs):
            for rec in recs:
                scene, view = views[rec["id"]]
                hdr_path = Path(view["out_hdr"])
                box = rec.get("box")
                img = cv2.imread(str(hdr_path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR) if hdr_path.exists() else None
                h_img, w_img = img.shape[:2] if img is not None else (0, 0)
                cut = bool(box) and (box[0] <= 0.5 or box[1] <= 0.5 or box[2] >= w_img - 0.5 or box[3] >= h_img - 0.5)
                hidden = rec.get("hidden", 0.0)
                reason = (rec.get("error") or ("no image" if img is None else "no box" if not box else
                          "cut by the frame edge" if cut else "hidden by a neighbour" if hidden > 0.45 else
                          "too small" if min(box[2] - box[0], box[3] - box[1]) < 8 else ""))
                hdr_path.unlink(missing_ok=True)
                if reason:
                    failed += 1
                    with open(dropped_log, "a") as dl:
                        dl.write(f"{view['id']} {reason}\n")
                    continue
                k = int(view["id"].split("_")[1]) * 16 + int(view["id"].split("_")[2])
                crop = develop(img, box, view["develop"], np.random.default_rng([seed, k, 7]))
                rel = Path("images") / view["label"] / f"{view['id']}.png"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out / rel), crop)
                writer.writerow(_manifest_row(scene, view, rel, hidden))
                made += 1
            mf.flush()
            dt = time.monotonic() - t0
            n = made + failed
            rate = n / dt if dt > 0 else 0
            eta = (n_todo - n) / rate if rate > 0 else 0
            print(f"synth: {n}/{n_todo} rendered ({failed} dropped), {dt / max(n, 1):.2f} s/render "
                  f"wall, ETA {eta / 60:.0f} min", file=progress, flush=True)
    mf.close()
    return manifest


def contact_sheet(out: Path, label: str, n: int = 96, size: int = 64, cols: int = 12) -> Optional[Path]:
    """A grid of renders of one colour, to check the shades against what a person would call it."""
    paths = sorted((Path(out) / "images" / label).glob("*.png"))[:n]
    if not paths:
        return None
    rows = math.ceil(len(paths) / cols)
    sheet = np.full((rows * size, cols * size, 3), 255, np.uint8)
    for k, p in enumerate(paths):
        img = cv2.imread(str(p))
        h, w = img.shape[:2]
        s = size / max(h, w)
        img = cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        r, c = divmod(k, cols)
        sheet[r * size:r * size + img.shape[0], c * size:c * size + img.shape[1]] = img
    path = Path(out) / f"sheet_{label}.png"
    cv2.imwrite(str(path), sheet)
    return path


# Gray vs white vs black is where models fail on other cameras: the achromatic classes get more renders.
DEFAULT_SHARE = (0.14, 0.18, 0.14, 0.1, 0.1, 0.08, 0.06, 0.06, 0.08, 0.06)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carcolor synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (a build artefact, not committed)")
    p.add_argument("--count", type=int, default=6000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)))
    p.add_argument("--samples", type=int, default=8, help="Cycles samples per pixel")
    p.add_argument("--assets", default=str(ASSETS))
    p.add_argument("--blender", default=None, help="Blender executable (default: blender on PATH)")
    p.add_argument("--procedural-share", type=float, default=0.4)
    p.add_argument("--per-job", type=int, default=12, help="scenes per Blender process")
    p.add_argument("--views-per-scene", type=int, default=6,
                   help="views of one built scene, each its own paint, camera and processing (default 6)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except CarcolorError as e:
        print(f"carcolor synth: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("carcolor synth: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _run(args) -> int:
    if args.count < 1:
        raise SynthError(f"--count must be at least 1, got {args.count}")
    manifest = synth(Path(args.out), args.count, args.seed, args.workers, Path(args.assets), args.samples,
                     args.per_job, class_share=DEFAULT_SHARE, blender=args.blender,
                     procedural_share=args.procedural_share, views_per_scene=args.views_per_scene)
    for label in LABELS:
        contact_sheet(Path(args.out), label)
    print(f"synth: manifest {manifest}")
    return 0
