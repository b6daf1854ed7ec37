"""The streamed message: one ZeroMQ frame = topic, header length, JSON header, payload.

Pure encoding and decoding, no sockets (``realtime.publisher`` and ``realtime.client`` do
the sending). The format is documented byte by byte in ``docs/protocol.md``::

    topic (ASCII) | b" " | header length (uint32, little-endian) | JSON header (UTF-8,
    padded with spaces so the payload starts 8-byte aligned) | payload (raw arrays)

One frame, never multipart: ``ZMQ_CONFLATE`` (latest-only subscribers) aborts on multipart
messages. Every array is described in the header (``dtype``, ``shape``, ``offset`` into the
payload, ``nbytes``); dtypes are little-endian ``<f4``, ``<f2`` (vertices, when asked for)
or ``<i4`` (faces).

Per hand (``hands`` and ``joints`` topics):

* ``joints`` (21,3) MediaPipe keypoint order, meters, OpenCV camera frame (x right, y down,
  z forward).
* ``wrist_position`` (3,) the wrist keypoint, meters, camera frame.
* ``wrist_rotation`` (3,3) rotation matrix, row-major; its columns are the hand frame's axes
  in camera coordinates, so ``p_camera = wrist_rotation @ p_hand + wrist_position``. The
  hand frame is built from the keypoints: x from the pinky MCP towards the index MCP
  (orthogonalised against y), y from the middle MCP towards the wrist, z = x × y (out of
  the back of a right hand; out of the palm of a left hand, which is mirrored). A right hand
  held up, palm to the camera, fingers up, has about the identity.
* ``finger_angles`` (15,) flexion in radians of thumb CMC, MCP, IP, then index, middle,
  ring, pinky MCP, PIP, DIP (:data:`FINGER_JOINTS`): the flexion-axis component of each
  joint's anatomical axis-angle in ``HandMesh.pose`` (0 straight, positive bends towards the
  palm). NaN where the hand model has no such joint.
* ``keypoints_2d`` (21,2) pixels; ``pose`` (J,3) anatomical axis-angle of the model's joints
  (a right hand; left hands are mirrored before the model); ``shape`` (S,).
* ``vertices`` (V,3) meters, camera frame, and ``vertex_std`` (V,) meters: ``hands`` only.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from realtime.errors import RealtimeError
from realtime.types import HandMesh

SCHEMA_VERSION = 1
TOPIC_HANDS = b"hands"
TOPIC_JOINTS = b"joints"
TOPIC_TOPOLOGY = b"topology"
TOPIC_STATUS = b"status"
TOPICS = (TOPIC_HANDS, TOPIC_JOINTS, TOPIC_TOPOLOGY, TOPIC_STATUS)

MAX_HEADER_BYTES = 1 << 20  # 1 MB
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20  # 64 MB
ALIGN = 8
DTYPES = {"<f4": np.dtype("<f4"), "<f2": np.dtype("<f2"), "<i4": np.dtype("<i4")}
_LEN = struct.Struct("<I")

#: The 15 finger joints of ``finger_angles``, by hand-model joint name.
FINGER_JOINTS = (
    "thumb_cmc", "thumb_mcp", "thumb_ip",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
)
#: Arrays left out of ``joints`` messages.
MESH_ARRAYS = ("vertices", "vertex_std")


class ProtocolError(RealtimeError):
    """A message that cannot be decoded; the subclass says why."""


class SchemaMismatch(ProtocolError):
    """The publisher speaks another schema version than this client."""


class MalformedMessage(ProtocolError):
    """Not a message of this protocol: bad topic, header length, JSON or array table."""


class TruncatedMessage(ProtocolError):
    """The payload is shorter than the arrays the header describes."""


class OversizedMessage(ProtocolError):
    """A header over 1 MB or a message over the configured maximum."""


@dataclass
class Message:
    """A decoded message: its topic, its JSON header and its arrays (owned copies).

    ``hands`` holds one dict per hand: the hand's header fields plus its arrays by name
    (``hand["joints"]`` is a ``(21,3)`` float32 array). ``arrays`` holds top-level arrays
    (``faces`` on the ``topology`` topic).
    """

    topic: str
    header: dict
    hands: list[dict] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def seq(self) -> int:
        return int(self.header.get("seq", -1))


# -- arrays of a hand -------------------------------------------------------------------------
def wrist_frame(joints: np.ndarray) -> np.ndarray:
    """The (3,3) rotation of the hand frame (columns: axes in camera coordinates)."""
    j = np.asarray(joints, dtype=np.float64)
    y = j[0] - j[9]  # middle MCP -> wrist
    x = j[5] - j[17]  # pinky MCP -> index MCP
    ny = np.linalg.norm(y)
    if not np.isfinite(ny) or ny < 1e-9:
        return np.eye(3)
    y = y / ny
    x = x - y * float(x @ y)
    nx = np.linalg.norm(x)
    if not np.isfinite(nx) or nx < 1e-9:
        return np.eye(3)
    x = x / nx
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=1)


def finger_angles(pose: np.ndarray, joint_names: Iterable[str]) -> np.ndarray:
    """Flexion (radians) of the 15 :data:`FINGER_JOINTS` from an anatomical pose (J,3)."""
    names = list(joint_names)
    pose = np.asarray(pose, dtype=np.float64).reshape(-1, 3) if np.size(pose) else np.zeros((0, 3))
    out = np.full(len(FINGER_JOINTS), np.nan)
    if len(pose) != len(names):
        return out
    index = {n: i for i, n in enumerate(names)}
    for k, name in enumerate(FINGER_JOINTS):
        if name in index:
            out[k] = pose[index[name], 0]
    return out


def hand_arrays(hand: HandMesh, joint_names: Iterable[str] = (),
                float16: bool = False) -> dict[str, np.ndarray]:
    """Every array a hand is sent with (see the module docstring), in wire dtypes."""
    joints = np.asarray(hand.joints, dtype="<f4").reshape(-1, 3)
    mesh_dtype = "<f2" if float16 else "<f4"
    return {
        "joints": joints,
        "wrist_position": np.asarray(hand.joints, dtype="<f4").reshape(-1, 3)[0]
        if len(joints) else np.full(3, np.nan, dtype="<f4"),
        "wrist_rotation": wrist_frame(hand.joints).astype("<f4")
        if len(joints) >= 21 else np.eye(3, dtype="<f4"),
        "finger_angles": finger_angles(hand.pose, joint_names).astype("<f4"),
        "keypoints_2d": np.asarray(hand.keypoints_2d, dtype="<f4").reshape(-1, 2),
        "pose": np.asarray(hand.pose, dtype="<f4").reshape(-1, 3),
        "shape": np.asarray(hand.shape, dtype="<f4").reshape(-1),
        "vertices": np.asarray(hand.vertices, dtype=mesh_dtype).reshape(-1, 3),
        "vertex_std": np.asarray(hand.vertex_std, dtype=mesh_dtype).reshape(-1),
    }


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def hand_header(hand: HandMesh) -> dict:
    """The JSON fields of a hand (its arrays are added by :func:`encode`)."""
    std = np.asarray(hand.vertex_std, dtype=np.float64)
    return {
        "track_id": int(hand.track_id),
        "handedness": str(hand.handedness),
        "score": _finite(hand.score),
        "mean_std": _finite(std.mean()) if std.size else None,
        "frame_index": int(hand.frame_index),
        "timestamp": _finite(hand.timestamp),
        "reprojection_error_px": _finite(hand.reprojection_error_px),
    }


# -- encoding ---------------------------------------------------------------------------------
def _pad(n: int) -> int:
    return (-n) % ALIGN


def encode(topic: bytes, header: Mapping, hands: Iterable[tuple[dict, Mapping[str, np.ndarray]]]
           = (), arrays: Mapping[str, np.ndarray] | None = None) -> bytes:
    """One frame: ``topic`` + the header (``schema`` set here) + the arrays of each hand.

    ``hands``: ``(fields, arrays)`` per hand; ``arrays``: top-level arrays (topology).
    Arrays must already have a wire dtype (``<f4``, ``<f2``, ``<i4``).
    """
    if b" " in topic or not topic.isascii():
        raise ValueError(f"topic must be ASCII without spaces, got {topic!r}")
    chunks: list[bytes] = []
    size = 0

    def table(named: Mapping[str, np.ndarray]) -> dict:
        nonlocal size
        out = {}
        for name, a in named.items():
            a = np.ascontiguousarray(a)
            dt = a.dtype.str if a.dtype.str in DTYPES else None
            if dt is None:
                raise ValueError(f"array {name!r} has dtype {a.dtype}, not one of {list(DTYPES)}")
            data = a.tobytes()
            out[name] = {"dtype": dt, "shape": list(a.shape), "offset": size,
                         "nbytes": len(data)}
            chunks.append(data)
            pad = _pad(len(data))
            if pad:
                chunks.append(b"\0" * pad)
            size += len(data) + pad
        return out

    head = {"schema": SCHEMA_VERSION, **header}
    hand_list = []
    for fields, named in hands:
        hand_list.append({**fields, "arrays": table(named)})
    if hand_list or "hands" in head:
        head["hands"] = hand_list
    if arrays:
        head["arrays"] = table(arrays)
    text = json.dumps(head, separators=(",", ":"), allow_nan=False).encode("utf-8")
    prefix = len(topic) + 1 + _LEN.size
    text += b" " * _pad(prefix + len(text))
    return b"".join([topic, b" ", _LEN.pack(len(text)), text, *chunks])


# -- decoding ---------------------------------------------------------------------------------
def peek_topic(msg: bytes) -> bytes:
    """The topic of a message (everything before the first space)."""
    end = msg.find(b" ", 0, 64)
    return msg[:end] if end > 0 else b""


def _read_arrays(table: object, payload: memoryview, where: str) -> dict[str, np.ndarray]:
    if not isinstance(table, dict):
        raise MalformedMessage(f"{where}: 'arrays' must be an object")
    out = {}
    for name, spec in table.items():
        if not isinstance(spec, dict):
            raise MalformedMessage(f"{where}: array {name!r} has no description")
        try:
            dtype = DTYPES[spec["dtype"]]
            shape = tuple(int(s) for s in spec["shape"])
            offset, nbytes = int(spec["offset"]), int(spec["nbytes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"{where}: array {name!r}: bad description {spec!r} "
                                   f"(dtype one of {list(DTYPES)}, shape, offset, nbytes)") from exc
        if any(s < 0 for s in shape) or offset < 0 or nbytes < 0:
            raise MalformedMessage(f"{where}: array {name!r}: negative shape, offset or size")
        count = math.prod(shape)
        if count * dtype.itemsize != nbytes:
            raise MalformedMessage(f"{where}: array {name!r}: shape {list(shape)} of "
                                   f"{dtype.str} is {count * dtype.itemsize} bytes, header "
                                   f"says {nbytes}")
        if offset + nbytes > len(payload):
            raise TruncatedMessage(f"{where}: array {name!r} needs payload bytes "
                                   f"{offset}..{offset + nbytes}, the payload has "
                                   f"{len(payload)}")
        out[name] = np.frombuffer(payload, dtype, count, offset).reshape(shape).copy()
    return out


def decode(msg: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
           schema: int = SCHEMA_VERSION) -> Message:
    """Decode one frame; raises a :class:`ProtocolError` subclass, never anything else."""
    try:
        return _decode(msg, max_bytes, schema)
    except ProtocolError:
        raise
    except Exception as exc:
        raise MalformedMessage(f"undecodable message ({type(exc).__name__}: {exc})") from exc


def _decode(msg: bytes, max_bytes: int, schema: int) -> Message:
    view = memoryview(msg)
    if len(view) > max_bytes:
        raise OversizedMessage(f"message of {len(view)} bytes is over the limit of "
                               f"{max_bytes} bytes")
    space = bytes(view[:64]).find(b" ")
    if space <= 0:
        raise MalformedMessage("no topic: a message starts with an ASCII topic and a space")
    topic = bytes(view[:space])
    if not topic.isascii():
        raise MalformedMessage(f"topic {topic!r} is not ASCII")
    start = space + 1 + _LEN.size
    if len(view) < start:
        raise TruncatedMessage("message ends before the 4-byte header length")
    (hlen,) = _LEN.unpack(view[space + 1:start])
    if hlen > MAX_HEADER_BYTES:
        raise OversizedMessage(f"header of {hlen} bytes is over the limit of "
                               f"{MAX_HEADER_BYTES} bytes")
    if start + hlen > len(view):
        raise TruncatedMessage(f"header length {hlen} runs past the end of the "
                               f"{len(view)}-byte message")
    try:
        header = json.loads(bytes(view[start:start + hlen]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"header is not UTF-8 JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise MalformedMessage("header is not a JSON object")
    version = header.get("schema")
    if version != schema:
        raise SchemaMismatch(f"schema {version} from the publisher, this client reads "
                             f"{schema}: update the client" if isinstance(version, int) and
                             version > schema else
                             f"schema {version!r} from the publisher, this client reads "
                             f"{schema}: update the publisher")
    payload = view[start + hlen:]
    hands = []
    raw_hands = header.get("hands", [])
    if not isinstance(raw_hands, list):
        raise MalformedMessage("'hands' must be a list")
    for i, h in enumerate(raw_hands):
        if not isinstance(h, dict):
            raise MalformedMessage(f"hand {i} is not an object")
        fields = {k: v for k, v in h.items() if k != "arrays"}
        fields.update(_read_arrays(h.get("arrays", {}), payload, f"hand {i}"))
        hands.append(fields)
    arrays = _read_arrays(header.get("arrays", {}), payload, "message")
    return Message(topic.decode("ascii"), header, hands, arrays)
