"""The compiled placement (``calibration.placement.solve_translation``) gives the translation
the NumPy formulation it replaced gave, to 1e-9 m: random well-posed hands, weights, the
depth clamp; and the same errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.errors import CalibrationError
from calibration.placement import MIN_DEPTH_M, solve_translation

TOL_M = 1e-9


def _numpy_translation(points, uv, K, weights=None, iterations=5):
    """The NumPy formulation the kernel replaced (the reference, kept only here)."""
    w = np.ones(len(uv)) if weights is None else np.asarray(weights, dtype=np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    X, Y, Z = points.T
    u, v = uv.T
    a = np.zeros((2 * len(uv), 3))
    b = np.zeros(2 * len(uv))
    a[0::2, 0] = fx
    a[0::2, 2] = cx - u
    b[0::2] = (u - cx) * Z - fx * X
    a[1::2, 1] = fy
    a[1::2, 2] = cy - v
    b[1::2] = (v - cy) * Z - fy * Y
    w2 = np.repeat(w, 2)
    t = np.linalg.solve((a * w2[:, None]).T @ a, (a * w2[:, None]).T @ b)
    for _ in range(iterations):
        p = points + t
        z = np.maximum(p[:, 2], MIN_DEPTH_M)
        r = np.concatenate([(fx * p[:, 0] / z + cx - u)[:, None],
                            (fy * p[:, 1] / z + cy - v)[:, None]], 1).reshape(-1)
        jac = np.zeros((2 * len(uv), 3))
        jac[0::2, 0] = fx / z
        jac[0::2, 2] = -fx * p[:, 0] / z**2
        jac[1::2, 1] = fy / z
        jac[1::2, 2] = -fy * p[:, 1] / z**2
        jw = jac * w2[:, None]
        step = np.linalg.solve(jw.T @ jac, -(jw.T @ r))
        t = t + step
        if np.linalg.norm(step) < 1e-7:
            break
    if t[2] + points[:, 2].min() < MIN_DEPTH_M:
        t[2] = MIN_DEPTH_M - points[:, 2].min()
    return t


def _case(rng: np.random.Generator, n: int = 21, depth: float | None = None,
          spread: float = 0.08, noise_px: float = 2.0):
    """Hand-sized points about the origin, their pixels from a random camera and placement
    (with detector noise), the camera matrix and the true translation."""
    points = rng.normal(0, spread, (n, 3))
    f = rng.uniform(400, 1400)
    K = np.array([[f, 0, rng.uniform(300, 700)], [0, f * rng.uniform(0.95, 1.05),
                                                    rng.uniform(200, 400)], [0, 0, 1]])
    t = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.15, 0.15),
                  depth if depth is not None else rng.uniform(0.25, 1.2)])
    x = points + t
    uv = x[:, :2] / x[:, 2:] * np.diag(K)[:2] + K[:2, 2] + rng.normal(0, noise_px, (n, 2))
    return points, uv, K, t


@pytest.mark.parametrize("seed", range(40))
def test_equals_the_numpy_formulation(seed):
    rng = np.random.default_rng(seed)
    points, uv, K, _ = _case(rng, n=int(rng.integers(2, 60)))
    weights = rng.uniform(0.05, 1.0, len(uv))
    for w in (None, weights):
        for iterations in (0, 1, 5, 20):
            got = solve_translation(points, uv, K, w, iterations)
            want = _numpy_translation(points, uv, K, w, iterations)
            np.testing.assert_allclose(got, want, rtol=0, atol=TOL_M)


def test_exact_pixels_give_the_exact_translation():
    points, uv, K, truth = _case(np.random.default_rng(7), noise_px=0.0)
    np.testing.assert_allclose(solve_translation(points, uv, K), truth, rtol=0, atol=1e-9)


def test_min_depth_clamp_equals_the_numpy_formulation():
    """A hand so close that its nearest point lies nearer than MIN_DEPTH_M (but in front of
    the camera): clamped in the iterations and at the end, as before."""
    rng = np.random.default_rng(11)
    clamped = 0
    for _ in range(40):
        points = rng.normal(0, 0.02, (21, 3))
        f = rng.uniform(400, 1400)
        K = np.array([[f, 0, 320], [0, f, 240], [0, 0, 1.0]])
        nearest = rng.uniform(0.015, 0.045)
        t = np.array([rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02),
                      nearest - points[:, 2].min()])
        x = points + t
        uv = x[:, :2] / x[:, 2:] * f + K[:2, 2] + rng.normal(0, 1.0, (21, 2))
        got = solve_translation(points, uv, K)
        np.testing.assert_allclose(got, _numpy_translation(points, uv, K), rtol=0, atol=TOL_M)
        clamped += bool(got[2] + points[:, 2].min() == MIN_DEPTH_M)
        assert got[2] + points[:, 2].min() >= MIN_DEPTH_M - 1e-12
    assert clamped >= 10  # the clamp was really exercised


def test_weights_as_a_column_and_as_a_list():
    points, uv, K, _ = _case(np.random.default_rng(5))
    w = np.linspace(0.1, 1.0, len(uv))
    want = _numpy_translation(points, uv, K, w)
    for weights in (w[:, None], w.tolist()):
        np.testing.assert_allclose(solve_translation(points, uv, K, weights), want,
                                   rtol=0, atol=TOL_M)


def test_bad_input_errors_are_unchanged():
    points, uv, K, _ = _case(np.random.default_rng(1))
    with pytest.raises(CalibrationError, match=r"need matching \(N,3\) points and \(N,2\)"):
        solve_translation(points[:5], uv, K)
    with pytest.raises(CalibrationError, match="N >= 2"):
        solve_translation(points[:1], uv[:1], K)
    bad = uv.copy()
    bad[3, 1] = np.nan
    with pytest.raises(CalibrationError, match="must be finite"):
        solve_translation(points, bad, K)
    with pytest.raises(CalibrationError, match="one weight per point"):
        solve_translation(points, uv, K, np.ones(3))
    with pytest.raises(np.linalg.LinAlgError):  # no weight at all: nothing to solve
        _numpy_translation(points, uv, K, np.zeros(len(uv)))
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        solve_translation(points, uv, K, np.zeros(len(uv)))
