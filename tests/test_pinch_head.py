"""The learned thumb-index distance (``realtime.mesh.pinch_head``): its features, its
invariance to turning the hand, its weights file, and the shipped weights on real pipeline
output of a clip rendered here (an open hand, then a pinch)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration.intrinsics import CameraIntrinsics
from models.geometry import axis_angle_to_matrix
from models.hand_model import HandModel, mirror_x
from models.poses import named_pose
from realtime.io.camera import CameraConfig
from realtime.mesh.pinch import PinchConfig, distance_measure, pinch_distance
from realtime.mesh.pinch_head import (
    DEFAULT_HEAD,
    NUM_FEATURES,
    PinchHead,
    PinchHeadError,
    fast_features,
    gate_blend,
    hand_frame,
    pinch_features,
)
from realtime.mesher import HandMesher, HandMesherConfig
from realtime.render.raster import Lighting
from scripts.make_sample import HandPlan, SampleConfig, Scene, build_sample


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


@pytest.fixture(scope="module")
def head() -> PinchHead:
    return PinchHead()


def _joints(model, gesture: str) -> np.ndarray:
    return model.forward(named_pose(model.data.joint_names, gesture)).keypoints[0]


def _moved(joints: np.ndarray, n: int = 20, seed: int = 3) -> np.ndarray:
    """``n`` copies of ``joints`` turned, tilted and moved at random, 30-80 cm away."""
    rng = np.random.default_rng(seed)
    rots = axis_angle_to_matrix(rng.normal(0, 1.5, (n, 3)))
    return joints @ np.swapaxes(rots, 1, 2) + rng.uniform(-0.2, 0.2, (n, 1, 3)) \
        + np.array([0, 0, 0.5])


def test_hand_frame_ignores_rigid_motion_and_reads_a_left_hand_as_a_right(model):
    joints = _joints(model, "pinch")
    local = hand_frame(joints, True)
    np.testing.assert_allclose(hand_frame(_moved(joints), True), np.broadcast_to(
        local, (20, 21, 3)), atol=1e-12)
    assert np.allclose(local[0], 0) and local[9, 0] == pytest.approx(0, abs=1e-12)
    assert local[9, 1] > 0.05  # wrist to middle knuckle along +y
    np.testing.assert_allclose(hand_frame(mirror_x(joints), False), local, atol=1e-12)
    feats = pinch_features(joints, True)
    assert feats.shape == (NUM_FEATURES,)
    # the last 16 features: thumb joints to index joints, cm; the tips' pair is the last
    assert feats[-1] == pytest.approx(100 * pinch_distance(joints))


def test_compiled_features_equal_the_numpy_ones_the_head_was_trained_on(model):
    """The stage runs the compiled twin (``fast_features``); training used
    ``pinch_features``: they must agree, for both sides and any pose of the hand."""
    joints = np.concatenate([_moved(_joints(model, g), n=5, seed=k)
                             for k, g in enumerate(("open", "pinch", "fist", "ok"))])
    right = np.arange(len(joints)) % 2 == 0
    np.testing.assert_allclose(fast_features(joints, right), pinch_features(joints, right),
                               rtol=1e-12, atol=1e-9)


def test_head_is_invariant_to_turning_the_hand(model, head):
    """Like the plain 3D distance, the learned one does not change when the same joints
    turn, tilt or move: its inputs are the hand's own shape."""
    for gesture in ("open", "pinch", "fist", "ok"):
        joints = _joints(model, gesture)
        d0 = head.distance(joints, True)
        np.testing.assert_allclose(head.distance(_moved(joints), True), d0, rtol=1e-9)
        assert head.distance(mirror_x(joints), False) == pytest.approx(d0, rel=1e-9)


def test_head_on_exact_model_hands(model, head):
    """On exact model hands (no detector, no regressor: not what it was trained on) the
    head still reads the pinches as engaged; hands whose tips are over 6 cm apart keep the
    joints' own distance exactly (outside the gate), inside the blend gets part of it."""
    for gesture in ("pinch", "ok"):
        assert 0 < head.distance(_joints(model, gesture), True) < PinchConfig().engage_m
    for gesture in ("open", "point", "relaxed"):
        joints = _joints(model, gesture)
        assert head.distance(joints, True) == pinch_distance(joints) > head.gate_m[1]
    fist = _joints(model, "fist")  # tips 57 mm apart: inside the blend, near the truth
    assert head.distance(fist, True) == pytest.approx(pinch_distance(fist), abs=0.005)


def test_gate_blend():
    joints = np.array([0.01, 0.04, 0.05, 0.06, 0.2])
    head = np.array([0.002, 0.03, 0.03, 0.03, 0.03])
    np.testing.assert_allclose(gate_blend(joints, head, (0.04, 0.06)),
                               [0.002, 0.03, 0.04, 0.06, 0.2])
    np.testing.assert_allclose(gate_blend(joints, head, (0.04, 0.06), 0.5),
                               [0.006, 0.035, 0.045, 0.06, 0.2])
    np.testing.assert_allclose(gate_blend(joints, head, (np.inf, np.inf)), head)


def test_head_batches_and_marks_unknown_joints(model, head):
    joints = np.stack([_joints(model, "pinch"), _joints(model, "open"),
                       np.full((21, 3), np.nan)])
    out = head.distance(joints, np.array([True, False, True]))
    assert out.shape == (3,) and math.isnan(out[2])
    assert out[0] == pytest.approx(head.distance(joints[0], True))
    with pytest.raises(ValueError, match="21,3"):
        head.distance(np.zeros((20, 3)), True)


def test_compiled_distance_equals_the_numpy_path(model, head):
    """``distance`` runs one compiled call; the NumPy path (features, ``forward``,
    ``gate_blend`` with the tip distance) gives the same meters to 1e-12."""
    rng = np.random.default_rng(12)
    joints = np.concatenate([
        np.stack([_joints(model, g) for g in ("pinch", "open", "fist")]),
        _moved(_joints(model, "pinch"), 10), rng.normal(0, 0.04, (300, 21, 3))])
    joints[[5, 40], 3, 2] = [np.nan, np.inf]
    right = rng.random(len(joints)) < 0.5
    ok = np.isfinite(joints).all(axis=(1, 2))
    want = np.full(len(joints), np.nan)
    want[ok] = gate_blend(pinch_distance(joints[ok]),
                          head.forward(pinch_features(joints[ok], right[ok])),
                          head.gate_m, head.weight)
    got = head.distance(joints, right)
    assert np.array_equal(np.isnan(got), ~ok)
    np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=1e-12)
    blended = (pinch_distance(joints[ok]) < head.gate_m[1])
    assert 0 < blended.sum() < ok.sum()  # both the head's side of the gate and the joints'


def test_head_refuses_missing_or_wrong_weights(tmp_path):
    with pytest.raises(PinchHeadError, match="pinch head not found: .*Train it with"):
        PinchHead(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, w0=np.zeros((5, 1)), b0=np.zeros(1), mean=np.zeros(5), std=np.ones(5))
    with pytest.raises(PinchHeadError, match="features"):
        PinchHead(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(PinchHeadError, match="not a readable pinch head"):
        PinchHead(junk)


def test_shipped_weights_and_their_recipe():
    assert DEFAULT_HEAD.is_file() and DEFAULT_HEAD.stat().st_size < 200_000
    recipe = PinchHead().recipe
    # trained on random-script clips and photos, never on the evaluation clip
    assert recipe["train"] and not any("benchmarks/data/pinch" in p for p in recipe["train"])


def test_config_chooses_the_distance(model):
    with pytest.raises(ValueError, match="distance"):
        PinchConfig(distance="2d")
    from benchmarks.common import random_hand_mesh

    hand = random_hand_mesh(model, "left", seed=4, track_id=1, score=0.9, timestamp=0.0,
                            frame_index=0)
    joints_d = distance_measure(PinchConfig(distance="joints"))([hand])
    assert joints_d[0] == pytest.approx(pinch_distance(hand.joints))
    learned = distance_measure(PinchConfig())([hand, hand])
    assert learned[0] == pytest.approx(PinchHead().distance(hand.joints, False))
    assert distance_measure(PinchConfig())([]).shape == (0,)


def test_learned_distance_on_real_pipeline_output(tmp_path):
    """A 2 s clip rendered here (seed unused by training and tuning): an open right hand
    that closes into a pinch, palm towards the camera. Through MediaPipe, the ONNX regressor
    and smoothing, the shipped head reads the open hand as open and engages on the pinch."""
    import cv2

    cfg = SampleConfig(out_dir=tmp_path, seed=4242, width=640, height=360, duration_s=2.0,
                       name="clip", gt_vertices=False)
    scene = Scene(0.0, 2.0, "plain_wall", (HandPlan(
        ["open", "pinch"], [(0.0, 10.0), (2.0, 25.0)], (280, 360), (0.38, 0.45)), None),
        Lighting())
    build_sample(cfg, [scene])
    with np.load(cfg.gt_path) as z:
        K, kp = z["K"], z["keypoints"][:, 0].astype(np.float64)
    truth = pinch_distance(kp)
    camera = CameraConfig(intrinsics=CameraIntrinsics.from_matrix(K, 640, 360))
    cap = cv2.VideoCapture(str(cfg.video_path))
    learned, joints = {}, {}
    with HandMesher(HandMesherConfig(camera=camera)) as mesher:
        for f in range(cfg.num_frames):
            ok, image = cap.read()
            assert ok
            hands = mesher.process(image, timestamp=f / cfg.fps)
            if len(hands) == 1:
                learned[f] = hands[0].pinch
                joints[f] = pinch_distance(hands[0].joints)
    cap.release()
    assert len(learned) >= 50
    open_frames = [f for f in learned if truth[f] > 0.08]
    pinch_frames = [f for f in learned if truth[f] < 0.01 and f >= 45]
    assert len(open_frames) >= 8 and len(pinch_frames) >= 8
    assert all(learned[f].distance_m > 0.05 for f in open_frames)
    assert np.median([learned[f].distance_m for f in pinch_frames]) < 0.015
    assert all(learned[f].engaged for f in pinch_frames)
    assert not any(learned[f].engaged for f in open_frames)
    err = np.mean([abs(learned[f].distance_m - truth[f]) for f in learned])
    err_joints = np.mean([abs(joints[f] - truth[f]) for f in learned])
    assert err < err_joints  # on this clip the head is closer to the truth than the joints


def test_random_scripts_for_training_clips():
    """The training and tuning clips' scripts: reproducible from the seed, covering the
    clip without gaps, with pinches, different per seed; and a random script is never
    written over the evaluation clip."""
    from scripts.make_pinch_clip import (
        DURATION_S,
        PINCH_DIR,
        build_pinch_clip,
        random_pinch_scenes,
    )

    a = random_pinch_scenes(1001)
    assert a == random_pinch_scenes(1001) and a != random_pinch_scenes(1002)
    assert a[0].start_s == 0.0 and a[-1].end_s == pytest.approx(DURATION_S)
    assert all(x.end_s == pytest.approx(y.start_s) for x, y in zip(a, a[1:]))
    plans = [p for s in a for p in s.plans if p is not None]
    assert sum(p.gestures.count("pinch") + p.gestures.count("ok") for p in plans) >= 3
    with pytest.raises(ValueError, match="overwrite the evaluation clip"):
        build_pinch_clip(PINCH_DIR, 5, "random")
    with pytest.raises(ValueError, match="script"):
        build_pinch_clip(PINCH_DIR, 5, "other")
