"""The compiled mesh writer of the hands file writes, byte for byte, the text the ``%``
formatting path writes (which is ``"%.5f" % np.round(x, 5)`` per number): on random arrays,
ties, signs, zeros, large values, 1-D and 2-D, and a real mesh."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.common import random_hand_mesh
from models.hand_model import HandModel
from realtime.io.fixed_point_kernels import LIMIT, fixed_point_json
from realtime.io.hands_file import _arr, _mesh_json, _mesh_json_formatted


def _kernel_text(a: np.ndarray) -> str:
    """The kernel's own text (no fallback), failing if it declined."""
    a = np.asarray(a, dtype=np.float64)
    out = fixed_point_json(np.ascontiguousarray(a).reshape(-1),
                           a.shape[1] if a.ndim == 2 else 0)
    assert len(out), "the kernel declined an array it should write"
    return out.tobytes().decode("ascii")


def _assert_identical(a: np.ndarray) -> None:
    expected = _mesh_json_formatted(a)
    assert _mesh_json(a) == expected
    assert json.loads(expected) == _arr(a)


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(19)
    ties = (np.arange(-2000, 2000) + 0.5) / 1e5  # x.xxxxx5 (as near as a double gets)
    exact_ties = np.arange(-300, 301) / 64.0  # odd/64 * 1e5 is exactly half an integer
    return [
        rng.normal(0, 0.1, (778, 3)),  # metres, like a mesh
        rng.normal(0, 1e-5, (500, 3)),  # mostly rounding to 0 or +-0.00001 ("-0.00000" never)
        rng.uniform(-1e3, 1e3, 1000),
        10.0 ** rng.uniform(-8, 8.9, (400, 2)) * rng.choice([-1, 1], (400, 2)),
        ties, ties.reshape(-1, 4), exact_ties, exact_ties.reshape(-1, 1),
        np.array([0.0, -0.0, 1e-6, -1e-6, 4.9999e-6, -5e-6, 5e-6, -5.0001e-6]),
        np.array([[0.0, -0.0, -0.0]]),
        np.array([LIMIT * 0.999999999, -LIMIT * 0.999999999, 999999999.999996, 123456789.123455]),
        rng.normal(0, 0.1, (7, 3)).astype(np.float32),  # vertex_std may come as float32
        rng.normal(0, 0.1, (9, 6))[:, ::2],  # not contiguous
        np.array([0.25]), np.zeros((1, 3)),
    ]


@pytest.mark.parametrize("case", range(len(_cases())))
def test_kernel_writes_the_formatted_text(case):
    a = _cases()[case]
    assert _kernel_text(a) == _mesh_json_formatted(a)
    _assert_identical(a)


def test_ties_round_half_to_even_and_no_negative_zero():
    assert _kernel_text(np.array([1 / 64, 3 / 64, -1 / 64, -3 / 64])) == \
        "[0.01562, 0.04688, -0.01562, -0.04688]"
    assert _kernel_text(np.array([[-0.0, -1e-6, -4e-6, 12.5]])) == \
        "[[0.00000, 0.00000, 0.00000, 12.50000]]"


@pytest.mark.parametrize("values", [
    [0.5, float("nan")], [[1.0, float("inf"), 0.0]], [-float("inf")],
    [LIMIT, 1.0], [[2.0, -LIMIT * 10]], [1e300, 0.5],
])
def test_what_the_kernel_declines_goes_the_formatted_way(values):
    a = np.asarray(values, dtype=np.float64)
    assert len(fixed_point_json(np.ascontiguousarray(a).reshape(-1), 0)) == 0
    assert _mesh_json(a) == _mesh_json_formatted(a)


def test_empty_and_other_shapes_as_before():
    assert _mesh_json(np.zeros((0, 3))) == "[]"
    assert _mesh_json(np.zeros(0)) == "[]"
    with pytest.raises(TypeError):  # 0-D: as the formatted path always did
        _mesh_json(np.float64(1.0))


def test_real_mesh_is_byte_identical():
    model = HandModel.open_hand()
    for side, seed in (("right", 1), ("left", 2)):
        hand = random_hand_mesh(model, side, seed, score=0.9, track_id=0, timestamp=0.0,
                                frame_index=0)
        assert hand.vertices.shape == (model.num_vertices, 3)
        _assert_identical(hand.vertices)
        _assert_identical(hand.vertex_std)
