"""Replaying a recorded hands file: a real recording, replayed through the real command line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.intrinsics import CameraIntrinsics
from realtime.cli.demo import main
from realtime.io.hands_file import SCHEMA_VERSION, hand_to_record, read_hands, record_to_hand
from realtime.io.hands_file_source import DEFAULT_SIZE, HandsFileSource
from realtime.io.sample import SAMPLE_VIDEO
from realtime.io.sources import SourceConfig, open_source
from realtime.types import HandMesh

JOINT_TOL_M = 1e-5  # records are rounded to 10 micrometres
RECORDED_FRAMES = 15


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """hands.jsonl of a short real run: MediaPipe and the fitting baseline on the sample."""
    out = tmp_path_factory.mktemp("recording")
    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(out), "--headless",
                 "--max-frames", str(RECORDED_FRAMES), "--regressor", "fit", "--no-video"])
    assert code == 0
    hands = out / "hands.jsonl"
    assert list(read_hands(hands)), "the sample run found no hands to replay"
    return hands


@pytest.fixture(scope="module")
def replayed(recording, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("replayed")
    code = main(["--source", str(recording), "--output", str(out), "--headless", "--fast"])
    assert code == 0
    return out


def _frame_count(video: Path) -> int:
    cap = cv2.VideoCapture(str(video))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def test_recording_has_the_camera(recording):
    records = list(read_hands(recording))
    assert all(r["schema"] == SCHEMA_VERSION for r in records)
    cam = records[0]["camera"]
    assert set(cam) == {"fx", "fy", "cx", "cy", "width", "height"}
    frame = cv2.VideoCapture(str(SAMPLE_VIDEO)).read()[1]
    assert (cam["width"], cam["height"]) == (frame.shape[1], frame.shape[0])


def test_replay_writes_the_same_records(recording, replayed):
    before, after = list(read_hands(recording)), list(read_hands(replayed / "hands.jsonl"))
    assert len(after) == len(before)
    for a, b in zip(before, after):
        assert (a["frame_index"], a["track_id"], a["handedness"]) == \
            (b["frame_index"], b["track_id"], b["handedness"])
        np.testing.assert_allclose(b["joints"], a["joints"], atol=JOINT_TOL_M)
        np.testing.assert_allclose(b["vertices"], a["vertices"], atol=JOINT_TOL_M)
        assert b["camera"] == a["camera"]
        assert b["timestamp"] == pytest.approx(a["timestamp"], abs=1e-6)


def test_replay_overlay_has_every_frame(recording, replayed):
    indices = [r["frame_index"] for r in read_hands(recording)]
    stats = json.loads((replayed / "stats.json").read_text())
    expected = max(indices) - min(indices) + 1  # empty frames fill the gaps between hands
    assert stats["frames"] == expected
    assert stats["hands_from"] == "HandsFileSource"
    assert stats["replay"]["truncated_line"] is None
    assert _frame_count(replayed / "overlay.mp4") == expected


def test_replay_is_paced_at_the_recorded_rate(recording, tmp_path):
    with open_source(SourceConfig(str(recording))) as replay:
        fps = replay.fps
    assert fps == pytest.approx(cv2.VideoCapture(str(SAMPLE_VIDEO)).get(cv2.CAP_PROP_FPS),
                                rel=0.01)
    code = main(["--replay", str(recording), "--output", str(tmp_path), "--headless",
                 "--max-frames", "6", "--no-video"])
    assert code == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["live"] is True
    assert stats["seconds"] >= 5 / fps * 0.9  # 6 frames take 5 frame periods, not less


def test_replay_source_reads_frames_and_hands(recording):
    records = list(read_hands(recording))
    with open_source(SourceConfig(str(recording))) as replay:
        assert isinstance(replay, HandsFileSource) and replay.provides_hands
        items = list(replay)
        camera = replay.camera
    assert camera.size == (records[0]["camera"]["width"], records[0]["camera"]["height"])
    assert camera.intrinsics.fx == pytest.approx(records[0]["camera"]["fx"])
    frame = items[0]
    assert frame.image.shape == (camera.size[1], camera.size[0], 3)
    assert frame.camera == camera  # every frame carries the recorded camera
    assert frame.index == records[0]["frame_index"]
    assert frame.timestamp == pytest.approx(records[0]["timestamp"])
    assert sum(len(f.hands) for f in items) == len(records)
    stamps = [f.timestamp for f in items]
    assert np.all(np.diff(stamps) > 0)


def test_loop_yields_more_frames_with_continuing_time(recording):
    with open_source(SourceConfig(str(recording))) as replay:
        once = len(list(replay))
    with open_source(SourceConfig(str(recording), loop=True)) as replay:
        items = [replay.read() for _ in range(2 * once + 3)]
        assert replay.passes == 2
    assert all(item is not None for item in items)
    stamps = [f.timestamp for f in items]
    indices = [f.index for f in items]
    assert np.all(np.diff(stamps) > 0) and np.all(np.diff(indices) > 0)
    hands = [h for f in items for h in f.hands]
    assert all(np.diff([h.timestamp for h in hands]) >= 0)


def test_loop_from_the_command_line_stops_at_max_frames(recording, tmp_path):
    with open_source(SourceConfig(str(recording))) as replay:
        frames = len(list(replay))
    code = main(["--replay", str(recording), "--loop", "--fast", "--output", str(tmp_path),
                 "--headless", "--max-frames", str(frames + 4), "--no-video"])
    assert code == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames"] == frames + 4
    assert stats["replay"]["passes"] == 2


def test_truncated_last_line_replays_the_rest_and_warns(recording, tmp_path, caplog):
    """A writer killed mid-line leaves a partial last line: replay what is complete."""
    lines = recording.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    with caplog.at_level(logging.WARNING, logger="realtime.io.hands_file_source"):
        with open_source(SourceConfig(str(cut))) as replay:
            hands = [h for f in replay for h in f.hands]
            assert replay.truncated_line == len(lines)
    assert len(hands) == len(lines) - 1
    assert f"{cut}:{len(lines)}: the last line is truncated" in caplog.text
    out = tmp_path / "out"
    assert main(["--source", str(cut), "--output", str(out), "--headless", "--fast",
                 "--no-video"]) == 0
    assert len(list(read_hands(out / "hands.jsonl"))) == len(lines) - 1


def test_malformed_middle_line_names_it(recording, tmp_path, capsys):
    lines = recording.read_text().splitlines(keepends=True)
    assert len(lines) >= 3
    lines[1] = lines[1][:40] + "\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines))
    code = main(["--source", str(bad), "--output", str(tmp_path / "out"), "--headless",
                 "--fast"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: not a hands record" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("make, expected", [
    (lambda p: p / "missing.jsonl", "no such hands file"),
    (lambda p: _write(p / "config.jsonl", json.dumps({"name": "x"}) + "\n"), "not a hands file"),
    (lambda p: _write(p / "text.jsonl", "hello\nworld\n"), "not a hands file"),
    (lambda p: _write(p / "empty.jsonl", ""), "no complete hand records"),
])
def test_bad_hands_files_exit_2_with_one_line(tmp_path, capsys, make, expected):
    path = make(tmp_path)
    code = main(["--source", str(path), "--output", str(tmp_path / "out"), "--headless"])
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.strip().startswith("error:") and "Traceback" not in err


def test_schema_1_records_replay_with_a_default_camera(recording, tmp_path):
    old = tmp_path / "old.jsonl"
    with old.open("w") as f:
        for rec in read_hands(recording):
            rec.pop("camera")
            rec["schema"] = 1
            f.write(json.dumps(rec) + "\n")
    with open_source(SourceConfig(str(old))) as replay:
        frame = replay.read()
        assert replay.camera.size == DEFAULT_SIZE
        assert replay.camera.estimated and frame.camera.estimated
    assert frame.size == DEFAULT_SIZE and frame.hands
    out = tmp_path / "out"
    assert main(["--source", str(old), "--output", str(out), "--headless", "--fast"]) == 0
    assert _frame_count(out / "overlay.mp4") > 0


def test_joints_only_file_replays_skeletons(recording, tmp_path):
    joints_only = tmp_path / "joints.jsonl"
    with joints_only.open("w") as f:
        for rec in read_hands(recording):
            del rec["vertices"], rec["vertex_std"]
            f.write(json.dumps(rec) + "\n")
    with open_source(SourceConfig(str(joints_only))) as replay:
        hands = replay.read().hands
    assert hands[0].vertices.shape == (0, 3) and hands[0].vertex_std.shape == (0,)
    out = tmp_path / "out"
    assert main(["--replay", str(joints_only), "--output", str(out), "--headless",
                 "--fast", "--joints-only"]) == 0
    assert _frame_count(out / "overlay.mp4") > 0


def test_replay_never_overwrites_its_own_file(recording, capsys):
    size = recording.stat().st_size
    code = main(["--replay", str(recording), "--output", str(recording.parent), "--headless"])
    assert code == 2
    assert "would overwrite it" in capsys.readouterr().err
    assert recording.stat().st_size == size


def test_source_and_replay_together_is_an_error(recording, tmp_path, capsys):
    code = main(["--source", "0", "--replay", str(recording), "--output", str(tmp_path)])
    assert code == 2
    assert "either --source" in capsys.readouterr().err


def test_record_round_trip():
    rng = np.random.default_rng(0)
    hand = HandMesh(vertices=rng.normal(size=(50, 3)), joints=rng.normal(size=(21, 3)),
                    vertex_std=rng.random(50), pose=rng.normal(size=(16, 3)),
                    shape=rng.normal(size=10), keypoints_2d=rng.random((21, 2)) * 600,
                    handedness="left", score=0.9731, track_id=3, timestamp=12.25,
                    frame_index=7, reprojection_error_px=1.5)
    camera = CameraIntrinsics(500.0, 501.0, 320.0, 240.0, 640, 480)
    record = json.loads(json.dumps(hand_to_record(hand, camera=camera)))
    back = record_to_hand(record)
    for name in ("vertices", "joints", "vertex_std", "pose", "shape"):
        np.testing.assert_allclose(getattr(back, name), getattr(hand, name), atol=JOINT_TOL_M)
        assert getattr(back, name).shape == getattr(hand, name).shape
    np.testing.assert_allclose(back.keypoints_2d, hand.keypoints_2d, atol=0.005)
    assert (back.handedness, back.track_id, back.frame_index) == ("left", 3, 7)
    assert (back.timestamp, back.score, back.reprojection_error_px) == (12.25, 0.9731, 1.5)
    assert record["camera"] == {"fx": 500.0, "fy": 501.0, "cx": 320.0, "cy": 240.0,
                                "width": 640, "height": 480}
    joints_only = record_to_hand(hand_to_record(hand, include_vertices=False))
    assert joints_only.vertices.shape == (0, 3) and joints_only.vertex_std.shape == (0,)
    assert "camera" not in hand_to_record(hand)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
