"""Training-time image changes (stream.training.augment): colour-safe augmentation, hue synthesis, road re-lighting."""

import cv2
import numpy as np

from stream.training import augment as aug
from stream.labels import LABELS
from stream.training.dataset import load_split

from _shared import DATASET as DATA, needs_shared  # noqa: E402


def _hue_deg(bgr):
    return aug.dominant_hue(bgr)[0]


def test_augment_shapes_seeded_and_keeps_gray_gray():
    crops = [np.full((100, 100, 3), 128, np.uint8), np.full((60, 90, 3), (30, 30, 200), np.uint8)]
    chromatic = np.array([False, True])
    a = aug.augment(crops, 32, np.random.default_rng(1), chromatic)
    b = aug.augment(crops, 32, np.random.default_rng(1), chromatic)
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    for seed in range(20):  # a gray crop stays (nearly) unsaturated, a red one stays red: no hue change
        out = aug.augment(crops, 32, np.random.default_rng(seed), chromatic)
        hsv = cv2.cvtColor(out[:, 8:24, 8:24].reshape(-1, 16, 3), cv2.COLOR_RGB2HSV_FULL).reshape(2, -1, 3)
        assert np.median(hsv[0, :, 1]) < 80  # white-balance gains tint it a little, no more
        red_hue = np.median(hsv[1, :, 0].astype(int))
        assert red_hue < 16 or red_hue > 240  # within about 22 degrees of red


@needs_shared
def test_hue_synthesis_targets_bands_and_never_uses_achromatic_sources():
    x, y, _ = load_split(DATA, "train")
    rng = np.random.default_rng(0)
    new, ny, counts = aug.synthesise_rare(x, y, rng, {"green": 20, "purple": 20, "gray": 50})
    assert "gray" not in counts and len(new) == 40 and counts == {"green": 20, "purple": 20}
    for crop, lab in zip(new, ny):
        lo, hi = aug.HUE_BANDS[LABELS[lab]]
        assert lo - 12 <= _hue_deg(crop) <= hi + 12
    only_gray = np.full(len(x), LABELS.index("gray"))
    assert aug.synthesise_rare(x, only_gray, rng, {"green": 5})[0] == []


def test_road_mask_finds_the_road_not_the_car():
    img = np.full((100, 100, 3), (150, 152, 150), np.uint8)  # light road
    img += np.random.default_rng(0).integers(0, 12, img.shape, dtype=np.uint8)
    cv2.rectangle(img, (25, 30), (75, 70), (25, 25, 25), -1)  # a black car
    cv2.rectangle(img, (35, 35), (65, 45), (90, 80, 70), -1)  # its windscreen
    road = aug.road_mask(img)
    assert road.shape == (100, 100, 1)
    assert road[:10].mean() > 0.9 and road[-10:].mean() > 0.9
    assert road[38:62, 32:68].mean() < 0.05
    dark = aug.shift_background(img, road, np.array([0.3, 0.3, 0.3]))
    assert np.abs(dark[40:60, 35:65].astype(int) - img[40:60, 35:65]).max() <= 3  # the car is untouched
    assert dark[:10].mean() < 0.4 * img[:10].mean()
    assert aug.road_mask(np.full((100, 100, 3), 128, np.uint8)).max() == 0  # nothing to separate: no change


@needs_shared
def test_background_option_relights_some_views_only():
    x, y, _ = load_split(DATA, "val")
    crops = x[:16]
    roads = [aug.road_mask(c) for c in crops]
    chrom = np.zeros(16, bool)
    base = aug.augment(crops, 32, np.random.default_rng(3), chrom, strength=0.0)
    same = aug.augment(crops, 32, np.random.default_rng(3), chrom, strength=0.0, background=0.0, roads=roads)
    assert np.array_equal(base, same)
    relit = aug.augment(crops, 32, np.random.default_rng(3), chrom, strength=0.0, background=1.0, roads=roads)
    changed = [not np.array_equal(a, b) for a, b in zip(base, relit)]
    assert sum(changed) >= 12
    centre = (slice(12, 20), slice(12, 20))
    assert np.abs(relit[:, centre[0], centre[1]].astype(int) - base[:, centre[0], centre[1]]).mean() < 12


def test_fixed_perturbations_keep_shape():
    img = np.random.default_rng(0).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    for name, fn in aug.PERTURBATIONS.items():
        out = fn(img)
        assert out.shape == img.shape and out.dtype == np.uint8, name
    assert aug.darken(img).mean() < img.mean()
