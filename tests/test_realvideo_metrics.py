"""The temporal metrics of ``benchmarks.temporal`` on arrays with known answers, and the
real-video benchmark's per-clip measurement on the first frames of the built-in sample."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import temporal


def _hand_px(center, size=100.0):
    """21 pixel keypoints spread over a ``size`` box around ``center``."""
    rng = np.random.default_rng(0)
    return np.asarray(center, float) + rng.uniform(-size / 2, size / 2, (21, 2))


def test_constant_velocity_has_zero_acceleration():
    t = np.arange(30)
    points = np.zeros((30, 20, 3)) + t[:, None, None] * np.array([1.0, -2.0, 0.5])
    assert temporal.mean_accel([(t, points)]) == pytest.approx(0.0, abs=1e-12)


def test_constant_acceleration_is_measured_within_runs_only():
    # x = t^2 / 2 has second difference 1 everywhere; a 10-frame gap with a jump is skipped.
    frames = np.r_[np.arange(0, 8), np.arange(18, 30)]
    x = 0.5 * frames.astype(float) ** 2
    x[8:] += 1000.0  # the jump across the gap must not count
    points = np.zeros((len(frames), 1, 3))
    points[:, 0, 0] = x
    norms = temporal.accel_norms(frames, points)
    assert len(norms) == (8 - 2) + (12 - 2)
    assert np.allclose(norms, 1.0)
    assert temporal.mean_accel([(frames, points)]) == pytest.approx(1.0)


def test_runs_shorter_than_three_frames_give_nan():
    assert np.isnan(temporal.mean_accel([(np.array([0, 1, 5, 6]), np.zeros((4, 2, 3)))]))


def test_wrist_relative_drops_the_wrist():
    joints = np.arange(2 * 21 * 3, dtype=float).reshape(2, 21, 3)
    rel = temporal.wrist_relative(joints)
    assert rel.shape == (2, 20, 3)
    assert np.allclose(rel[:, 0], joints[:, 1] - joints[:, 0])


def test_side_flips_counts_changes():
    assert temporal.side_flips(["right"] * 5) == 0
    assert temporal.side_flips(["right", "left", "left", "right", "right", "left"]) == 3
    assert temporal.side_flips([]) == 0


def test_identity_switches_when_a_visible_hand_changes_id():
    a, b = _hand_px((100, 100)), _hand_px((500, 100))
    frames = [[(0, a), (1, b)], [(0, a + 2), (1, b - 2)],  # steady
              [(0, a + 4), (7, b - 4)],                      # hand b: 1 -> 7 while visible
              [(0, a + 6)],                                  # hand b leaves
              [(0, a + 8), (9, b)]]                          # b returns with a new id: no switch
    assert temporal.identity_switches(frames) == 1


def test_link_tracks_follows_hands_and_starts_new_ones():
    a, b = _hand_px((100, 100)), _hand_px((500, 100))
    ids = temporal.link_tracks([[a], [b + 1, a + 1], [a + 2, b + 2], [], [a]])
    assert ids[0] == [0]
    assert ids[1] == [1, 0]          # a keeps its id, b is new
    assert ids[2] == [0, 1]          # order in the frame does not matter
    assert ids[3] == []
    assert ids[4] == [2]             # after a gap a hand starts a new track


@pytest.mark.parametrize("shift", [0, 2, -3])
def test_lag_finds_a_known_shift(shift):
    rng = np.random.default_rng(1)
    n = 200
    # A smooth random motion of 20 joints, plus a constant offset per joint (skeletons differ).
    base = np.cumsum(np.cumsum(rng.normal(0, 0.2, (n + 20, 20, 3)), axis=0), axis=0)
    base = np.apply_along_axis(lambda v: np.convolve(v, np.ones(7) / 7, "same"), 0, base)
    ref = base[10:10 + n]
    ours = base[10 - shift:10 - shift + n] + rng.normal(0, 5, (1, 20, 3))
    assert temporal.lag_frames(ours, ref) == pytest.approx(shift, abs=0.1)


def test_lag_of_a_too_short_run_is_nan():
    assert np.isnan(temporal.lag_frames(np.zeros((10, 20, 3)), np.zeros((10, 20, 3))))


def test_per_clip_measurement_on_the_sample_clip():
    """The benchmark's per-clip function, real pipeline and real MediaPipe, 60 frames."""
    from benchmarks.realvideo import measure_clip
    from realtime.io.sample import SAMPLE_VIDEO

    result = measure_clip(SAMPLE_VIDEO, max_frames=60)
    m = result.metrics
    assert result.frames == 60
    assert m["frames_with_hand_mediapipe"] > 0 and m["frames_with_hand_ours"] > 0
    for key in ("accel_ours_mm", "accel_mediapipe_mm", "accel_ratio_vs_mediapipe",
                "camera_accel_ours_mm", "image_accel_ratio_vs_mediapipe",
                "hand_rate_ratio_vs_mediapipe", "lag_frames"):
        assert np.isfinite(m[key]), key
    assert m["accel_ours_mm"] > 0 and m["accel_mediapipe_mm"] > 0
    assert abs(m["lag_frames"]) <= temporal.LAG_SEARCH_FRAMES
    for key in ("side_flips", "mediapipe_side_flips", "identity_switches"):
        assert isinstance(m[key], int) and m[key] >= 0, key
    assert len(result.trace["t"]) == m["lag_run_frames"] > 0


def test_aligned_r2_is_one_for_the_same_motion_and_low_for_unrelated_noise():
    rng = np.random.default_rng(2)
    t = np.arange(120)
    ref = np.sin(2 * np.pi * t / 40)[:, None, None] * rng.normal(0, 1, (1, 20, 3))
    ours = np.roll(ref, 2, axis=0) + 3.0  # two frames behind, offset per point
    assert temporal.aligned_r2(ours[5:], ref[5:], 2.0) == pytest.approx(1.0)
    noise = rng.normal(0, 1, ref.shape)
    assert temporal.aligned_r2(noise, ref, 0.0) < 0.0
