"""The shipped photo placement (``--joint-convention photo``): named moves of keypoints.

Built from the real open hand model's rest mesh: each move goes the named millimetres in the
named direction on the rest hand, leaves the other keypoints alone, scales, turns and
mirrors with the hand; the shipped moves load by name and move the real pipeline's joints
(MediaPipe + regressor on a sample-clip frame) while the mesh stays."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from models.hand_model import HandModel, mirror_x
from models.joint_placement import AXES, Move, bone_direction, placement_convention
from realtime import HandMesher, HandMesherConfig
from realtime.mesh.convention import (
    MAX_OFFSET_M,
    PHOTO,
    PHOTO_MOVES,
    load_convention,
    photo_convention,
)
from realtime.mesh.estimator import EstimatorConfig

# The rest model: fingers along -y, the back of the hand +z, the thumb side +x.
TOWARDS = {"palm": np.array([0.0, 0.0, -1.0]), "side": np.array([1.0, 0.0, 0.0])}


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def _rest(model):
    return model.data.keypoints[None], model.data.template[None]


@pytest.mark.parametrize("joint", [0, 1, 3, 5, 8, 9, 13, 17, 20])
@pytest.mark.parametrize("axis", AXES)
def test_a_move_goes_its_millimetres_in_its_direction_and_nowhere_else(model, joint, axis):
    joints, verts = _rest(model)
    conv = placement_convention(model.data.template, model.data.keypoints,
                                (Move((joint,), axis, 4.0),))
    off = conv.offsets(joints, verts)[0]
    assert np.linalg.norm(off[joint]) == pytest.approx(0.004, rel=1e-6)
    assert np.abs(np.delete(off, joint, axis=0)).max() == 0.0
    want = bone_direction(model.data.keypoints, joint) if axis == "along" else TOWARDS[axis]
    cos = off[joint] @ want / np.linalg.norm(off[joint])
    # "along" follows the segment; "palm"/"side" are the surface's across the joint
    assert cos > (0.9 if axis == "along" else 0.65), cos


def test_it_scales_turns_and_mirrors_with_the_hand(model):
    rng = np.random.default_rng(0)
    out = model.forward(rng.normal(0, 0.3, (6, model.num_joints, 3)),
                        rng.normal(0, 0.5, (6, model.num_shape)))
    moves = (Move((0,), "along", 5.0), Move((5, 9, 13), "palm", -3.0), Move((8,), "side", 2.0))
    conv = placement_convention(model.data.template, model.data.keypoints, moves)
    j, v = out.keypoints, out.vertices
    off = conv.offsets(j, v)
    np.testing.assert_allclose(conv.offsets(1.2 * j, 1.2 * v), 1.2 * off, atol=1e-12)
    rot = Rotation.from_rotvec([0.3, 1.1, -0.4]).as_matrix()
    np.testing.assert_allclose(conv.offsets(j @ rot.T + 0.2, v @ rot.T + 0.2), off @ rot.T,
                               atol=1e-12)
    # a left hand is the mirrored right one: its moves are the mirrored moves
    np.testing.assert_allclose(conv.offsets(mirror_x(j), mirror_x(v)), mirror_x(off),
                               atol=1e-12)


def test_bad_moves_are_refused():
    with pytest.raises(ValueError, match="axis"):
        Move((0,), "up", 1.0)
    with pytest.raises(ValueError, match="keypoint indices"):
        Move((21,), "palm", 1.0)
    with pytest.raises(ValueError, match="finite"):
        Move((3,), "palm", float("nan"))


def test_the_shipped_placement_loads_by_name_and_moves_the_named_joints(model):
    assert 1 <= len(PHOTO_MOVES) <= 10  # a handful of named figures, not a fit
    conv = load_convention(PHOTO, model)
    joints, verts = _rest(model)
    off = conv.offsets(joints, verts)[0]
    named = sorted({j for m in PHOTO_MOVES for j in m.joints})
    moved = np.flatnonzero(np.linalg.norm(off, axis=1) > 1e-9)
    np.testing.assert_array_equal(moved, named)
    # each keypoint's move is the sum of its named moves along its own unit axes
    for j in named:
        want = sum(m.mm / 1000.0 * placement_convention(
            model.data.template, model.data.keypoints, (Move((j,), m.axis, 1.0),)
        ).offsets(joints, verts)[0, j] * 1000.0 for m in PHOTO_MOVES if j in m.joints)
        np.testing.assert_allclose(off[j], want, atol=1e-12)
    # millimetres on the rest hand, each within the runtime's cap
    assert np.linalg.norm(off, axis=1).max() < MAX_OFFSET_M
    assert photo_convention(model).idx.shape == conv.idx.shape


def test_the_mesher_moves_the_joints_by_the_shipped_placement_and_keeps_the_mesh(model, sample_photo):
    photo = sample_photo
    with HandMesher(HandMesherConfig(stills=True)) as plain, HandMesher(HandMesherConfig(
            stills=True, estimator=EstimatorConfig(joint_convention=PHOTO))) as moved:
        a, b = plain.process(photo), moved.process(photo)
    assert len(a) >= 1 and len(b) == len(a)
    conv = photo_convention(model)
    for x, y in zip(a, b):
        np.testing.assert_allclose(y.vertices, x.vertices, atol=1e-9)
        np.testing.assert_allclose(y.joints, conv.apply(x.joints, x.vertices,
                                                        max_offset=MAX_OFFSET_M), atol=1e-9)
        assert np.linalg.norm(y.joints - x.joints, axis=1).max() > 0.001
