"""Alternate landmark refresh: the landmark model on one of two tracked hands per frame, in
turn, and sparse optical flow carrying the other (``realtime.detect.flow_tracking``), with
the real models on the real 60 FPS sample clip against its exact ground truth."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from benchmarks.common import CLIP_MATCH_PX, nearest_detection, read_frames
from realtime.cli.demo import parse_args
from realtime.detect import flow_tracking as ft
from realtime.detect.detector import DetectorConfig, open_detector
from realtime.detect.scheduled import ScheduledDetector, ScheduledDetectorConfig
from realtime.io.sample import SAMPLE60_GT, SAMPLE60_VIDEO
from realtime.types import Frame

FRAMES = range(100, 160)  # sample60: both hands in view, no scene cut (that is at 240)
# A flow-tracked hand's landmarks vs the every-frame detector's on the same frame, median
# over FRAMES: measured 1.07 px (lite; that includes the model's own frame-to-frame jumps).
FLOW_VS_MODEL_PX = 1.5
# ... and their mean error vs the exact ground truth beyond the every-frame detector's on the
# same hand-frames: measured +0.9 px on FRAMES (the lite model's own jumps of up to 30 px
# there carry over to the next, flowed frame), +0.1-0.2 px over all of sample60
GT_EXTRA_PX = 1.5
SHIFT_PX = 0.1  # flow on a known shift of a real image
MAX_FLOW_FAILURES = 0.1  # share of frames where flow gives up (measured 13 of 468 on sample60)


@pytest.fixture(scope="module")
def sample60():
    gt = np.load(SAMPLE60_GT)
    frames = read_frames(SAMPLE60_VIDEO, FRAMES.stop)
    return frames, gt["keypoints_2d"], gt["present"]


@pytest.fixture(scope="module")
def both_modes(sample60):
    """Every frame of FRAMES through both refresh modes (lite landmarks): detections."""
    frames, _, _ = sample60
    dets = {mode: ScheduledDetector(ScheduledDetectorConfig(landmarks="lite",
                                                            landmark_refresh=mode))
            for mode in ("every", "alternate")}
    out = {mode: [] for mode in dets}
    for i in FRAMES:
        frame = Frame(frames[i], i, i / 60)
        for mode, det in dets.items():
            out[mode].append(det.process(frame))
    yield out, dets
    for det in dets.values():
        det.close()


def _slot(det, gt2d: np.ndarray, i: int) -> int:
    """Which ground-truth hand of frame ``i`` a detection is (the nearest)."""
    return int(np.argmin([np.linalg.norm(det.landmarks_px - gt2d[i, h], axis=1).mean()
                          for h in (0, 1)]))


def test_both_hands_tracked_and_the_model_alternates(sample60, both_modes):
    _, gt2d, _ = sample60
    out, dets = both_modes
    alt = out["alternate"]
    det = dets["alternate"]
    assert all(len(d) == 2 for d in alt), [len(d) for d in alt]
    assert all(sorted(_slot(d, gt2d, i) for d in dets_) == [0, 1]
               for i, dets_ in zip(FRAMES, alt)), "both hands, each found once"
    # the first frame finds both hands by palm detection; the second measures them again
    # from the crops their landmarks predict (a palm crop's landmarks are rougher)
    assert not any(d.flow_tracked for dets_ in alt[:2] for d in dets_)
    flowed = [[_slot(d, gt2d, i) for d in dets_ if d.flow_tracked]
              for i, dets_ in zip(FRAMES[2:], alt[2:])]
    # each frame: the model on one hand, flow on the other; where the flow could not follow
    # (counted in flow_failures) the model ran on both
    assert all(len(f) <= 1 for f in flowed)
    assert sum(len(f) == 0 for f in flowed) == det.flow_failures
    assert det.flow_failures <= MAX_FLOW_FAILURES * len(FRAMES), det.flow_failures
    # in turn: a hand that flow carried gets the model on the next frame
    for a, b in itertools.pairwise(flowed):
        assert not (a and b and a == b), flowed
    assert det.landmark_runs == 2 * 2 + (len(FRAMES) - 2) + det.flow_failures
    assert det.flow_runs == len(FRAMES) - 2
    assert det.palm_runs == 1


def test_flow_tracked_landmarks_stay_near_the_model_and_the_truth(sample60, both_modes):
    """On the hand-frames flow carried: near the every-frame detector's landmarks of the
    same frame (median), and as near the exact ground truth as those (mean)."""
    _, gt2d, _ = sample60
    out, _ = both_modes
    vs_model, err, ref_err = [], [], []
    for k, i in enumerate(FRAMES):
        for d in out["alternate"][k]:
            if not d.flow_tracked:
                continue
            h = _slot(d, gt2d, i)
            ref = nearest_detection(out["every"][k], gt2d[i, h], CLIP_MATCH_PX)
            vs_model.append(np.linalg.norm(d.landmarks_px - ref.landmarks_px, axis=1).mean())
            err.append(np.linalg.norm(d.landmarks_px - gt2d[i, h], axis=1).mean())
            ref_err.append(np.linalg.norm(ref.landmarks_px - gt2d[i, h], axis=1).mean())
    assert len(err) >= (1 - MAX_FLOW_FAILURES) * (len(FRAMES) - 2)
    assert np.median(vs_model) < FLOW_VS_MODEL_PX, f"{np.median(vs_model):.2f} px"
    assert np.mean(err) < np.mean(ref_err) + GT_EXTRA_PX, f"{np.mean(err):.2f} vs " \
        f"{np.mean(ref_err):.2f} px"


def test_flow_tracked_hand_keeps_its_last_model_run(sample60, both_modes):
    """World landmarks, depth, side and score come from the hand's previous (model) frame;
    its 2D landmarks and timestamp are the new frame's."""
    _, gt2d, _ = sample60
    out, _ = both_modes
    alt = out["alternate"]
    for k in range(1, len(alt)):
        i = FRAMES[k]
        for d in alt[k]:
            if not d.flow_tracked:
                continue
            prev = next(p for p in alt[k - 1] if _slot(p, gt2d, i - 1) == _slot(d, gt2d, i))
            assert prev.handedness == d.handedness
            assert not prev.flow_tracked
            np.testing.assert_array_equal(d.world, prev.world)
            np.testing.assert_array_equal(d.landmarks_z, prev.landmarks_z)
            assert d.score == prev.score
            assert d.frame_index == prev.frame_index + 1
            assert not np.array_equal(d.landmarks_px, prev.landmarks_px)


def test_every_frame_refresh_is_unchanged(both_modes):
    out, dets = both_modes
    assert not any(d.flow_tracked for dets_ in out["every"] for d in dets_)
    assert dets["every"].landmark_runs == 2 * len(FRAMES)
    assert dets["every"].flow_runs == 0
    assert ScheduledDetectorConfig().landmark_refresh == "every"
    assert DetectorConfig().landmark_refresh is None  # the demo picks by frame rate


def test_one_hand_keeps_the_usual_schedule(sample60):
    """With one hand in view (the other painted out) the model runs on it every frame."""
    frames, gt2d, _ = sample60
    lo, hi = gt2d[100, 1].min(0) - 60, gt2d[100, 1].max(0) + 60
    x0, y0 = np.maximum(lo.astype(int), 0)
    x1, y1 = hi.astype(int)
    det = ScheduledDetector(ScheduledDetectorConfig(landmarks="lite",
                                                    landmark_refresh="alternate"))
    for i in range(100, 115):
        image = frames[i].copy()
        image[y0:y1, x0:x1] = image[5:40, 300:340].reshape(-1, 3).mean(0).astype(np.uint8)
        dets = det.process(Frame(image, i, i / 60))
        assert len(dets) == 1 and not dets[0].flow_tracked
    assert det.flow_runs == 0


def test_failed_flow_falls_back_to_the_model(sample60):
    """A frame the flow cannot follow (noise): the hand due for flow gets the model instead,
    nothing is reported as flow-tracked."""
    frames, _, _ = sample60
    det = ScheduledDetector(ScheduledDetectorConfig(landmarks="lite",
                                                    landmark_refresh="alternate"))
    for i in range(100, 103):
        det.process(Frame(frames[i], i, i / 60))
    runs = det.landmark_runs
    noise = np.random.default_rng(0).integers(0, 256, frames[0].shape, dtype=np.uint8)
    dets = det.process(Frame(noise, 103, 103 / 60))
    assert det.flow_failures == 1
    assert det.landmark_runs == runs + 2, "both hands measured by the model"
    assert not any(d.flow_tracked for d in dets)


def test_track_points_follows_a_known_shift(sample60):
    frames, gt2d, _ = sample60
    image = frames[100]
    dx, dy = 3.0, -2.0
    shifted = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]),
                             image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    pts = gt2d[100, 0].astype(np.float64)
    config = ft.FlowConfig()
    h, w = image.shape[:2]
    crop = ft.cut_gray(image, ft.flow_window(pts, w, h, config))
    moved, good = ft.track_points(crop, shifted, pts, config)
    assert good >= config.min_good_points
    np.testing.assert_allclose(np.median(moved - pts, axis=0), [dx, dy], atol=SHIFT_PX)
    # the crop is only the hand's surroundings, clipped to the image
    x0, y0, x1, y1 = crop.window
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert (x1 - x0) * (y1 - y0) < w * h / 2


@pytest.mark.parametrize("kwargs, match", [
    ({"landmark_refresh": "sometimes"}, "landmark_refresh must be one of"),
    ({"landmark_refresh": "alternate", "kind": "mediapipe"}, "scheduled detector"),
    ({"landmark_refresh": "alternate", "static_image_mode": True}, "static_image_mode"),
])
def test_detector_config_rejects_bad_refresh(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DetectorConfig(**kwargs)


def test_scheduled_and_flow_configs_reject_bad_values():
    with pytest.raises(ValueError, match="landmark_refresh must be one of"):
        ScheduledDetectorConfig(landmark_refresh="half")
    with pytest.raises(ValueError, match="static_image_mode"):
        ScheduledDetectorConfig(landmark_refresh="alternate", static_image_mode=True)
    with pytest.raises(ValueError, match="win_px"):
        ft.FlowConfig(win_px=16)
    with pytest.raises(ValueError, match="min_good_points"):
        ft.FlowConfig(min_good_points=22)
    with pytest.raises(ValueError, match="max_fb_error_px"):
        ft.FlowConfig(max_fb_error_px=0.0)


def test_open_detector_and_demo_flag_pass_the_refresh_on():
    with open_detector(DetectorConfig(landmarks="lite", landmark_refresh="alternate")) as det:
        assert det.config.landmark_refresh == "alternate"
    with open_detector(DetectorConfig(landmarks="lite")) as det:
        assert det.config.landmark_refresh == "every"
    assert parse_args([]).app.mesher.detector.landmark_refresh is None
    options = parse_args(["--landmark-refresh", "alternate"])
    assert options.app.mesher.detector.landmark_refresh == "alternate"
