"""examples/teleop.py: commands from real encoded messages, the dead-man rule, and a real
publisher feeding the socket loop on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from examples import teleop
from examples.teleop import HOLD, TRACK, TeleopConfig, TeleopState, commands_from_message
from models.hand_geometry import FINGER_JOINTS, finger_angles, wrist_frame
from models.hand_model import HandModel
from realtime.stream import protocol
from realtime.types import Frame, HandMesh, Packet


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def make_hand(model: HandModel, score=0.95, std=0.004, track=1, side="right") -> HandMesh:
    rng = np.random.default_rng(track)
    pose = rng.normal(0, 0.3, (model.num_joints, 3))
    shape = rng.normal(0, 0.5, model.num_shape)
    out = model.forward(pose[None], shape[None], trans=np.array([[0.02, -0.01, 0.45]]))
    return HandMesh(vertices=out.vertices[0], joints=out.keypoints[0],
                    vertex_std=np.full(model.num_vertices, std), pose=pose, shape=shape,
                    keypoints_2d=rng.uniform(0, 640, (21, 2)), handedness=side, score=score,
                    track_id=track, timestamp=1.0, frame_index=3)


def message(model: HandModel, hands=(), seq=1, topic=protocol.TOPIC_JOINTS) -> protocol.Message:
    """Encode like the publisher does (joints topic: no mesh arrays), then decode."""
    names = model.data.joint_names
    encoded = [(protocol.hand_header(h), {k: v for k, v in protocol.hand_arrays(h, names).items()
                                          if k not in protocol.MESH_ARRAYS}) for h in hands]
    raw = protocol.encode(topic, {"seq": seq, "t_capture": 0.0, "hands": []}, encoded)
    return protocol.decode(raw)


CFG = TeleopConfig(lost_timeout_s=0.2, max_mean_std=0.01, min_score=0.5)


def test_command_fields(model):
    hand = make_hand(model)
    msg = message(model, [hand])
    cmd = commands_from_message(msg, TeleopState(), CFG, now=10.0)
    assert cmd.mode == TRACK and cmd.moving and not cmd.stale
    joints = np.asarray(hand.joints, dtype=np.float32).astype(np.float64)
    assert cmd.pinch_m == pytest.approx(np.linalg.norm(joints[4] - joints[8]), abs=1e-6)
    assert cmd.pinch_m > 0
    expected = finger_angles(hand.pose, model.data.joint_names).astype(np.float32)
    np.testing.assert_array_equal(cmd.finger_angles, expected)
    assert len(cmd.finger_angles) == 15 and np.isfinite(cmd.finger_angles).all()
    np.testing.assert_allclose(cmd.wrist_position, joints[0], atol=1e-7)
    np.testing.assert_allclose(cmd.wrist_rotation, wrist_frame(hand.joints), atol=1e-6)
    # the quaternion is the same rotation
    x, y, z, w = cmd.wrist_quaternion
    r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    np.testing.assert_allclose(r, cmd.wrist_rotation, atol=1e-5)
    js = cmd.to_json()
    assert js["mode"] == "track" and list(js["finger_angles"]) == list(FINGER_JOINTS)


def test_command_carries_the_streams_pinch_state(model):
    from dataclasses import replace

    from realtime.types import Pinch

    pinched = replace(make_hand(model), pinch=Pinch(0.01, True, True))
    cmd = commands_from_message(message(model, [pinched]), TeleopState(), CFG, now=0.0)
    assert cmd.pinched is True and cmd.to_json()["pinched"] is True
    assert cmd.pinch_m == pytest.approx(0.01)  # the stream's distance, as its state
    assert "PINCHED" in teleop.format_command(cmd)
    state = TeleopState()
    plain = commands_from_message(message(model, [make_hand(model)]), state, CFG, now=0.0)
    assert plain.pinched is None and "PINCHED" not in teleop.format_command(plain)
    stale = commands_from_message(None, TeleopState(last_good=cmd, last_good_time=0.0), CFG,
                                  now=0.1)
    assert stale.stale and stale.pinched is True  # the repeated command keeps it


def test_base_from_camera_transform(model):
    flip = ((1, 0, 0, 0.1), (0, -1, 0, 0.0), (0, 0, -1, 0.5), (0, 0, 0, 1))
    hand = make_hand(model)
    cam = commands_from_message(message(model, [hand]), TeleopState(), CFG, now=0.0)
    base = commands_from_message(message(model, [hand]), TeleopState(),
                                 TeleopConfig(base_from_camera=flip), now=0.0)
    t = np.asarray(flip, dtype=float)
    np.testing.assert_allclose(base.wrist_position, t[:3, :3] @ cam.wrist_position + t[:3, 3])
    np.testing.assert_allclose(base.wrist_rotation, t[:3, :3] @ cam.wrist_rotation)
    assert base.pinch_m == pytest.approx(cam.pinch_m)


def test_dead_man_hand_loss_timeout_and_resume(model):
    state = TeleopState()
    good = message(model, [make_hand(model)], seq=1)
    empty = message(model, [], seq=2)
    assert commands_from_message(good, state, CFG, now=1.0).mode == TRACK
    # lost for less than the timeout: the last command is repeated, marked stale
    held = commands_from_message(empty, state, CFG, now=1.15)
    assert held.mode == TRACK and held.stale and held.pinch_m is not None
    # past the timeout: hold
    stop = commands_from_message(empty, state, CFG, now=1.25)
    assert stop.mode == HOLD and "no hand" in stop.reason
    # nothing arrives at all (the stream died): also hold
    assert commands_from_message(None, state, CFG, now=1.3).mode == HOLD
    # the hand comes back: tracking resumes
    back = commands_from_message(message(model, [make_hand(model)], seq=3), state, CFG, now=1.4)
    assert back.mode == TRACK and not back.stale


def test_dead_man_never_started_holds(model):
    cmd = commands_from_message(message(model, []), TeleopState(), CFG, now=0.0)
    assert cmd.mode == HOLD


def test_dead_man_high_uncertainty_and_low_score(model):
    state = TeleopState()
    assert commands_from_message(message(model, [make_hand(model)]), state, CFG,
                                 now=0.0).mode == TRACK
    # high uncertainty holds at once, even within the loss timeout
    unsure = commands_from_message(message(model, [make_hand(model, std=0.05)]), state, CFG,
                                   now=0.01)
    assert unsure.mode == HOLD and "uncertainty" in unsure.reason
    low = commands_from_message(message(model, [make_hand(model, score=0.2)]), state, CFG,
                                now=0.02)
    assert low.mode == HOLD and "score" in low.reason
    nan_score = commands_from_message(message(model, [make_hand(model, score=float("nan"))]),
                                      state, CFG, now=0.03)
    assert nan_score.mode == HOLD  # sent as null: unknown counts as low
    # good again: resumes
    assert commands_from_message(message(model, [make_hand(model)]), state, CFG,
                                 now=0.04).mode == TRACK


def test_missing_uncertainty_policy(model):
    hand = make_hand(model)
    msg = message(model, [hand])
    msg.hands[0]["mean_std"] = None
    assert commands_from_message(msg, TeleopState(), CFG, now=0.0).mode == TRACK
    strict = TeleopConfig(require_uncertainty=True)
    assert commands_from_message(msg, TeleopState(), strict, now=0.0).mode == HOLD


def test_hand_selection(model):
    left = make_hand(model, side="left", track=2, score=0.99)
    right = make_hand(model, side="right", track=1, score=0.7)
    msg = message(model, [left, right])
    assert commands_from_message(msg, TeleopState(), CFG, now=0.0).track_id == 1
    only_left = message(model, [left])
    assert commands_from_message(only_left, TeleopState(), CFG, now=0.0).mode == HOLD
    anyhand = TeleopConfig(hand="any")
    assert commands_from_message(msg, TeleopState(), anyhand, now=0.0).track_id == 2


def test_rate_limiter():
    lim = teleop.RateLimiter(10.0)

    def mk(mode, t):
        return teleop.Command(mode, "", t)

    assert lim(mk(TRACK, 0.0))
    assert not lim(mk(TRACK, 0.05))
    assert lim(mk(HOLD, 0.06))  # a mode change always passes
    assert lim(mk(HOLD, 0.2))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_end_to_end_with_publisher(model):
    from realtime.stream.publisher import Publisher, PublisherConfig

    ep, topo = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    config = TeleopConfig(ep, topo, lost_timeout_s=0.2, print_hz=1000.0)
    commands: list = []
    stop = threading.Event()
    hand = make_hand(model)
    with Publisher(PublisherConfig(ep, topo), model) as pub:
        loop = threading.Thread(target=teleop.run, args=(config, commands.append),
                                kwargs={"stop": stop.is_set}, daemon=True)
        loop.start()
        deadline = time.monotonic() + 4.0
        i = 0
        # hands until a few tracked commands arrived (the first messages may precede the
        # subscription), then empty frames until the dead-man rule holds
        while time.monotonic() < deadline and sum(c.mode == TRACK and not c.stale
                                                  for c in commands) < 5:
            i += 1
            pub.write(Packet(Frame(np.zeros((48, 64, 3), np.uint8), i, 0.0, "cam"),
                             time.monotonic(), (), (hand,)))
            time.sleep(0.01)
        while time.monotonic() < deadline and (not commands or commands[-1].mode != HOLD):
            i += 1
            pub.write(Packet(Frame(np.zeros((48, 64, 3), np.uint8), i, 0.0, "cam"),
                             time.monotonic(), (), ()))
            time.sleep(0.01)
        stop.set()
        loop.join(timeout=2.0)
    assert not loop.is_alive()
    tracked = [c for c in commands if c.mode == TRACK and not c.stale]
    assert len(tracked) >= 5
    joints = np.asarray(hand.joints, dtype=np.float32).astype(np.float64)
    assert tracked[-1].pinch_m == pytest.approx(np.linalg.norm(joints[4] - joints[8]), abs=1e-6)
    assert np.isfinite(tracked[-1].finger_angles).all()
    assert commands[-1].mode == HOLD
    seqs = [c.seq for c in tracked]
    assert seqs == sorted(seqs)
