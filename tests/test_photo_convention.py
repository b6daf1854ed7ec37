"""The photo annotators' joint convention (``--joint-convention annotated``): the shipped
fit loads and moves joints by millimetres, turning with the hand; the mesher applies it to
the output joints only (a real MediaPipe + regressor run on a sample-clip frame)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from models.geometry import project
from models.hand_model import HandModel
from realtime import HandMesher, HandMesherConfig
from realtime.cli.demo import PHOTO_JOINT_CONVENTION, parse_args
from realtime.io.sample import SAMPLE_VIDEO
from realtime.mesh.convention import (
    CONVENTIONS,
    MAX_OFFSET_M,
    convention_path,
    load_convention,
)
from realtime.mesh.estimator import EstimatorConfig


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def test_the_shipped_fit_loads_and_moves_joints_a_few_millimetres(model):
    conv = load_convention("annotated", model.num_vertices)
    assert conv.idx.shape == conv.coef.shape and conv.idx.shape[0] == 21
    rng = np.random.default_rng(0)
    out = model.forward(rng.normal(0, 0.25, (50, model.num_joints, 3)),
                        rng.normal(0, 0.5, (50, model.num_shape)))
    moved = conv.apply(out.keypoints, out.vertices, max_offset=MAX_OFFSET_M)
    assert moved.shape == out.keypoints.shape and np.all(np.isfinite(moved))
    shift = np.linalg.norm(moved - out.keypoints, axis=-1)
    # the tuning photos' mean offsets are up to ~8 mm (wrist, MCPs); none leaves the hand
    assert 0.002 < shift.mean() < 0.010, shift.mean()
    assert shift.max() <= MAX_OFFSET_M + 1e-12, shift.max()
    free = np.linalg.norm(conv.apply(out.keypoints, out.vertices) - out.keypoints, axis=-1)
    np.testing.assert_allclose(shift[free < MAX_OFFSET_M], free[free < MAX_OFFSET_M])
    # it turns and moves with the hand (the same correction in any pose of the camera)
    rot = Rotation.from_rotvec([0.4, -0.9, 0.3]).as_matrix()
    np.testing.assert_allclose(conv.offsets(out.keypoints @ rot + 0.3, out.vertices @ rot + 0.3),
                               conv.offsets(out.keypoints, out.vertices) @ rot, atol=1e-12)


def test_a_missing_or_foreign_convention_is_refused(tmp_path, model):
    with pytest.raises(ValueError, match="joint convention 'nope'"):
        EstimatorConfig(joint_convention="nope")
    assert convention_path("annotated") == CONVENTIONS["annotated"]
    bad = tmp_path / "c.npz"
    np.savez(bad, idx=np.full((21, 4), model.num_vertices + 5), coef=np.zeros((21, 4)))
    with pytest.raises(ValueError, match="does not fit a mesh"):
        load_convention(bad, model.num_vertices)
    junk = tmp_path / "j.npz"
    np.savez(junk, other=np.zeros(3))
    with pytest.raises(ValueError, match="not a joint convention file"):
        load_convention(junk, model.num_vertices)


def test_the_mesher_moves_the_joints_and_keeps_the_mesh():
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    frames = [cap.read()[1] for _ in range(121)]
    cap.release()
    photo = frames[120]
    with HandMesher(HandMesherConfig(stills=True)) as plain, HandMesher(HandMesherConfig(
            stills=True, estimator=EstimatorConfig(joint_convention="annotated"))) as moved:
        a, b = plain.process(photo), moved.process(photo)
        camera = moved.cameras.for_size((photo.shape[1], photo.shape[0]))
    assert len(a) >= 1 and len(b) == len(a)
    for x, y in zip(a, b):
        np.testing.assert_allclose(y.vertices, x.vertices, atol=1e-9)
        shift = np.linalg.norm(y.joints - x.joints, axis=1)
        assert np.all(np.isfinite(y.joints)) and 0.001 < shift.mean() < 0.015, shift.mean()
        # the 2D keypoints follow the moved joints: a few pixels off the plain ones
        moved_px = np.linalg.norm(y.keypoints_2d - x.keypoints_2d, axis=1)
        assert 0.1 < moved_px.mean() < 15.0, moved_px.mean()
        np.testing.assert_allclose(y.keypoints_2d, project(y.joints, camera.K), atol=1e-6)
        assert y.reprojection_error_px < 15.0


def test_the_cli_flag(tmp_path):
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    on = parse_args(["--source", str(photo), "--joint-convention", "annotated"])
    assert on.app.mesher.estimator.joint_convention == "annotated"
    off = parse_args(["--source", str(photo), "--joint-convention", "none"])
    assert off.app.mesher.estimator.joint_convention is None
    # the default: the photos' default (opt-in while the licence question is open), off
    # for a camera or video
    default = None if PHOTO_JOINT_CONVENTION == "none" else PHOTO_JOINT_CONVENTION
    assert parse_args(["--source", str(photo)]).app.mesher.estimator.joint_convention == \
        default
    assert parse_args(["--source", str(SAMPLE_VIDEO)]).app.mesher.estimator.joint_convention \
        is None
    assert parse_args(["--source", str(SAMPLE_VIDEO), "--joint-convention", "annotated"]
                      ).app.mesher.estimator.joint_convention == "annotated"
    with pytest.raises(ValueError, match="joint convention"):
        parse_args(["--source", str(photo), "--joint-convention", "nope"])
