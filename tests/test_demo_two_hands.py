"""The demo with the two-hand correction and the texture on: real MediaPipe, the sample clip."""

from __future__ import annotations

import json

import cv2

from realtime.cli.demo import main
from realtime.io.hands_file import read_hands
from realtime.io.sample import SAMPLE_VIDEO


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


def test_demo_publishes_the_texture_and_the_uv_atlas(tmp_path):
    """--texture with --publish: a subscriber gets `texture` messages (fused colours per
    track, in the topology's vertex order) and the topology carries the UV atlas."""
    import socket
    import threading

    from realtime.stream.client import HandClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"tcp://127.0.0.1:{port}"
    got: dict[str, list] = {"texture": [], "topology": []}
    stop = threading.Event()

    def listen() -> None:
        with HandClient(endpoint, topics=("texture", "topology")) as client:
            while not stop.is_set():
                msg = client.recv(100)
                if msg is not None:
                    got[msg.topic].append(msg)
                    if not got["topology"]:  # a late joiner asks (REQ/REP)
                        got["topology"].append(client.topology())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(tmp_path / "run"),
                 "--headless", "--max-frames", "90", "--no-video", "--texture",
                 "--publish", endpoint])
    stop.set()
    listener.join(5)
    assert code == 0
    assert got["topology"] and "uv_vertex" in got["topology"][0].arrays
    n_vertices = got["topology"][0].header["vertex_count"]
    assert got["texture"], "no texture message in 90 frames"
    hand = got["texture"][-1].hands[0]
    assert hand["vertex_colors"].shape == (n_vertices, 3)
    assert (hand["vertex_weight"] > 0).mean() > 0.1  # a good part was seen
    assert hand["handedness"] in ("left", "right")
