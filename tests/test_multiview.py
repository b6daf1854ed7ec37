"""Extrinsics and multi-view fusion on synthetic rigs with known truth, and the landmark
stream between camera nodes and a fusion node over real sockets on 127.0.0.1."""

from __future__ import annotations

import time

import numpy as np
import pytest

from calibration.board import BoardDetector, BoardSpec
from calibration.errors import CalibrationError
from calibration.extrinsics import calibrate_extrinsics, load_rig, save_rig
from calibration.multiview import HandView, RigCamera, associate, fit_mesh, fuse_views, triangulate
from calibration.profile import ProfileRecorder, bone_lengths
from calibration.simulation import render_board, rotation, synthetic_rig, webcam_calibration
from models.hand_model import HandModel
from models.poses import named_pose
from realtime.multiview.landmark_stream import (
    FusionNode,
    LandmarkPublisher,
    LandmarkSubscriber,
    decode_landmarks,
    encode_landmarks,
)
from realtime.stream import protocol
from realtime.types import Detection

EXACT_M = 1e-9  # noise-free triangulation
EXTRINSIC_TOL_M = 0.005  # camera centres from six synthetic board views


def _rig(n: int = 3) -> list[RigCamera]:
    return [RigCamera(webcam_calibration(640, 480, 60 + 3 * i, name=f"cam{i}"), c.R, c.t)
            for i, c in enumerate(synthetic_rig(n, distance_m=0.6))]


def _hand(offset=(0.0, 0.0, 0.6)) -> np.ndarray:
    model = HandModel.open_hand()
    kps = model.forward(named_pose(model.data.joint_names, "spread")).keypoints[0]
    return kps - kps.mean(0) + np.asarray(offset)


def _views(rig, x, side, score=0.9, cams=None):
    out = []
    for c, cam in enumerate(rig):
        if cams is not None and c not in cams:
            continue
        uv = cam.calibration.distort_points(cam.project(x))
        rel = x @ cam.R.T
        out.append(HandView(c, uv, np.ones(21), side, score, rel - rel.mean(0)))
    return out


def test_triangulation_is_exact_without_noise():
    rig = _rig(3)
    x = _hand()
    uv = np.stack([cam.project(x) for cam in rig])
    got = triangulate(uv, np.stack([c.P for c in rig]), np.ones((3, 21)))
    assert np.abs(got - x).max() < EXACT_M
    w = np.ones((3, 21))
    w[1:, 5] = 0.0  # one view only: not triangulable
    assert np.isnan(triangulate(uv, np.stack([c.P for c in rig]), w)[5]).all()


def test_confidence_weights_downweight_a_bad_view():
    rig = _rig(3)
    x = _hand()
    uv = np.stack([cam.project(x) for cam in rig])
    uv[2] += 15.0  # a view with a gross error
    proj = np.stack([c.P for c in rig])
    even = np.abs(triangulate(uv, proj, np.ones((3, 21))) - x).max()
    w = np.ones((3, 21))
    w[2] = 0.01
    weighted = np.abs(triangulate(uv, proj, w) - x).max()
    assert weighted < 0.2 * even


def test_association_and_fusion_of_two_hands_with_distortion():
    rig = _rig(3)
    right, left = _hand((0.06, 0.0, 0.6)), _hand((-0.08, 0.02, 0.62))
    views = _views(rig, right, "right") + _views(rig, left, "left")
    rng = np.random.default_rng(0)
    views = [views[i] for i in rng.permutation(len(views))]
    groups = associate(views, rig)
    assert sorted(len(g) for g in groups) == [3, 3]
    assert all(len({v.handedness for v in g}) == 1 for g in groups)
    hands = {h.handedness: h for h in fuse_views(views, rig)}
    assert np.abs(hands["right"].joints - right).max() < 1e-4  # undistortion is iterative
    assert np.abs(hands["left"].joints - left).max() < 1e-4


def test_same_side_hands_are_kept_apart_by_epipolar_geometry():
    rig = _rig(2)
    a, b = _hand((0.07, 0.0, 0.6)), _hand((-0.07, 0.03, 0.6))
    views = _views(rig, a, "right") + _views(rig, b, "right")
    groups = associate(views, rig)
    assert len(groups) == 2
    for g in groups:
        assert len({v.camera for v in g}) == 2


def test_view_dropout_falls_back_to_single_view():
    rig = _rig(3)
    x = _hand()
    two = fuse_views(_views(rig, x, "right", cams={0, 2}), rig)
    assert len(two) == 1 and two[0].views == (0, 2)
    assert np.abs(two[0].joints - x).max() < 1e-4
    one = fuse_views(_views(rig, x, "right", cams={1}), rig)
    assert one[0].views == (1,)
    assert np.abs(one[0].joints - x).max() < 1e-4  # exact world landmarks: exact placement
    assert fuse_views([], rig) == []


def test_mesh_is_fitted_once_in_the_world_frame():
    model = HandModel.open_hand()
    rig = _rig(2)
    x = _hand()
    hand = fit_mesh(model, fuse_views(_views(rig, x, "left"), rig)[0])
    assert hand.vertices.shape == (model.num_vertices, 3)
    assert np.linalg.norm(hand.vertices.mean(0) - x.mean(0)) < 0.03


def test_extrinsics_from_shared_board_views(tmp_path):
    spec = BoardSpec()
    rig = _rig(3)
    det = BoardDetector(spec)
    rng = np.random.default_rng(1)
    centre = np.array([spec.squares_x, spec.squares_y, 0]) * spec.square_m / 2
    frames = []
    for k in range(4):
        rb = rotation(*rng.uniform(-20, 20, 3))
        tb = np.array([0.0, 0.0, 0.6]) + rng.uniform(-0.04, 0.04, 3) - rb @ centre
        frames.append([det.detect(render_board(spec, cam.calibration, cam.R @ rb,
                                               cam.R @ tb + cam.t, noise_std=1.0, seed=k,
                                               supersample=1))
                       for cam in rig])
    result = calibrate_extrinsics(spec, [c.calibration for c in rig], frames)
    for cam, (r, t) in zip(rig, result.poses):
        assert np.linalg.norm(-r.T @ t - cam.centre) < EXTRINSIC_TOL_M
    save_rig(tmp_path / "rig.json", [c.calibration for c in rig], list(result.poses))
    calibs, poses = load_rig(tmp_path / "rig.json")
    assert len(calibs) == 3 and np.allclose(poses[1][0], result.poses[1][0])
    lonely = [[f[0], f[1], None] for f in frames]
    with pytest.raises(CalibrationError, match=r"\[2\]"):
        calibrate_extrinsics(spec, [c.calibration for c in rig], lonely)


def _detections(rig, x, cam):
    v = _views(rig, x, "right", cams={cam})[0]
    return [Detection(v.uv, np.zeros(21), v.world, "right", 0.9, 7, 1.25)]


def test_landmark_message_round_trip_and_refusal():
    rig = _rig(2)
    dets = _detections(rig, _hand(), 1)
    f = decode_landmarks(encode_landmarks(1, 7, 1.25, (640, 480), dets))
    assert (f.camera_id, f.frame_index, f.image_size) == (1, 7, (640, 480))
    assert np.allclose(f.views[0].uv, dets[0].landmarks_px, atol=1e-3)
    with pytest.raises(protocol.ProtocolError):
        decode_landmarks(protocol.encode(b"landmarks", {"frame_index": 1}))


def test_camera_nodes_to_fusion_node_over_sockets():
    """Two camera nodes publish on free ports of 127.0.0.1; the fusion node triangulates,
    then keeps placing the hand from one view when the other camera stops sending."""
    rig = _rig(2)
    x = _hand()
    pubs = [LandmarkPublisher("tcp://127.0.0.1:*", c) for c in range(2)]
    sub = LandmarkSubscriber([p.endpoint for p in pubs])
    recorder = ProfileRecorder(target_samples=1)
    node = FusionNode(rig, HandModel.open_hand(), max_skew_s=0.5, recorder=recorder)
    try:
        got: dict[int, int] = {}
        deadline = time.monotonic() + 5.0
        while len(got) < 2 and time.monotonic() < deadline:  # slow joiner: resend
            for c, p in enumerate(pubs):
                p.send(len(got), time.monotonic(), (640, 480), _detections(rig, x, c))
            for f in sub.receive(50):
                node.update(f)
                got[f.camera_id] = got.get(f.camera_id, 0) + 1
        assert set(got) == {0, 1}
        hands = node.fuse()
        assert len(hands) == 1 and hands[0].views == (0, 1)
        assert np.abs(hands[0].joints - x).max() < 1e-3  # float32 on the wire
        assert hands[0].vertices is not None
        # Triangulated hands give a metric profile (a single view cannot).
        assert recorder.done
        assert np.allclose(recorder.profile().bone_lengths_m, bone_lengths(x), atol=1e-3)
        time.sleep(0.6)  # camera 0 goes quiet
        pubs[1].send(99, time.monotonic(), (640, 480), _detections(rig, x, 1))
        frames = []
        deadline = time.monotonic() + 2.0
        while not frames and time.monotonic() < deadline:
            frames = sub.receive(100)
        for f in frames:
            node.update(f)
        hands = node.fuse()
        assert hands[0].views == (1,)
        assert np.abs(hands[0].joints - x).max() < 2e-3
    finally:
        sub.close()
        for p in pubs:
            p.close()
