"""Photo passes: a photo's flipped/bordered variants through the detector and regressor,
their meshes combined per hand (``realtime.mesh.photo_passes``).

The mapping back, the matching and the combination are pure and checked on synthetic
hands (a flipped image's detection mapped back is exactly the hand's, and so is its mesh);
the whole option runs for real (MediaPipe's models, the shipped regressor) on frames of the
built-in sample clip, treated as photos.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from calibration.camera import Camera
from calibration.intrinsics import CameraIntrinsics
from models.geometry import project
from models.hand_model import HandModel
from realtime import HandMesher, HandMesherConfig
from realtime.cli.demo import parse_args
from realtime.detect.recall import Variant, map_back
from realtime.io.sample import SAMPLE_VIDEO
from realtime.mesh.photo_passes import (
    PhotoPassesEstimator,
    attach_alternates,
    check_passes,
    combine_hands,
    photo_variants,
    vote_side,
)
from realtime.mesh.regressor import RegressorEstimator
from realtime.types import Detection

W, H = 640, 480
NET_TOL_M = 1e-6  # the network runs in float32: inputs equal to 1e-12 give meshes to 0.1 um
K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


@pytest.fixture(scope="module")
def regressor(model) -> RegressorEstimator:
    return RegressorEstimator(model)


def camera() -> Camera:
    return Camera.pinhole(CameraIntrinsics.from_matrix(K, W, H))


def synthetic_detection(model: HandModel, seed: int = 3, shift_px: float = 0.0) -> Detection:
    """A right hand of the hand model as a detector would report it (no noise)."""
    rng = np.random.default_rng(seed)
    out = model.forward(rng.normal(0, 0.2, (1, model.num_joints, 3)),
                        rng.normal(0, 0.5, (1, model.num_shape)),
                        trans=np.array([[0.03, -0.02, 0.45]]))
    kp = out.keypoints[0]
    px = project(kp, K) + (shift_px, 0.0)
    return Detection(landmarks_px=px, landmarks_z=(kp[:, 2] - kp[0, 2]) / 0.45 * 600 / W,
                     world=kp - kp.mean(0), handedness="right", score=0.9, frame_index=0,
                     timestamp=0.0)


def as_seen_flipped(det: Detection) -> Detection:
    """What the detector reports for the same hand in the horizontally flipped image: the
    pixels mirrored, the world landmarks mirrored, the other side."""
    world = det.world.copy()
    world[:, 0] *= -1
    px = det.landmarks_px.copy()
    px[:, 0] = W - px[:, 0]
    return replace(det, landmarks_px=px, world=world,
                   handedness="left" if det.handedness == "right" else "right")


def test_variants_are_the_photo_then_flipped_then_bordered():
    assert photo_variants(W, H, 1) == [Variant()]
    assert photo_variants(W, H, 2) == [Variant(), Variant(flip=True)]
    four = photo_variants(W, H, 4)
    assert four[2] == Variant(pad_x=160, pad_y=120)
    assert four[3] == Variant(flip=True, pad_x=160, pad_y=120)
    for bad in (0, 3, 5, True, "2"):
        with pytest.raises(ValueError, match="photo passes must be one of"):
            check_passes(bad)


def test_mirroring_back_a_flipped_detection_is_exact(model, regressor):
    det = synthetic_detection(model)
    back = map_back(as_seen_flipped(det), Variant(flip=True), W)
    assert back.handedness == "right"
    np.testing.assert_allclose(back.landmarks_px, det.landmarks_px, atol=1e-12)
    np.testing.assert_allclose(back.world, det.world, atol=1e-12)
    np.testing.assert_allclose(back.landmarks_z, det.landmarks_z, atol=1e-12)
    one = regressor.estimate([det], camera(), [0])[0]
    again = regressor.estimate([back], camera(), [0])[0]
    np.testing.assert_allclose(again.vertices, one.vertices, atol=NET_TOL_M)
    np.testing.assert_allclose(again.joints, one.joints, atol=NET_TOL_M)
    # the combined hand of a photo whose variants all agree is the single pass's hand
    both = PhotoPassesEstimator(regressor).estimate(
        [replace(det, alternates=(back, back))], camera(), [7])[0]
    np.testing.assert_allclose(both.vertices, one.vertices, atol=NET_TOL_M)
    np.testing.assert_allclose(both.vertex_std, one.vertex_std, rtol=1e-4)
    assert both.track_id == 7 and both.handedness == "right"


def test_a_left_hand_flipped_back_keeps_its_side_and_mesh(model, regressor):
    left = as_seen_flipped(synthetic_detection(model, seed=5))  # a left hand in the photo
    back = map_back(as_seen_flipped(left), Variant(flip=True), W)
    assert back.handedness == "left"
    a = regressor.estimate([left], camera(), [0])[0]
    b = PhotoPassesEstimator(regressor).estimate([replace(left, alternates=(back,))],
                                                 camera(), [0])[0]
    np.testing.assert_allclose(b.joints, a.joints, atol=NET_TOL_M)
    assert b.handedness == "left"


def test_each_hand_gets_its_own_nearest_alternate_once(model):
    a = synthetic_detection(model, seed=1)
    b = replace(a, landmarks_px=a.landmarks_px + (250.0, 0.0))  # another hand, to the right
    near_a = replace(a, landmarks_px=a.landmarks_px + 2.0)
    nearer_a = replace(a, landmarks_px=a.landmarks_px + 1.0)
    near_b = replace(b, landmarks_px=b.landmarks_px - 3.0)
    far = replace(a, landmarks_px=a.landmarks_px + (0.0, 300.0))
    out = attach_alternates([a, b], [[near_b, near_a, nearer_a, far], [], [near_a]])
    assert [len(d.alternates) for d in out] == [2, 1]
    np.testing.assert_array_equal(out[0].alternates[0].landmarks_px, nearer_a.landmarks_px)
    np.testing.assert_array_equal(out[0].alternates[1].landmarks_px, near_a.landmarks_px)
    np.testing.assert_array_equal(out[1].alternates[0].landmarks_px, near_b.landmarks_px)
    np.testing.assert_array_equal(out[0].landmarks_px, a.landmarks_px)  # the hand is kept
    # one detection is never given to two hands
    twin = attach_alternates([a, replace(a, score=0.5)], [[near_a]])
    assert [len(d.alternates) for d in twin] == [1, 0]


def test_combining_takes_the_median_so_one_bad_pass_does_not_count(model, regressor):
    det = synthetic_detection(model)
    hands = [regressor.estimate([det], camera(), [0])[0] for _ in range(3)]
    bad = replace(hands[2], vertices=hands[2].vertices + 0.05, joints=hands[2].joints + 0.05,
                  vertex_std=hands[2].vertex_std * 2)
    out = combine_hands([hands[0], hands[1], bad], K, det.landmarks_px)
    np.testing.assert_allclose(out.joints, hands[0].joints, atol=1e-12)
    np.testing.assert_allclose(out.vertices, hands[0].vertices, atol=1e-12)
    np.testing.assert_allclose(out.vertex_std, hands[0].vertex_std * np.sqrt(2.0), rtol=1e-9)
    np.testing.assert_allclose(out.keypoints_2d, project(out.joints, K), atol=NET_TOL_M)
    assert out.reprojection_error_px == pytest.approx(
        np.linalg.norm(out.keypoints_2d - det.landmarks_px, axis=1).mean())
    assert combine_hands([hands[0]], K, det.landmarks_px) is hands[0]
    with pytest.raises(ValueError, match="at least one hand"):
        combine_hands([], K, det.landmarks_px)


def test_the_side_is_the_passes_majority_and_only_agreeing_passes_count(model, regressor):
    assert vote_side(["right", "left", "left"]) == "left"
    assert vote_side(["right", "left"]) == "right"  # a tie: the first pass's
    assert vote_side(["left", "left", "right", "right"]) == "left"
    right = synthetic_detection(model, seed=8)
    left = as_seen_flipped(synthetic_detection(model, seed=9))
    # the first pass says right, three passes say left: a left hand, from those three
    hand = PhotoPassesEstimator(regressor).estimate(
        [replace(right, alternates=(left, left, left))], camera(), [4])[0]
    alone = regressor.estimate([left], camera(), [4])[0]
    assert hand.handedness == "left" and hand.track_id == 4
    np.testing.assert_allclose(hand.vertices, alone.vertices, atol=NET_TOL_M)
    # two right passes against one left: the left one is left out
    hand = PhotoPassesEstimator(regressor).estimate(
        [replace(right, alternates=(left, right))], camera(), [0])[0]
    np.testing.assert_allclose(hand.vertices, regressor.estimate(
        [right], camera(), [0])[0].vertices, atol=NET_TOL_M)


def test_hands_without_alternates_pass_through(model, regressor):
    det = synthetic_detection(model)
    one = regressor.estimate([det], camera(), [3])[0]
    same = PhotoPassesEstimator(regressor).estimate([det], camera(), [3])[0]
    np.testing.assert_array_equal(same.vertices, one.vertices)


# -- real detector, real regressor on frames of the sample clip taken as photos -----------
@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    out = [cap.read()[1] for _ in range(251)]
    cap.release()
    return [out[120], out[250]]


@pytest.mark.parametrize("kind", ["scheduled", "mediapipe"])
def test_photo_passes_give_the_single_pass_hands_a_little_moved(photos, kind):
    from realtime.detect.detector import DetectorConfig

    det = DetectorConfig(kind=kind)
    with HandMesher(HandMesherConfig(detector=det, stills=True)) as one, \
            HandMesher(HandMesherConfig(detector=det, stills=True, photo_passes=4)) as four:
        for photo in photos:
            single, passes = one.process(photo), four.process(photo)
            assert len(single) >= 1
            assert [h.handedness for h in passes] == [h.handedness for h in single]
            for a, b in zip(single, passes):
                assert b.vertices.shape == a.vertices.shape
                assert np.all(np.isfinite(b.vertices)) and np.all(b.vertex_std > 0)
                # the same hand: its shape agrees to about a centimetre, its 2D to pixels,
                # its distance (what one camera sees least well) to a tenth
                ra, rb = a.joints - a.joints.mean(0), b.joints - b.joints.mean(0)
                assert np.linalg.norm(rb - ra, axis=1).mean() < 0.01
                assert abs(b.joints[:, 2].mean() / a.joints[:, 2].mean() - 1) < 0.1
                assert np.linalg.norm(b.keypoints_2d - a.keypoints_2d, axis=1).mean() < 6.0
                assert b.reprojection_error_px < 6.0


def test_photo_passes_need_stills_and_a_photo_source(tmp_path):
    with pytest.raises(ValueError, match="photo_passes=2 is for photos"):
        HandMesher(HandMesherConfig(photo_passes=2))
    with pytest.raises(ValueError, match="photo passes must be one of"):
        HandMesherConfig(photo_passes=3)
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    assert parse_args(["--source", str(photo)]).app.mesher.photo_passes == 4
    assert parse_args(["--source", str(photo), "--photo-passes", "1"]
                      ).app.mesher.photo_passes == 1
    assert parse_args(["--source", str(SAMPLE_VIDEO)]).app.mesher.photo_passes == 1
    with pytest.raises(ValueError, match="--photo-passes is for photos"):
        parse_args(["--source", str(SAMPLE_VIDEO), "--photo-passes", "2"])
    with pytest.raises(ValueError, match="photo passes must be one of"):
        parse_args(["--source", str(photo), "--photo-passes", "3"])


def test_a_distorting_camera_undistorts_the_alternates_too(model, regressor):
    """The estimate stage undistorts every pass's landmarks, so a hand whose passes agree
    still comes out as the single pass's hand through a lens with distortion."""
    from realtime.engine.stages import EstimateStage
    from realtime.types import Frame, Packet

    lens = Camera(CameraIntrinsics.from_matrix(K, W, H), dist=np.array([0.1, -0.05, 0, 0, 0]))
    det = synthetic_detection(model)
    frame = Frame(np.zeros((H, W, 3), np.uint8), 0, 0.0, camera=lens)
    one = EstimateStage(regressor, stills=True)(Packet(frame, 0.0, detections=(det,))).hands
    alt = replace(det, alternates=(det, det))
    passes = EstimateStage(PhotoPassesEstimator(regressor), stills=True)(
        Packet(frame, 0.0, detections=(alt,))).hands
    assert len(one) == len(passes) == 1
    np.testing.assert_allclose(passes[0].joints, one[0].joints, atol=NET_TOL_M)
