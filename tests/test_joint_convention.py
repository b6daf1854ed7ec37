"""The keypoint-convention fit: recovers a known convention from noisy, differently scaled
landmarks; turns and scales with the hand; the shape error ignores similarity transforms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from models.hand_model import HandModel
from models.joint_convention import (
    JointConvention,
    fit_convention,
    nearest_vertices,
    shape_error,
)


@pytest.fixture(scope="module")
def posed():
    model = HandModel.open_hand()
    rng = np.random.default_rng(0)
    n = 300
    pose = rng.normal(0.0, 0.25, (n, model.num_joints, 3))
    shape = rng.normal(0.0, 0.8, (n, model.num_shape))
    out = model.forward(pose, shape)
    return model, out.vertices, out.keypoints


def _known(model, count=8):
    idx = nearest_vertices(model.data.template, model.data.keypoints, count)
    coef = np.random.default_rng(1).normal(0.0, 0.3, idx.shape)
    return JointConvention(idx=idx, coef=coef)


def test_fit_recovers_a_known_convention(posed):
    model, verts, joints = posed
    truth = _known(model)
    rng = np.random.default_rng(2)
    moved = truth.apply(joints, verts)
    # MediaPipe's landmarks: another pose in space, smaller (0.8x), 2 mm noise
    rot = Rotation.random(len(joints), random_state=3).as_matrix()
    landmarks = 0.8 * moved @ rot + rng.normal(0.0, 0.002, moved.shape) + 0.1
    fit = fit_convention(verts, joints, landmarks, truth.idx, ridge=1e-9, rounds=4)
    # up to a similarity (which per-hand alignment cannot tell from the convention)
    err_fit = shape_error(fit.apply(joints, verts), moved).mean()
    err_none = shape_error(joints, moved).mean()
    assert err_none > 0.001, "the known convention changes the joints' shape by millimetres"
    assert err_fit < 0.1 * err_none, (err_fit, err_none)
    assert shape_error(fit.apply(joints, verts), landmarks).mean() < shape_error(
        joints, landmarks).mean()


def test_no_difference_fits_no_correction(posed):
    model, verts, joints = posed
    idx = nearest_vertices(model.data.template, model.data.keypoints, 8)
    fit = fit_convention(verts, joints, 0.8 * joints, idx, ridge=1e-6)
    assert np.abs(fit.offsets(joints, verts)).max() < 1e-9


def test_offsets_turn_and_scale_with_the_hand(posed):
    model, verts, joints = posed
    conv = _known(model)
    rot = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    base = conv.offsets(joints[:5], verts[:5])
    moved = conv.offsets(1.3 * joints[:5] @ rot + 0.2, 1.3 * verts[:5] @ rot + 0.2)
    np.testing.assert_allclose(moved, 1.3 * base @ rot, atol=1e-12)
    np.testing.assert_allclose(conv.apply(joints, verts, 0.0), joints)


def test_shape_error_ignores_similarity(posed):
    _, _, joints = posed
    rot = Rotation.from_rotvec([0.5, 0.2, -0.4]).as_matrix()
    np.testing.assert_allclose(shape_error(joints, 0.7 * joints @ rot + 0.3), 0.0, atol=1e-12)
    bent = joints.copy()
    bent[:, 8] += 0.01
    assert shape_error(joints, bent).mean() > 0


def test_save_and_load(tmp_path, posed):
    model, verts, joints = posed
    conv = _known(model)
    conv.save(tmp_path / "c.npz", "test")
    back = JointConvention.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(back.idx, conv.idx)
    np.testing.assert_allclose(back.apply(joints, verts), conv.apply(joints, verts), atol=1e-6)


def test_bad_shapes_refused():
    with pytest.raises(ValueError, match=r"\(21,N\)"):
        JointConvention(idx=np.zeros((20, 4), int), coef=np.zeros((20, 4)))
