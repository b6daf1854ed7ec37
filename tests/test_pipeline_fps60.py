"""The demo's defaults for a fast live source: adaptive landmarks refreshed alternately (one
of two hands per frame, optical flow on the other), the overlay drawn at 30 FPS,
a regressor that does not spin; a real paced run of the 60 FPS sample records every frame it
publishes."""

from __future__ import annotations

import json

import pytest

from realtime.app import AppConfig, OutputConfig, build_pipeline, detector_for_rate
from realtime.detect.detector import DetectorConfig
from realtime.io.sample import SAMPLE60_VIDEO
from realtime.io.sources import SourceConfig


@pytest.mark.parametrize("config, fps, live, landmarks, budget, refresh", [
    (DetectorConfig(), 60.0, True, "adaptive", 500 / 60, "alternate"),
    (DetectorConfig(), 120.0, True, "adaptive", 500 / 120, "alternate"),
    (DetectorConfig(frame_budget_ms=12.0), 60.0, True, "adaptive", 12.0, "alternate"),
    (DetectorConfig(), 30.0, True, None, None, None),  # 30 FPS keeps full on every hand
    (DetectorConfig(), 60.0, False, None, None, None),  # a file processed every frame too
    (DetectorConfig(), 0.0, True, None, None, None),  # a camera with no rate
    # asked for: kept (the model, or the refresh); what was left open follows the rate
    (DetectorConfig(landmarks="full"), 60.0, True, "full", None, "alternate"),
    (DetectorConfig(landmark_refresh="every"), 60.0, True, "adaptive", 500 / 60, "every"),
    (DetectorConfig(model_complexity=0), 60.0, True, None, None, "alternate"),  # lite already
    (DetectorConfig(kind="mediapipe"), 60.0, True, None, None, None),
])
def test_detector_for_rate(config, fps, live, landmarks, budget, refresh):
    out = detector_for_rate(config, fps, live)
    assert out.landmarks == landmarks
    assert out.frame_budget_ms == (pytest.approx(budget) if budget else config.frame_budget_ms)
    assert out.landmark_refresh == refresh


def test_frame_budget_must_be_positive():
    with pytest.raises(ValueError, match="frame_budget_ms"):
        DetectorConfig(frame_budget_ms=0.0)


def test_regressor_session_does_not_spin():
    from models.hand_model import HandModel
    from realtime.mesh.regressor import RegressorRunner, RunnerConfig

    runner = RegressorRunner(HandModel.open_hand(), RunnerConfig())
    options = runner.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    spinning = RegressorRunner(HandModel.open_hand(), RunnerConfig(threads=2, spin=True))
    opts = spinning.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_sample60_paced_uses_the_fast_defaults_and_records_every_published_frame(tmp_path):
    config = AppConfig(source=SourceConfig(str(SAMPLE60_VIDEO)),
                       output=OutputConfig(folder=tmp_path), realtime=True, max_frames=45)
    with build_pipeline(config) as built:
        detector = built.mesher.detector
        assert detector.config.landmarks == "adaptive"
        assert detector.config.frame_budget_ms == pytest.approx(500 / 60)
        assert detector.config.landmark_refresh == "alternate"
        assert built.pipeline.render_stride == 2
        assert built.overlay.fps == pytest.approx(30.0)
        assert any("adaptive landmarks" in note for note in built.notes)
        assert any("alternate landmark refresh" in note for note in built.notes)
        stats = built.run()
        result = built.result
    published = result.frames_out
    assert published > 0 and stats["frames"] == published  # the hands file has them all
    lines = (tmp_path / "hands.jsonl").read_text().splitlines()
    assert len({json.loads(line)["frame_index"] for line in lines}) == stats["frames_with_hands"]
    drawn = built.overlay.frames_written
    skipped = stats["latency"]["skipped"].get("render", 0)
    overwritten = stats["latency"]["dropped"].get("dropped_before_render", 0)
    assert drawn + skipped + overwritten == published


def test_sample60_as_a_file_keeps_full_landmarks_and_every_overlay_frame(tmp_path):
    config = AppConfig(source=SourceConfig(str(SAMPLE60_VIDEO)),
                       output=OutputConfig(folder=tmp_path), realtime=False, max_frames=6)
    with build_pipeline(config) as built:
        assert built.mesher.detector.config.landmarks == "full"
        assert built.pipeline.render_stride == 1
        assert built.overlay.fps == pytest.approx(60.0)
        stats = built.run()
    assert stats["frames"] == 6 and built.overlay.frames_written == 6
    assert stats["latency"]["skipped"] == {}
