"""Camera nodes and a fusion node: cameras on different machines, hands fused in one place.

A camera node runs capture and MediaPipe only, and publishes each frame's landmarks on the
``landmarks`` topic of the streaming protocol (``realtime.stream.protocol``: the same one-frame
JSON header + little-endian arrays). A fusion node subscribes to several camera nodes,
keeps each camera's newest frame, and fuses the hands of cameras whose frames are recent
(``calibration.multiview``: association, weighted triangulation, one mesh fit in the world
frame, single-view placement when only one camera sees a hand). The fused hands can be
published again as ordinary ``hands``/``joints`` messages, in the world (camera 0) frame.

Message ``landmarks`` (one per camera frame; header fields besides ``schema`` and ``seq``):
``camera_id`` (int), ``frame_index``, ``timestamp`` (capture time on the camera node's
clock, s), ``t_send_wall`` (``time.time()`` at sending), ``image_size`` [w, h]; per hand:
``handedness``, ``score`` and arrays ``landmarks_px`` (21,2) pixels of the raw image,
``landmarks_z`` (21,), ``world`` (21,3) meters (hand-centred, camera axes).

    handmesh-multiview camera --source 0 --camera-id 0 --publish tcp://0.0.0.0:5601 --insecure
    handmesh-multiview fuse --rig rig.json --connect tcp://cam0:5601 \
        --connect tcp://cam1:5601 --publish tcp://127.0.0.1:5555

(the command line is :mod:`realtime.cli.multiview`)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import zmq

from calibration.multiview import FusedHand, HandView, RigCamera, fit_mesh, fuse_views
from calibration.profile import HandProfile, ProfileRecorder
from realtime.stream import protocol
from realtime.stream.publisher import is_loopback
from realtime.types import Detection, HandMesh, Packet

log = logging.getLogger(__name__)

TOPIC_LANDMARKS = b"landmarks"


@dataclass(frozen=True)
class LandmarkFrame:
    """One camera frame's hands as received: ``views`` ready for fusion."""

    camera_id: int
    frame_index: int
    timestamp: float
    t_send_wall: float
    image_size: tuple[int, int]
    views: tuple[HandView, ...]


def encode_landmarks(camera_id: int, frame_index: int, timestamp: float,
                     image_size: tuple[int, int], dets: list[Detection], seq: int = 0) -> bytes:
    """The ``landmarks`` message of one frame (float32 arrays)."""
    hands = [({"handedness": d.handedness, "score": float(d.score)},
              {"landmarks_px": np.asarray(d.landmarks_px, "<f4"),
               "landmarks_z": np.asarray(d.landmarks_z, "<f4"),
               "world": np.asarray(d.world, "<f4")}) for d in dets]
    header = {"seq": int(seq), "camera_id": int(camera_id), "frame_index": int(frame_index),
              "timestamp": float(timestamp), "t_send_wall": time.time(),
              "image_size": [int(image_size[0]), int(image_size[1])], "hands": []}
    return protocol.encode(TOPIC_LANDMARKS, header, hands)


def decode_landmarks(msg: bytes) -> LandmarkFrame:
    """Parse a ``landmarks`` message; raises :class:`protocol.ProtocolError` if malformed."""
    m = protocol.decode(msg)
    if m.topic != TOPIC_LANDMARKS.decode():
        raise protocol.MalformedMessage(f"topic {m.topic!r} is not 'landmarks'")
    h = m.header
    try:
        cam = int(h["camera_id"])
        size = (int(h["image_size"][0]), int(h["image_size"][1]))
        views = []
        for i, hand in enumerate(m.hands):
            uv = np.asarray(hand["landmarks_px"], np.float64)
            world = np.asarray(hand["world"], np.float64)
            if uv.shape != (21, 2) or world.shape != (21, 3):
                raise ValueError(f"hand {i}: landmarks_px {uv.shape}, world {world.shape}")
            score = float(hand["score"])
            views.append(HandView(cam, uv, np.full(21, score), str(hand["handedness"]), score,
                                  world, float(h["timestamp"])))
        return LandmarkFrame(cam, int(h["frame_index"]), float(h["timestamp"]),
                             float(h.get("t_send_wall", 0.0)), size, tuple(views))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise protocol.MalformedMessage(f"bad landmarks message: {exc}") from exc


class LandmarkPublisher:
    """Pipeline sink of a camera node: each packet's detections on ``landmarks``.

    Never blocks: a full send queue (slow or absent fusion node) drops the frame.
    """

    def __init__(self, endpoint: str, camera_id: int, insecure: bool = False,
                 context: zmq.Context | None = None) -> None:
        if not is_loopback(endpoint) and not insecure:
            raise ValueError(f"{endpoint} is not a loopback address: pass --insecure to send "
                             "landmarks unencrypted over the network")
        self.camera_id = camera_id
        self._ctx = context or zmq.Context.instance()
        self._pub = self._ctx.socket(zmq.PUB)
        self._pub.setsockopt(zmq.LINGER, 0)
        self._pub.setsockopt(zmq.SNDHWM, 100)
        try:
            self._pub.bind(endpoint)
        except zmq.ZMQError as exc:
            self._pub.close()
            raise ValueError(f"cannot bind {endpoint}: {exc}") from exc
        self.endpoint = self._pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.sent = 0
        self.dropped = 0

    def send(self, frame_index: int, timestamp: float, image_size: tuple[int, int],
             dets: list[Detection]) -> None:
        msg = encode_landmarks(self.camera_id, frame_index, timestamp, image_size, dets,
                               self.sent + self.dropped)
        try:
            self._pub.send(msg, zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    def write(self, packet: Packet) -> None:
        self.send(packet.frame.index, packet.frame.timestamp, packet.frame.size,
                  list(packet.detections))

    def close(self) -> None:
        if not self._pub.closed:
            self._pub.close(linger=0)


class LandmarkSubscriber:
    """SUB socket connected to several camera nodes."""

    def __init__(self, endpoints: list[str], context: zmq.Context | None = None) -> None:
        if not endpoints:
            raise ValueError("connect to at least one camera node (--connect ENDPOINT)")
        self._ctx = context or zmq.Context.instance()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.SUBSCRIBE, TOPIC_LANDMARKS)
        for ep in endpoints:
            self._sub.connect(ep)
        self.malformed = 0

    def receive(self, timeout_ms: int = 100) -> list[LandmarkFrame]:
        """Every message waiting (after up to ``timeout_ms`` for the first)."""
        out: list[LandmarkFrame] = []
        if not self._sub.poll(timeout_ms):
            return out
        while True:
            try:
                msg = self._sub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return out
            try:
                out.append(decode_landmarks(msg))
            except protocol.ProtocolError as exc:
                self.malformed += 1
                log.warning("landmarks message ignored: %s", exc)

    def close(self) -> None:
        if not self._sub.closed:
            self._sub.close(linger=0)


class FusionNode:
    """Newest frame per camera -> fused hands in the world frame.

    Cameras are not hardware-synchronised: frames count as simultaneous when they arrived
    within ``max_skew_s`` of the newest one; an older camera simply drops out of that
    moment (the hand is then triangulated from the others, or placed from one view).
    """

    def __init__(self, rig: list[RigCamera], model=None, profile: HandProfile | None = None,
                 max_skew_s: float = 0.05, fit: bool = True,
                 recorder: ProfileRecorder | None = None) -> None:
        self.rig = rig
        self.recorder = recorder  # metric hand profiles from triangulated (>= 2 views) hands
        self.model = model
        self.profile = profile
        self.max_skew_s = max_skew_s
        self.fit = fit and model is not None
        self.latest: dict[int, tuple[float, LandmarkFrame]] = {}

    def update(self, frame: LandmarkFrame, arrival: float | None = None) -> None:
        if not 0 <= frame.camera_id < len(self.rig):
            log.warning("landmarks from camera %d: the rig has %d cameras", frame.camera_id,
                        len(self.rig))
            return
        self.latest[frame.camera_id] = (time.monotonic() if arrival is None else arrival, frame)

    def fuse(self) -> list[FusedHand]:
        if not self.latest:
            return []
        newest = max(t for t, _ in self.latest.values())
        views = [v for t, f in self.latest.values() if newest - t <= self.max_skew_s
                 for v in f.views]
        hands = fuse_views(views, self.rig, self.profile)
        if self.recorder is not None:
            for h in hands:
                if len(h.views) >= 2:
                    self.recorder.add(h.joints, h.score)
        if self.fit:
            shape = self.profile.shape if (self.profile is not None
                                           and self.profile.shape.size) else None
            hands = [fit_mesh(self.model, h, shape) for h in hands]
        return hands


def fused_to_mesh(hand: FusedHand, frame_index: int, timestamp: float, cam0: RigCamera,
                  track_id: int = -1) -> HandMesh:
    """A fused hand as an ordinary :class:`HandMesh` in camera 0's frame (the world)."""
    verts = hand.vertices if hand.vertices is not None else np.zeros((0, 3))
    return HandMesh(
        vertices=verts, joints=hand.joints, vertex_std=np.zeros(len(verts)),
        pose=hand.pose if hand.pose is not None else np.zeros((1, 3)),
        shape=hand.shape if hand.shape is not None else np.zeros(0),
        keypoints_2d=cam0.project(hand.joints), handedness=hand.handedness,
        score=hand.score, track_id=track_id, timestamp=timestamp, frame_index=frame_index,
        reprojection_error_px=float(np.mean(hand.residual_px)))
