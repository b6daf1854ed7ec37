"""The photo annotators' joint convention (``--joint-convention FILE.npz``).

No free fit is shipped (the only real 3D-labelled photos here are non-commercial research
data; tests/test_photo_placement.py covers the shipped named moves), so these tests make
their own: synthetic hands whose "annotated" joints sit at a known
place on the mesh, fitted by the same ``fit_convention`` that ``scripts.fit_photo_convention``
uses, saved and loaded the way a user's file is. Then: the fit recovers the convention, it
turns with the hand, a move is capped, bad files are refused, and the mesher applies it to
the output joints only (a real MediaPipe + regressor run on a sample-clip frame)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from models.geometry import project
from models.hand_model import HandModel
from models.joint_convention import (
    JointConvention,
    fit_convention,
    nearest_vertices,
    shape_error,
)
from realtime import HandMesher, HandMesherConfig
from realtime.cli.demo import parse_args
from realtime.io.sample import SAMPLE_VIDEO
from realtime.mesh.convention import MAX_OFFSET_M, convention_path, load_convention
from realtime.mesh.estimator import EstimatorConfig

COUNT = 8


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def _hands(model: HandModel, n: int, seed: int):
    rng = np.random.default_rng(seed)
    out = model.forward(rng.normal(0, 0.25, (n, model.num_joints, 3)),
                        rng.normal(0, 0.5, (n, model.num_shape)))
    return out.keypoints, out.vertices


@pytest.fixture(scope="module")
def truth(model) -> JointConvention:
    """A known convention: each joint two fifths of the way to the mean of its nearest vertices
    (the knuckles drop towards the palm's surface, the tips towards the pad)."""
    idx = nearest_vertices(model.data.template, model.data.keypoints, COUNT)
    return JointConvention(idx=idx, coef=np.full(idx.shape, 0.4 / COUNT))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, model, truth) -> Path:
    joints, verts = _hands(model, 200, seed=1)
    annotated = truth.apply(joints, verts)
    conv = fit_convention(verts, joints, annotated, truth.idx, ridge=1e-9)
    path = tmp_path_factory.mktemp("conv") / "convention.npz"
    conv.save(path, "test: synthetic hands, two fifths of the way to the nearest vertices")
    return path


def test_the_fit_recovers_a_known_convention_on_new_hands(model, truth, fitted):
    conv = load_convention(fitted, model)
    joints, verts = _hands(model, 50, seed=2)
    want = truth.apply(joints, verts)
    got = conv.apply(joints, verts)
    moved = np.linalg.norm(want - joints, axis=-1)
    assert 0.001 < moved.mean() < 0.010, moved.mean()  # millimetres: a real correction
    # the fit works on shape (each hand aligned to its annotation by a similarity first), so
    # judge it so: the shape difference to the annotated joints is mostly gone
    before, after = shape_error(joints, want).mean(), shape_error(got, want).mean()
    assert after < 0.2 * before, (after, before)


def test_it_turns_with_the_hand_and_a_move_is_capped(model, fitted):
    conv = load_convention(fitted, model)
    joints, verts = _hands(model, 20, seed=3)
    rot = Rotation.from_rotvec([0.4, -0.9, 0.3]).as_matrix()
    np.testing.assert_allclose(conv.offsets(joints @ rot + 0.3, verts @ rot + 0.3),
                               conv.offsets(joints, verts) @ rot, atol=1e-12)
    big = JointConvention(idx=conv.idx, coef=conv.coef * 20)  # overshoots on purpose
    shift = np.linalg.norm(big.apply(joints, verts, max_offset=MAX_OFFSET_M) - joints, axis=-1)
    free = np.linalg.norm(big.apply(joints, verts) - joints, axis=-1)
    assert free.max() > MAX_OFFSET_M and shift.max() <= MAX_OFFSET_M + 1e-12
    np.testing.assert_allclose(shift[free < MAX_OFFSET_M], free[free < MAX_OFFSET_M])


def test_a_missing_or_foreign_convention_is_refused(tmp_path, model):
    with pytest.raises(ValueError, match="no such file"):
        EstimatorConfig(joint_convention=tmp_path / "nope.npz")
    with pytest.raises(ValueError, match="'photo' for the shipped placement"):
        convention_path("annotated")
    bad = tmp_path / "c.npz"
    np.savez(bad, idx=np.full((21, 4), model.num_vertices + 5), coef=np.zeros((21, 4)))
    with pytest.raises(ValueError, match="does not fit a mesh"):
        load_convention(bad, model)
    junk = tmp_path / "j.npz"
    np.savez(junk, other=np.zeros(3))
    with pytest.raises(ValueError, match="not a joint convention file"):
        load_convention(junk, model)


def test_the_mesher_moves_the_joints_and_keeps_the_mesh(fitted, sample_photo):
    photo = sample_photo
    with HandMesher(HandMesherConfig(stills=True)) as plain, HandMesher(HandMesherConfig(
            stills=True, estimator=EstimatorConfig(joint_convention=fitted))) as moved:
        a, b = plain.process(photo), moved.process(photo)
        camera = moved.cameras.for_size((photo.shape[1], photo.shape[0]))
    assert len(a) >= 1 and len(b) == len(a)
    for x, y in zip(a, b):
        np.testing.assert_allclose(y.vertices, x.vertices, atol=1e-9)
        shift = np.linalg.norm(y.joints - x.joints, axis=1)
        assert np.all(np.isfinite(y.joints)) and 0.0005 < shift.mean() < 0.015, shift.mean()
        # the 2D keypoints follow the moved joints
        np.testing.assert_allclose(y.keypoints_2d, project(y.joints, camera.K), atol=1e-6)
        assert np.linalg.norm(y.keypoints_2d - x.keypoints_2d, axis=1).mean() > 0.05
        assert y.reprojection_error_px < 15.0


def test_the_cli_flag(tmp_path, fitted):
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    # photos default to the shipped placement, a camera or video to the model's joints
    assert parse_args(["--source", str(photo)]).app.mesher.estimator.joint_convention == "photo"
    assert parse_args(["--source", str(photo), "--joint-convention", "none"]
                      ).app.mesher.estimator.joint_convention is None
    on = parse_args(["--source", str(photo), "--joint-convention", str(fitted)])
    assert Path(on.app.mesher.estimator.joint_convention) == fitted
    assert parse_args(["--source", str(SAMPLE_VIDEO)]).app.mesher.estimator.joint_convention \
        is None
    with pytest.raises(ValueError, match="joint convention"):
        parse_args(["--source", str(photo), "--joint-convention", str(tmp_path / "no.npz")])
