"""Teleoperation example: turn the hand stream into robot-hand commands, with a dead-man rule.

Start a publisher (``bash scripts/demo.sh --publish tcp://127.0.0.1:5555``, or replay a
recording with ``--source hands.jsonl --loop --publish tcp://127.0.0.1:5555``), then::

    .venv/bin/python examples/teleop.py                 # human-readable, 10 lines a second
    .venv/bin/python examples/teleop.py --jsonl         # one JSON command per line (pipe it)

Each frame of the ``joints`` topic (no vertices: ~1 kB per hand) becomes a :class:`Command`:

* the wrist 6-DoF pose: ``wrist_position`` (meters) and ``wrist_rotation`` (3x3, columns
  are the hand axes) from the message, also as a quaternion (x, y, z, w); expressed in the
  camera frame (OpenCV: x right, y down, z forward), or in the robot base frame if
  :attr:`TeleopConfig.base_from_camera` (a 4x4 rigid transform) is given;
* the 15 finger flexion angles (radians, ``finger_angles``: thumb CMC, MCP, IP, then index,
  middle, ring, pinky MCP, PIP, DIP), passed through unchanged (NaN where the hand model
  lacks a joint);
* the pinch distance: thumb tip (keypoint 4) to index tip (keypoint 8), meters, and the
  publisher's debounced pinch state (``pinched``, the header's ``pinch.engaged``; None
  from a publisher without pinch): a gripper closes on an engage, not on a raw distance.

Dead-man rule (:func:`commands_from_message`): the command is ``"hold"`` (the robot stops
and keeps its position) when

* no usable hand was seen for more than ``lost_timeout_s`` (0.2 s): the hand left the
  image, the tracker lost it, or the stream itself stopped (the loop calls the function with
  ``msg=None`` when nothing arrives);
* the chosen hand's mean uncertainty (``mean_std``, meters) is above ``max_mean_std``;
* its detector score is below ``min_score`` (or missing);
* its arrays are missing or not finite.

Within ``lost_timeout_s`` of a lost hand the last good command is repeated (a dropped frame
does not jerk the robot to a stop); low score or high uncertainty hold at once. Tracking
resumes with the first good frame after that.

The logic is pure (no sockets, explicit clock) so it can be tested and reused;
:func:`run` is the socket loop around it.

ROS 2 (``--ros2``, no ROS install needed; docs/ros2.md): every emitted command is also
published over DDS (loopback only unless ``--ros2-lan``), under ``--ros2-namespace``
(default ``/handmesh/teleop``):

* ``enable`` (``std_msgs/Bool``): the dead-man signal, every command: true to track, false
  to hold; a robot driver should also hold when it stops arriving;
* ``wrist_target`` (``geometry_msgs/PoseStamped``), ``finger_targets``
  (``sensor_msgs/JointState``, ``<side>_<joint>_flex`` in radians) and ``pinch_distance``
  (``std_msgs/Float32``, meters): only while tracking, so a hold publishes no target;
  ``frame_id`` is ``--ros2-frame`` (the camera, or the robot base with ``base_from_camera``).

    .venv/bin/python examples/teleop.py --ros2 --rate 30
    ros2 topic echo /handmesh/teleop/enable      # with CYCLONEDDS_URI as in docs/ros2.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from models.geometry import matrix_to_quaternion
from models.hand_geometry import FINGER_JOINTS
from realtime.stream.protocol import Message

THUMB_TIP, INDEX_TIP = 4, 8  # MediaPipe keypoint indices

TRACK, HOLD = "track", "hold"


@dataclass(frozen=True)
class TeleopConfig:
    """Stream endpoints, which hand drives the robot, and the dead-man thresholds."""

    endpoint: str = "tcp://127.0.0.1:5555"
    topology_endpoint: str | None = None  # None: the PUB port + 1 (docs/protocol.md)
    topic: str = "joints"  # joints only: no vertices needed here
    conflate: bool = True  # latest message only: a control loop wants the newest frame
    hand: str = "right"  # "right", "left" or "any"
    lost_timeout_s: float = 0.2  # no usable hand for longer than this: hold
    max_mean_std: float = 0.01  # meters; mean per-vertex uncertainty above this: hold
    min_score: float = 0.5  # detector confidence below this: hold
    require_uncertainty: bool = False  # hold when the message carries no mean_std
    # 4x4 rigid transform from the camera frame to the robot base frame (row-major);
    # None: commands stay in the camera frame (OpenCV: x right, y down, z forward).
    base_from_camera: tuple[tuple[float, ...], ...] | None = None
    print_hz: float = 10.0  # at most this many output lines a second (mode changes always)

    def __post_init__(self) -> None:
        if self.hand not in ("right", "left", "any"):
            raise ValueError(f"hand must be 'right', 'left' or 'any', got {self.hand!r}")
        if self.lost_timeout_s < 0 or self.max_mean_std <= 0 or self.print_hz <= 0:
            raise ValueError("lost_timeout_s must be >= 0, max_mean_std and print_hz > 0")
        if self.base_from_camera is not None:
            t = np.asarray(self.base_from_camera, dtype=float)
            if t.shape != (4, 4):
                raise ValueError(f"base_from_camera must be 4x4, got shape {t.shape}")
            r = t[:3, :3]
            if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
                raise ValueError("base_from_camera's rotation is not a proper rotation")


@dataclass
class TeleopState:
    """What the dead-man rule remembers between frames."""

    last_good_time: float | None = None  # receiver clock (time.monotonic) of the last good hand
    last_good: Command | None = None
    track_id: int | None = None  # the hand being followed (kept while it is seen)


@dataclass(frozen=True)
class Command:
    """One robot-hand command. ``mode`` is ``"track"`` (follow) or ``"hold"`` (stop)."""

    mode: str
    reason: str
    time: float  # receiver clock, seconds (time.monotonic)
    seq: int = -1  # the message's sequence number (-1: no message)
    track_id: int | None = None
    handedness: str | None = None
    wrist_position: np.ndarray | None = None  # (3,) meters
    wrist_rotation: np.ndarray | None = None  # (3,3), columns: hand axes
    wrist_quaternion: np.ndarray | None = None  # (4,) x, y, z, w
    finger_angles: np.ndarray | None = None  # (15,) radians, order of FINGER_JOINTS
    pinch_m: float | None = None  # thumb-index distance, meters (the stream's pinch distance)
    stale: bool = False  # a repeated command (hand missing for less than lost_timeout_s)
    extra: dict = field(default_factory=dict)
    pinched: bool | None = None  # the stream's pinch state (hysteresis + debounce)

    @property
    def moving(self) -> bool:
        return self.mode == TRACK

    def to_json(self) -> dict:
        def arr(a):
            return None if a is None else [None if not math.isfinite(float(x)) else
                                           round(float(x), 6) for x in np.ravel(a)]
        return {
            "mode": self.mode, "reason": self.reason, "time": round(self.time, 6),
            "seq": self.seq, "track_id": self.track_id, "handedness": self.handedness,
            "stale": self.stale,
            "wrist_position": arr(self.wrist_position),
            "wrist_rotation": arr(self.wrist_rotation),  # row-major 3x3
            "wrist_quaternion_xyzw": arr(self.wrist_quaternion),
            "finger_angles": None if self.finger_angles is None else dict(
                zip(FINGER_JOINTS, arr(self.finger_angles))),
            "pinch_m": None if self.pinch_m is None else round(self.pinch_m, 6),
            "pinched": self.pinched,
        }


# -- pure logic ---------------------------------------------------------------------------------
def pinch_distance(joints: np.ndarray) -> float:
    """Thumb tip to index tip, in the units of ``joints`` (meters on the stream)."""
    j = np.asarray(joints, dtype=np.float64).reshape(-1, 3)
    return float(np.linalg.norm(j[THUMB_TIP] - j[INDEX_TIP]))


def choose_hand(hands: list[dict], state: TeleopState, config: TeleopConfig) -> dict | None:
    """The hand to follow: the tracked one if still there, else the best-scoring candidate."""
    candidates = [h for h in hands if config.hand == "any" or h.get("handedness") == config.hand]
    if not candidates:
        return None
    for h in candidates:
        if state.track_id is not None and h.get("track_id") == state.track_id:
            return h
    return max(candidates, key=lambda h: h.get("score") if h.get("score") is not None
               else -1.0)


def _quality_problem(hand: dict, config: TeleopConfig) -> str | None:
    """Why this hand must not drive the robot, or None."""
    score = hand.get("score")
    if score is None or not math.isfinite(score) or score < config.min_score:
        return f"low score ({score} < {config.min_score})"
    std = hand.get("mean_std")
    if std is None or not math.isfinite(std):
        if config.require_uncertainty:
            return "no uncertainty in the message"
    elif std > config.max_mean_std:
        return f"high uncertainty (mean_std {std * 1000:.1f} mm > " \
               f"{config.max_mean_std * 1000:.1f} mm)"
    for name, shape in (("joints", (21, 3)), ("wrist_position", (3,)),
                        ("wrist_rotation", (3, 3))):
        a = hand.get(name)
        if a is None or np.shape(a) != shape:
            return f"no {name} {shape} in the message"
        if not np.all(np.isfinite(a)):
            return f"non-finite {name}"
    return None


def commands_from_message(msg: Message | None, state: TeleopState, config: TeleopConfig,
                          now: float | None = None) -> Command:
    """The command for one message (``None``: nothing arrived) under the dead-man rule.

    ``now`` is the receiver's clock (``time.monotonic()`` by default): the loss timeout is
    measured where the robot is, so it also fires when the stream itself stops. Updates
    ``state``.
    """
    now = time.monotonic() if now is None else float(now)
    seq = msg.seq if msg is not None else -1
    hand = choose_hand(msg.hands, state, config) if msg is not None else None
    problem = "no hand" if hand is None else _quality_problem(hand, config)
    if hand is not None and problem is None:
        position = np.asarray(hand["wrist_position"], dtype=np.float64)
        rotation = np.asarray(hand["wrist_rotation"], dtype=np.float64)
        if config.base_from_camera is not None:
            t = np.asarray(config.base_from_camera, dtype=np.float64)
            position = t[:3, :3] @ position + t[:3, 3]
            rotation = t[:3, :3] @ rotation
        angles = hand.get("finger_angles")
        angles = (np.asarray(angles, dtype=np.float64).copy() if angles is not None
                  else np.full(len(FINGER_JOINTS), np.nan))
        pinch = hand.get("pinch") or {}
        # the stream's pinch distance (learned near a pinch, docs/pinch.md) when it has one,
        # so that pinch_m and pinched agree; the joints' tips for a stream without pinch
        distance = (float(pinch["distance_m"]) if pinch.get("distance_m") is not None
                    else pinch_distance(hand["joints"]))
        cmd = Command(TRACK, "ok", now, seq, hand.get("track_id"), hand.get("handedness"),
                      position, rotation, matrix_to_quaternion(rotation), angles,
                      distance, pinched=pinch.get("engaged"))
        state.last_good_time, state.last_good = now, cmd
        state.track_id = hand.get("track_id")
        return cmd
    if hand is not None:  # a hand is there but not trustworthy: hold at once
        return Command(HOLD, problem, now, seq, hand.get("track_id"), hand.get("handedness"))
    # no hand: repeat the last good command for lost_timeout_s, then hold
    if (state.last_good is not None and state.last_good_time is not None
            and now - state.last_good_time <= config.lost_timeout_s):
        last = state.last_good
        return Command(TRACK, "hand missing, within the timeout", now, seq, last.track_id,
                       last.handedness, last.wrist_position, last.wrist_rotation,
                       last.wrist_quaternion, last.finger_angles, last.pinch_m, stale=True,
                       pinched=last.pinched)
    state.track_id = None
    lost_for = (f" for {now - state.last_good_time:.2f} s" if state.last_good_time is not None
                else "")
    what = "no message" if msg is None else "no hand"
    return Command(HOLD, f"{what}{lost_for} (timeout {config.lost_timeout_s} s)", now, seq)


def format_command(cmd: Command) -> str:
    """One human-readable line."""
    if cmd.mode == HOLD:
        return f"HOLD  #{cmd.seq}: {cmd.reason}"
    p, q = cmd.wrist_position, cmd.wrist_quaternion
    ang = np.degrees(cmd.finger_angles)
    fingers = " ".join("--" if not math.isfinite(a) else f"{a:3.0f}" for a in ang)
    return (f"TRACK #{cmd.seq} {cmd.handedness}#{cmd.track_id}{' (stale)' if cmd.stale else ''}"
            f" wrist ({p[0]:+.3f},{p[1]:+.3f},{p[2]:+.3f}) m quat ({q[0]:+.2f},{q[1]:+.2f},"
            f"{q[2]:+.2f},{q[3]:+.2f}) pinch {cmd.pinch_m * 1000:5.1f} mm"
            f"{' PINCHED' if cmd.pinched else ''} fingers deg [{fingers}]")


# -- the socket loop ----------------------------------------------------------------------------
class RateLimiter:
    """Lets a command through at most ``hz`` times a second, and always on a mode change."""

    def __init__(self, hz: float) -> None:
        self.period = 1.0 / hz
        self._next = -math.inf
        self._mode: str | None = None

    def __call__(self, cmd: Command) -> bool:
        if cmd.mode != self._mode or cmd.time >= self._next:
            self._mode = cmd.mode
            self._next = cmd.time + self.period
            return True
        return False


def run(config: TeleopConfig, emit: Callable[[Command], None] | None = None,
        max_commands: int | None = None, stop: Callable[[], bool] | None = None,
        client=None) -> int:
    """Subscribe and call ``emit`` with every command (rate-limited by ``config.print_hz``).

    Polls at least every ``lost_timeout_s / 2`` so a dead stream turns into ``hold``.
    Stops after ``max_commands`` emitted commands or when ``stop()`` is true. Returns the
    number of commands emitted. ``client``: an open :class:`realtime.stream.client.HandClient`
    (one is made from ``config`` otherwise).
    """
    from realtime.stream.client import HandClient  # needs pyzmq; the pure logic above does not

    emit = emit or (lambda c: print(format_command(c), flush=True))
    own = client is None
    if own:
        client = HandClient(config.endpoint, (config.topic,), config.topology_endpoint,
                            conflate=config.conflate)
    state, limiter, n = TeleopState(), RateLimiter(config.print_hz), 0
    poll_ms = max(10, int(config.lost_timeout_s * 500))
    try:
        while (max_commands is None or n < max_commands) and not (stop and stop()):
            msg = client.recv(timeout_ms=poll_ms)
            cmd = commands_from_message(msg, state, config)
            if limiter(cmd):
                emit(cmd)
                n += 1
    finally:
        if own:
            client.close()
    return n


# -- ROS 2 ------------------------------------------------------------------------------------
def ros2_messages(cmd: Command, namespace: str = "/handmesh/teleop",
                  frame_id: str = "handmesh_camera",
                  clock_offset_s: float = 0.0) -> list[tuple[str, str, dict]]:
    """A command as ROS 2 messages ``(topic, type, message)``: ``enable`` always; the wrist
    target, finger targets and pinch only while tracking. Stamps: the command's time plus
    ``clock_offset_s`` (wall minus monotonic clock: ROS time)."""
    ns = namespace.rstrip("/")
    out = [(f"{ns}/enable", "std_msgs/Bool", {"data": cmd.mode == TRACK})]
    if cmd.mode != TRACK or cmd.wrist_position is None:
        return out
    t = round((cmd.time + clock_offset_s) * 1e9)
    header = {"stamp": {"sec": t // 10**9, "nanosec": t % 10**9}, "frame_id": frame_id}
    p, q = cmd.wrist_position, cmd.wrist_quaternion
    out.append((f"{ns}/wrist_target", "geometry_msgs/PoseStamped", {"header": header, "pose": {
        "position": {"x": float(p[0]), "y": float(p[1]), "z": float(p[2])},
        "orientation": {"x": float(q[0]), "y": float(q[1]), "z": float(q[2]),
                        "w": float(q[3])}}}))
    side = cmd.handedness or "hand"
    out.append((f"{ns}/finger_targets", "sensor_msgs/JointState", {
        "header": header, "name": [f"{side}_{j}_flex" for j in FINGER_JOINTS],
        "position": np.asarray(cmd.finger_angles, dtype=np.float64)}))
    if cmd.pinch_m is not None:
        out.append((f"{ns}/pinch_distance", "std_msgs/Float32", {"data": float(cmd.pinch_m)}))
    return out


class Ros2CommandPublisher:
    """Publishes commands as :func:`ros2_messages` on DDS (``realtime.ros2``)."""

    TYPES: ClassVar[dict[str, str]] = {"enable": "std_msgs/Bool", "wrist_target": "geometry_msgs/PoseStamped",
             "finger_targets": "sensor_msgs/JointState", "pinch_distance": "std_msgs/Float32"}

    def __init__(self, namespace: str = "/handmesh/teleop", frame_id: str = "handmesh_camera",
                 domain_id: int = 0, lan: bool = False) -> None:
        from realtime.ros2.dds import DdsWriters, TopicSpec

        self.namespace, self.frame_id = namespace.rstrip("/"), frame_id
        self.clock_offset_s = time.time() - time.monotonic()
        self.writers = DdsWriters([TopicSpec(f"{self.namespace}/{n}", t)
                                   for n, t in self.TYPES.items()], domain_id, lan)

    def __call__(self, cmd: Command) -> None:
        from realtime.ros2.msgs import encode

        for topic, type_, message in ros2_messages(cmd, self.namespace, self.frame_id,
                                                   self.clock_offset_s):
            self.writers.write(topic, encode(type_, message))

    def close(self) -> None:
        self.writers.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", default=TeleopConfig.endpoint)
    p.add_argument("--topology-endpoint", default=None, help="default: the next port")
    p.add_argument("--hand", default=TeleopConfig.hand, choices=("right", "left", "any"))
    p.add_argument("--lost-timeout", type=float, default=TeleopConfig.lost_timeout_s,
                   help="seconds without a usable hand before holding (default 0.2)")
    p.add_argument("--max-std-mm", type=float, default=TeleopConfig.max_mean_std * 1000,
                   help="hold above this mean per-vertex uncertainty, mm (default 10)")
    p.add_argument("--min-score", type=float, default=TeleopConfig.min_score)
    p.add_argument("--require-uncertainty", action="store_true",
                   help="hold when a message carries no mean_std")
    p.add_argument("--rate", type=float, default=TeleopConfig.print_hz,
                   help="output lines per second at most (mode changes always print)")
    p.add_argument("--jsonl", action="store_true", help="one JSON command per line")
    p.add_argument("--count", type=int, default=None, help="stop after N commands")
    p.add_argument("--ros2", action="store_true",
                   help="also publish each command as ROS 2 topics over DDS (docs/ros2.md)")
    p.add_argument("--ros2-namespace", default="/handmesh/teleop")
    p.add_argument("--ros2-frame", default="handmesh_camera")
    p.add_argument("--ros2-domain", type=int, default=0)
    p.add_argument("--ros2-lan", action="store_true", help="DDS on the network, not loopback")
    a = p.parse_args(argv)
    config = TeleopConfig(a.endpoint, a.topology_endpoint, hand=a.hand,
                          lost_timeout_s=a.lost_timeout, max_mean_std=a.max_std_mm / 1000,
                          min_score=a.min_score, require_uncertainty=a.require_uncertainty,
                          print_hz=a.rate)
    if a.jsonl:
        def show(c: Command) -> None:
            print(json.dumps(c.to_json()), flush=True)
    else:
        def show(c: Command) -> None:
            print(format_command(c), flush=True)
    ros = None
    if a.ros2:
        from realtime.ros2.dds import dds_unavailable

        why = dds_unavailable()
        if why:
            print(f"ROS 2 output off: {why}", file=sys.stderr)
        else:
            ros = Ros2CommandPublisher(a.ros2_namespace, a.ros2_frame, a.ros2_domain,
                                       a.ros2_lan)

    def emit(c: Command) -> None:
        show(c)
        if ros is not None:
            ros(c)

    try:
        run(config, emit, a.count)
    except KeyboardInterrupt:
        pass
    finally:
        if ros is not None:
            ros.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
