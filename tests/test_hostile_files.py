"""Hostile file inputs: crafted hands.jsonl replays and .hmstream files.

Each crafted file of ``benchmarks.hostile_cases.files`` goes to a fresh process (the demo's
replay, ``handmesh-stream replay``, or an append) with a timeout: it must survive (exit 0,
replaying the rest) or refuse (exit 2), with no traceback, say what was wrong naming the file
(and line), keep its peak memory within 100 MB of its idle size, and never lose a record
that was written before. The cases that take longest run with ``-m slow``. The in-process
tests below check what the replays deliver: counts, timestamps, and what a subscriber
receives over real sockets on 127.0.0.1.
"""

from __future__ import annotations

import json
import math
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from benchmarks.hostile_cases import files as hostile
from realtime.io.hands_file_source import MAX_FILLER_FRAMES, HandsFileSource
from realtime.io.sources import SourceConfig
from realtime.stream import protocol
from realtime.stream.client import HandClient
from realtime.stream.publisher import Publisher, PublisherConfig
from realtime.stream.replay import ReplayConfig, replay
from realtime.stream.stream_file import (
    StreamFileError,
    StreamWriter,
    pack_record,
    read_stream,
    scan,
)
from realtime.types import HandMesh
from realtime.validate import hand_problem
from tests.test_stream import free_port

MAX_GROWTH_MB = 100.0


def _params(cases):
    return [pytest.param(c, id=c.name, marks=() if c.quick else pytest.mark.slow)
            for c in cases]


def _check(surface: str, case: hostile.Case, tmp_path: Path) -> dict:
    got = hostile.run_case(surface, case, tmp_path)
    assert not got["hang"], f"{case.name}: no answer within {hostile.TIMEOUT_S} s"
    assert "Traceback" not in got["output"], got["output"]
    assert got["rc"] == case.rc, got["output"]
    assert got["clear"], f"expected {case.says!r} in:\n{got['output']}"
    assert got["growth_mb"] <= MAX_GROWTH_MB, f"{case.name}: peak +{got['growth_mb']} MB"
    return got


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", _params(hostile.HANDS_CASES))
def test_hands_file_replay_survives_or_refuses(case, tmp_path):
    _check("hands_jsonl_replay", case, tmp_path)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", _params(hostile.STREAM_CASES))
def test_stream_replay_survives_or_refuses(case, tmp_path):
    _check("hmstream_replay", case, tmp_path)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", _params(hostile.APPEND_CASES))
def test_appending_never_loses_a_valid_record(case, tmp_path):
    assert _check("hmstream_append", case, tmp_path)["records_lost"] == 0


# -- hands files, in process ----------------------------------------------------------------
def _replay(path: Path, **kw) -> tuple[HandsFileSource, list]:
    source = HandsFileSource(SourceConfig(str(path)), **kw)
    with source:
        frames = list(source)
        return source, frames


def test_a_bad_hand_is_skipped_and_counted_the_rest_replays(tmp_path, caplog):
    path = hostile._spoil(5, joints=lambda j: [[float("nan")] * 3] + j[1:])(tmp_path / "h.jsonl")
    source, frames = _replay(path)
    assert source.skipped_hands == 1
    assert [f.index for f in frames] == list(range(hostile.FRAMES))  # frame 5 is empty
    assert [len(f.hands) for f in frames].count(0) == 1 and not frames[5].hands
    hands = [h for f in frames for h in f.hands]
    assert len(hands) == hostile.FRAMES - 1
    assert all(hand_problem(h, 1302) is None for h in hands)
    assert f"{path}:6: hand skipped (joints not finite" in caplog.text


def test_many_bad_hands_are_counted_not_each_reported(tmp_path, caplog):
    def spoil(i: int, r: dict) -> None:
        if i % 4:
            r["handedness"] = "middle"
    path = hostile._each(spoil)(tmp_path / "h.jsonl")
    source, frames = _replay(path)
    assert source.skipped_hands == 15 and len([h for f in frames for h in f.hands]) == 5
    assert caplog.text.count("hand skipped") == 10  # MAX_WARNINGS, then a count
    assert "counted, not reported one by one" in caplog.text


def test_long_pauses_are_skipped_and_jumps_get_no_filler_frames(tmp_path):
    path = hostile._each(hostile._shift(10, "timestamp", 1e6))(tmp_path / "t.jsonl")
    source, frames = _replay(path)
    stamps = np.array([f.timestamp for f in frames])
    assert source.skipped_gaps == 1 and len(frames) == hostile.FRAMES
    assert np.diff(stamps).max() <= source.max_gap_s  # 1e6 s gone, the rest as recorded
    np.testing.assert_allclose(np.diff(stamps)[10:], 1 / 30, atol=1e-4)
    assert all(h.timestamp == f.timestamp for f in frames for h in f.hands)

    path = hostile._each(hostile._shift(10, "frame_index", 10**12))(tmp_path / "i.jsonl")
    source, frames = _replay(path)
    assert len(frames) == hostile.FRAMES and source.skipped_gaps == 1
    assert frames[10].index == 10**12 + 10

    # a short loss of the hand is still replayed as empty frames, as recorded
    path = hostile._each(hostile._shift(10, "frame_index", 5))(tmp_path / "s.jsonl")
    source, frames = _replay(path)
    assert len(frames) == hostile.FRAMES + 5 and source.skipped_gaps == 0
    path = hostile._each(hostile._shift(10, "frame_index", MAX_FILLER_FRAMES + 1))(
        tmp_path / "m.jsonl")
    assert len(_replay(path)[1]) == hostile.FRAMES


def test_a_smaller_max_gap_is_honoured(tmp_path):
    path = hostile._each(hostile._shift(10, "timestamp", 2.0))(tmp_path / "t.jsonl")
    assert _replay(path)[0].skipped_gaps == 0  # 2 s: within the default 5 s
    source, frames = _replay(path, max_gap_s=1.0)
    assert source.skipped_gaps == 1
    assert np.diff([f.timestamp for f in frames]).max() < 1.0


def test_no_nan_from_a_replay_reaches_a_subscriber(tmp_path):
    """The demo replays a file with NaN, Inf, wrong counts and an unknown side, publishing
    on 127.0.0.1; a real subscriber receives only finite hands."""
    recs = hostile.good_records()
    recs[3]["joints"][0][0] = float("nan")
    recs[5]["vertices"][7][2] = float("inf")
    recs[7]["vertex_std"] = recs[7]["vertex_std"][:5]
    recs[9]["handedness"] = "middle"
    recs[11]["vertices"] = recs[11]["vertices"][:50]
    path = hostile._lines(tmp_path / "bad.jsonl", recs)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ep = endpoint, protocol.topology_endpoint_for(endpoint)  # the demo's: the next port
    got: list = []
    stop = threading.Event()

    def listen() -> None:
        with HandClient(ep[0], ("hands",), ep[1]) as client:
            while not stop.is_set():
                raw = client.recv_raw(100)
                if raw is not None:
                    got.append(protocol.decode(raw))

    thread = threading.Thread(target=listen)
    thread.start()
    try:
        outcome = hostile.run_child("demo", [
            "--replay", str(path), "--loop", "--max-frames", str(6 * hostile.FRAMES),
            "--output", str(tmp_path / "out"), "--headless", "--no-video", "--publish", ep[0]])
    finally:
        stop.set()
        thread.join(10)
    assert outcome.rc == 0, outcome.output
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["replay"]["skipped_hands"] == 5
    hands = [h for m in got for h in m.hands]
    assert hands, "the subscriber received no hands"
    for hand in hands:  # finger_angles may be NaN by design (docs/protocol.md)
        for name, value in hand.items():
            if isinstance(value, np.ndarray) and name != "finger_angles":
                assert np.all(np.isfinite(value)), name
        assert hand["handedness"] in ("right", "left")
        assert hand["vertices"].shape == (1302, 3) and hand["vertex_std"].shape == (1302,)
    assert len(got) <= stats["frames"]


def test_hand_problem_names_each_fault():
    rng = np.random.default_rng(0)
    good = HandMesh(vertices=rng.normal(0, 0.05, (1302, 3)) + [0, 0, 0.5],
                    joints=rng.normal(0, 0.05, (21, 3)) + [0, 0, 0.5],
                    vertex_std=rng.uniform(0.001, 0.01, 1302), pose=rng.normal(0, 0.2, (20, 3)),
                    shape=rng.normal(0, 0.5, 10), keypoints_2d=rng.uniform(0, 640, (21, 2)),
                    handedness="right", score=0.9, track_id=1, timestamp=1.0, frame_index=3)
    assert hand_problem(good, 1302) is None
    joints_only = HandMesh(**{**good.__dict__, "vertices": np.zeros((0, 3)),
                              "vertex_std": np.zeros(0)})
    assert hand_problem(joints_only, 0) is None

    def spoiled(**kw) -> str | None:
        return hand_problem(HandMesh(**{**good.__dict__, **kw}), 1302)

    nan_joints = good.joints.copy()
    nan_joints[4, 1] = math.nan
    assert "joints not finite" in spoiled(joints=nan_joints)
    assert "joints out of range" in spoiled(joints=good.joints * 1e30)
    assert "100 vertices, expected 1302" in spoiled(vertices=good.vertices[:100])
    assert "vertex_std of shape (10,)" in spoiled(vertex_std=good.vertex_std[:10])
    assert "vertex_std negative" in spoiled(vertex_std=-good.vertex_std)
    assert "handedness 'middle'" in spoiled(handedness="middle")
    assert "score nan" in spoiled(score=math.nan)
    assert "keypoints_2d of shape (0, 2)" in spoiled(keypoints_2d=np.zeros((0, 2)))
    assert "track_id" in spoiled(track_id=-1)


# -- stream files, in process ---------------------------------------------------------------
def _flipped(tmp_path: Path) -> tuple[Path, list[bytes]]:
    path = tmp_path / "run.hmstream"
    msgs = hostile.good_stream(path)
    data = bytearray(path.read_bytes())
    data[scan(path).records[50][0] + 5000] ^= 0xFF  # one byte of record 51 of 155
    path.write_bytes(bytes(data))
    return path, msgs


def test_one_flipped_byte_costs_one_record(tmp_path):
    path, msgs = _flipped(tmp_path)
    scanned = scan(path)
    assert len(scanned.records) == 154 and scanned.damaged_records == 1 and scanned.torn == 0
    assert [r.message for r in read_stream(path)] == msgs[:50] + msgs[51:]
    with StreamWriter(path) as w:  # appending keeps every valid record, and the damage
        w.write(b"status after", 5000.0)
    assert [r.message for r in read_stream(path)] == msgs[:50] + msgs[51:] + [b"status after"]


def test_only_a_tail_without_valid_records_is_cut(tmp_path):
    path = tmp_path / "run.hmstream"
    msgs = hostile.good_stream(path, 10)
    size = path.stat().st_size
    torn = pack_record(b"status torn", 1.0)[:-3]  # a write cut short
    with path.open("ab") as f:
        f.write(torn)
    with StreamWriter(path) as w:
        w.write(b"status one", 2.0)
    assert [r.message for r in read_stream(path)] == msgs + [b"status one"]
    assert path.stat().st_size == size + len(pack_record(b"status one", 2.0))  # cut, then added
    # garbage followed by a valid record is damage in the middle, never cut
    with path.open("ab") as f:
        f.write(b"\x89HMR garbage" * 100 + pack_record(b"status two", 3.0))
    with StreamWriter(path) as w:
        w.write(b"status three", 4.0)
    assert [r.message for r in read_stream(path)][-3:] == [b"status one", b"status two",
                                                           b"status three"]


def test_version_1_files_are_read_but_never_appended_to(tmp_path):
    path = hostile._version_1(tmp_path / "old.hmstream")
    before = path.read_bytes()
    assert len(list(read_stream(path))) == 10 and scan(path).version == 1
    with pytest.raises(StreamFileError, match="version 1 stream file.*new file"):
        StreamWriter(path)
    assert path.read_bytes() == before


def test_an_empty_recording_is_refused_even_with_loop(tmp_path):
    path = hostile._header_only(tmp_path / "empty.hmstream")
    with Publisher(PublisherConfig(f"tcp://127.0.0.1:{free_port()}",
                                   f"tcp://127.0.0.1:{free_port()}")) as pub, \
            pytest.raises(StreamFileError, match="has no valid record to replay"):
        replay(path, pub, ReplayConfig(loop=True, start_delay_s=0.0))


@pytest.mark.timeout(60)
def test_a_damaged_recording_replays_every_valid_record_to_a_subscriber(tmp_path):
    path, msgs = _flipped(tmp_path)
    ep = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    with Publisher(PublisherConfig(*ep)) as pub, HandClient(ep[0], ("hands",), ep[1]) as client:
        time.sleep(0.3)  # the subscription reaches the publisher
        sent = replay(path, pub, ReplayConfig(start_delay_s=0.0))
        got = []
        deadline = time.monotonic() + 10
        while len(got) < sent and time.monotonic() < deadline:
            raw = client.recv_raw(100)
            if raw is not None:
                got.append(raw)
    assert sent == 154
    assert got == msgs[:50] + msgs[51:]


@pytest.mark.timeout(60)
def test_a_huge_pause_is_cut_and_a_loop_of_one_record_does_not_spin(tmp_path):
    path = tmp_path / "gap.hmstream"
    with StreamWriter(path) as w:
        w.write(b"status a", 1000.0)
        w.write(b"status b", 1000.0 + 1e6)
    with Publisher(PublisherConfig(f"tcp://127.0.0.1:{free_port()}",
                                   f"tcp://127.0.0.1:{free_port()}")) as pub:
        assert replay(path, pub, ReplayConfig(start_delay_s=0.0, max_gap_s=0.1)) == 2
        one = tmp_path / "one.hmstream"
        with StreamWriter(one) as w:
            w.write(b"status a", 1000.0)
        stop = threading.Event()
        box = {}
        thread = threading.Thread(target=lambda: box.update(n=replay(
            one, pub, ReplayConfig(loop=True, start_delay_s=0.0), stop)))
        thread.start()
        time.sleep(0.5)
        stop.set()
        thread.join(10)
    # each pass waits 1/30 s (no recorded interval to go by), so a slow machine sends fewer,
    # never more: a bound on the count, not on time
    assert 1 <= box["n"] <= 0.5 * 30 + 5


def test_record_lengths_beyond_the_limit_are_damage_not_allocations(tmp_path):
    path = tmp_path / "run.hmstream"
    msgs = hostile.good_stream(path, 5)
    with path.open("ab") as f:  # a header claiming 4 GB, with a correct header CRC
        head = struct.pack("<4sIdI", b"\x89HMR", 0xFFFFFFFF, 1.0, 0)
        f.write(head + struct.pack("<I", zlib.crc32(head)) + b"x" * 100)
        f.write(pack_record(b"status last", 2.0))
    assert [r.message for r in read_stream(path)] == msgs + [b"status last"]
    assert scan(path).damaged_records == 1


def test_the_live_estimate_stage_drops_what_a_replay_would_skip():
    """The same check on the live path: a real fit of a degenerate detection (a whole hand in
    half a pixel) lands 280 m away; the estimate stage drops it and counts it."""
    from models.hand_model import HandModel
    from models.poses import named_pose
    from realtime.engine.stages import EstimateStage
    from realtime.mesh.ik_fit import FitConfig, FitEstimator
    from realtime.types import Detection, Frame, Packet

    model = HandModel.open_hand()
    kps = model.forward(named_pose(model.data.joint_names, "spread")).keypoints[0]
    rel = kps - kps.mean(0)
    stage = EstimateStage(FitEstimator(model, FitConfig(follow_2d=False)))
    frame = Frame(np.zeros((480, 640, 3), np.uint8), 0, 0.0)
    for pixels_per_m, kept in ((1000.0, 1), (2.0, 0)):  # 50 cm away; then ~280 m
        det = Detection(320 + rel[:, :2] * pixels_per_m, np.zeros(21), rel, "right", 0.95, 0,
                        0.0)
        hands = stage(Packet(frame, 0.0, detections=(det,))).hands
        assert len(hands) == kept
        assert all(hand_problem(h, model.num_vertices) is None for h in hands)
    assert stage.invalid_hands == 1
