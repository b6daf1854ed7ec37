"""scripts.render_gap: the same hands photographed and rendered, through MediaPipe."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.common import HGCNN
from models.hand_model import HandModel
from models.poses import named_pose
from scripts.make_detector_pairs import PairsConfig, Renderer
from scripts.render_gap import MIRROR, fit_hand, main, render_fit


def test_fit_hand_finds_the_side_and_renders_in_the_given_camera():
    """A left hand (a right hand's keypoints mirrored) is fitted as mirrored, and its render
    puts the hand where the camera sees the keypoints."""
    model = HandModel.open_hand()
    pose = named_pose(model.data.joint_names, "relaxed")
    pose[0, 0] = [0.2, -0.3, 0.1]
    right = model.forward(pose).keypoints[0] + [0.02, -0.01, 0.45]
    left = right * MIRROR
    fit, mirror = fit_hand(model, left)
    assert mirror and fit.residuals.mean() < 0.004
    K = np.array([[400.0, 0, 127.5], [0, 400.0, 127.5], [0, 0, 1]])
    img, kps = render_fit(Renderer(model, PairsConfig()), fit, mirror, K, 256, 256,
                          np.random.default_rng(1))
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    assert np.abs(kps - left).mean() < 0.005, "the rendered hand is the fitted left hand"
    uv = (kps @ K.T)[:, :2] / kps[:, 2:]
    inside = img[np.clip(uv[:, 1].astype(int), 0, 255), np.clip(uv[:, 0].astype(int), 0, 255)]
    background = img[[2, 2, 253, 253], [2, 253, 2, 253]]
    assert inside.std() < 3 * background.std() + 40  # skin, not the room behind it


@pytest.mark.skipif(not (HGCNN / "annotations.json").is_file(),
                    reason="../shared/data/realhands/hgcnn_realworld absent")
def test_render_gap_on_a_few_tuning_photos(capsys):
    assert main(["--max-images", "3"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["hands"] == 3 and out["photo_found"] >= 2
    assert out["fit_residual_mm"] < 10
    if out["both_found"]:
        assert 0 < out["photo_pa_mpjpe_mm"] < 40 and 0 < out["render_pa_mpjpe_mm"] < 40
        assert out["render_ratio_vs_photo"] > 0
