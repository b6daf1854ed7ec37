"""Pinch events: the math, the state machine, the stage on real pipeline output, and the
pinch in every output (hands.jsonl, the ZeroMQ joints/hands topics)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from benchmarks.common import random_hand_mesh
from benchmarks.pinch import event_f1, frame_f1, onsets
from calibration.intrinsics import CameraIntrinsics
from models.geometry import axis_angle_to_matrix, project
from models.hand_model import HandModel
from models.poses import named_pose
from realtime.app import AppConfig, OutputConfig, build_pipeline
from realtime.engine.stages import PinchStage
from realtime.io.camera import CameraConfig
from realtime.io.hands_file import HandsWriter, read_hands, record_to_hand
from realtime.io.sources import SourceConfig, open_source
from realtime.mesh.pinch import (
    PinchConfig,
    PinchTracker,
    hysteresis,
    pinch_distance,
)
from realtime.mesh.pinch_head import PinchHead
from realtime.mesher import HandMesherConfig
from realtime.types import Frame, Packet, Pinch
from scripts.make_pinch_clip import PINCH_GT, PINCH_VIDEO
from tests.test_stream import connect, endpoints, free_port, publish_until  # noqa: F401

NO_DEBOUNCE = PinchConfig(debounce_frames=1)


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def _hand(model, side="right", seed=1, track_id=1, timestamp=0.0, frame_index=0, **kw):
    return random_hand_mesh(model, side, seed=seed, track_id=track_id, score=0.9,
                            timestamp=timestamp, frame_index=frame_index, **kw)


def states(tracker: PinchTracker, distances, track: int = 1) -> list[Pinch]:
    return [tracker.update({track: d})[track] for d in distances]


# --------------------------------------------------------------------------- math and state


def test_hysteresis_engages_below_15_holds_between_releases_above_30():
    seq = [0.050, 0.016, 0.014, 0.020, 0.029, 0.031, 0.020, 0.014]
    got = states(PinchTracker(NO_DEBOUNCE), seq)
    assert [p.engaged for p in got] == [False, False, True, True, True, False, False, True]
    assert [p.changed for p in got] == [False, False, True, False, False, True, False, True]
    assert [p.distance_m for p in got] == seq
    assert hysteresis(np.array(seq), NO_DEBOUNCE).tolist() == [p.engaged for p in got]


def test_unknown_distance_holds_the_state():
    got = states(PinchTracker(NO_DEBOUNCE), [0.01, math.nan, 0.02])
    assert [p.engaged for p in got] == [True, True, True]
    assert math.isnan(got[1].distance_m) and not got[1].changed


def test_one_frame_blip_does_not_flip():
    tracker = PinchTracker(PinchConfig(debounce_frames=2))
    got = states(tracker, [0.05, 0.01, 0.05, 0.05, 0.01, 0.01, 0.01, 0.05, 0.01, 0.05, 0.05])
    assert [p.engaged for p in got] == [False, False, False, False, False, True, True, True,
                                        True, True, False]
    assert [i for i, p in enumerate(got) if p.changed] == [5, 10]


def test_tracks_are_independent_and_forgotten_when_missing():
    tracker = PinchTracker(NO_DEBOUNCE)
    first = tracker.update({1: 0.01, 2: 0.05})
    assert first[1].engaged and not first[2].engaged
    assert tracker.update({1: 0.02, 2: 0.01}) == {1: Pinch(0.02, True, False),
                                                  2: Pinch(0.01, True, True)}
    # track 1 is missing for a frame: forgotten; back in the dead band it starts released
    assert set(tracker.update({2: 0.02})) == {2} and tracker.track_ids == [2]
    assert tracker.update({1: 0.02, 2: 0.02})[1] == Pinch(0.02, False, False)
    assert tracker.update({}) == {} and tracker.track_ids == []


def test_distance_is_invariant_to_turning_the_hand(model):
    joints = model.forward(named_pose(model.data.joint_names, "open")).keypoints[0]
    d0 = pinch_distance(joints)
    assert 0.08 < d0 < 0.15  # thumb and index tips of an open hand: ~11 cm apart
    rng = np.random.default_rng(3)
    rots = axis_angle_to_matrix(rng.normal(0, 1.5, (20, 3)))
    moved = joints @ np.swapaxes(rots, 1, 2) + rng.uniform(-0.2, 0.2, (20, 1, 3)) \
        + np.array([0, 0, 0.6])
    np.testing.assert_allclose(pinch_distance(moved), d0, rtol=1e-12)
    # ... which a 2D (image) distance is not: it changes by tens of percent
    K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
    uv = project(moved, K)
    px = np.linalg.norm(uv[:, 4] - uv[:, 8], axis=-1) * moved[:, [4, 8], 2].mean(1) / 600
    assert px.max() / px.min() > 1.5


def test_pinch_pose_is_under_the_engage_distance(model):
    joints = model.forward(named_pose(model.data.joint_names, "pinch")).keypoints
    assert pinch_distance(joints)[0] < PinchConfig().engage_m
    assert math.isnan(pinch_distance(np.zeros((5, 3))))


@pytest.mark.parametrize("kw", [{"engage_m": 0.03, "release_m": 0.03}, {"engage_m": -1.0},
                                {"release_m": math.inf}, {"debounce_frames": 0}])
def test_config_refuses_bad_values(kw):
    with pytest.raises(ValueError, match="PinchConfig"):
        PinchConfig(**kw)


def test_scoring_helpers():
    truth = np.zeros(30, bool)
    truth[10:20] = True
    late = np.roll(truth, 2)  # two frames late: inside the tolerance
    assert frame_f1(truth, late, np.ones(30, bool), tolerance=2)["f1"] == 1.0
    assert frame_f1(truth, late, np.ones(30, bool), tolerance=0)["f1"] == pytest.approx(16 / 18)
    missed = frame_f1(truth, np.zeros(30, bool), np.ones(30, bool), tolerance=2)
    assert (missed["f1"], missed["fn"]) == (0.0, 5)  # frames 13-17
    assert onsets(truth).tolist() == [10]
    assert event_f1(np.array([3, 20]), np.array([5, 40]), 3)["f1"] == 0.5


# --------------------------------------------------------------------------- stage


def _packet(hands, index=0):
    frame = Frame(np.zeros((48, 64, 3), np.uint8), index, index / 30)
    return Packet(frame, time.monotonic(), (), tuple(hands))


def test_stage_sets_pinch_and_keeps_recorded_ones(model):
    open_hand = _hand(model, seed=1, track_id=1, timestamp=0.0, frame_index=0)
    recorded = _hand(model, seed=2, track_id=2, timestamp=0.0, frame_index=0,
                                pinch=Pinch(0.005, True, True))
    joints_only = PinchConfig(distance="joints")
    stage = PinchStage(PinchTracker(joints_only), keep_recorded=True)
    out = stage(_packet([open_hand, recorded])).hands
    assert out[0].pinch == Pinch(pinch_distance(open_hand.joints), False, False)
    assert out[1].pinch is recorded.pinch
    recompute = PinchStage(PinchTracker(joints_only))(_packet([recorded])).hands[0].pinch
    assert recompute.distance_m == pytest.approx(pinch_distance(recorded.joints))
    learned = PinchStage(PinchTracker())(_packet([open_hand])).hands[0].pinch  # the default
    assert learned.distance_m == pytest.approx(PinchHead().distance(open_hand.joints, True))
    assert not recompute.engaged  # the tracker's own state, not the recorded one
    # a frame without hands forgets every track: nothing stale when the hand comes back
    assert stage.tracker.track_ids == [1]
    assert stage(_packet([], index=1)).hands == () and stage.tracker.track_ids == []


def test_real_pipeline_pinches_on_the_pinch_clip(tmp_path):
    """MediaPipe + the ONNX regressor + smoothing + pinch on the clip's first 45 frames:
    an open hand (true distance ~120 mm), then a pinch (true < 15 mm from frame 26)."""
    with np.load(PINCH_GT) as z:
        K, size, truth = z["K"], (int(z["width"]), int(z["height"])), z["engaged"][:45, 0]
    camera = CameraConfig(intrinsics=CameraIntrinsics.from_matrix(K, *size))
    config = AppConfig(source=SourceConfig(str(PINCH_VIDEO)),
                       mesher=HandMesherConfig(camera=camera),
                       output=OutputConfig(folder=tmp_path, video=False), realtime=False,
                       max_frames=45)
    with build_pipeline(config) as run:
        run.run()
    records = list(read_hands(tmp_path / "hands.jsonl"))
    assert len(records) >= 40 and all("pinch" in r for r in records)
    engaged = {r["frame_index"]: r["pinch"]["engaged"] for r in records}
    assert not any(engaged[f] for f in range(15) if f in engaged)  # the open hand
    last = max(engaged)
    assert sum(engaged.values()) >= 5 and engaged[last] and truth[last]  # pinching at the end
    events = [r["frame_index"] for r in records if r["pinch"]["changed"]]
    assert len(events) == 1 and engaged[events[0]]  # one engage event, no chatter
    d = {r["frame_index"]: r["pinch"]["distance_m"] for r in records}
    assert d[5] > 0.05 and d[events[0]] < PinchConfig().engage_m


# --------------------------------------------------------------------------- outputs


def test_hands_file_round_trips_pinch_and_reads_old_files(model, tmp_path):
    hands = [_hand(model, seed=1, track_id=1, timestamp=0.5, frame_index=3,
                              pinch=Pinch(0.0123456789, True, True)),
             _hand(model, "left", seed=2, track_id=2, timestamp=0.5,
                              frame_index=3, pinch=Pinch(math.nan, False, False)),
             _hand(model, seed=3, track_id=3, timestamp=0.5, frame_index=3)]
    path = tmp_path / "hands.jsonl"
    with HandsWriter(path, include_vertices=False) as w:
        w.write_frame(hands)
    records = list(read_hands(path))
    assert records[0]["pinch"] == {"distance_m": 0.01235, "engaged": True, "changed": True}
    assert records[1]["pinch"]["distance_m"] is None  # NaN is not JSON
    assert "pinch" not in records[2]  # what every file before pinch looks like
    back = [record_to_hand(r).pinch for r in records]
    assert back[0] == Pinch(0.01235, True, True)
    assert math.isnan(back[1].distance_m) and not back[1].engaged
    assert back[2] is None
    bad = dict(records[0], pinch={"engaged": "yes"})
    with pytest.raises(ValueError, match="pinch"):
        record_to_hand(bad)


def test_replay_of_a_file_without_pinch_gets_one(model, tmp_path):
    old = tmp_path / "old.jsonl"
    with HandsWriter(old, camera=CameraIntrinsics(500, 500, 160, 120, 320, 240)) as w:
        for i in range(4):
            w.write_frame([_hand(model, seed=1, track_id=1, timestamp=i / 30,
                                            frame_index=i)])
    with open_source(SourceConfig(str(old))) as replay:
        assert replay.read().hands[0].pinch is None  # old files read as they are
    out = tmp_path / "out"
    with build_pipeline(AppConfig(source=SourceConfig(str(old)), realtime=False,
                                  output=OutputConfig(folder=out, video=False))) as run:
        run.run()
    records = list(read_hands(out / "hands.jsonl"))
    assert len(records) == 4
    head = PinchHead()  # the default distance: the learned head on the recorded joints
    assert all(r["pinch"]["distance_m"] == pytest.approx(
        head.distance(np.array(r["joints"]), r["handedness"] == "right"), abs=1e-4)
        for r in records)


def test_joints_and_hands_topics_carry_pinch(endpoints, model):  # noqa: F811
    from realtime.stream.client import summary
    from realtime.stream.publisher import Publisher, PublisherConfig

    right = _hand(model, seed=1, track_id=1, timestamp=1.0, frame_index=7,
                  pinch=Pinch(0.0112, True, True))
    left = _hand(model, "left", seed=2, track_id=2, timestamp=1.0, frame_index=7)
    pub = Publisher(PublisherConfig(*endpoints), model)
    client = connect(endpoints, ("joints", "hands"))
    try:
        frame = Frame(np.zeros((48, 64, 3), np.uint8), 7, 1.0)
        for hands in ([right, left], [right]):  # the two-hand fast path and the general one
            seen = {}
            deadline = time.monotonic() + 5
            while len(seen) < 2 and time.monotonic() < deadline:
                msg = publish_until(pub, client, Packet(frame, time.monotonic(), (),
                                                        tuple(hands)))
                seen[msg.topic] = msg
            assert set(seen) == {"joints", "hands"}
            for msg in seen.values():
                got = {h["track_id"]: h["pinch"] for h in msg.hands}
                assert got[1] == {"distance_m": 0.0112, "engaged": True, "changed": True}
                if len(hands) == 2:
                    assert got[2] is None  # no pinch computed for that hand
            assert "pinch  11 mm PINCH!" in summary(seen["joints"])
    finally:
        client.close()
        pub.close()


def test_clip_truth_is_the_hysteresis_of_its_exact_keypoints():
    from scripts.make_pinch_clip import pinch_truth

    with np.load(PINCH_GT) as z:
        keypoints, present = z["keypoints"].astype(np.float64), z["present"]
        distance, engaged = z["distance_m"], z["engaged"]
    d, e = pinch_truth(keypoints, present)
    np.testing.assert_allclose(d[present], distance[present], atol=1e-6)
    assert np.array_equal(e, engaged) and not engaged[~present].any()
    assert len(onsets(engaged[:, 0])) + len(onsets(engaged[:, 1])) == 9
    # a hand back after a loss starts released, as a new track does: frame 50 (28 mm, in
    # the dead band) is engaged in the clip, right after a pinch, but not after a gap
    assert 0.015 < distance[50, 0] < 0.030 and engaged[50, 0]
    kp = keypoints[[30, 30, 50, 50]]
    p = np.zeros((4, 2), bool)
    p[[0, 1, 3], 0] = True
    assert pinch_truth(kp, p)[1][:, 0].tolist() == [True, True, False, False]


def test_mesher_config_pinch_options():
    from realtime.mesher import HandMesher

    with HandMesher(HandMesherConfig(stills=True)) as stills:
        assert stills.pinch_tracker.config.debounce_frames == 1  # no history to debounce
        assert [n for n, _ in stills.stages][-1] == "pinch"  # no smoothing: a stage of its own
    with HandMesher(HandMesherConfig(pinch=None)) as off:
        assert off.pinch_tracker is None and off.stages[-1][1].pinch is None
    with pytest.raises(ValueError, match="pinch"):
        HandMesherConfig(pinch=0.015)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_stream_paths_write_pinch_as_the_reference_encoder(dtype):
    """The packer's compiled and two-hand paths format the pinch by hand: byte for byte
    (one hand) and field for field (two hands) what ``hand_header`` + ``encode`` give."""
    from dataclasses import replace

    from realtime.stream import protocol
    from tests.test_protocol_fast import (
        assert_same_message,
        general_messages,
        random_hand,
        reference,
    )

    rng = np.random.default_rng(5)
    packer, ref_packer = protocol.HandPacker(), protocol.HandPacker()
    for pinch in (Pinch(0.0123456789, True, True), Pinch(math.nan, False, False),
                  Pinch(0.25, False, True), None):
        right = replace(random_hand(rng, dtype, "right"), pinch=pinch)
        left = replace(random_hand(rng, dtype, "left"), pinch=Pinch(0.031, True, False))
        for mesh, topic in ((True, protocol.TOPIC_HANDS), (False, protocol.TOPIC_JOINTS)):
            packed = [packer.pack(i, h, mesh=mesh) for i, h in enumerate((right, left))]
            fast = protocol.encode_packed(topic, {"seq": 7}, packed, extra=mesh)
            assert fast == reference(topic, (right, left), (), False, mesh)
        tail = (1.0, 1.5, 1.7e9, "cam0", 3, (640, 480), "mesh")
        got = packer.two_hand_messages(right, left, 1, 2, tail)
        assert got is not None
        for g, w in zip(got, general_messages(ref_packer, (right, left), 1, 2, tail)):
            assert_same_message(g, w)
        decoded = protocol.decode(bytes(got[1])).hands[0]["pinch"]
        assert decoded == (None if pinch is None else {
            "distance_m": None if math.isnan(pinch.distance_m) else pinch.distance_m,
            "engaged": pinch.engaged, "changed": pinch.changed})


def test_demo_pinch_flag():
    """``--pinch ENGAGE,RELEASE`` in mm sets the thresholds, ``off`` turns pinch off, and a
    bad value is one clear ValueError (the demo's exit 2)."""
    from realtime.cli.demo import parse_args

    assert parse_args([]).app.mesher.pinch == PinchConfig()
    cfg = parse_args(["--pinch", "20,40"]).app.mesher.pinch
    assert cfg.engage_m == pytest.approx(0.020) and cfg.release_m == pytest.approx(0.040)
    assert parse_args(["--pinch", "off"]).app.mesher.pinch is None
    assert parse_args(["--pinch-distance", "joints"]).app.mesher.pinch.distance == "joints"
    for bad in ("30,15", "abc", "10", "nan,20"):
        with pytest.raises(ValueError, match="--pinch"):
            parse_args(["--pinch", bad])
