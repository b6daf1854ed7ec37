"""Hands -> ROS 2 messages: the topics, their names and what each frame publishes.

Per hand (``<ns>`` = :attr:`Ros2Config.namespace`, ``<side>`` = right/left, the person's
anatomical side), every published frame, stamped with the frame's capture time:

==================================  =================================  =======================
topic                               type                               content
==================================  =================================  =======================
``<ns>/<side>/joint_states``        ``sensor_msgs/msg/JointState``     15 finger flexions, rad
``<ns>/<side>/wrist_pose``          ``geometry_msgs/msg/PoseStamped``  wrist in the camera
``<ns>/<side>/keypoints``           ``geometry_msgs/msg/PoseArray``    21 MediaPipe keypoints
``<ns>/<side>/pinch_distance``      ``std_msgs/msg/Float32``           thumb-index tips, m
``<ns>/<side>/pinch``               ``std_msgs/msg/Bool``              pinch engaged (when the
                                                                       hand carries a pinch)
``<ns>/markers``                    ``visualization_msgs/msg/          mesh (TRIANGLE_LIST) and
                                    MarkerArray``                      skeleton (LINE_LIST)
``/tf``                             ``tf2_msgs/msg/TFMessage``         camera -> ``<side>_wrist``
``<ns>/<side>/xr_joints``           ``geometry_msgs/msg/PoseArray``    26 OpenXR joints (only
                                                                       with ``openxr=True``)
==================================  =================================  =======================

``xr_joints`` (``Ros2Config.openxr``): the 26 ``XR_EXT_hand_tracking`` joints of
``realtime.stream.openxr`` in ``XrHandJointEXT`` order, poses in the camera frame like the
keypoints (OpenCV axes; each joint's -Z along its bone, +Y out of the back of the hand, as
OpenXR defines them); a PoseArray has no room for the radii (the stream's ``xr_joints``
carries them).

Joint names: ``<side>_<joint>_flex`` for the 15 :data:`models.hand_geometry.FINGER_JOINTS`
(``right_thumb_cmc_flex`` ... ``right_pinky_dip_flex``): the flexion-axis component of the
joint's anatomical axis-angle, 0 straight, positive towards the palm (NaN where the model
lacks the joint). Positions are in meters in the camera frame (OpenCV axes: x right, y
down, z forward), ``frame_id`` = :attr:`Ros2Config.frame_id`.

Stamps: the capture time on the system clock (``CLOCK_REALTIME``, what ROS time is): the
loop's monotonic capture time plus the offset between the two clocks taken once at start.

A lost hand publishes nothing: its topics simply get no new message (a controller must
use a timeout, as ``examples/teleop.py`` does), its TF frame is not refreshed (lookups at
later times fail, as they should), and its markers are deleted once (``DELETE``) and carry
a short ``lifetime`` besides, so RViz clears them even if that message is missed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.hand_geometry import FINGER_JOINTS, finger_angles, wrist_frame
from models.topology import KEYPOINT_PARENTS, Keypoint
from realtime.ros2.dds import TopicSpec
from realtime.ros2.msgs import MARKER
from realtime.stream.openxr import openxr_camera_poses
from realtime.types import SIDES, HandMesh, Packet

THUMB_TIP, INDEX_TIP = int(Keypoint.THUMB_TIP), int(Keypoint.INDEX_TIP)
MARKER_COLORS = ("uncertainty", "flat", "texture")
#: The skeleton's 20 bones as (child, parent) keypoint pairs.
BONES = tuple((c, int(p)) for c, p in enumerate(KEYPOINT_PARENTS) if p >= 0)


@dataclass(frozen=True)
class Ros2Config:
    """The ROS 2 output (``--ros2``): names, frames, rates and the DDS domain.

    ``namespace``: prefix of every topic but ``/tf``; ``frame_id``: the camera frame the
    poses are in; ``rate_hz``: publish at most this many frames a second (None: every
    frame); ``markers_hz``: the MarkerArray at most this often (0: no markers; the mesh is
    ~190 kB per hand); ``marker_colors``: mesh colours from the predicted uncertainty (turbo
    scale, blue = sure), one flat colour per hand, or the fused texture (``--texture``);
    ``tf_keypoints``: also a TF frame per keypoint (``<side>_<keypoint>``); ``lan``: DDS on
    the network instead of loopback only (``realtime.ros2.dds``); ``qos_depth``: keep-last
    history of each topic (``/tf``: 100, as tf2's broadcaster); ``sender_thread``: build
    and write in a thread of the sink's own, so the loop only hands the hands over
    (``send_queue`` frames at most, the oldest dropped when the sender falls behind).
    """

    namespace: str = "/handmesh"
    domain_id: int = 0
    frame_id: str = "handmesh_camera"
    lan: bool = False
    rate_hz: float | None = None
    markers_hz: float = 10.0
    marker_colors: str = "uncertainty"
    marker_lifetime_s: float = 0.5
    tf_keypoints: bool = False
    openxr: bool = False  # also the 26 OpenXR joints as a PoseArray per side
    qos_depth: int = 10
    sender_thread: bool = True
    send_queue: int = 4
    joint_states_topic: str = "joint_states"
    wrist_pose_topic: str = "wrist_pose"
    keypoints_topic: str = "keypoints"
    pinch_distance_topic: str = "pinch_distance"
    pinch_topic: str = "pinch"
    markers_topic: str = "markers"
    xr_joints_topic: str = "xr_joints"
    tf_topic: str = "/tf"

    def __post_init__(self) -> None:
        if not self.namespace.startswith("/") or (self.namespace.endswith("/")
                                                  and self.namespace != "/"):
            raise ValueError(f"namespace must start with '/' and not end with one, "
                             f"got {self.namespace!r}")
        if not 0 <= self.domain_id <= 232:
            raise ValueError(f"domain_id must be 0..232, got {self.domain_id}")
        if not self.frame_id or any(ch.isspace() for ch in self.frame_id):
            raise ValueError(f"frame_id must be a frame name, got {self.frame_id!r}")
        if self.rate_hz is not None and self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0 (or None), got {self.rate_hz}")
        if self.markers_hz < 0 or self.marker_lifetime_s < 0:
            raise ValueError("markers_hz and marker_lifetime_s must be >= 0")
        if self.marker_colors not in MARKER_COLORS:
            raise ValueError(f"marker_colors must be one of {MARKER_COLORS}, "
                             f"got {self.marker_colors!r}")
        if self.send_queue < 1:
            raise ValueError(f"send_queue must be at least 1, got {self.send_queue}")
        if self.qos_depth < 1:
            raise ValueError(f"qos_depth must be at least 1, got {self.qos_depth}")

    def topic(self, name: str, side: str | None = None) -> str:
        """The full ROS 2 name of a topic (``/handmesh/right/joint_states``)."""
        if name.startswith("/"):
            return name
        ns = self.namespace.rstrip("/")
        return f"{ns}/{side}/{name}" if side else f"{ns}/{name}"

    def topics(self) -> list[TopicSpec]:
        """Every topic this output writes, with its type and history depth."""
        per_side = ((self.joint_states_topic, "sensor_msgs/JointState"),
                    (self.wrist_pose_topic, "geometry_msgs/PoseStamped"),
                    (self.keypoints_topic, "geometry_msgs/PoseArray"),
                    (self.pinch_distance_topic, "std_msgs/Float32"),
                    (self.pinch_topic, "std_msgs/Bool"))
        if self.openxr:
            per_side += ((self.xr_joints_topic, "geometry_msgs/PoseArray"),)
        out = [TopicSpec(self.topic(n, s), t, self.qos_depth) for s in SIDES for n, t in per_side]
        out.append(TopicSpec(self.topic(self.markers_topic), "visualization_msgs/MarkerArray",
                             self.qos_depth))
        out.append(TopicSpec(self.tf_topic, "tf2_msgs/TFMessage", max(100, self.qos_depth)))
        return out

    def joint_names(self, side: str) -> list[str]:
        return [f"{side}_{j}_flex" for j in FINGER_JOINTS]


def quaternion(r: list) -> tuple[float, float, float, float]:
    """A rotation matrix (3x3 nested list) -> unit quaternion (x, y, z, w), w >= 0.

    ``models.geometry.matrix_to_quaternion`` (Shepperd's method) in plain floats: NumPy's
    per-call overhead made that ~60 µs per hand, a tenth of the frame's publish budget.
    """
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = r
    t = (1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22, 1 + m00 + m11 + m22)
    k = max(range(4), key=t.__getitem__)
    cand = ((t[0], m01 + m10, m02 + m20, m21 - m12), (m01 + m10, t[1], m12 + m21, m02 - m20),
            (m02 + m20, m12 + m21, t[2], m10 - m01), (m21 - m12, m02 - m20, m10 - m01, t[3]))
    q = cand[k]
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]) or 1.0
    s = -1.0 / n if q[3] < 0 else 1.0 / n
    return q[0] * s, q[1] * s, q[2] * s, q[3] * s


def _stamp(t: float) -> dict:
    ns = round(t * 1e9)
    return {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}


def _pose(position, quaternion=(0.0, 0.0, 0.0, 1.0)) -> dict:
    p, q = position, quaternion
    return {"position": {"x": float(p[0]), "y": float(p[1]), "z": float(p[2])},
            "orientation": {"x": float(q[0]), "y": float(q[1]), "z": float(q[2]),
                            "w": float(q[3])}}


class MessageBuilder:
    """Builds each frame's messages (``frame(packet)``) as ``(topic, type, message)``,
    messages being dicts for :func:`realtime.ros2.msgs.encode`. Keeps what a rate limit
    and the marker deletion need (which sides were seen), so use one per output."""

    def __init__(self, config: Ros2Config, joint_names=(), faces_for: dict | None = None,
                 clock_offset_s: float | None = None, xr=None) -> None:
        self.config = config
        #: ``realtime.stream.openxr.XrJointTracker`` for ``config.openxr`` (None: no topic)
        self.xr = xr if config.openxr else None
        self.pose_joint_names = tuple(joint_names)
        self.faces_for = faces_for or {}
        #: wall clock minus monotonic clock: stamps are capture times on the system clock
        self.clock_offset_s = (time.time() - time.monotonic() if clock_offset_s is None
                               else clock_offset_s)
        self._names = {s: config.joint_names(s) for s in SIDES}
        self._topics = {s: {n: config.topic(n, s) for n in (
            config.joint_states_topic, config.wrist_pose_topic, config.keypoints_topic,
            config.pinch_distance_topic, config.pinch_topic, config.xr_joints_topic)}
            for s in SIDES}
        self._markers_topic = config.topic(config.markers_topic)
        self._next_frame = -np.inf
        self._next_markers = -np.inf
        self._marked: set[str] = set()  # sides whose markers RViz shows now

    def stamp_s(self, packet: Packet) -> float:
        """The header stamp of a packet, seconds on the system clock."""
        return packet.t_capture + self.clock_offset_s

    def frame(self, packet: Packet) -> list[tuple[str, str, dict]]:
        """The messages of one packet (empty when the rate limit skips it)."""
        return self.messages(packet.t_capture, packet.hands)

    def messages(self, t_capture: float, hands_in) -> list[tuple[str, str, dict]]:
        """The messages of the hands ``hands_in`` captured at ``t_capture`` (monotonic s)."""
        c = self.config
        t = t_capture
        if c.rate_hz is not None:
            if t < self._next_frame:
                return []
            # the next slot one period on, never more than half a period in the past
            self._next_frame = max(self._next_frame, t - 0.5 / c.rate_hz) + 1.0 / c.rate_hz
        stamp = _stamp(t + self.clock_offset_s)
        header = {"stamp": stamp, "frame_id": c.frame_id}
        out: list[tuple[str, str, dict]] = []
        transforms = []
        hands = {}
        for hand in hands_in:  # one per side: the first (best) if two claim one side
            hands.setdefault(hand.handedness, hand)
        xr = dict(zip(hands, self.xr(list(hands.values())))) if self.xr is not None else {}
        for side, hand in hands.items():
            out.extend(self._hand(side, hand, header, transforms))
            if xr.get(side) is not None:
                out.append((self._topics[side][c.xr_joints_topic], "geometry_msgs/PoseArray",
                            {"header": header, "poses": openxr_camera_poses(xr[side])}))
        if transforms:
            out.append((c.tf_topic, "tf2_msgs/TFMessage", {"transforms": transforms}))
        if c.markers_hz > 0 and (t >= self._next_markers or set(hands) != self._marked):
            markers = self._markers(hands, header)
            if markers:
                out.append((self._markers_topic, "visualization_msgs/MarkerArray",
                            {"markers": markers}))
            self._next_markers = t + 1.0 / c.markers_hz
        return out

    def _hand(self, side: str, hand: HandMesh, header: dict, transforms: list) -> list:
        c, topics = self.config, self._topics[side]
        joints = np.asarray(hand.joints, dtype=np.float64).reshape(-1, 3)
        out = [(topics[c.joint_states_topic], "sensor_msgs/JointState",
                {"header": header, "name": self._names[side],
                 "position": finger_angles(hand.pose, self.pose_joint_names)})]
        if len(joints) < 21 or not np.isfinite(joints[:21]).all():
            return out  # no usable keypoints: angles only
        quat = quaternion(wrist_frame(joints).tolist())
        wrist = _pose(joints[0], quat)
        out.append((topics[c.wrist_pose_topic], "geometry_msgs/PoseStamped",
                    {"header": header, "pose": wrist}))
        poses = np.zeros((21, 7))
        poses[:, :3] = joints[:21]
        poses[:, 6] = 1.0
        out.append((topics[c.keypoints_topic], "geometry_msgs/PoseArray",
                    {"header": header, "poses": poses}))
        pinch = getattr(hand, "pinch", None)
        distance = (float(pinch.distance_m) if pinch is not None else
                    float(np.linalg.norm(joints[THUMB_TIP] - joints[INDEX_TIP])))
        out.append((topics[c.pinch_distance_topic], "std_msgs/Float32", {"data": distance}))
        if pinch is not None:
            out.append((topics[c.pinch_topic], "std_msgs/Bool", {"data": bool(pinch.engaged)}))
        transforms.append({"header": header, "child_frame_id": f"{side}_wrist",
                           "transform": {"translation": wrist["position"],
                                         "rotation": wrist["orientation"]}})
        if c.tf_keypoints:
            for k in Keypoint:
                p = joints[int(k)]
                transforms.append({"header": header,
                                   "child_frame_id": f"{side}_{k.name.lower()}",
                                   "transform": {"translation": {"x": float(p[0]),
                                                                 "y": float(p[1]),
                                                                 "z": float(p[2])},
                                                 "rotation": {"w": 1.0}}})
        return out

    def _markers(self, hands: dict[str, HandMesh], header: dict) -> list[dict]:
        """Mesh and skeleton per hand present; a DELETE for each side that went away."""
        c = self.config
        lifetime = _stamp(c.marker_lifetime_s)
        markers = []
        for side in SIDES:
            hand = hands.get(side)
            if hand is None:
                if side in self._marked:
                    for ns in (f"{side}_mesh", f"{side}_skeleton"):
                        markers.append({"header": header, "ns": ns, "id": 0,
                                        "action": MARKER["DELETE"]})
                continue
            base = {"header": header, "id": 0, "action": MARKER["ADD"], "pose": _pose((0, 0, 0)),
                    "lifetime": lifetime}
            rgb = _hand_rgb(side)
            faces = self.faces_for.get(side)
            verts = np.asarray(hand.vertices, dtype=np.float64).reshape(-1, 3)
            if faces is not None and len(verts) > int(faces.max()):
                points = verts[faces].reshape(-1, 3)
                colors = self._vertex_colors(hand, faces)
                markers.append({**base, "ns": f"{side}_mesh", "type": MARKER["TRIANGLE_LIST"],
                                "scale": {"x": 1.0, "y": 1.0, "z": 1.0},
                                "color": {"r": rgb[0], "g": rgb[1], "b": rgb[2], "a": 1.0},
                                "points": points, "colors": colors})
            joints = np.asarray(hand.joints, dtype=np.float64).reshape(-1, 3)
            if len(joints) >= 21:
                pairs = np.asarray(BONES).reshape(-1)
                markers.append({**base, "ns": f"{side}_skeleton", "type": MARKER["LINE_LIST"],
                                "scale": {"x": 0.004}, "color": {"r": 1.0, "g": 1.0, "b": 1.0,
                                                                 "a": 1.0},
                                "points": joints[pairs]})
        self._marked = set(hands)
        return markers

    def _vertex_colors(self, hand: HandMesh, faces: np.ndarray) -> np.ndarray | None:
        """(F*3, 4) RGBA per triangle corner, or None for the marker's flat colour."""
        mode = self.config.marker_colors
        if mode == "texture" and hand.vertex_colors is not None:
            rgb = np.asarray(hand.vertex_colors, dtype=np.float32).reshape(-1, 3)
        elif mode == "uncertainty" and np.size(hand.vertex_std) == len(hand.vertices):
            # the overlay's turbo scale (realtime.render.overlay.uncertainty_colors), as RGBA
            std_mm = np.nan_to_num(np.asarray(hand.vertex_std, dtype=np.float32) * 1e3,
                                   nan=0.5 * STD_MAX_MM)
            idx = np.clip(std_mm * (255.0 / STD_MAX_MM), 0.0, 255.0).astype(np.intp)
            return _turbo_rgba()[idx[faces.reshape(-1)]]
        else:
            return None
        rgba = np.ones((len(rgb), 4), dtype=np.float32)
        rgba[:, :3] = rgb
        return rgba[faces].reshape(-1, 4)


STD_MAX_MM = 15.0  # the top of the uncertainty colour scale, as the overlay's


@lru_cache(maxsize=1)
def _turbo_rgba() -> np.ndarray:
    """(256,4) float32 RGBA of the overlay's turbo scale (blue = sure, red = unsure)."""
    from realtime.render.overlay import uncertainty_colors

    rgba = np.ones((256, 4), dtype=np.float32)
    rgba[:, :3] = uncertainty_colors(np.arange(256) * (STD_MAX_MM / 255.0) / 1e3, STD_MAX_MM)
    return rgba


def _hand_rgb(side: str) -> tuple[float, float, float]:
    from realtime.render.overlay import HAND_COLORS

    return tuple(float(v) for v in HAND_COLORS.get(side, HAND_COLORS["right"]))
