"""The demo with a camera calibration and a hand profile: the real pipeline on the sample
clip (MediaPipe, the ONNX regressor), headless."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibration.camera import Camera
from calibration.camera_file import save_calibration
from calibration.intrinsics import CameraIntrinsics
from calibration.profile import load_profile, save_profile
from realtime.cli.demo import main
from realtime.io.sample import SAMPLE_GT, SAMPLE_VIDEO

FRAMES = "40"


def _joints(out) -> list[np.ndarray]:
    lines = (out / "hands.jsonl").read_text().splitlines()
    return [np.asarray(json.loads(line)["joints"]) for line in lines]


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    """The sample's true camera, saved at twice the resolution: rescaled on load."""
    tmp = tmp_path_factory.mktemp("calib")
    with np.load(SAMPLE_GT) as gt:
        K, w, h = gt["K"].astype(float), int(gt["width"]), int(gt["height"])  # noqa: N806
    big = K.copy()
    big[:2] *= 2
    calib = Camera(CameraIntrinsics.from_matrix(big, 2 * w, 2 * h),
                              np.array([0.02, 0.0, 0.0, 0.0, 0.0]), "sample x2")
    calib_path = save_calibration(tmp / "cam.yaml", calib)
    out = tmp / "run"
    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(out), "--headless",
                 "--no-video", "--max-frames", FRAMES, "--calib", str(calib_path),
                 "--calibrate-hand", str(tmp / "me.json")])
    return tmp, out, K, code


def test_calibration_file_is_rescaled_and_used(calibrated_run):
    _, out, K, code = calibrated_run  # noqa: N806
    assert code == 0
    intr = json.loads((out / "stats.json").read_text())["intrinsics"]
    assert intr["estimated"] is False
    assert intr["fx"] == pytest.approx(K[0, 0]) and intr["cx"] == pytest.approx(K[0, 2])


def test_hand_profile_is_recorded_then_changes_depth(calibrated_run):
    tmp, out, _, _ = calibrated_run
    profile = load_profile(tmp / "me.json")
    assert profile.samples > 0 and 120 < profile.hand_length_mm < 260
    smaller = save_profile(tmp / "small.json", profile.with_hand_length(
        0.8 * profile.hand_length_mm))
    out2 = tmp / "run2"
    assert main(["--source", str(SAMPLE_VIDEO), "--output", str(out2), "--headless",
                 "--no-video", "--max-frames", "10", "--hand-profile", str(smaller)]) == 0
    base, scaled = _joints(out)[:10], _joints(out2)
    ratios = [s[:, 2].mean() / b[:, 2].mean() for b, s in zip(base, scaled)]
    assert np.median(ratios) == pytest.approx(0.8, abs=0.05)


def test_missing_or_bad_calibration_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"image_width": 640, "image_height": 480,
                               "distortion_coefficients": [0, 0, 0, 0, 0]}))
    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(tmp_path / "o"),
                 "--headless", "--max-frames", "1", "--calib", str(bad)])
    assert code == 2
    assert "camera_matrix" in capsys.readouterr().err


def test_undistortion_in_the_loop_places_hands_better():
    """The fitting baseline on a synthetic detection seen through a strongly distorting
    lens near the image corner: the estimate stage undistorts the landmarks with the
    frame's camera, which gives the right position."""
    from calibration.simulation import webcam_calibration
    from models.hand_model import HandModel
    from models.poses import named_pose
    from realtime.engine.stages import EstimateStage
    from realtime.mesh.ik_fit import FitConfig, FitEstimator
    from realtime.types import Detection, Frame, Packet

    model = HandModel.open_hand()
    kps = model.forward(named_pose(model.data.joint_names, "spread")).keypoints[0]
    rel = kps - kps.mean(0)
    calib = webcam_calibration(dist=(-0.3, 0.1, 0.0, 0.0, 0.0))
    x = rel + np.array([0.17, 0.11, 0.5])  # towards the corner, where distortion is large
    uv = calib.distort_points(x[:, :2] / x[:, 2:] * np.diag(calib.K)[:2] + calib.K[:2, 2])
    det = Detection(uv, np.zeros(21), rel, "right", 0.95, 0, 0.0)
    estimator = FitEstimator(model, FitConfig(follow_2d=False))
    plain = estimator.estimate([det], calib, [0])[0]  # landmarks taken as pinhole pixels
    image = np.zeros((calib.size[1], calib.size[0], 3), np.uint8)
    packet = Packet(Frame(image, 0, 0.0, camera=calib), 0.0, detections=(det,))
    fixed = EstimateStage(estimator)(packet).hands[0]  # the frame's camera undistorts them
    err_plain = np.linalg.norm(plain.joints.mean(0) - x.mean(0))
    err_fixed = np.linalg.norm(fixed.joints.mean(0) - x.mean(0))
    assert err_fixed < 0.01 and err_fixed < 0.3 * err_plain
