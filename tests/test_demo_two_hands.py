"""The demo with the two-hand correction and the texture on: real MediaPipe, the sample clip."""

from __future__ import annotations

import json

import cv2

from realtime.demo import SAMPLE_VIDEO, main
from realtime.records import read_hands


def test_demo_corrects_two_hands_and_saves_their_texture(tmp_path):
    out = tmp_path / "run"
    texture = tmp_path / "tex" / "hand.png"
    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(out), "--headless",
                 "--max-frames", "30", "--no-video", "--two-hand-fix", "on",
                 "--save-texture", str(texture)])
    assert code == 0
    stats = json.loads((out / "stats.json").read_text())
    stages = stats["latency"]["stages"]
    assert "two_hands" in stages and "texture" in stages
    assert stats["frames"] == 30 and stats["hands"] > 0
    written = sorted(texture.parent.glob("hand*.png"))
    assert written  # one atlas per live hand
    atlas = cv2.imread(str(written[0]), cv2.IMREAD_UNCHANGED)
    assert atlas.shape[2] == 4 and (atlas[..., 3] == 255).mean() > 0.05  # painted texels
    records = list(read_hands(out / "hands.jsonl"))
    assert len(records) == stats["hands"]


def test_save_texture_needs_a_png_name_before_anything_runs(tmp_path, capsys):
    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(tmp_path / "run"),
                 "--headless", "--save-texture", str(tmp_path / "hand.jpg")])
    assert code != 0
    captured = capsys.readouterr()
    assert "--save-texture needs a .png" in captured.out + captured.err
    assert not (tmp_path / "run").exists()  # refused before any output was written
