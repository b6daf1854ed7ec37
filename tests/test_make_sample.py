"""The sample's renderer at other frame rates: the 60 FPS two-hand clip is the same motion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.hand_model import HandModel
from realtime.io.sample import SAMPLE60_GT, SAMPLE60_VIDEO, SAMPLE_GT, is_sample
from scripts.make_sample import SampleConfig, build_tracks, default_scenes, main

FP_TOL = 1e-9  # the same float operations at the same times, in other array shapes


def test_tracks_are_functions_of_time_at_any_fps_and_start():
    """Every second 60 FPS frame from 7 s on is the 30 FPS clip's frame at the same time,
    even though the first shot (0-7 s) is not rendered: it still draws its random keys."""
    model = HandModel.open_hand()
    full = build_tracks(model, default_scenes(), SampleConfig(), np.random.default_rng(7))
    part = build_tracks(model, default_scenes(),
                        SampleConfig(fps=60, start_s=7.0, duration_s=8.0),
                        np.random.default_rng(7))
    for a, b in zip(full, part):
        assert len(b.present) == 480
        np.testing.assert_array_equal(a.present[210:], b.present[::2])
        np.testing.assert_allclose(a.pose[210:], b.pose[::2], atol=FP_TOL)
        np.testing.assert_allclose(a.trans[210:], b.trans[::2], atol=FP_TOL)


def test_the_committed_60_fps_clip_matches_its_ground_truth():
    with np.load(SAMPLE60_GT) as gt, np.load(SAMPLE_GT) as ref:
        assert float(gt["fps"]) == 60.0 and float(gt["start_s"]) == 7.0
        n = int(gt["num_frames"])
        assert n == 480 and "vertices" not in gt.files
        assert gt["present"].all()  # two hands in every frame
        assert gt["cut_frames"].tolist() == [240]  # the 11 s cut, 4 s after the start
        np.testing.assert_array_equal(gt["K"], ref["K"])
        # the same motion as the 30 FPS clip: every second frame's keypoints agree
        np.testing.assert_allclose(gt["keypoints"][::2], ref["keypoints"][210:], atol=1e-6)
    cap = cv2.VideoCapture(str(SAMPLE60_VIDEO))
    try:
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(60.0)
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
        assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
                ) == (640, 480)
    finally:
        cap.release()
    assert is_sample(SAMPLE60_VIDEO)  # it gets the sample's camera


@pytest.mark.parametrize("args, word", [(["--fps", "0"], "fps"), (["--fps", "500"], "fps"),
                                        (["--start", "-1"], "start_s"),
                                        (["--duration", "0.5"], "duration_s")])
def test_bad_options_are_one_usage_error(args, word, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--out-dir", str(tmp_path), *args])
    assert exc.value.code == 2
    assert word in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before rendering anything
