"""The ROS 2 output (realtime.ros2): real Cyclone DDS participants on loopback in two
processes, real MCAP files decoded with mcap_ros2, the demo with --ros2, DDS missing."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from models.hand_model import HandModel
from realtime.ros2 import McapConfig, McapSink, Ros2Config, Ros2Sink, msgs
from realtime.ros2.dds import config_xml, is_loopback_only
from realtime.ros2.messages import MessageBuilder, quaternion
from realtime.types import Frame, HandMesh, Packet

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
IMAGE = np.zeros((4, 4, 3), np.uint8)


def domain(k: int) -> int:
    """A DDS domain of this test run's own (other runs on the machine use others)."""
    return 100 + (os.getpid() * 7 + k) % 100


try:
    from realtime.types import Pinch  # the pinch engineer's record, once merged
except ImportError:
    @dataclasses.dataclass(frozen=True)
    class Pinch:  # the same fields, so the pinch topics are tested before the merge
        distance_m: float
        engaged: bool
        changed: bool


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def with_pinch(hand: HandMesh, pinch) -> HandMesh:
    if "pinch" in {f.name for f in dataclasses.fields(HandMesh)}:
        return dataclasses.replace(hand, pinch=pinch)
    object.__setattr__(hand, "pinch", pinch)  # before the merge HandMesh has no field
    return hand


def hands(model, n: int = 2, pinch: bool = True) -> tuple[HandMesh, ...]:
    from benchmarks.common import random_hand_mesh

    out = []
    for k, side in enumerate(("right", "left")[:n]):
        h = random_hand_mesh(model, side, seed=k, track_id=k + 1, score=0.9, timestamp=0.0,
                             frame_index=0)
        out.append(with_pinch(h, Pinch(0.012 + k * 0.03, k == 0, False)) if pinch else h)
    return tuple(out)


def packets(model, n: int, start: float = 1000.0, lost_at: int | None = None):
    """``n`` packets 1/30 s apart with two hands; from ``lost_at`` on, the left hand only."""
    both, out = hands(model), []
    for i in range(n):
        t = start + i / 30
        hs = both if lost_at is None or i < lost_at else both[1:]
        out.append(Packet(Frame(IMAGE, i, t), t, (), hs))
    return out


def assert_same(expected, got, path: str = "") -> None:
    """Field-by-field equality of two ``msgs.to_plain`` trees (float32 fields to 1e-6)."""
    if isinstance(expected, dict):
        assert set(expected) == set(got), path
        for k in expected:
            assert_same(expected[k], got[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert len(expected) == len(got), path
        for i, (e, g) in enumerate(zip(expected, got)):
            assert_same(e, g, f"{path}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert expected.shape == np.shape(got), path
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, equal_nan=True,
                                   err_msg=path)
    elif isinstance(expected, float):
        assert (math.isnan(expected) and math.isnan(got)) or \
            got == pytest.approx(expected, rel=1e-6, abs=1e-7), path
    else:
        assert expected == got, path


def decoded(path: Path) -> list:
    """Every message of an MCAP file decoded by mcap_ros2: (schema, channel, message, ros)."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as f:
        return list(make_reader(f, decoder_factories=[DecoderFactory()])
                    .iter_decoded_messages())


# -- messages and encoding ---------------------------------------------------------------------
def test_schema_text_is_ros2_bag_style():
    """The MCAP schema is the .msg text then each dependency after ROS 2's separator."""
    text = msgs.msg_definition("geometry_msgs/PoseStamped")
    assert text.startswith("std_msgs/Header header\ngeometry_msgs/Pose pose\n")
    sep = "\n" + "=" * 80 + "\nMSG: "
    deps = [part.split("\n", 1)[0] for part in text.split(sep)[1:]]
    assert deps == ["std_msgs/Header", "builtin_interfaces/Time", "geometry_msgs/Pose",
                    "geometry_msgs/Point", "geometry_msgs/Quaternion"]
    assert "int32 TRIANGLE_LIST=11" in msgs.msg_definition("visualization_msgs/Marker")
    assert msgs.dds_name("sensor_msgs/JointState") == "sensor_msgs::msg::dds_::JointState_"
    assert msgs.idl_type("sensor_msgs/JointState").__idl_typename__ == \
        "sensor_msgs::msg::dds_::JointState_"


def test_every_frame_message_decodes_with_both_libraries(model):
    """Our CDR bytes read back equal with cyclonedds' and mcap_ros2's own decoders, and the
    fast paths give the generic encoder's bytes."""
    from mcap_ros2._dynamic import generate_dynamic

    b = MessageBuilder(Ros2Config(markers_hz=30, tf_keypoints=True), model.data.joint_names,
                       {s: model.faces_for(s) for s in ("right", "left")})
    seen = set()
    for packet in packets(model, 2):
        for topic, type_, message in b.frame(packet):
            data = msgs.encode(type_, message)
            assert data == msgs.encode_generic(type_, message), type_
            assert len(data) % 4 == 0 and data[:4] == b"\x00\x01\x00\x00"
            expected = msgs.to_plain(type_, message)
            by_dds = msgs.idl_type(type_).deserialize(data)
            assert_same(expected, msgs.to_plain(type_, by_dds), type_)
            decode = generate_dynamic(msgs.ros_name(type_), msgs.msg_definition(type_))
            by_mcap = decode[msgs.ros_name(type_)](data)
            assert_same(expected, msgs.to_plain(type_, by_mcap), type_)
            seen.add(type_)
    assert seen == {t.type for t in Ros2Config().topics()}


def test_frame_content(model):
    """Names, frames, units and the marker sizes a ROS user relies on."""
    config = Ros2Config(markers_hz=30)
    b = MessageBuilder(config, model.data.joint_names,
                       {s: model.faces_for(s) for s in ("right", "left")}, clock_offset_s=5.0)
    packet = packets(model, 1)[0]
    out = {topic: (type_, m) for topic, type_, m in b.frame(packet)}
    right = packet.hands[0]
    js = out["/handmesh/right/joint_states"][1]
    assert js["name"][0] == "right_thumb_cmc_flex" and js["name"][3] == "right_index_mcp_flex"
    assert len(js["name"]) == len(js["position"]) == 15
    assert js["header"]["frame_id"] == "handmesh_camera"
    stamp = js["header"]["stamp"]
    assert stamp["sec"] + stamp["nanosec"] * 1e-9 == pytest.approx(packet.t_capture + 5.0)
    wrist = out["/handmesh/right/wrist_pose"][1]["pose"]
    np.testing.assert_allclose([wrist["position"][k] for k in "xyz"], right.joints[0])
    q = [wrist["orientation"][k] for k in "xyzw"]
    from models.geometry import matrix_to_quaternion
    from models.hand_geometry import wrist_frame

    np.testing.assert_allclose(q, matrix_to_quaternion(wrist_frame(right.joints)), atol=1e-12)
    np.testing.assert_allclose(out["/handmesh/right/keypoints"][1]["poses"][:, :3], right.joints)
    assert out["/handmesh/right/pinch_distance"][1]["data"] == pytest.approx(0.012)
    assert out["/handmesh/right/pinch"][1]["data"] is True
    assert out["/handmesh/left/pinch"][1]["data"] is False
    tf = out["/tf"][1]["transforms"]
    assert [t["child_frame_id"] for t in tf] == ["right_wrist", "left_wrist"]
    markers = out["/handmesh/markers"][1]["markers"]
    mesh = next(m for m in markers if m["ns"] == "right_mesh")
    assert mesh["type"] == 11 and len(mesh["points"]) == len(model.faces_for("right")) * 3
    assert mesh["colors"].shape == (len(mesh["points"]), 4)
    skeleton = next(m for m in markers if m["ns"] == "right_skeleton")
    assert skeleton["type"] == 5 and len(skeleton["points"]) == 40


def test_quaternion_matches_models_geometry():
    from scipy.spatial.transform import Rotation

    from models.geometry import matrix_to_quaternion

    for r in Rotation.random(50, random_state=1).as_matrix():
        np.testing.assert_allclose(quaternion(r.tolist()), matrix_to_quaternion(r), atol=1e-12)


def test_lost_hand_publishes_nothing_stale(model):
    """A hand that goes: no more messages on its topics, one DELETE for its markers."""
    b = MessageBuilder(Ros2Config(markers_hz=1.0), model.data.joint_names,
                       {s: model.faces_for(s) for s in ("right", "left")})
    frames = [b.frame(p) for p in packets(model, 4, lost_at=2)]
    topics = [[t for t, _, _ in f] for f in frames]
    assert "/handmesh/right/joint_states" in topics[1]
    assert not any(t.startswith("/handmesh/right/") for t in topics[2] + topics[3])
    assert "/handmesh/markers" not in topics[1]  # 1 Hz: not yet
    deleted = [m for t, _, msg in frames[2] if t == "/handmesh/markers" for m in msg["markers"]]
    assert {(m["ns"], m["action"]) for m in deleted if m["action"] == 2} == \
        {("right_mesh", 2), ("right_skeleton", 2)}
    assert "/handmesh/markers" not in topics[3]  # deleted once
    tf = next(msg for t, _, msg in frames[3] if t == "/tf")["transforms"]
    assert [x["child_frame_id"] for x in tf] == ["left_wrist"]


def test_rate_limit(model):
    b = MessageBuilder(Ros2Config(rate_hz=10, markers_hz=0), model.data.joint_names)
    sent = [bool(b.frame(p)) for p in packets(model, 30)]
    assert 9 <= sum(sent) <= 11 and sent[0]


def test_config_validation():
    for bad in ({"namespace": "handmesh"}, {"domain_id": 300}, {"frame_id": "a b"},
                {"rate_hz": 0}, {"marker_colors": "pink"}, {"qos_depth": 0}):
        with pytest.raises(ValueError):
            Ros2Config(**bad)
    with pytest.raises(ValueError):
        McapConfig(Path("x.bag"))


# -- DDS on loopback, two processes ------------------------------------------------------------
def subscriber(domain_id: int, topics: dict, ready, results, quiet_s: float, limit_s: float):
    """A ROS-2-typed subscriber in its own process: every sample as plain data."""
    from realtime.ros2.listen import Listener

    listener = Listener(topics, domain_id)
    ready.set()
    got, last, end = [], time.monotonic(), time.monotonic() + limit_s
    while time.monotonic() < end and (not got or time.monotonic() - last < quiet_s):
        batch = listener.take()
        if batch:
            last = time.monotonic()
            got.extend((t, msgs.to_plain(topics[t], s)) for t, s, _ in batch)
        time.sleep(0.005)
    results.put((got, listener.invalid))


def start_subscriber(domain_id, topics, quiet_s=1.5, limit_s=60.0):
    ctx = mp.get_context("spawn")
    ready, results = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=subscriber, args=(domain_id, topics, ready, results, quiet_s,
                                                limit_s), daemon=True)
    proc.start()
    assert ready.wait(60), "the subscriber process did not start"
    return proc, results


@pytest.mark.timeout(120)
def test_dds_two_processes_every_topic(model):
    """Another process subscribed with the ROS 2 types gets every message as published."""
    d = domain(1)
    config = Ros2Config(domain_id=d, markers_hz=12, marker_colors="flat")
    topics = {t.name: t.type for t in config.topics()}
    proc, results = start_subscriber(d, topics)
    with Ros2Sink(config, model) as sink:
        writers = sink.writers
        end = time.monotonic() + 20
        while time.monotonic() < end and not all(writers.matched(t) for t in topics):
            time.sleep(0.05)
        assert all(writers.matched(t) for t in topics), "no match on loopback"
        sent = packets(model, 8, start=time.monotonic())
        for p in sent:
            sink.write(p)  # handed to the sender thread
            assert sink.flush(10)  # one at a time: a burst would overflow its queue
        assert sink.frames == 8 and sink.dropped == 0
        got, invalid = results.get(timeout=90)
        proc.join(10)
        assert writers.errors == 0
    expected = MessageBuilder(config, model.data.joint_names,
                              {s: model.faces_for(s) for s in ("right", "left")},
                              sink.builder.clock_offset_s)
    want = [(t, msgs.to_plain(ty, m)) for p in sent for t, ty, m in expected.frame(p)]
    assert invalid == 0
    for topic in topics:
        mine = [m for t, m in want if t == topic]
        theirs = [m for t, m in got if t == topic]
        assert len(theirs) == len(mine), topic
        for e, g in zip(mine, theirs):
            assert_same(e, g, topic)
    markers = next(m for t, m in got if t.endswith("markers"))["markers"]
    mesh = next(m for m in markers if m["ns"] == "right_mesh")
    assert len(mesh["points"]) == len(model.faces_for("right")) * 3
    js = next(m for t, m in got if t == "/handmesh/left/joint_states")
    assert js["name"][-1] == "left_pinky_dip_flex" and js["header"]["frame_id"] == \
        "handmesh_camera"


def test_sender_thread_drops_oldest_when_behind(model):
    """A burst beyond the send queue drops the oldest frames (counted); the rest go out and
    the caller never waits for DDS."""
    config = Ros2Config(domain_id=domain(4), send_queue=2, markers_hz=30)
    with Ros2Sink(config, model) as sink:
        for p in packets(model, 12):
            sink.write(p)
        assert sink.flush(30)
        assert sink.dropped + sink.frames == 12 and sink.dropped >= 1
        assert sink.writers.errors == 0 and len(sink.publish_ms) == 12


def test_dds_config_is_loopback_only(tmp_path):
    """The XML in effect keeps DDS on 127.0.0.1 with no multicast, and Cyclone's own trace
    of a real participant says it selected only the loopback interface."""
    xml = config_xml()
    assert is_loopback_only(xml) and not is_loopback_only(config_xml(lan=True))
    assert "<AllowMulticast>false</AllowMulticast>" in xml
    trace = tmp_path / "trace.log"
    code = ("from realtime.ros2.dds import participant;"
            f"p = participant({domain(2)}, trace_file={str(trace)!r}); del p")
    subprocess.run([PY, "-c", code], env=ENV, check=True, timeout=60)
    text = trace.read_text()
    selected = [ln for ln in text.splitlines() if "selected interfaces:" in ln]
    assert selected and all(" lo " in ln + " " and "eth" not in ln for ln in selected), selected
    own = [ln.split("ownip:")[1].strip() for ln in text.splitlines() if "ownip:" in ln]
    assert own == ["udp/127.0.0.1"], own
    assert "AllowMulticast/#text: false" in text


def test_dds_unavailable_is_one_line_and_the_demo_goes_on(tmp_path):
    """Without cyclonedds (as if not installed) the library says why in one line, and the
    demo with --ros2 prints one line and goes on with its other outputs, the MCAP recording
    (which needs no DDS) included."""
    out = tmp_path / "x.mcap"
    code = f"""
import sys; sys.modules['cyclonedds'] = None
from realtime.ros2.dds import dds_unavailable
from realtime.ros2 import open_ros2_sink, Ros2Config
print('WHY', dds_unavailable())
assert open_ros2_sink(Ros2Config()) is None
from realtime.cli.demo import main
sys.exit(main(['--headless', '--max-frames', '3', '--no-video', '--output', {str(tmp_path)!r},
               '--ros2', '--record-mcap', {str(out)!r}]))
"""
    r = subprocess.run([PY, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True,
                       timeout=200, check=False)
    assert r.returncode == 0, r.stderr
    why = next(ln for ln in r.stdout.splitlines() if ln.startswith("WHY"))
    assert "cyclonedds is not installed" in why and "pip install" in why
    off = [ln for ln in r.stdout.splitlines() if ln.startswith("ROS 2 output off")]
    assert len(off) == 1 and "the other outputs go on" in off[0]
    assert "ROS 2 output off" in r.stderr  # open_ros2_sink's log line, one
    assert (tmp_path / "hands.jsonl").stat().st_size > 0
    assert len(decoded(out)) > 0


# -- MCAP --------------------------------------------------------------------------------------
def test_mcap_round_trip(tmp_path, model):
    """Every message decodes with mcap_ros2 and equals what was built; log time = stamp."""
    path = tmp_path / "hands.mcap"
    config = McapConfig(path, Ros2Config(markers_hz=12))
    sink = McapSink(config, model)
    sent = packets(model, 6, lost_at=4)
    for p in sent:
        sink.write(p)
    assert not path.exists()  # only the .part until finished
    sink.close()
    sink.close()
    assert path.is_file() and not Path(str(path) + ".part").exists()
    expected = MessageBuilder(config.ros2, model.data.joint_names,
                              {s: model.faces_for(s) for s in ("right", "left")},
                              sink.builder.clock_offset_s)
    want = [(t, ty, msgs.to_plain(ty, m)) for p in sent for t, ty, m in expected.frame(p)]
    got = decoded(path)
    assert len(got) == len(want) == sink.messages
    by_topic: dict = {}
    for schema, channel, message, ros in got:
        by_topic.setdefault(channel.topic, []).append((schema, channel, message, ros))
    for topic in {t for t, _, _ in want}:
        mine = [(ty, m) for t, ty, m in want if t == topic]
        theirs = by_topic[topic]
        assert len(mine) == len(theirs), topic
        for (ty, e), (schema, channel, message, ros) in zip(mine, theirs):
            assert schema.name == msgs.ros_name(ty) and schema.encoding == "ros2msg"
            assert channel.message_encoding == "cdr"
            plain = msgs.to_plain(ty, ros)
            assert_same(e, plain, topic)
            if "header" in plain:
                st = plain["header"]["stamp"]
                assert message.log_time == int(st["sec"]) * 10**9 + int(st["nanosec"])


# -- the demo ----------------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_demo_ros2_headless(tmp_path):
    """``handmesh --ros2 --record-mcap`` on the built-in sample: a subscriber in another
    process receives JointState, and the MCAP file is complete."""
    d = domain(3)
    topics = {f"/handmesh/{s}/joint_states": "sensor_msgs/JointState" for s in ("right", "left")}
    proc, results = start_subscriber(d, topics, quiet_s=3.0, limit_s=180)
    mcap = tmp_path / "hands.mcap"
    r = subprocess.run([PY, "run_demo.py", "--headless", "--max-frames", "6", "--no-video",
                        "--output", str(tmp_path), "--ros2", "--ros2-domain", str(d),
                        "--record-mcap", str(mcap)], cwd=REPO, env=ENV, capture_output=True,
                       text=True, timeout=200, check=False)
    assert r.returncode == 0, r.stderr
    assert "loopback only" in r.stdout
    got, _ = results.get(timeout=200)
    proc.join(10)
    names = {m["name"][0] for _, m in got}
    assert got and names <= {"right_thumb_cmc_flex", "left_thumb_cmc_flex"}
    assert all(m["header"]["frame_id"] == "handmesh_camera" for _, m in got)
    assert {c.topic for _, c, _, _ in decoded(mcap)} >= {"/handmesh/right/joint_states", "/tf"}


@pytest.mark.timeout(240)
def test_sigterm_leaves_a_valid_mcap(tmp_path):
    """A run ended by SIGTERM (as by Ctrl-C) finishes the MCAP file: it reads to the end."""
    from mcap.reader import make_reader

    mcap = tmp_path / "hands.mcap"
    proc = subprocess.Popen([PY, "run_demo.py", "--headless", "--no-video", "--output",
                             str(tmp_path), "--record-mcap", str(mcap)], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = Path(str(mcap) + ".part")
    end = time.monotonic() + 180
    while time.monotonic() < end and not (tmp_path / ".hands.partial.jsonl").exists():
        time.sleep(0.2)
    time.sleep(3.0)  # some frames in
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err  # 128 + SIGTERM, after the same orderly stop as Ctrl-C
    assert mcap.is_file() and not part.exists()
    with open(mcap, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics.message_count > 0
        assert sum(1 for _ in reader.iter_messages()) == summary.statistics.message_count


# -- examples/teleop.py --ros2 -----------------------------------------------------------------
@pytest.mark.timeout(120)
def test_teleop_commands_on_ros2(model):
    """The dead-man-guarded command: enable=true with targets while tracking, enable=false
    and no target on hold; received by another process with the ROS 2 types."""
    from examples.teleop import (
        HOLD,
        TRACK,
        Ros2CommandPublisher,
        TeleopConfig,
        TeleopState,
        commands_from_message,
    )
    from tests.test_teleop import make_hand, message

    state, cfg = TeleopState(), TeleopConfig()
    track = commands_from_message(message(model, [make_hand(model)]), state, cfg, now=10.0)
    hold = commands_from_message(message(model, []), state, cfg, now=11.0)
    assert track.mode == TRACK and hold.mode == HOLD
    d = domain(5)
    topics = {f"/handmesh/teleop/{n}": t for n, t in Ros2CommandPublisher.TYPES.items()}
    proc, results = start_subscriber(d, topics)
    pub = Ros2CommandPublisher(domain_id=d)
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end and not all(pub.writers.matched(t) for t in topics):
            time.sleep(0.05)
        pub(track)
        pub(hold)
        got, _ = results.get(timeout=60)
        proc.join(10)
    finally:
        pub.close()
    enable = [m["data"] for t, m in got if t.endswith("/enable")]
    assert enable == [True, False]
    (pose,) = [m for t, m in got if t.endswith("/wrist_target")]  # none on hold
    np.testing.assert_allclose([pose["pose"]["position"][k] for k in "xyz"],
                               track.wrist_position)
    stamp = pose["header"]["stamp"]
    assert stamp["sec"] + stamp["nanosec"] * 1e-9 == pytest.approx(
        track.time + pub.clock_offset_s, abs=1e-6)
    (fingers,) = [m for t, m in got if t.endswith("/finger_targets")]
    assert fingers["name"][0] == "right_thumb_cmc_flex"
    np.testing.assert_allclose(fingers["position"], track.finger_angles)
    (pinch,) = [m for t, m in got if t.endswith("/pinch_distance")]
    assert pinch["data"] == pytest.approx(track.pinch_m, rel=1e-6)


@pytest.mark.timeout(60)
def test_garbage_on_our_topics_reaches_no_one(model):
    """Another process publishing other types (one with our type's name but another layout)
    on our topic names is not matched by DDS: our subscriber gets only our messages."""
    from realtime.ros2.listen import Listener

    d = domain(6)
    topics = {"/handmesh/right/joint_states": "sensor_msgs/JointState",
              "/handmesh/right/wrist_pose": "geometry_msgs/PoseStamped"}
    listener = Listener(topics, d)
    garbage = subprocess.Popen([PY, str(REPO / "tests" / "ros2_garbage_publisher.py"), str(d),
                                "3"], env=ENV)
    got = []
    with Ros2Sink(Ros2Config(domain_id=d, markers_hz=0, sender_thread=False), model) as sink:
        assert listener.wait_matched(10)
        for p in packets(model, 20, start=time.monotonic()):
            sink.write(p)
            listener.wait(0.1)
            got += listener.take()
            time.sleep(0.1)
        assert garbage.wait(30) == 0
        got += listener.take()
        assert listener.matched() == {t: 1 for t in topics}  # ours only
    assert listener.invalid == 0
    assert len([t for t, _, _ in got if t.endswith("joint_states")]) == 20
    assert all(len(m.name) == 15 for t, m, _ in got if t.endswith("joint_states"))
    assert len([t for t, _, _ in got if t.endswith("wrist_pose")]) == 20
    listener.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_benchmark_prints_its_json():
    """benchmarks/ros2.py runs end to end (two processes, MCAP read back) and ends with its
    JSON line; every frame it published was decoded from the MCAP file. (~15 s: slow.)"""
    import json

    out = subprocess.run([PY, "-m", "benchmarks.ros2", "--quick", "--seconds", "1"], cwd=REPO,
                         env=ENV, capture_output=True, text=True, timeout=280, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("dds_frames_ratio", "dds_publish_ms", "dds_latency_p50_ms",
                "mcap_messages_decoded_ratio", "pinch_f1"):
        assert key in got
    assert got["mcap_messages_decoded_ratio"] == 1.0 and got["frames"] == 30
    assert 0 < got["dds_frames_ratio"] <= 1 and got["dds_publish_ms"] > 0


@pytest.mark.timeout(120)
def test_a_subscriber_that_disappears(model):
    """One of two subscriber processes is killed mid-stream: no write fails, nothing is
    dropped, and the other subscriber still gets every frame."""
    from benchmarks.ros2 import doomed_subscriber

    d = domain(7)
    config = Ros2Config(domain_id=d, markers_hz=0)
    topics = {"/handmesh/right/joint_states": "sensor_msgs/JointState"}
    proc, results = start_subscriber(d, topics, quiet_s=2.0)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    doomed = ctx.Process(target=doomed_subscriber, args=(d, topics, ready), daemon=True)
    doomed.start()
    assert ready.wait(60)
    with Ros2Sink(config, model) as sink:
        end = time.monotonic() + 20
        while time.monotonic() < end and sink.writers.matched(next(iter(topics))) < 2:
            time.sleep(0.05)
        assert sink.writers.matched(next(iter(topics))) == 2
        for i, p in enumerate(packets(model, 20, start=time.monotonic())):
            if i == 5:
                doomed.kill()
                doomed.join(10)
            sink.write(p)
            assert sink.flush(10)
            time.sleep(0.02)
        got, _ = results.get(timeout=60)
        proc.join(10)
        assert sink.writers.errors == 0 and sink.dropped == 0
    assert len(got) == 20
