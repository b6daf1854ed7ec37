"""The hand check's compiled array scan (``realtime.validate``) says what the NumPy checks it
replaced said: the same phrase for the same array, NaN/inf counted, the largest magnitude."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.common import random_hand_mesh
from models.hand_model import HandModel
from realtime.validate import MAX_COORD_M, _array_problem, hand_problem


def _numpy_problem(name: str, a: np.ndarray, shape: tuple, bound: float) -> str | None:
    """The NumPy formulation the scan replaced (the reference)."""
    if a.shape != shape:
        return f"{name} of shape {a.shape}, expected {shape}"
    if a.size and not np.all(np.isfinite(a)):
        return f"{name} not finite ({int(np.sum(~np.isfinite(a)))} NaN/inf values)"
    if a.size and float(np.abs(a).max()) > bound:
        return f"{name} out of range (|value| {float(np.abs(a).max()):.3g} > {bound:g})"
    return None


def _arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    out = []
    for scale in (0.05, 3.0, 30.0):
        for shape in ((21, 3), (500, 3), (40,), (0, 3)):
            out.append(rng.normal(0, scale, shape))
    with_nan = rng.normal(0, 0.1, (300, 3))
    with_nan[[3, 50, 51], [0, 2, 1]] = [np.nan, np.inf, -np.inf]
    out += [with_nan, with_nan.astype(np.float32), with_nan[:, :2].copy(),
            np.array([-12.0, 3.0]), np.array([[-0.0, 0.0]]), rng.normal(0, 20, (8, 3))[:, ::2],
            np.arange(-15, 15).reshape(-1, 3)]
    return out


@pytest.mark.parametrize("case", range(len(_arrays())))
def test_scan_says_what_the_numpy_checks_said(case):
    a = _arrays()[case]
    for shape in (a.shape, (7, 3)):
        assert _array_problem("vertices", a, shape, MAX_COORD_M) == \
            _numpy_problem("vertices", a, shape, MAX_COORD_M)


def test_hand_problem_on_a_sound_and_a_broken_hand():
    model = HandModel.open_hand()
    hand = random_hand_mesh(model, "left", 4, score=0.9, track_id=1, timestamp=0.0,
                            frame_index=0)
    assert hand_problem(hand, model.num_vertices) is None
    hand.vertices[10, 1] = np.nan
    hand.vertices[11, 0] = np.inf
    assert hand_problem(hand, model.num_vertices) == "vertices not finite (2 NaN/inf values)"
    hand.vertices[10:12] = 0.0
    hand.joints[0, 2] = -11.0
    assert hand_problem(hand, model.num_vertices) == "joints out of range (|value| 11 > 10)"
