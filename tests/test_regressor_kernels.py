"""The regressor's compiled per-hand geometry (``realtime.mesh.regressor_kernels``) equals the
NumPy formulation it replaced to 1e-9: random hands, rotations, left and right, with and
without the rotation and the 2D follow; and the estimator's compiled network inputs equal
the per-detection NumPy ones bit for bit, with the same first error."""

from __future__ import annotations

import numpy as np
import pytest

from models.geometry import axis_angle_to_matrix, backproject, project
from models.hand_model import HandModel, mirror_x
from realtime.mesh.regressor import detection_inputs, follow_weights
from realtime.mesh.regressor_kernels import place_hand
from realtime.types import Detection

TOL = 1e-9  # metres and pixels


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    return follow_weights(HandModel.open_hand(), 0.015)


def _numpy_place(verts32, left, joints, rotate, rot, t, uv, K, strength, weights):
    """The NumPy formulation the kernel replaced (the reference, kept only here)."""
    verts = verts32.astype(np.float64)
    if left:
        verts = mirror_x(verts)
    if rotate:
        centre = joints.mean(0)
        joints = (joints - centre) @ rot.T + centre
        verts = (verts - centre) @ rot.T + centre
    joints_cam = joints + t
    verts = verts + t
    if strength > 0:
        shift = (backproject(uv, joints_cam[:, 2], K) - joints_cam) * strength
        joints_cam, verts = joints_cam + shift, verts + weights @ shift
    uv2 = project(joints_cam, K)
    return verts, joints_cam, uv2, float(np.linalg.norm(uv2 - uv, axis=1).mean())


@pytest.mark.parametrize("seed", range(12))
def test_place_hand_equals_the_numpy_formulation(seed, weights):
    rng = np.random.default_rng(seed)
    n_verts = len(weights)
    verts32 = rng.normal(0, 0.04, (n_verts, 3)).astype(np.float32)
    joints = rng.normal(0, 0.04, (21, 3))
    rot = axis_angle_to_matrix(rng.normal(0, 0.3, 3))
    t = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.1, 0.1), rng.uniform(0.3, 1.0)])
    f = rng.uniform(400, 1200)
    K = np.array([[f, 0, rng.uniform(280, 360)], [0, f, rng.uniform(200, 280)], [0, 0, 1]])
    uv = project(joints + t, K) + rng.normal(0, 3.0, (21, 2))
    for left in (False, True):
        for rotate in (False, True):
            for strength in (0.0, 0.4, 1.0):
                want = _numpy_place(verts32, left, joints, rotate, rot, t, uv, K, strength,
                                    weights)
                got = (np.empty((n_verts, 3)), np.empty((21, 3)), np.empty((21, 2)))
                err = place_hand(verts32, left, joints, rotate, rot, t, uv, K[0, 0], K[1, 1],
                                 K[0, 2], K[1, 2], strength, weights, *got)
                for g, w in zip(got, want[:3]):
                    np.testing.assert_allclose(g, w, rtol=0, atol=TOL)
                assert abs(err - want[3]) < TOL
                if strength == 1.0:  # the joints then lie on the 2D landmarks' rays
                    assert err < 1e-6


def _detection(rng: np.random.Generator, side: str) -> Detection:
    world = rng.normal(0, 0.03, (21, 3))
    return Detection(landmarks_px=rng.uniform(0, 640, (21, 2)),
                     landmarks_z=rng.normal(0, 0.05, 21), world=world, handedness=side,
                     score=0.9, frame_index=0, timestamp=0.0)


def _inputs_one_by_one(dets, size):
    """The per-detection preparation the batched one replaced (the reference)."""
    w, _ = size
    world, image, handed = [], [], []
    for det in dets:
        left = det.handedness == "left"
        wl = mirror_x(det.world) if left else det.world.copy()
        u = (w - det.landmarks_px[:, 0]) if left else det.landmarks_px[:, 0]
        world.append(wl - wl.mean(0))
        image.append(np.stack([u / w, det.landmarks_px[:, 1] / w, det.landmarks_z], axis=1))
        handed.append(0.0 if left else 1.0)
    return (np.asarray(world, np.float32), np.asarray(image, np.float32),
            np.asarray(handed, np.float32).reshape(-1, 1))


def test_batched_inputs_equal_one_by_one():
    rng = np.random.default_rng(4)
    for sides in (["right"], ["left"], ["left", "right"], ["right", "right", "left"]):
        dets = [_detection(rng, s) for s in sides]
        for got, want in zip(detection_inputs(dets, (640, 480)),
                             _inputs_one_by_one(dets, (640, 480))):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)


def test_first_bad_detection_names_its_first_problem():
    """Batched checks, but the error is the one the per-detection loop raised first."""
    rng = np.random.default_rng(5)
    good, far, nan = (_detection(rng, "right") for _ in range(3))
    far.landmarks_px[3] = (5000.0, 10.0)
    nan.world[2, 1] = np.nan
    spread = _detection(rng, "left")
    spread.world[7] = (0.9, 0.0, 0.0)
    short = Detection(good.landmarks_px[:20], good.landmarks_z, good.world, "right", 0.9, 0, 0.0)
    cases = [([good, far, nan], "far outside"), ([good, nan, far], "NaN or inf"),
             ([spread, nan], "spread over"), ([far, short], "far outside"),
             ([short, nan], "expected 21 landmarks"), ([good, short], "expected 21 landmarks")]
    for field in ("landmarks_px", "landmarks_z"):
        bad = _detection(rng, "left")
        getattr(bad, field)[4] = np.inf
        cases.append(([good, bad], "NaN or inf"))
    for dets, message in cases:
        with pytest.raises(ValueError, match=message):
            detection_inputs(dets, (640, 480))
