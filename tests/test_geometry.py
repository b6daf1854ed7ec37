"""``models.geometry``: rotations (axis-angle, 6D, quaternions), Kabsch and the pinhole camera.

Tolerances are named at the top of the file.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from models.geometry import (
    axis_angle_to_matrix,
    backproject,
    kabsch,
    log_rotation,
    log_rotation_into,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rot6d,
    project,
    rodrigues,
    rodrigues_into,
    rot6d_to_matrix,
    rotation_between,
)

ROTATION_ROUNDTRIP_TOL = 1e-9  # axis-angle / 6D <-> matrix round trips
SCIPY_TOL = 1e-9               # agreement with scipy.spatial.transform.Rotation
KABSCH_TOL = 1e-9              # recovered rotation (matrix entries) and translation (m)
PROJECT_TOL_PX = 1e-9          # pinhole projection of a known point
BACKPROJECT_TOL_M = 1e-12      # project -> backproject at the true depth

K = np.array([[900.0, 0.0, 640.0], [0.0, 910.0, 360.0], [0.0, 0.0, 1.0]])


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], axis=1).reshape(n, 3, 3)


def _rotvecs(rng: np.random.Generator) -> np.ndarray:
    """Random axes at random angles, near 0 (down to 1e-14 rad) and near pi."""
    axes = rng.normal(size=(300, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0.0, np.pi, 100), 10.0 ** rng.uniform(-14, -1, 100),
                             np.pi - 10.0 ** rng.uniform(-12, -1, 100)])
    return axes * angles[:, None]


# --- axis-angle ----------------------------------------------------------------------


def test_axis_angle_matrix_round_trip():
    rng = np.random.default_rng(3)
    axes = rng.normal(size=(60, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([
        rng.uniform(0.0, np.pi - 1e-3, 20),
        [0.0, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 0.01, 0.1, 1.0, 2.0],
        np.pi - np.array([0.0, 1e-12, 1e-9, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1]),
        rng.uniform(0.0, np.pi, 20),
    ])
    rotvec = axes * angles[:, None]
    mat = axis_angle_to_matrix(rotvec)
    back = matrix_to_axis_angle(mat)
    # Compare as matrices (at exactly pi, v and -v are the same rotation) ...
    assert np.abs(axis_angle_to_matrix(back) - mat).max() <= ROTATION_ROUNDTRIP_TOL
    # ... and as vectors away from pi, where the rotation vector is unique.
    below_pi = angles < np.pi - 1e-3
    assert np.abs(back[below_pi] - rotvec[below_pi]).max() <= ROTATION_ROUNDTRIP_TOL
    assert np.all(np.linalg.norm(back, axis=1) <= np.pi + ROTATION_ROUNDTRIP_TOL)


def test_axis_angle_agrees_with_scipy():
    rng = np.random.default_rng(10)
    v = np.concatenate([_rotvecs(rng), rng.normal(size=(100, 3)) * 3.0])  # some beyond pi
    mat = axis_angle_to_matrix(v)
    assert np.abs(mat - Rotation.from_rotvec(v).as_matrix()).max() <= SCIPY_TOL
    back = matrix_to_axis_angle(mat)
    ref = Rotation.from_matrix(mat).as_rotvec()
    # scipy and we may pick v or -v at pi: compare the rotations, then the vectors below pi
    assert np.abs(axis_angle_to_matrix(ref) - axis_angle_to_matrix(back)).max() <= SCIPY_TOL
    below_pi = np.linalg.norm(ref, axis=1) < np.pi - 1e-6
    assert np.abs(back[below_pi] - ref[below_pi]).max() <= SCIPY_TOL


def test_near_zero_is_first_order_and_exact():
    v = np.array([[1e-14, -2e-14, 3e-14], [1e-9, 0.0, 0.0], [0.0, 3e-8, 4e-8], [0.0, 0.0, 0.0]])
    mat = axis_angle_to_matrix(v)
    skew = np.zeros((len(v), 3, 3))
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    skew -= np.swapaxes(skew, 1, 2)
    assert np.abs(mat - (np.eye(3) + skew)).max() <= 1e-14  # I + [v]x, error O(|v|^2)
    assert np.abs(matrix_to_axis_angle(mat) - v).max() <= 1e-20
    assert np.all(matrix_to_axis_angle(np.eye(3)) == 0.0)


def test_near_pi_keeps_the_axis_and_its_sign():
    rng = np.random.default_rng(11)
    axes = rng.normal(size=(50, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    for eps in (0.0, 1e-12, 1e-9, 1e-7, 1e-5, 1e-4, 1e-3):
        v = axes * (np.pi - eps)
        back = matrix_to_axis_angle(axis_angle_to_matrix(v))
        assert np.abs(np.linalg.norm(back, axis=1) - (np.pi - eps)).max() <= ROTATION_ROUNDTRIP_TOL
        if eps >= 1e-9:  # the sign is observable: it must be kept
            assert np.abs(back - v).max() <= 1e-6
    # a half turn about x, y, z exactly
    for i in range(3):
        back = matrix_to_axis_angle(axis_angle_to_matrix(np.eye(3)[i] * np.pi))
        assert np.abs(np.abs(back) - np.eye(3)[i] * np.pi).max() <= ROTATION_ROUNDTRIP_TOL


def test_nan_in_nan_out():
    m = np.eye(3)
    m[0, 0] = np.nan
    assert np.isnan(matrix_to_axis_angle(m)).all()
    assert np.isnan(axis_angle_to_matrix(np.array([np.nan, 0.0, 0.0]))).all()


@pytest.mark.parametrize("lead", [(), (7,), (4, 5)])
def test_batched_shapes(lead):
    rng = np.random.default_rng(12)
    v = rng.normal(size=lead + (3,))
    mat = axis_angle_to_matrix(v)
    assert mat.shape == lead + (3, 3) and mat.dtype == np.float64
    assert matrix_to_axis_angle(mat).shape == lead + (3,)
    x = rng.normal(size=lead + (6,))
    assert rot6d_to_matrix(x).shape == lead + (3, 3)
    assert matrix_to_rot6d(mat).shape == lead + (6,)
    assert matrix_to_quaternion(mat).shape == lead + (4,)
    assert rotation_between(v, x[..., :3]).shape == lead + (3, 3)
    flat = axis_angle_to_matrix(v.reshape(-1, 3)).reshape(lead + (3, 3))
    np.testing.assert_array_equal(mat, flat)
    # float32 in, float64 out, same values
    np.testing.assert_allclose(axis_angle_to_matrix(v.astype(np.float32)),
                               axis_angle_to_matrix(v.astype(np.float32).astype(np.float64)),
                               atol=0)


def test_empty_batches_and_bad_shapes():
    assert axis_angle_to_matrix(np.zeros((0, 3))).shape == (0, 3, 3)
    assert matrix_to_axis_angle(np.zeros((2, 0, 3, 3))).shape == (2, 0, 3)
    with pytest.raises(ValueError, match="rotvec"):
        axis_angle_to_matrix(np.zeros((4, 6)))
    with pytest.raises(ValueError, match="matrix"):
        matrix_to_axis_angle(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="kabsch"):
        kabsch(np.zeros((5, 3)), np.zeros((4, 3)))


def test_scalar_kernels_are_the_batched_ones():
    rng = np.random.default_rng(2)
    v = _rotvecs(rng)
    mats = axis_angle_to_matrix(v)
    logs = matrix_to_axis_angle(mats)
    m = np.empty((3, 3))
    r = np.empty(3)
    for i in range(len(v)):
        rodrigues_into(v[i], m)
        np.testing.assert_array_equal(m, mats[i])
        np.testing.assert_array_equal(rodrigues(v[i]), mats[i])
        log_rotation_into(mats[i], r)
        np.testing.assert_array_equal(r, logs[i])
        np.testing.assert_array_equal(log_rotation(mats[i]), logs[i])


# --- 6D, rotation_between, quaternions ----------------------------------------------


def test_rot6d_matrix_round_trip():
    rng = np.random.default_rng(4)
    mat = _random_rotations(rng, 50)
    assert np.abs(rot6d_to_matrix(matrix_to_rot6d(mat)) - mat).max() <= ROTATION_ROUNDTRIP_TOL
    x = rng.normal(size=(50, 6))
    r = rot6d_to_matrix(x)
    assert np.abs(rot6d_to_matrix(matrix_to_rot6d(r)) - r).max() <= ROTATION_ROUNDTRIP_TOL
    assert np.abs(np.swapaxes(r, -1, -2) @ r - np.eye(3)).max() <= ROTATION_ROUNDTRIP_TOL


def test_rot6d_is_gram_schmidt():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(40, 6))
    r = rot6d_to_matrix(x)
    a1, a2 = x[:, :3], x[:, 3:]
    b1 = a1 / np.linalg.norm(a1, axis=1, keepdims=True)
    assert np.abs(r[..., 0] - b1).max() <= ROTATION_ROUNDTRIP_TOL
    assert np.all(np.einsum("ni,ni->n", r[..., 1], a2) > 0)  # b2 keeps a2's side
    assert np.abs(np.linalg.det(r) - 1.0).max() <= ROTATION_ROUNDTRIP_TOL


def test_rotation_between_turns_a_onto_b():
    rng = np.random.default_rng(14)
    a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3)) * 3.0
    r = rotation_between(a, b)
    unit = b / np.linalg.norm(b, axis=1, keepdims=True)
    got = np.einsum("nij,nj->ni", r, a / np.linalg.norm(a, axis=1, keepdims=True))
    assert np.abs(got - unit).max() <= ROTATION_ROUNDTRIP_TOL
    # the smallest rotation: about a x b, by the angle between them
    axis = np.cross(a, b)
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = np.arccos(np.clip(np.einsum("ni,ni->n", a, unit) / np.linalg.norm(a, axis=1), -1, 1))
    assert np.abs(matrix_to_axis_angle(r) - axis * angle[:, None]).max() <= 1e-7
    # parallel: identity; opposite: a half turn that still maps a onto b
    e = np.array([0.3, -0.2, 0.9])
    assert np.abs(rotation_between(e, 2 * e) - np.eye(3)).max() <= ROTATION_ROUNDTRIP_TOL
    for d in (e, np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])):
        half = rotation_between(d, -d)
        assert np.abs(half @ d + d).max() <= ROTATION_ROUNDTRIP_TOL
        assert np.linalg.det(half) == pytest.approx(1.0)
        assert np.linalg.norm(matrix_to_axis_angle(half)) == pytest.approx(np.pi)


def test_quaternions_agree_with_scipy():
    rng = np.random.default_rng(15)
    m = np.concatenate([axis_angle_to_matrix(_rotvecs(rng)), np.eye(3)[None],
                        np.diag([1.0, -1, -1])[None], np.diag([-1.0, 1, -1])[None],
                        np.diag([-1.0, -1, 1])[None]])
    q = matrix_to_quaternion(m)
    ref = Rotation.from_matrix(m).as_quat(canonical=True)  # (x, y, z, w), w >= 0
    assert np.all(q[:, 3] >= 0)
    assert np.abs(np.linalg.norm(q, axis=1) - 1.0).max() <= 1e-12
    # at w = 0 (half turns) q and -q are both canonical: compare the rotations there
    same = np.minimum(np.abs(q - ref).max(1), np.abs(q + ref).max(1))
    assert same.max() <= SCIPY_TOL


# --- Kabsch and the camera ----------------------------------------------------------


def test_kabsch_recovers_a_random_rotation():
    rng = np.random.default_rng(2)
    for rot in _random_rotations(rng, 5):
        source = rng.normal(size=(12, 3))
        shift = rng.normal(size=3)
        target = source @ rot.T + shift
        got, t = kabsch(source, target)
        assert np.abs(got - rot).max() <= KABSCH_TOL
        assert np.abs(t - shift).max() <= KABSCH_TOL
        assert np.linalg.det(got) == pytest.approx(1.0)


def test_kabsch_never_returns_a_reflection():
    rng = np.random.default_rng(16)
    source = rng.normal(size=(20, 3))
    target = source * [-1.0, 1.0, 1.0] + rng.normal(0, 1e-3, (20, 3))  # a mirror image
    rot, t = kabsch(source, target)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    assert np.abs(rot @ rot.T - np.eye(3)).max() <= KABSCH_TOL
    # no proper rotation does better (scipy's align_vectors solves the same problem)
    ref, _ = Rotation.align_vectors(target - target.mean(0), source - source.mean(0))
    assert np.abs(ref.as_matrix() - rot).max() <= 1e-6


def test_project_backproject_round_trip():
    rng = np.random.default_rng(17)
    pts = rng.normal(size=(4, 21, 3)) * [0.1, 0.1, 0.05] + [0.0, 0.0, 0.5]
    uv = project(pts, K)
    assert uv.shape == (4, 21, 2)
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    assert np.abs(uv[..., 0] - (900.0 * x / z + 640.0)).max() <= PROJECT_TOL_PX
    assert np.abs(uv[..., 1] - (910.0 * y / z + 360.0)).max() <= PROJECT_TOL_PX
    back = backproject(uv, z, K)
    assert back.shape == pts.shape
    assert np.abs(back - pts).max() <= BACKPROJECT_TOL_M
    assert project(np.array([0.0, 0.0, 1.0]), K).tolist() == [640.0, 360.0]
    # at or behind the camera: clamped, finite
    assert np.all(np.isfinite(project(np.array([[0.1, 0.1, 0.0], [0.1, 0.1, -1.0]]), K)))
