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

Nothing a peer sends is trusted (``docs/inputs.md``): :func:`decode_landmarks`
checks every message where its bytes become a :class:`LandmarkFrame` (finite values in
plausible ranges, at most ``MAX_HANDS_PER_CAMERA`` hands, a camera of the rig, a sane
``frame_index``), the subscriber reads each camera node on a socket of its own (so a bad
message is counted against the endpoint that sent it, and a flooding endpoint gets no more
than its share of each loop), and :meth:`FusionNode.fuse` drops fused hands that are not
plausible before anything is published. A bad message is dropped and counted, never fatal.

(the command line is :mod:`realtime.cli.multiview`)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import zmq

from calibration.errors import CalibrationError
from calibration.multiview import FusedHand, HandView, RigCamera, associate, fit_mesh, fuse_group
from calibration.profile import HandProfile, ProfileRecorder
from realtime.stream import protocol
from realtime.stream.client import RateLimitedLog, Reconnector
from realtime.stream.publisher import is_loopback
from realtime.types import Detection, HandMesh, Packet

log = logging.getLogger(__name__)

TOPIC_LANDMARKS = b"landmarks"

#: A landmarks message: ~0.9 kB per hand; anything larger is refused by ZeroMQ on arrival.
MAX_LANDMARKS_BYTES = 64 << 10
#: Hands per camera message (the detector tracks at most 4: ``max_num_hands``).
MAX_HANDS_PER_CAMERA = 4
#: Camera ids (a rig has far fewer cameras).
MAX_CAMERA_ID = 1023
#: Pixels may lie this far (times the image size) outside the image: MediaPipe extrapolates
#: landmarks of a hand at the border a little, never by half an image.
PIXEL_MARGIN = 0.5
#: World landmarks are hand-centred metres: a hand is ~0.2 m long.
MAX_WORLD_ABS_M = 0.5
MIN_HAND_EXTENT_M, MAX_HAND_EXTENT_M = 0.01, 0.6
#: frame_index, seq: non-negative integers below 2**53 (exact as JSON numbers everywhere).
MAX_INDEX = 1 << 53
#: Fused hands: at most this many per frame, within this distance of camera 0 (the world
#: origin), in front of every camera that saw them.
MAX_FUSED_HANDS = 8
MAX_RANGE_M = 10.0
#: Messages read from one camera node per loop: a flooding node cannot starve the others.
MAX_PER_SOURCE = 32
#: Messages queued per camera node before ZeroMQ stops reading it (~3 s at 30 fps).
SOURCE_RCVHWM = 100


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


def _finite_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _index(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_INDEX


def _float_array(hand: dict, name: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    a = hand.get(name)
    if not isinstance(a, np.ndarray) or a.dtype.str not in ("<f4", "<f2"):
        raise protocol.MalformedMessage(f"{where}: {name} must be a float32 array")
    if a.shape != shape:
        raise protocol.MalformedMessage(f"{where}: {name} has shape {list(a.shape)}, must "
                                        f"be {list(shape)}")
    out = a.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise protocol.MalformedMessage(f"{where}: {name} holds NaN or infinite values")
    return out


def decode_landmarks(msg: bytes, image_sizes: Sequence[tuple[int, int]] | None = None
                     ) -> LandmarkFrame:
    """Parse and check a ``landmarks`` message; :class:`protocol.ProtocolError` if it is
    malformed or implausible, with what was wrong.

    ``image_sizes``: the rig's calibrated image size per camera id: the camera id must be
    one of them and the image size the calibrated one (pixels of another size would be
    undistorted with the wrong intrinsics). Without it, any id up to ``MAX_CAMERA_ID``.
    """
    m = protocol.decode(msg, MAX_LANDMARKS_BYTES)
    if m.topic != TOPIC_LANDMARKS.decode():
        raise protocol.MalformedMessage(f"topic {m.topic!r} is not 'landmarks'")
    h = m.header
    bad = protocol.MalformedMessage
    cam = h.get("camera_id")
    n_cams = len(image_sizes) if image_sizes is not None else MAX_CAMERA_ID + 1
    if not (isinstance(cam, int) and not isinstance(cam, bool) and 0 <= cam < n_cams):
        raise bad(f"camera_id {cam!r} is not a camera of the rig (0..{n_cams - 1})")
    if not _index(h.get("frame_index")):
        raise bad(f"camera {cam}: frame_index {h.get('frame_index')!r} is not an integer in "
                  f"0..2**53")
    if not _finite_num(h.get("timestamp")):
        raise bad(f"camera {cam}: timestamp {h.get('timestamp')!r} is not a finite number")
    t_send = h.get("t_send_wall", 0.0)
    if t_send is not None and not _finite_num(t_send):
        raise bad(f"camera {cam}: t_send_wall {t_send!r} is not a finite number")
    size = h.get("image_size")
    if not (isinstance(size, list) and len(size) == 2 and all(_index(v) and 0 < v <= 16384
                                                               for v in size)):
        raise bad(f"camera {cam}: image_size {size!r} is not [width, height] in 1..16384")
    w, hgt = size
    if image_sizes is not None and tuple(image_sizes[cam]) != (w, hgt):
        raise bad(f"camera {cam}: {w}x{hgt} images, its calibration is for "
                  f"{image_sizes[cam][0]}x{image_sizes[cam][1]}")
    if len(m.hands) > MAX_HANDS_PER_CAMERA:
        raise bad(f"camera {cam}: {len(m.hands)} hands in one message, at most "
                  f"{MAX_HANDS_PER_CAMERA}")
    lo = np.array([-PIXEL_MARGIN * w, -PIXEL_MARGIN * hgt])
    hi = np.array([(1 + PIXEL_MARGIN) * w, (1 + PIXEL_MARGIN) * hgt])
    views = []
    for i, hand in enumerate(m.hands):
        where = f"camera {cam} hand {i}"
        if hand.get("handedness") not in ("left", "right"):
            raise bad(f"{where}: handedness {hand.get('handedness')!r} is not 'left' or 'right'")
        score = hand.get("score")
        if not (_finite_num(score) and 0.0 <= score <= 1.0):
            raise bad(f"{where}: score {score!r} is not a number in 0..1")
        uv = _float_array(hand, "landmarks_px", (21, 2), where)
        world = _float_array(hand, "world", (21, 3), where)
        if "landmarks_z" in hand:
            _float_array(hand, "landmarks_z", (21,), where)
        if np.any(uv < lo) or np.any(uv > hi):
            raise bad(f"{where}: landmarks_px outside the {w}x{hgt} image (by more than "
                      f"{PIXEL_MARGIN:.0%} of it)")
        if np.abs(world).max() > MAX_WORLD_ABS_M:
            raise bad(f"{where}: world landmarks up to {np.abs(world).max():.3g} m from the "
                      f"hand centre, at most {MAX_WORLD_ABS_M} m")
        extent = float(np.linalg.norm(world.max(0) - world.min(0)))
        if not MIN_HAND_EXTENT_M <= extent <= MAX_HAND_EXTENT_M:
            raise bad(f"{where}: world landmarks span {extent:.3g} m, a hand spans "
                      f"{MIN_HAND_EXTENT_M}..{MAX_HAND_EXTENT_M} m")
        views.append(HandView(cam, uv, np.full(21, float(score)), hand["handedness"],
                              float(score), world, float(h["timestamp"])))
    return LandmarkFrame(cam, h["frame_index"], float(h["timestamp"]),
                         float(t_send or 0.0), (w, hgt), tuple(views))


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
        self._pub.setsockopt(zmq.MAXMSGSIZE, 4096)  # peers only send subscriptions
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


@dataclass
class SourceStats:
    """What one camera node (one ``--connect`` endpoint) sent: ``camera`` is the id its first
    good message claimed (it may send no other, and no other node may claim it)."""

    camera: int | None = None
    accepted: int = 0
    dropped: int = 0
    last_error: str = ""
    reconnects: int = 0  # dropped by ZeroMQ (a message over 64 kB) and connected again

    def as_dict(self) -> dict:
        return {"camera": self.camera, "accepted": self.accepted, "dropped": self.dropped,
                "reconnects": self.reconnects, "last_error": self.last_error}


class LandmarkSubscriber:
    """One SUB socket per camera node, so every message has a known source.

    A message that does not decode or is implausible (:func:`decode_landmarks`), or that
    claims a camera another node already is, is dropped and counted in that source's
    :class:`SourceStats` (``sources``; ``dropped`` per endpoint; ``malformed`` in total),
    with a rate-limited warning. Each socket refuses messages over ``MAX_LANDMARKS_BYTES``
    (ZeroMQ drops the connection; :class:`Reconnector` connects again, counted in
    ``reconnects``) and queues at most ``SOURCE_RCVHWM``.
    """

    def __init__(self, endpoints: list[str], context: zmq.Context | None = None,
                 image_sizes: Sequence[tuple[int, int]] | None = None,
                 max_per_source: int = MAX_PER_SOURCE) -> None:
        if not endpoints:
            raise ValueError("connect to at least one camera node (--connect ENDPOINT)")
        self._ctx = context or zmq.Context.instance()
        self.image_sizes = None if image_sizes is None else [tuple(s) for s in image_sizes]
        self.max_per_source = max_per_source
        self._socks: dict[str, zmq.Socket] = {}
        self._reconnect: dict[str, Reconnector] = {}
        self.sources: dict[str, SourceStats] = {}
        self._poller = zmq.Poller()
        self._log = RateLimitedLog(log)
        try:
            for ep in dict.fromkeys(endpoints):  # each endpoint once, in order
                sock = self._ctx.socket(zmq.SUB)
                self._socks[ep] = sock
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.MAXMSGSIZE, MAX_LANDMARKS_BYTES
                                + protocol.TRANSPORT_SLACK_BYTES)
                sock.setsockopt(zmq.RCVHWM, SOURCE_RCVHWM)
                sock.setsockopt(zmq.SUBSCRIBE, TOPIC_LANDMARKS + b" ")
                sock.connect(ep)
                self._reconnect[ep] = Reconnector(sock, ep, logger=self._log)
                self._poller.register(sock, zmq.POLLIN)
                self.sources[ep] = SourceStats()
        except zmq.ZMQError as exc:
            self.close()
            raise ValueError(f"cannot connect to {ep}: {exc}") from exc
        self._camera_source: dict[int, str] = {}

    @property
    def malformed(self) -> int:
        """Messages dropped, all sources together."""
        return sum(s.dropped for s in self.sources.values())

    @property
    def dropped(self) -> dict[str, int]:
        """Messages dropped per endpoint."""
        return {ep: s.dropped for ep, s in self.sources.items()}

    def _accept(self, ep: str, msg: bytes) -> LandmarkFrame | None:
        stats = self.sources[ep]
        try:
            frame = decode_landmarks(msg, self.image_sizes)
            cam = frame.camera_id
            if stats.camera is not None and cam != stats.camera:
                raise protocol.MalformedMessage(f"camera {cam}: this node sent camera "
                                                f"{stats.camera} before")
            owner = self._camera_source.setdefault(cam, ep)
            if owner != ep:
                raise protocol.MalformedMessage(f"camera {cam} already comes from {owner}")
        except protocol.ProtocolError as exc:
            stats.dropped += 1
            stats.last_error = str(exc)[:200]
            self._log.warning("landmarks message from %s dropped: %s", ep, exc)
            return None
        stats.camera = cam
        stats.accepted += 1
        return frame

    def receive(self, timeout_ms: int = 100) -> list[LandmarkFrame]:
        """The messages waiting (after up to ``timeout_ms`` for the first): at most
        ``max_per_source`` from each camera node, so one that floods cannot hold the loop."""
        out: list[LandmarkFrame] = []
        ready = dict(self._poller.poll(timeout_ms))
        for ep, rc in self._reconnect.items():
            rc.check()
            self.sources[ep].reconnects = rc.count
        for ep, sock in self._socks.items():
            if sock not in ready:
                continue
            for _ in range(self.max_per_source):
                try:
                    msg = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                frame = self._accept(ep, msg)
                if frame is not None:
                    out.append(frame)
        return out

    def close(self) -> None:
        for rc in self._reconnect.values():
            rc.close()
        for sock in self._socks.values():
            if not sock.closed:
                sock.close(linger=0)


#: What fusing one group of views may raise on (validated, but still odd) input.
_FUSE_ERRORS = (CalibrationError, ValueError, ArithmeticError, np.linalg.LinAlgError)


@dataclass
class FusionStats:
    """The fusion node's counts: ``frames_fused`` per camera counts that camera's frames
    that took part in a fusion (a frame superseded before fusing is not counted)."""

    fused_frames: int = 0
    hands: int = 0
    implausible_hands: int = 0
    fuse_errors: int = 0
    unknown_camera: int = 0
    frames_fused: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"fused_frames": self.fused_frames, "hands": self.hands,
                "implausible_hands": self.implausible_hands, "fuse_errors": self.fuse_errors,
                "unknown_camera": self.unknown_camera,
                "frames_fused": {str(k): v for k, v in sorted(self.frames_fused.items())}}


class FusionNode:
    """Newest frame per camera -> fused hands in the world frame.

    Cameras are not hardware-synchronised: frames count as simultaneous when they arrived
    within ``max_skew_s`` of the newest one; an older camera simply drops out of that
    moment (the hand is then triangulated from the others, or placed from one view).

    Fused hands are checked before they leave (:meth:`plausible`): finite, within
    ``MAX_RANGE_M`` of camera 0, in front of the cameras that saw them, of a hand's size;
    at most ``max_hands`` per frame (the best scores). A group of views that fails to fuse
    is dropped and counted (``stats.fuse_errors``); the other hands of that moment stay.
    """

    def __init__(self, rig: list[RigCamera], model=None, profile: HandProfile | None = None,
                 max_skew_s: float = 0.05, fit: bool = True,
                 recorder: ProfileRecorder | None = None,
                 max_hands: int = MAX_FUSED_HANDS) -> None:
        self.rig = rig
        self.recorder = recorder  # metric hand profiles from triangulated (>= 2 views) hands
        self.model = model
        self.profile = profile
        self.max_skew_s = max_skew_s
        self.max_hands = max_hands
        self.fit = fit and model is not None
        self.latest: dict[int, tuple[float, LandmarkFrame]] = {}
        self.stats = FusionStats()
        self._fresh: set[int] = set()  # cameras with a frame not fused yet
        self._log = RateLimitedLog(log)

    def update(self, frame: LandmarkFrame, arrival: float | None = None) -> None:
        if not 0 <= frame.camera_id < len(self.rig):
            self.stats.unknown_camera += 1
            self._log.warning("landmarks from camera %d: the rig has %d cameras",
                              frame.camera_id, len(self.rig))
            return
        self.latest[frame.camera_id] = (time.monotonic() if arrival is None else arrival, frame)
        self._fresh.add(frame.camera_id)

    def plausible(self, hand: FusedHand) -> str | None:
        """Why a fused hand is not plausible, or None if it is."""
        x = hand.joints
        if x.shape != (21, 3) or not np.all(np.isfinite(x)):
            return "joints not finite"
        if np.abs(x).max() > MAX_RANGE_M:
            return f"joints {np.abs(x).max():.3g} m from camera 0, at most {MAX_RANGE_M} m"
        extent = float(np.linalg.norm(x.max(0) - x.min(0)))
        if not MIN_HAND_EXTENT_M <= extent <= MAX_HAND_EXTENT_M:
            return f"a hand of {extent:.3g} m"
        centre = x.mean(0)
        for c in hand.views:
            cam = self.rig[c]
            if (cam.R @ centre + cam.t)[2] <= 0:
                return f"behind camera {c}"
        if not np.all(np.isfinite(hand.residual_px)):
            return "reprojection error not finite"
        if hand.vertices is not None and (not np.all(np.isfinite(hand.vertices))
                                          or np.abs(hand.vertices).max() > MAX_RANGE_M + 1):
            return "mesh not finite or out of range"
        return None

    def fuse(self) -> list[FusedHand]:
        if not self.latest:
            return []
        newest = max(t for t, _ in self.latest.values())
        recent = {c: f for c, (t, f) in self.latest.items() if newest - t <= self.max_skew_s}
        for c in self._fresh & recent.keys():
            self.stats.frames_fused[c] = self.stats.frames_fused.get(c, 0) + 1
        self._fresh.clear()
        views = [v for f in recent.values() for v in f.views]
        hands = []
        try:
            groups = associate(views, self.rig)
        except _FUSE_ERRORS as exc:
            groups = []
            self._failed(f"association: {exc}")
        for g in groups:
            try:
                hand = fuse_group(g, self.rig, self.profile)
            except _FUSE_ERRORS as exc:
                self._failed(f"cameras {[v.camera for v in g]}: {exc}")
                continue
            hands.append(hand)
        if self.recorder is not None:
            for h in hands:
                if len(h.views) >= 2 and self.plausible(h) is None:
                    self.recorder.add(h.joints, h.score)
        if self.fit:
            shape = self.profile.shape if (self.profile is not None
                                           and self.profile.shape.size) else None
            fitted = []
            for h in hands:
                if self.plausible(h) is not None:  # not worth a fit: dropped below
                    fitted.append(h)
                    continue
                try:
                    fitted.append(fit_mesh(self.model, h, shape))
                except _FUSE_ERRORS as exc:
                    self._failed(f"mesh fit: {exc}")
            hands = fitted
        good = []
        for h in hands:
            why = self.plausible(h)
            if why is None:
                good.append(h)
            else:
                self.stats.implausible_hands += 1
                self._log.warning("fused hand dropped (cameras %s): %s", list(h.views), why)
        if len(good) > self.max_hands:
            self.stats.implausible_hands += len(good) - self.max_hands
            good = sorted(good, key=lambda h: -h.score)[:self.max_hands]
        self.stats.fused_frames += 1
        self.stats.hands += len(good)
        return good

    def _failed(self, what: str) -> None:
        self.stats.fuse_errors += 1
        self._log.warning("fusion failed for %s", what)


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
