"""The Godot client (integrations/godot) run by the real engine, headless (``godot3-server``,
Godot 3.2): it decodes the real encoder's messages, from a file and over the WebSocket
gateway of a real replay on 127.0.0.1, and builds meshes with exactly the published
vertices; bad messages are counted, never fatal."""

from __future__ import annotations

import struct

import pytest

from benchmarks import web_godot as wg

pytestmark = pytest.mark.skipif(
    wg.godot_binary() is None,
    reason="godot3-server not installed (scripts/setup_env.sh installs it: apt godot3-server)")

FRAMES = 200  # ~7 s at 30 FPS: one lost frame is 0.5 %, within the 1 %
MAX_ERROR_MM = 0.01


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("godot") / "sample.hmstream"
    return path, wg.make_recording(path, FRAMES)


def check_dump(published, dumped, want_ratio):
    res = wg.compare(published, dumped)
    assert res["godot_frames_ratio"] >= want_ratio, res
    assert res["godot_max_vertex_error_mm"] <= MAX_ERROR_MM, res
    assert res["godot_xr_max_position_error_mm"] <= MAX_ERROR_MM, res
    assert res["godot_xr_max_rotation_error_deg"] < 0.1, res
    for hands in dumped.values():
        for _, _, indices, verts, xr in hands:
            assert indices == 2600 * 3 and len(verts) == 1302 and xr.shape == (26, 8)
    return res


@pytest.mark.parametrize("float16", [False, True])
def test_decodes_the_encoders_messages_from_a_file(tmp_path, float16):
    """Topology, then hands and joints messages of the real publisher (float32 or float16
    vertices), with garbage in between: every hands message becomes meshes with the
    published vertices in Godot axes, the garbage is counted as errors."""
    rec = tmp_path / "r.hmstream"
    published = wg.make_recording(rec, 20, float16=float16)
    messages = wg.recording_messages(rec)
    garbage = [b"", b"hands", b"hands " + struct.pack("<I", 10 ** 6) + b"{}",
               b"hands " + struct.pack("<I", 4) + b"nope", messages[1][:200]]
    feed = messages[:2] + garbage + messages[2:]
    dumped, log = wg.godot_from_file(feed, tmp_path)
    assert set(dumped) == set(published)
    check_dump(published, dumped, 1.0)
    assert f"frames={len(published)}" in log and f"errors={len(garbage)}" in log, log


def test_godot_over_websocket_replay(recording, tmp_path):
    """A real replay of a recording served by the WebSocket gateway (127.0.0.1): Godot
    receives one pass' worth of frames with none lost and the published vertices."""
    path, published = recording
    dumped, log = wg.godot_over_websocket(path, len(published), tmp_path)
    assert "connected (hands,topology)" in log
    assert f"frames={len(published)}" in log and "errors=0" in log
    check_dump(published, dumped, 0.99)
