"""The first end-to-end run: real MediaPipe, real files, the real command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.cli.demo import main
from realtime.io.hands_file import read_hands
from realtime.io.outputs import partial_path
from realtime.io.sample import SAMPLE_GT, SAMPLE_VIDEO

REPO = Path(__file__).resolve().parent.parent
REPROJECTION_TOL_PX = 6.0  # fitted keypoints vs MediaPipe's 2D landmarks, mean per hand


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, str(REPO / "run_demo.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample_run")
    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(out), "--headless",
                 "--max-frames", "45"])
    assert code == 0
    return out, json.loads((out / "stats.json").read_text())


def test_sample_clip_finds_hands(sample_run):
    _, stats = sample_run
    assert stats["frames"] == 45
    assert stats["hand_rate"] >= 0.9
    assert stats["intrinsics"]["estimated"] is False  # the sample ships its camera
    assert stats["render_fallback"] is False  # a file run never puts the overlay in SCHED_IDLE


def test_stats_json_has_tail_percentiles_and_queue_waits(sample_run):
    _, stats = sample_run
    stages = stats["latency"]["stages"]
    for name in ("detect", "estimate", "smooth", "sinks", "record"):
        entry = stages[name]
        assert entry["count"] == 45  # a file run: lossless, every frame through every stage
        assert entry["p50_ms"] <= entry["p95_ms"] <= entry["p99_ms"] <= entry["max_ms"]
        assert 0.0 <= entry["wait_p50_ms"] <= entry["wait_p95_ms"] <= entry["wait_p99_ms"] \
            <= entry["wait_max_ms"]
    assert "wait_p99_ms" not in stages["end_to_end"]
    assert stages["end_to_end"]["p99_ms"] >= stages["end_to_end"]["p95_ms"]


def test_hands_file_has_one_record_per_detected_hand(sample_run):
    out, stats = sample_run
    records = list(read_hands(out / "hands.jsonl"))
    assert len(records) == stats["hands"]
    for rec in records:
        assert np.asarray(rec["joints"]).shape == (21, 3)
        assert np.asarray(rec["vertices"]).shape[1] == 3
        assert len(rec["vertex_std"]) == len(rec["vertices"])
        assert rec["handedness"] in ("left", "right")
        assert 0 <= rec["frame_index"] < 45
        xr = np.asarray(rec["xr_joints"])  # the OpenXR joints (docs/openxr.md)
        assert xr.shape == (26, 8) and np.isfinite(xr).all()
        np.testing.assert_allclose(xr[1, :3], np.asarray(rec["joints"])[0] * [1, -1, -1],
                                   atol=2e-5)
    per_frame = {}
    for rec in records:
        per_frame.setdefault(rec["frame_index"], set()).add(rec["track_id"])
    assert all(len(ids) <= 2 for ids in per_frame.values())


def test_fitted_keypoints_reproject_onto_mediapipe(sample_run):
    out, _ = sample_run
    errors = [rec["reprojection_error_px"] for rec in read_hands(out / "hands.jsonl")]
    assert np.mean(errors) < REPROJECTION_TOL_PX


def test_sample_hands_are_metric_and_in_front_of_camera(sample_run):
    out, _ = sample_run
    gt = np.load(SAMPLE_GT)
    depths = [np.asarray(r["joints"])[0, 2] for r in read_hands(out / "hands.jsonl")]
    true = gt["keypoints"][:45][gt["present"][:45]][:, 0, 2]
    assert 0.2 < np.median(depths) < 1.0
    assert abs(np.median(depths) - np.median(true)) < 0.1  # within 10 cm of the truth


def test_overlay_video_is_written_and_readable(sample_run):
    out, _ = sample_run
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 45


def test_real_photos_fit(realhands, tmp_path):
    folder = realhands / "hgcnn_realworld"
    code = main(["--source", str(folder), "--output", str(tmp_path), "--headless",
                 "--max-frames", "6", "--no-video"])
    assert code == 0
    records = list(read_hands(tmp_path / "hands.jsonl"))
    assert len(records) >= 5
    assert np.mean([r["reprojection_error_px"] for r in records]) < REPROJECTION_TOL_PX


@pytest.mark.parametrize("make_source, expected", [
    (lambda p: "7", "camera 7 could not be opened"),
    (lambda p: str(p / "missing.mp4"), "no such file or folder"),
    (lambda p: _write(p / "corrupt.mp4", os.urandom(4096)), "cannot read video"),
    (lambda p: _mkdir(p / "empty"), "no images in folder"),
    (lambda p: _write(_mkdir(p / "bad") + "/not_an_image.jpg", b"hello"), "not a readable image"),
])
def test_bad_input_gives_one_clear_line(tmp_path, make_source, expected):
    result = run_cli("--source", make_source(tmp_path), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:")


def test_ctrl_c_keeps_everything_written(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DISPLAY", None)
    # --realtime: the 15 s clip plays at its own rate, so Ctrl-C lands mid-run (unpaced,
    # a fast machine could finish the clip before the signal)
    proc = subprocess.Popen([sys.executable, str(REPO / "run_demo.py"), "--source",
                             str(SAMPLE_VIDEO), "--output", str(tmp_path), "--realtime"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    hands = tmp_path / "hands.jsonl"
    partial = partial_path(hands)  # written there until the run ends (realtime.io.outputs)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not partial.exists()
                                           or partial.stat().st_size < 20000):
        time.sleep(0.2)
    assert proc.poll() is None, "the demo ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    records = list(read_hands(hands))  # every line parses: nothing truncated
    assert records
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["interrupted"] is True
    assert stats["hands"] == len(records)
    cap = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    assert cap.read()[0]  # the video was finalised and opens


@pytest.mark.parametrize("delay_s", [0.2, 0.6, 1.0])
def test_ctrl_c_during_startup_is_a_quiet_interruption(tmp_path, delay_s):
    """Ctrl-C while the demo is still importing or loading models (a KeyboardInterrupt
    inside a native module's import surfaces as ImportError), or just after: exit 130 and
    no error line."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DISPLAY", None)
    proc = subprocess.Popen([sys.executable, str(REPO / "run_demo.py"), "--source",
                             str(SAMPLE_VIDEO), "--output", str(tmp_path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    # (no "error:" line; a library may print the interrupted import's traceback itself)
    assert not any(line.startswith("error") for line in err.splitlines()), err


def _write(path: Path, data: bytes) -> str:
    Path(path).write_bytes(data)
    return str(path)


def _mkdir(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    return str(path)
