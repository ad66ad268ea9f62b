"""Temperature scaling across domains and the reliability report."""
import numpy as np

from stream.training.calibrate import apply_temperature, fit_temperature, nll, reliability


def _overconfident(n, acc, conf, rng, c=4):
    y = rng.integers(0, c, n)
    pred = np.where(rng.random(n) < acc, y, (y + 1) % c)
    p = np.full((n, c), (1 - conf) / (c - 1))
    p[np.arange(n), pred] = conf
    return p, y


def test_temperature_one_is_identity_and_rows_stay_distributions():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert np.allclose(apply_temperature(p, 1.0), p)
    q = apply_temperature(p, 2.0)
    assert np.allclose(q.sum(1), 1) and (q.argmax(1) == p.argmax(1)).all()
    assert q.max(1).max() < p.max(1).max()


def test_fitted_temperature_softens_an_overconfident_domain_and_lowers_its_nll():
    rng = np.random.default_rng(0)
    same_camera = _overconfident(400, 0.95, 0.95, rng)
    other_camera = _overconfident(400, 0.6, 0.97, rng)
    t = fit_temperature({"same": same_camera, "other": other_camera})
    assert t > 1.2
    p, y = other_camera
    assert nll(apply_temperature(p, t), y) < nll(p, y)
    before, after = reliability(p, y), reliability(apply_temperature(p, t), y)
    assert after["ece"] < before["ece"]


def test_reliability_of_a_perfectly_calibrated_set_is_near_zero():
    rng = np.random.default_rng(1)
    p, y = _overconfident(4000, 0.8, 0.8, rng)
    r = reliability(p, y)
    assert r["ece"] < 0.03 and abs(r["accuracy"] - 0.8) < 0.03 and sum(b["count"] for b in r["bins"]) == 4000
