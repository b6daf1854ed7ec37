"""``models.ik``: keypoint fitting of the open hand (shape from bone lengths, pose by IK).

Tolerances are named at the top of the file (STYLE.md point 9).
"""

from __future__ import annotations

import numpy as np
import pytest

from models.hand_model import HandModel
from models.ik import bone_end_keypoints, fit_keypoints, fit_shape
from models.poses import sample_poses
from models.topology import BONES, Keypoint

IK_KEYPOINT_MEAN_TOL_M = 3e-3   # mean keypoint error of fit_keypoints over the test poses
IK_VERTEX_MEAN_TOL_M = 5e-3     # mean vertex error of the fitted mesh
SHAPE_BONE_LENGTH_TOL_M = 5e-4  # fit_shape on exact keypoints: every bone length
IK_RESULT_CONSISTENCY_TOL_M = 1e-6  # IKResult.keypoints vs forward(IKResult.pose, ...)

NUM_POSES = 30
SHAPE_SCALE = 0.7


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def _bone_lengths(kps: np.ndarray) -> np.ndarray:
    return np.array([np.linalg.norm(kps[c] - kps[p]) for p, c in BONES])


def test_fit_keypoints_recovers_random_poses_and_shapes(model):
    d = model.data
    rng = np.random.default_rng(0)
    pose = sample_poses(d.joint_names, d.limits, NUM_POSES, rng, global_rotation=True)
    shape = rng.normal(size=(NUM_POSES, model.num_shape)) * SHAPE_SCALE
    truth = model.forward(pose, shape)
    kp_err, vert_err = [], []
    for i in range(NUM_POSES):
        fit = fit_keypoints(model, truth.keypoints[i])
        assert fit.pose.shape == (model.num_joints, 3)
        assert fit.shape.shape == (model.num_shape,)
        kp_err.append(np.linalg.norm(fit.keypoints - truth.keypoints[i], axis=1).mean())
        mesh = model.forward(fit.pose[None], fit.shape[None], fit.translation[None])
        assert np.abs(mesh.keypoints[0] - fit.keypoints).max() <= IK_RESULT_CONSISTENCY_TOL_M
        vert_err.append(np.linalg.norm(mesh.vertices[0] - truth.vertices[i], axis=1).mean())
    kp_mean, vert_mean = float(np.mean(kp_err)), float(np.mean(vert_err))
    assert kp_mean <= IK_KEYPOINT_MEAN_TOL_M, f"mean keypoint error {kp_mean * 1e3:.2f} mm"
    assert vert_mean <= IK_VERTEX_MEAN_TOL_M, f"mean vertex error {vert_mean * 1e3:.2f} mm"


def test_fit_shape_recovers_bone_lengths_of_a_known_shape(model):
    # The solver itself, on exact data: a negligible prior (the default prior is tuned for
    # noisy MediaPipe landmarks and pulls exact data off by ~0.5 mm).
    rng = np.random.default_rng(1)
    for true_shape in rng.normal(size=(5, model.num_shape)) * SHAPE_SCALE:
        target = model.rest_keypoints(true_shape[None])[0]
        fitted = fit_shape(model, target, prior_weight=1e-9)
        assert fitted.shape == (model.num_shape,)
        err = np.abs(_bone_lengths(model.rest_keypoints(fitted[None])[0]) - _bone_lengths(target))
        assert err.max() <= SHAPE_BONE_LENGTH_TOL_M, (
            f"bone lengths off by up to {err.max() * 1e3:.2f} mm (mean {err.mean() * 1e3:.2f} mm)")


def test_bone_end_keypoints_maps_each_non_root_joint(model):
    ends = bone_end_keypoints(model)
    names = model.data.joint_names
    assert ends.shape == (model.num_joints,)
    assert ends[0] == -1
    assert np.all(ends[1:] >= 0) and np.all(ends[1:] < 21)
    assert len(set(ends[1:].tolist())) == model.num_joints - 1  # one keypoint per bone
    assert ends[names.index("thumb_cmc")] == Keypoint.THUMB_MCP == 2
    assert ends[names.index("index_dip")] == Keypoint.INDEX_TIP == 8
    assert ends[names.index("index_cmc")] == Keypoint.INDEX_MCP == 5


@pytest.mark.parametrize("bad", [
    pytest.param("nan", id="nan"),
    pytest.param("inf", id="inf"),
    pytest.param((20, 3), id="20x3"),
    pytest.param((21, 2), id="21x2"),
    pytest.param((1, 21, 3), id="batched"),
])
def test_fit_keypoints_rejects_bad_targets(model, bad):
    target = model.data.keypoints.copy()
    if bad == "nan":
        target[7, 1] = np.nan
    elif bad == "inf":
        target[3, 0] = np.inf
    else:
        target = np.zeros(bad)
    with pytest.raises(ValueError):
        fit_keypoints(model, target)
