"""The One-Euro smoother: filter behaviour, track handling, NaN safety, pose mode."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from models.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from models.hand_model import HandModel, mirror_x
from realtime.mesh.smoothing import (
    HandSmoother,
    SmootherConfig,
    one_euro_step,
)
from realtime.types import HandMesh

FPS = 30.0
DT = 1.0 / FPS
EXACT = 1e-12       # kernel vs pure-Python reference, same formula


def reference_one_euro(xs, dts, min_cutoff, beta, d_cutoff):
    """Straightforward pure-Python One-Euro over a sequence of (N,) arrays, groups of 3."""
    def alpha(fc, dt):
        tau = 1.0 / (2.0 * math.pi * fc)
        return 1.0 / (1.0 + tau / dt)

    x_hat, dx_hat, outs = None, None, []
    for x, dt in zip(xs, dts):
        x = [float(v) for v in x]
        if x_hat is None:
            x_hat, dx_hat = list(x), [0.0] * len(x)
            outs.append(list(x))
            continue
        for g0 in range(0, len(x), 3):
            idx = range(g0, min(g0 + 3, len(x)))
            for i in idx:
                dx = (x[i] - x_hat[i]) / dt
                dx_hat[i] = dx_hat[i] + alpha(d_cutoff, dt) * (dx - dx_hat[i])
            speed = math.sqrt(sum(dx_hat[i] ** 2 for i in idx))
            a = alpha(min_cutoff + beta * speed, dt)
            for i in idx:
                x_hat[i] = x_hat[i] + a * (x[i] - x_hat[i])
        outs.append(list(x_hat))
    return np.array(outs)


def run_kernel(xs, dt=DT, min_cutoff=1.0, beta=0.0, d_cutoff=1.0):
    xs = np.asarray(xs, dtype=np.float64)
    state = np.zeros((3, xs.shape[1]))
    outs = np.empty_like(xs)
    for t, x in enumerate(xs):
        one_euro_step(x, state, dt, min_cutoff, beta, d_cutoff, outs[t])
    return outs


def test_kernel_matches_pure_python_reference():
    rng = np.random.default_rng(0)
    xs = np.cumsum(rng.normal(0, 0.01, size=(60, 11)), axis=0)  # 11: a partial last group
    dts = rng.uniform(0.02, 0.05, size=60)
    state = np.zeros((3, 11))
    got = np.empty_like(xs)
    for t in range(60):
        one_euro_step(xs[t], state, dts[t], 1.3, 4.0, 1.0, got[t])
    want = reference_one_euro(xs, dts, 1.3, 4.0, 1.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=EXACT)


def test_constant_input_stays_constant():
    xs = np.tile([0.1, -0.2, 0.5, 0.3, 0.3, 0.3], (50, 1))
    np.testing.assert_allclose(run_kernel(xs, beta=5.0), xs, rtol=0, atol=EXACT)


def test_step_converges():
    xs = np.zeros((120, 3))
    xs[10:] = [0.1, 0.0, 0.0]
    out = run_kernel(xs, beta=5.0)
    assert 0.0 < out[11, 0] < 0.1          # smoothed, not jumped
    assert np.all(np.diff(out[10:, 0]) >= -EXACT)  # monotone approach, no overshoot
    assert abs(out[-1, 0] - 0.1) < 1e-4


def sine_gain(freq_hz, min_cutoff=1.0):
    t = np.arange(300) * DT
    xs = np.zeros((300, 3))
    xs[:, 0] = 0.001 * np.sin(2 * np.pi * freq_hz * t)  # 1 mm: beta barely matters
    out = run_kernel(xs, min_cutoff=min_cutoff, beta=0.0)
    return out[100:, 0].std() / xs[100:, 0].std()


def test_sinusoid_attenuated_at_high_frequency_passed_at_low():
    assert sine_gain(0.1) > 0.95
    assert sine_gain(10.0) < 0.25


def test_ramp_lag_is_bounded():
    # A first-order low-pass lags a ramp by tau = 1/(2 pi fc) at steady state; beta raises
    # fc with speed, so the lag must be below the beta=0 bound.
    speed = 0.5  # m/s
    t = np.arange(120) * DT
    xs = np.zeros((120, 3))
    xs[:, 0] = speed * t
    for beta, bound_s in ((0.0, 1.0 / (2 * np.pi * 1.0) + DT), (10.0, 1.5 * DT)):
        out = run_kernel(xs, min_cutoff=1.0, beta=beta)
        lag_s = (xs[-1, 0] - out[-1, 0]) / speed
        assert 0.0 <= lag_s <= bound_s


def test_nan_does_not_poison_the_state():
    rng = np.random.default_rng(1)
    xs = 0.1 + rng.normal(0, 0.002, size=(40, 6))
    bad = xs.copy()
    bad[20, 0] = np.nan     # one group skipped in frame 20
    bad[21, 3:] = np.inf
    state = np.zeros((3, 6))
    out = np.empty_like(xs)
    for t in range(40):
        one_euro_step(bad[t], state, DT, 1.0, 2.0, 1.0, out[t])
        assert np.all(np.isfinite(state))
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[20, :3], out[19, :3])  # previous estimate held
    np.testing.assert_array_equal(out[21, 3:], out[20, 3:])
    # A NaN before any finite sample leaves the group uninitialised.
    state = np.zeros((3, 3))
    first = np.empty(3)
    one_euro_step(np.array([np.nan, 0.0, 0.0]), state, DT, 1.0, 0.0, 1.0, first)
    assert np.isnan(first[0]) and np.all(state[2] == 0)
    one_euro_step(np.array([1.0, 2.0, 3.0]), state, DT, 1.0, 0.0, 1.0, first)
    np.testing.assert_array_equal(first, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("field,value", [
    ("mode", "joints"), ("min_cutoff_hz", 0.0), ("beta", -1.0), ("d_cutoff_hz", float("nan")),
    ("rotation_beta", -0.1), ("reset_after_s", 0.0), ("nominal_fps", -30.0),
])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        SmootherConfig(**{field: value})


def test_pose_mode_needs_a_model():
    with pytest.raises(ValueError, match="HandModel"):
        HandSmoother(SmootherConfig(mode="pose"))


# --------------------------------------------------------------------------- HandSmoother


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def make_hand(model, pose=None, shape=None, offset=(0.0, 0.0, 0.5), *, track_id=0,
              handedness="right", t=0.0, frame=0) -> HandMesh:
    pose = model.zero_pose(1)[0] if pose is None else pose
    shape = np.zeros(model.num_shape) if shape is None else shape
    out = model.forward(pose[None], shape[None])
    verts, joints = out.vertices[0], out.keypoints[0]
    if handedness == "left":
        verts, joints = mirror_x(verts), mirror_x(joints)
    off = np.asarray(offset)
    return HandMesh(verts + off, joints + off, np.zeros(model.num_vertices), pose.copy(),
                    shape.copy(), np.zeros((21, 2)), handedness, 1.0, track_id, t, frame)


def moved(hand: HandMesh, delta, t: float) -> HandMesh:
    return replace(hand, vertices=hand.vertices + delta, joints=hand.joints + delta,
                   timestamp=t)


def test_first_frame_passes_through_and_outputs_are_new_objects(model):
    sm = HandSmoother()
    sm.warmup()
    hand = make_hand(model)
    (out,) = sm.smooth([hand])
    assert out is not hand and out.vertices is not hand.vertices
    np.testing.assert_allclose(out.vertices, hand.vertices, atol=EXACT)
    np.testing.assert_allclose(out.pose, hand.pose, atol=1e-9)
    assert out.track_id == hand.track_id and out.timestamp == hand.timestamp


def lagging(sm, hand, delta, t) -> bool:
    """Whether a jump of ``delta`` at time ``t`` comes out smoothed (not passed through)."""
    (out,) = sm.smooth([moved(hand, delta, t)])
    return not np.allclose(out.joints, hand.joints + delta, atol=1e-9)


def test_state_resets_on_track_loss(model):
    sm = HandSmoother(SmootherConfig(reset_after_s=0.5))
    hand = make_hand(model)
    sm.smooth([hand])
    assert lagging(sm, hand, [0.05, 0, 0], 0.2)         # within the gap: filtered
    assert not lagging(sm, hand, [0.10, 0, 0], 0.2 + 0.6)  # unseen > 0.5 s: fresh start


def test_stale_tracks_are_forgotten(model):
    sm = HandSmoother(SmootherConfig(reset_after_s=0.5))
    sm.smooth([make_hand(model, track_id=3)])
    sm.smooth([make_hand(model, track_id=4, t=1.0)])
    assert sm.track_ids == [4]


def test_state_resets_on_handedness_change(model):
    sm = HandSmoother()
    hand = make_hand(model)
    sm.smooth([hand])
    left = make_hand(model, handedness="left", t=DT)
    (out,) = sm.smooth([left])
    np.testing.assert_allclose(out.vertices, left.vertices, atol=EXACT)


def test_explicit_reset(model):
    sm = HandSmoother()
    hand = make_hand(model)
    sm.smooth([hand])
    sm.reset(hand.track_id)
    assert not lagging(sm, hand, [0.05, 0, 0], DT)
    assert lagging(sm, hand, [0.10, 0, 0], 2 * DT)
    sm.reset_all()
    assert sm.track_ids == []
    assert not lagging(sm, hand, [0.2, 0, 0], 3 * DT)


def test_two_tracks_are_independent(model):
    a = make_hand(model, track_id=0)
    b = make_hand(model, track_id=1, handedness="left", offset=(0.2, 0, 0.5))
    together, alone = HandSmoother(), HandSmoother()
    rng = np.random.default_rng(3)
    for f in range(20):
        t = f * DT
        da, db = rng.normal(0, 0.01, 3), rng.normal(0, 0.01, 3)
        outs = together.smooth([moved(b, db, t), moved(a, da, t)])  # order must not matter
        (ref,) = alone.smooth([moved(a, da, t)])
        np.testing.assert_array_equal(outs[1].vertices, ref.vertices)
        np.testing.assert_array_equal(outs[1].pose, ref.pose)
    # b missing for a few frames does not disturb a, nor reset b within reset_after_s
    (out,) = together.smooth([moved(a, 0, 20 * DT)])
    (ref,) = alone.smooth([moved(a, 0, 20 * DT)])
    np.testing.assert_array_equal(out.joints, ref.joints)
    assert together.track_ids == [0, 1]


def test_nan_hand_does_not_poison_the_track(model):
    sm = HandSmoother()
    hand = make_hand(model)
    sm.smooth([hand])
    bad_v = hand.vertices.copy()
    bad_v[7, 1] = np.nan
    bad_pose = hand.pose.copy()
    bad_pose[0, 0] = np.nan
    (out,) = sm.smooth([replace(hand, vertices=bad_v, pose=bad_pose, timestamp=DT)])
    assert np.all(np.isfinite(out.vertices)) and np.all(np.isfinite(out.pose))
    (out,) = sm.smooth([replace(hand, timestamp=2 * DT)])
    np.testing.assert_allclose(out.vertices, hand.vertices, atol=EXACT)


def test_zero_or_negative_dt_uses_the_nominal_period(model):
    sm, ref = HandSmoother(), HandSmoother()
    hand = make_hand(model, t=1.0)
    sm.smooth([hand])
    ref.smooth([hand])
    (out,) = sm.smooth([moved(hand, [0.01, 0, 0], 1.0)])          # dt = 0
    (want,) = ref.smooth([moved(hand, [0.01, 0, 0], 1.0 + DT)])   # nominal step
    np.testing.assert_allclose(out.joints, want.joints, atol=EXACT)


def test_root_rotation_stays_a_rotation_and_is_smoothed(model):
    sm = HandSmoother()
    rng = np.random.default_rng(4)
    base = np.array([0.3, -1.2, 2.0])
    outs = []
    for f in range(30):
        pose = model.zero_pose(1)[0]
        pose[0] = base + rng.normal(0, 0.03, 3)
        (out,) = sm.smooth([replace(make_hand(model), pose=pose, timestamp=f * DT)])
        outs.append(out.pose[0])
    rots = axis_angle_to_matrix(np.array(outs))
    err = np.linalg.norm(matrix_to_axis_angle(rots @ axis_angle_to_matrix(base).T), axis=1)
    assert err[10:].mean() < 0.03   # less than the raw noise (~0.05 rad)


@pytest.mark.parametrize("handedness", ["right", "left"])
def test_pose_mode_matches_forward_of_the_smoothed_pose(model, handedness):
    sm = HandSmoother(SmootherConfig(mode="pose"), model=model)
    sm.warmup()
    rng = np.random.default_rng(5)
    for f in range(10):
        pose = model.zero_pose(1)[0] + rng.normal(0, 0.05, (model.num_joints, 3))
        shape = rng.normal(0, 0.3, model.num_shape)
        hand = make_hand(model, pose, shape, offset=(0.01 * f, 0, 0.5), t=f * DT,
                         handedness=handedness)
        (out,) = sm.smooth([hand])
    fwd = model.forward(out.pose[None], out.shape[None])
    verts, kps = fwd.vertices[0], fwd.keypoints[0]
    if handedness == "left":
        verts, kps = mirror_x(verts), mirror_x(kps)
    offset = out.joints[0] - kps[0]
    np.testing.assert_allclose(out.vertices, verts + offset, atol=1e-9)
    np.testing.assert_allclose(out.joints, kps + offset, atol=1e-9)
    assert not np.allclose(out.pose, hand.pose)          # it was smoothed
    assert np.linalg.norm(out.joints[0] - hand.joints[0]) < 0.02  # and placed at the wrist
