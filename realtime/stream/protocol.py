"""The streamed message: one ZeroMQ frame = topic, header length, JSON header, payload.

Pure encoding and decoding, no sockets (``realtime.stream.publisher`` and
``realtime.stream.client`` do the sending). The format is documented byte by byte in
``docs/protocol.md``::

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
  held up, palm to the camera, fingers up, has about the identity
  (``models.hand_geometry.wrist_frame``).
* ``finger_angles`` (15,) flexion in radians of thumb CMC, MCP, IP, then index, middle,
  ring, pinky MCP, PIP, DIP (``models.hand_geometry.FINGER_JOINTS``): the flexion-axis
  component of each joint's anatomical axis-angle in ``HandMesh.pose`` (0 straight,
  positive bends towards the palm). NaN where the hand model has no such joint.
* ``keypoints_2d`` (21,2) pixels; ``pose`` (J,3) anatomical axis-angle of the model's joints
  (a right hand; left hands are mirrored before the model); ``shape`` (S,).
* ``xr_joints`` (26,8) the OpenXR hand joints (``XR_EXT_hand_tracking``, ``XrHandJointEXT``
  order): position xyz (m), quaternion xyzw, radius (m), in the camera frame in OpenXR axes
  ``(x, -y, -z)`` (``realtime.stream.openxr``); NaN rows for a hand without a pose. Sent when
  the publisher has the hand model (``PublisherConfig.xr_joints``).
* ``pinch`` (a header field, not an array): ``{"distance_m", "engaged", "changed"}``, the
  thumb-index pinch of ``HandMesh.pinch`` (``realtime.mesh.pinch``), or null when off.
* ``vertices`` (V,3) meters, camera frame, and ``vertex_std`` (V,) meters: ``hands`` only,
  mesh mode. In rigged mode ``hands`` carries ``rotations``, ``model_rotation`` and
  ``model_translation`` instead (``realtime.stream.bones``).

Non-finite numbers in the JSON header go out as ``null`` (:func:`json_safe`); the hot path
(:class:`HandPacker`, :func:`encode_packed`) packs each hand once into a reused buffer.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from models.hand_geometry import finger_angles, finger_joint_rows, wrist_frame
from realtime.errors import RealtimeError
from realtime.stream import schema as topic_schema
from realtime.types import HandMesh, Pinch

SCHEMA_VERSION = 1
TOPIC_HANDS = b"hands"
TOPIC_JOINTS = b"joints"
TOPIC_TOPOLOGY = b"topology"
TOPIC_STATUS = b"status"
TOPIC_TEXTURE = b"texture"  # fused hand colours, on change (realtime.stream.texture_topic)
TOPICS = (TOPIC_HANDS, TOPIC_JOINTS, TOPIC_TOPOLOGY, TOPIC_STATUS, TOPIC_TEXTURE)

#: The JSON header: the largest a publisher sends is ~2.4 kB (rigged topology); 64 kB also
#: bounds what parsing it can allocate (a few MB of Python objects at worst).
MAX_HEADER_BYTES = 64 << 10
#: A receiver's default limit. The largest message sent is the rigged-mode topology
#: (~345 kB with the open hand; hands ~45 kB, texture ~42 kB): 16 MB leaves room for much
#: larger hand models while a rogue peer cannot make a client take in 200 MB.
DEFAULT_MAX_MESSAGE_BYTES = 16 << 20
#: Added to a message limit for the socket's ``ZMQ_MAXMSGSIZE`` (transport framing, CURVE's
#: box): ZeroMQ then drops an oversized message as it arrives (it disconnects the peer)
#: instead of receiving it in full.
TRANSPORT_SLACK_BYTES = 4096
ALIGN = 8
DTYPES = {"<f4": np.dtype("<f4"), "<f2": np.dtype("<f2"), "<i4": np.dtype("<i4")}
_LEN = struct.Struct("<I")

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
    """A header over ``MAX_HEADER_BYTES`` (64 kB) or a message over the configured maximum."""


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


def topology_endpoint_for(endpoint: str) -> str:
    """The REP endpoint for topology requests: the next tcp port, or ``<path>.topology``.

    The convention every tool uses (``handmesh --publish``, the recorder, the replayer,
    ``handmesh-stream listen``): a client given only the PUB endpoint finds it from that.
    """
    scheme, _, rest = endpoint.partition("://")
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        if port.isdigit():
            return f"tcp://{host}:{int(port) + 1}"
        raise ValueError(f"{endpoint}: give a port number, e.g. tcp://127.0.0.1:5555")
    return f"{endpoint}.topology"


# -- arrays of a hand -------------------------------------------------------------------------
def hand_arrays(hand: HandMesh, joint_names: Iterable[str] = (),
                float16: bool = False, mesh: bool = True) -> dict[str, np.ndarray]:
    """Every array a hand is sent with (see the module docstring), in wire dtypes.

    ``mesh=False`` leaves out ``vertices`` and ``vertex_std`` (the ``joints`` topic and
    rigged mode).
    """
    joints = np.asarray(hand.joints, dtype="<f4").reshape(-1, 3)
    out = {
        "joints": joints,
        "wrist_position": joints[0] if len(joints) else np.full(3, np.nan, dtype="<f4"),
        "wrist_rotation": wrist_frame(hand.joints).astype("<f4")
        if len(joints) >= 21 else np.eye(3, dtype="<f4"),
        "finger_angles": finger_angles(hand.pose, joint_names).astype("<f4"),
        "keypoints_2d": np.asarray(hand.keypoints_2d, dtype="<f4").reshape(-1, 2),
        "pose": np.asarray(hand.pose, dtype="<f4").reshape(-1, 3),
        "shape": np.asarray(hand.shape, dtype="<f4").reshape(-1),
    }
    if mesh:
        mesh_dtype = "<f2" if float16 else "<f4"
        out["vertices"] = np.asarray(hand.vertices, dtype=mesh_dtype).reshape(-1, 3)
        out["vertex_std"] = np.asarray(hand.vertex_std, dtype=mesh_dtype).reshape(-1)
    return out


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def json_safe(value: object) -> object:
    """``value`` with every non-finite float replaced by None (JSON ``null``), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def hand_header(hand: HandMesh) -> dict:
    """The JSON fields of a hand (its arrays are added by :func:`encode`)."""
    std = np.asarray(hand.vertex_std)
    return {
        "track_id": int(hand.track_id),
        "handedness": str(hand.handedness),
        "score": _finite(hand.score),
        "mean_std": _finite(std.sum(dtype=np.float64) / std.size) if std.size else None,
        "frame_index": int(hand.frame_index),
        "timestamp": _finite(hand.timestamp),
        "reprojection_error_px": _finite(hand.reprojection_error_px),
        "pinch": None if hand.pinch is None else {
            "distance_m": _finite(hand.pinch.distance_m), "engaged": bool(hand.pinch.engaged),
            "changed": bool(hand.pinch.changed)},
    }


# -- encoding ---------------------------------------------------------------------------------
def _pad(n: int) -> int:
    return (-n) % ALIGN


_ZEROS = bytes(ALIGN)
_DUMPS = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


@lru_cache(maxsize=256)
def _table_text(layout: tuple[tuple[str, str, tuple[int, ...], int], ...], start: int
                ) -> tuple[str, int]:
    """The JSON array table of a layout ((name, dtype, shape, nbytes), ...) from ``start``.

    Cached: every frame has the same layout, so the table is built once, not per message.
    Returns the text and the payload size after these arrays.
    """
    out = {}
    size = start
    for name, dt, shape, nbytes in layout:
        out[name] = {"dtype": dt, "shape": list(shape), "offset": size, "nbytes": nbytes}
        size += nbytes + _pad(nbytes)
    return _DUMPS(out), size


def _table(named: Mapping[str, np.ndarray], start: int, chunks: list) -> tuple[str, int]:
    layout = []
    for name, a in named.items():
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        dt = a.dtype.str
        if dt not in DTYPES:
            raise ValueError(f"array {name!r} has dtype {a.dtype}, not one of {list(DTYPES)}")
        layout.append((name, dt, a.shape, a.nbytes))
        chunks.append(a.data.cast("B") if a.ndim else a.tobytes())
        pad = _pad(a.nbytes)
        if pad:
            chunks.append(_ZEROS[:pad])
    return _table_text(tuple(layout), start)


def encode(topic: bytes, header: Mapping, hands: Iterable[tuple[dict, Mapping[str, np.ndarray]]]
           = (), arrays: Mapping[str, np.ndarray] | None = None) -> bytes:
    """One frame: ``topic`` + the header (``schema`` set here) + the arrays of each hand.

    ``hands``: ``(fields, arrays)`` per hand; ``arrays``: top-level arrays (topology).
    Arrays must already have a wire dtype (``<f4``, ``<f2``, ``<i4``). Non-finite numbers
    in ``header`` or the hand fields raise ValueError: pass them through :func:`json_safe`.
    The JSON is assembled from cached array tables (the hot path: ~2 encodes per frame).
    """
    if b" " in topic or not topic.isascii():
        raise ValueError(f"topic must be ASCII without spaces, got {topic!r}")
    chunks: list = []
    size = 0
    head = {"schema": SCHEMA_VERSION, **header}
    hand_texts = []
    for fields, named in hands:
        table, size = _table(named, size, chunks)
        text = _DUMPS(dict(fields))
        hand_texts.append((text[:-1] + "," if len(text) > 2 else "{")
                          + '"arrays":' + table + "}")
    head.pop("hands", None)
    has_hands = bool(hand_texts) or "hands" in header
    top = None
    if arrays:
        top, size = _table(arrays, size, chunks)
    text = _DUMPS(head)[:-1]
    if has_hands:
        text += ',"hands":[' + ",".join(hand_texts) + "]"
    if top is not None:
        text += ',"arrays":' + top
    raw = (text + "}").encode("utf-8")
    prefix = len(topic) + 1 + _LEN.size
    raw += b" " * _pad(prefix + len(raw))
    return b"".join([topic, b" ", _LEN.pack(len(raw)), raw, *chunks])


# -- the hot path: hands packed into reused buffers -------------------------------------------
#: Arrays of a hand in wire order: the light ones (``joints`` topic) first, then the mesh.
LIGHT_ARRAYS = ("joints", "wrist_position", "wrist_rotation", "finger_angles", "keypoints_2d",
                "pose", "shape")
#: The light array a packer with OpenXR joints adds after them (``realtime.stream.openxr``).
XR_ARRAY = "xr_joints"
XR_SHAPE = (26, 8)


@dataclass(slots=True)
class PackedHand:
    """A hand's JSON fields and its arrays as two payload blocks (light, then mesh or bones).

    ``light``/``extra`` are views of the packer's reused buffer: valid until the same slot
    is packed again (``encode_packed`` copies them into the message at once). ``tables``:
    the slot's array tables by (payload start, with extra), built once per layout.
    """

    fields_json: str
    light: memoryview
    light_layout: tuple
    extra: memoryview
    extra_layout: tuple
    tables: dict | None = None


class _Slot:
    """A reused buffer with one typed view per array, for one layout."""

    def __init__(self, specs: list[tuple[str, str, tuple[int, ...]]], n_light: int) -> None:
        layout, offsets, size = [], [], 0
        for name, dt, shape in specs:
            nbytes = int(np.dtype(dt).itemsize * math.prod(shape))
            layout.append((name, dt, tuple(shape), nbytes))
            offsets.append(size)
            size += nbytes + _pad(nbytes)
        self.buf = np.zeros(size, np.uint8)
        self.views = {name: self.buf[o:o + nb].view(dt).reshape(shape)
                      for (name, dt, shape, nb), o in zip(layout, offsets)}
        self.offsets = offsets
        split = offsets[n_light] if n_light < len(offsets) else size
        mem = memoryview(self.buf)
        self.light, self.extra = mem[:split], mem[split:]
        self.light_layout, self.extra_layout = tuple(layout[:n_light]), tuple(layout[n_light:])
        self.tables: dict = {}  # (start, extra) -> _table_text of this layout


_FAST_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
#: A hand's JSON fields (:func:`hand_header`, key order kept) as one format string.
_FIELDS = ('{"track_id":%d,"handedness":%s,"score":%s,"mean_std":%s,"frame_index":%d,'
           '"timestamp":%s,"reprojection_error_px":%s,"pinch":%s}')
_json_str = lru_cache(maxsize=64, typed=True)(_DUMPS)
_FRAME_HEAD = '{"schema":%d,"seq":%%d,' % SCHEMA_VERSION
_FRAME_TAIL = ('"t_capture":%s,"t_publish":%s,"t_publish_wall":%s,"camera_id":%s,'
               '"frame_index":%s,"image_size":%s,"mode":%s}')


@lru_cache(maxsize=16)
def _json_list(values: tuple) -> str:
    return _DUMPS(list(values))


def frame_header_json(seq: int, t_capture: float, t_publish: float, t_publish_wall: float,
                      camera_id: str, frame_index: int, image_size: tuple[int, int],
                      mode: str) -> str:
    """The JSON header of a ``hands``/``joints`` message, for :func:`encode_packed`.

    The same text as ``json`` writes for ``{"schema": ..., "seq": ..., ...}`` (non-finite
    ``t_capture`` as null), from format strings: a fifth of the JSON encoder's cost, which
    mattered on the 0.3 ms publish budget. It is :func:`frame_header_head` (the only part
    that differs between a frame's ``hands`` and ``joints`` messages) + :func:`frame_header_tail`.
    """
    return frame_header_head(seq) + frame_header_tail(
        t_capture, t_publish, t_publish_wall, camera_id, frame_index, image_size, mode)


def frame_header_head(seq: int) -> str:
    return _FRAME_HEAD % seq


def frame_header_tail(t_capture: float, t_publish: float, t_publish_wall: float,
                      camera_id: str, frame_index: int, image_size: tuple[int, int],
                      mode: str) -> str:
    return _FRAME_TAIL % (_num(t_capture), _num(t_publish), _num(t_publish_wall),
                          _json_str(camera_id), int(frame_index), _json_list(tuple(image_size)),
                          _json_str(mode))


_PINCH = '{"distance_m":%s,"engaged":%s,"changed":%s}'


def _pinch_json(pinch: Pinch | None) -> str:
    """A hand's ``pinch`` field as :func:`hand_header` + the JSON encoder write it."""
    if pinch is None:
        return "null"
    return _PINCH % (_num(pinch.distance_m), "true" if pinch.engaged else "false",
                     "true" if pinch.changed else "false")


def _num(x: float) -> str:
    """A number as the JSON encoder writes it (``float.__repr__``); non-finite: null."""
    x = float(x)
    return float.__repr__(x) if math.isfinite(x) else "null"


_SIDE_JSON = {"right": '"right"', "left": '"left"'}
#: A hand's fields up to its array table, as in :data:`_FIELDS`.
_HAND_T = _FIELDS[:-1] + ',"arrays":'
#: The widest text each placeholder of a two-hand header can take: an int of up to 21
#: characters, a float repr of up to 24 (e.g. -2.2250738585072014e-308) or "null".
_I, _S = -10 ** 20, "x" * 24
_P = _PINCH % (_S, "false", "false")
_WIDEST = (_I, _S, _S, _S, _I) + (_I, _S, _S, _S, _I, _S, _S, _P) * 2  # seq, frame, two hands


class _Message:
    """One reused message: topic, a fixed-width header slot (the JSON, then spaces), then
    the payload, which therefore always starts at the same offset."""

    def __init__(self, topic: bytes, template: str, payload: int) -> None:
        self.template = template
        widest = len((template % _WIDEST).encode("utf-8"))
        self.start = len(topic) + 1 + _LEN.size
        self.cap = widest + _pad(self.start + widest)
        self.payload = self.start + self.cap
        self.buf = bytearray(self.payload + payload)
        self.buf[:self.start] = topic + b" " + _LEN.pack(self.cap)
        self.mem = memoryview(self.buf)

    def fill(self, values: tuple) -> bytearray | bool:
        """Write the header of these values; False if it does not fit (never, for values
        of the types the template expects)."""
        text = (self.template % values).encode("utf-8")
        if len(text) > self.cap:
            return False
        self.buf[self.start:self.payload] = text.ljust(self.cap)
        return self.buf


class _TwoHandFrame:
    """The reused ``hands`` and ``joints`` messages of two-hand mesh frames of one layout.

    ``pack_kernels.pack_two`` writes both hands' arrays straight into the ``hands``
    message's payload (no per-hand buffers, no joining); the ``joints`` message copies the
    light blocks from there. The headers are one format string each, with the array tables
    built once. Why: see :class:`HandPacker` (cold calls after the 16 ms sleep).
    """

    def __init__(self, fs0: _Slot, fs1: _Slot, meta: np.ndarray, camera_id: str,
                 image_size: tuple, mode: str) -> None:
        self.key = (camera_id, image_size, mode)
        self.meta = meta
        # the frame header with this camera, size and mode filled in, the rest left open
        tail = _FRAME_TAIL % ("%s", "%s", "%s", _json_str(camera_id).replace("%", "%%"),
                              "%d", _json_list(tuple(image_size)),
                              _json_str(mode).replace("%", "%%"))
        head = _FRAME_HEAD + tail[:-1] + ',"hands":['

        full0, size0 = _table_text(fs0.light_layout + fs0.extra_layout, 0)
        full1, size1 = _table_text(fs1.light_layout + fs1.extra_layout, size0)
        light0, lsize0 = _table_text(fs0.light_layout, 0)
        light1, lsize1 = _table_text(fs1.light_layout, lsize0)
        self.hands = _Message(TOPIC_HANDS, head + _HAND_T + full0 + "}," + _HAND_T + full1
                              + "}]}", size1)
        self.joints = _Message(TOPIC_JOINTS, head + _HAND_T + light0 + "}," + _HAND_T + light1
                               + "}]}", lsize1)
        p = self.hands.payload
        self.out0 = np.frombuffer(self.hands.buf, np.float32, size0 // 4, p)
        self.out1 = np.frombuffer(self.hands.buf, np.float32, (size1 - size0) // 4, p + size0)
        # the kernel's signature wants aligned arrays; malloc'd buffers are (x86-64, arm64),
        # and where one is not, these hands take the general path instead
        self.aligned = self.out0.flags.aligned and self.out1.flags.aligned
        # where the OpenXR joints go (written after the kernel), None without them
        self.xr = None
        if XR_ARRAY in fs0.views and XR_ARRAY in fs1.views:
            o0 = p + fs0.offsets[[n for n, *_ in fs0.light_layout].index(XR_ARRAY)]
            o1 = p + size0 + fs1.offsets[[n for n, *_ in fs1.light_layout].index(XR_ARRAY)]
            self.xr = tuple(np.frombuffer(self.hands.buf, np.float32, 26 * 8, o).reshape(26, 8)
                            for o in (o0, o1))
        # (destination, source) of the light blocks: hand 0's, then hand 1's
        q = self.joints.payload
        self._copies = ((slice(q, q + lsize0), slice(p, p + lsize0)),
                        (slice(q + lsize0, q + lsize1), slice(p + size0, p + size0 + lsize1
                                                                - lsize0)))

    def copy_light(self) -> None:
        src, dst = self.hands.mem, self.joints.mem
        for d, s in self._copies:
            dst[d] = src[s]


class HandPacker:
    """Packs hands for ``hands``/``joints`` messages without per-frame allocation.

    The per-frame publish budget is 0.3 ms for two full-mesh hands: building nine small
    arrays and their JSON table per hand per message cost more than that. Here each hand
    slot owns one buffer with a typed view per array (the layout rarely changes), the
    arrays are cast into it in place, and the JSON table text is cached per layout.
    ``extra`` arrays (``vertices``/``vertex_std`` in mesh mode, or rig arrays given to
    :meth:`pack`) follow the light ones, so a ``joints`` message is a prefix of the payload.
    """

    def __init__(self, joint_names: Iterable[str] = (), float16: bool = False,
                 xr=None) -> None:
        from realtime.stream import pack_kernels  # numba: only publishers need it, not clients

        self.joint_names = tuple(joint_names)
        self.float16 = float16
        # ``xr``: a realtime.stream.openxr.XrJointTracker: every hand then also carries
        # ``xr_joints`` (light, so on the ``joints`` topic too); None: not sent
        self.xr = xr
        self._n_light = len(LIGHT_ARRAYS) + (xr is not None)
        self._slots: dict[tuple, _Slot] = {}
        self._kernel = pack_kernels.pack_hand
        self._offset_names = pack_kernels.OFFSET_NAMES
        self._two = pack_kernels.pack_two
        self._two_meta = pack_kernels.two_meta
        self._frame: _TwoHandFrame | None = None  # two_hand_messages: the last layout
        if self.joint_names:
            idx, have = finger_joint_rows(self.joint_names)
            self._fidx, self._have = idx.astype(np.int64), have.astype(np.bool_)
        else:
            self._fidx, self._have = np.zeros(15, np.int64), np.zeros(15, np.bool_)

    @staticmethod
    def warmup() -> None:
        """Compile (or load from numba's disk cache) the packing kernel: no JIT in the loop."""
        from realtime.stream import pack_kernels

        pack_kernels.warmup()

    def pack(self, slot: int, hand: HandMesh, mesh: bool = True,
             extra: Mapping[str, np.ndarray] | None = None) -> PackedHand:
        """Pack a hand into slot ``slot``'s buffer (see :class:`PackedHand`).

        Hands of plain C-contiguous float64 (or all-float32) arrays of the usual shapes go
        through one compiled kernel (``realtime.stream.pack_kernels``); anything else, and rig
        ``extra`` arrays, through the generic NumPy path. Both give the same bytes.
        """
        if extra is None:
            packed = self._pack_fast(slot, hand, mesh)
            if packed is not None:
                return packed
        return self._pack_generic(slot, hand, mesh, extra)

    def two_hand_messages(self, h0: HandMesh, h1: HandMesh, seq_hands: int, seq_joints: int,
                          tail: tuple, want_hands: bool = True, want_joints: bool = True
                          ) -> tuple[bytearray | None, bytearray | None] | None:
        """The ``hands`` and ``joints`` messages of a two-hand mesh-mode frame (the stream's
        usual frame), or None when these hands need the general path (:meth:`pack` +
        :func:`encode_packed`: float16, unusual arrays, an unknown handedness).

        ``tail``: (t_capture, t_publish, t_publish_wall, camera_id, frame_index,
        image_size, mode) as for :func:`frame_header_tail`. The messages are this packer's
        reused buffers (:class:`_TwoHandFrame`): send them (ZeroMQ copies) or copy them
        before the next call. They decode to exactly what the general path's do; only the
        header's trailing padding is longer (a fixed width, so the payload never moves).
        """
        if self.float16:
            return None
        side0, side1 = _SIDE_JSON.get(h0.handedness), _SIDE_JSON.get(h1.handedness)
        if side0 is None or side1 is None:
            return None
        t_capture, t_publish, t_wall, camera_id, frame_index, image_size, mode = tail
        fr = self._frame
        for attempt in (0, 1):
            if fr is not None and fr.key == (camera_id, image_size, mode):
                try:
                    ok, t0, t1 = self._two(
                        h0.joints, h0.pose, h0.shape, h0.keypoints_2d, h0.vertices,
                        h0.vertex_std, h1.joints, h1.pose, h1.shape, h1.keypoints_2d,
                        h1.vertices, h1.vertex_std, fr.meta, fr.out0, fr.out1)
                except TypeError:  # not plain C-contiguous arrays of one float dtype
                    return None
                if ok:
                    break
            if attempt == 1:
                return None
            a, b = self._fast_args(0, h0, True), self._fast_args(1, h1, True)
            if a is None or b is None:
                return None
            fs0, fs1 = a[0], b[0]
            meta = self._two_meta(len(self.joint_names), True, self._fidx, self._have,
                                  fs0.offs, fs0.dims, fs1.offs, fs1.dims)
            fr = self._frame = _TwoHandFrame(fs0, fs1, meta, camera_id, image_size, mode)
            if not fr.aligned:
                return None
        n0, n1 = h0.vertex_std.shape[0], h1.vertex_std.shape[0]
        if not (n0 and n1):
            return None
        if fr.xr is not None:
            for dst, xr in zip(fr.xr, self.xr([h0, h1])):
                dst[...] = np.nan if xr is None else xr
        floats = (float(t_capture), float(t_publish), float(t_wall), float(h0.score),
                  t0 / n0, float(h0.timestamp), float(h0.reprojection_error_px),
                  float(h1.score), t1 / n1, float(h1.timestamp),
                  float(h1.reprojection_error_px))
        reprs = map(float.__repr__, floats)
        total = sum(floats)
        if total - total != 0.0:  # a NaN or an infinity somewhere: JSON null (as _num)
            reprs = ["null" if "n" in r else r for r in reprs]  # "nan", "inf", "-inf"
        tc, tp, tw, sc0, m0, ts0, re0, sc1, m1, ts1, re1 = reprs
        values = (tc, tp, tw, int(frame_index),
                  int(h0.track_id), side0, sc0, m0, int(h0.frame_index), ts0, re0,
                  _pinch_json(h0.pinch),
                  int(h1.track_id), side1, sc1, m1, int(h1.frame_index), ts1, re1,
                  _pinch_json(h1.pinch))
        hands = fr.hands.fill((seq_hands,) + values) if want_hands else None
        if hands is False:
            return None
        joints = None
        if want_joints:
            fr.copy_light()
            joints = fr.joints.fill((seq_joints,) + values)
            if joints is False:
                return None
        return hands, joints

    def _fast_args(self, slot: int, hand: HandMesh, mesh: bool) -> tuple | None:
        """``(slot buffer, joints, pose, shape, keypoints_2d, vertices, vertex_std)`` when the
        hand can take the compiled path (plain C-contiguous arrays of one float dtype, the
        usual shapes), else None."""
        j, p, s, k = hand.joints, hand.pose, hand.shape, hand.keypoints_2d
        vt, sd = hand.vertices, hand.vertex_std
        if type(j) is not np.ndarray or j.dtype not in _FAST_DTYPES:
            return None
        dt = j.dtype
        for a in (j, p, s, k, vt, sd):
            if type(a) is not np.ndarray or a.dtype != dt or not a.flags.c_contiguous:
                return None
        if (j.ndim != 2 or j.shape[1] != 3 or j.shape[0] < 21 or p.ndim != 2
                or p.shape[1] != 3 or s.ndim != 1 or k.ndim != 2 or k.shape[1] != 2
                or vt.ndim != 2 or vt.shape[1] != 3 or sd.ndim != 1):
            return None
        key = (slot, mesh, j.shape, p.shape, s.shape, k.shape, vt.shape, sd.shape)
        fs = self._slots.get(key)
        if fs is None:
            fs = self._fast_slot(key, j, p, s, k, vt, sd, mesh)
        return fs, j, p, s, k, vt, sd

    def _pack_fast(self, slot: int, hand: HandMesh, mesh: bool) -> PackedHand | None:
        args = self._fast_args(slot, hand, mesh)
        if args is None:
            return None
        fs, j, p, s, k, vt, sd = args
        names = self.joint_names
        total = self._kernel(j, p, s, k, vt, sd, self._fidx, self._have,
                             bool(names) and len(p) == len(names),
                             mesh and not self.float16, fs.f32, fs.offs)
        self._fill_xr(fs.views, hand)
        return self._finish(fs, hand, total, mesh)

    def _fill_xr(self, views: dict, hand: HandMesh) -> None:
        if self.xr is not None:
            xr = self.xr([hand])[0]
            views[XR_ARRAY][...] = np.nan if xr is None else xr

    def _finish(self, fs: _Slot, hand: HandMesh, total: float, mesh: bool) -> PackedHand:
        """The float16 mesh (cast outside the kernel) and the hand's JSON fields."""
        if mesh and self.float16:
            v = fs.views
            v["vertices"][...] = hand.vertices
            v["vertex_std"][...] = hand.vertex_std
        n = hand.vertex_std.shape[0]
        fields = _FIELDS % (int(hand.track_id), _json_str(str(hand.handedness)),
                            _num(hand.score), _num(total / n) if n else "null",
                            int(hand.frame_index), _num(hand.timestamp),
                            _num(hand.reprojection_error_px), _pinch_json(hand.pinch))
        return PackedHand(fields, fs.light, fs.light_layout, fs.extra, fs.extra_layout,
                          fs.tables)

    def _fast_slot(self, key: tuple, j, p, s, k, vt, sd, mesh: bool) -> _Slot:
        mdt = "<f2" if self.float16 else "<f4"
        specs = [("joints", "<f4", j.shape), ("wrist_position", "<f4", (3,)),
                 ("wrist_rotation", "<f4", (3, 3)), ("finger_angles", "<f4", (15,)),
                 ("keypoints_2d", "<f4", k.shape), ("pose", "<f4", p.shape),
                 ("shape", "<f4", s.shape)]
        if self.xr is not None:
            specs.append((XR_ARRAY, "<f4", XR_SHAPE))
        if mesh:
            specs += [("vertices", mdt, vt.shape), ("vertex_std", mdt, sd.shape)]
        if len(self._slots) > 64:
            self._slots.clear()
        fs = self._slots[key] = _Slot(specs, self._n_light)
        fs.f32 = fs.buf.view(np.float32)  # every offset is 8-byte aligned
        at = {name: o // 4 for (name, *_), o in zip(specs, fs.offsets)}
        fs.offs = np.array([at.get(n, 0) for n in self._offset_names], np.int64)
        fs.dims = np.array([j.shape[0], p.shape[0], s.shape[0], k.shape[0], vt.shape[0],
                            sd.shape[0]], np.int64)
        return fs

    def _pack_generic(self, slot: int, hand: HandMesh, mesh: bool,
                      extra: Mapping[str, np.ndarray] | None) -> PackedHand:
        joints = np.asarray(hand.joints, dtype=np.float64).reshape(-1, 3)
        pose = np.asarray(hand.pose, dtype=np.float64)
        pose = pose.reshape(-1, 3) if pose.size else np.zeros((0, 3))
        shape = np.asarray(hand.shape, dtype=np.float64).reshape(-1)
        kp2d = np.asarray(hand.keypoints_2d, dtype=np.float64).reshape(-1, 2)
        mdt = "<f2" if self.float16 else "<f4"
        specs = [("joints", "<f4", joints.shape), ("wrist_position", "<f4", (3,)),
                 ("wrist_rotation", "<f4", (3, 3)), ("finger_angles", "<f4", (15,)),
                 ("keypoints_2d", "<f4", kp2d.shape), ("pose", "<f4", pose.shape),
                 ("shape", "<f4", shape.shape)]
        if self.xr is not None:
            specs.append((XR_ARRAY, "<f4", XR_SHAPE))
        verts = std = None
        if mesh:
            verts = np.asarray(hand.vertices).reshape(-1, 3)
            std = np.asarray(hand.vertex_std).reshape(-1)
            specs += [("vertices", mdt, verts.shape), ("vertex_std", mdt, std.shape)]
        if extra:
            specs += [(k, v.dtype.str, v.shape) for k, v in extra.items()]
        key = (slot, tuple(specs))
        s = self._slots.get(key)
        if s is None:
            if len(self._slots) > 64:
                self._slots.clear()
            for name, dt, _ in specs:
                if dt not in DTYPES:
                    raise ValueError(f"array {name!r} has dtype {dt}, not one of {list(DTYPES)}")
            s = self._slots[key] = _Slot(specs, self._n_light)
        v = s.views
        v["joints"][...] = joints
        if len(joints) >= 21:
            v["wrist_position"][...] = joints[0]
            v["wrist_rotation"][...] = wrist_frame(joints)
        else:
            v["wrist_position"][...] = joints[0] if len(joints) else np.nan
            v["wrist_rotation"][...] = np.eye(3)
        names = self.joint_names
        if names and len(pose) == len(names):
            idx, have = finger_joint_rows(names)
            fa = v["finger_angles"]
            fa[...] = pose[idx, 0]
            if not have.all():
                fa[~have] = np.nan
        else:
            v["finger_angles"][...] = np.nan
        v["keypoints_2d"][...] = kp2d
        v["pose"][...] = pose
        v["shape"][...] = shape
        if mesh:
            v["vertices"][...] = verts
            v["vertex_std"][...] = std
        if extra:
            for k, a in extra.items():
                v[k][...] = a
        self._fill_xr(v, hand)
        fields = _DUMPS(hand_header(hand))
        return PackedHand(fields, s.light, s.light_layout, s.extra, s.extra_layout, s.tables)


def encode_packed(topic: bytes, header: Mapping | str, hands: Iterable[PackedHand],
                  extra: bool = True) -> bytes:
    """Like :func:`encode` for packed hands; ``extra=False``: light arrays only.

    ``header``: the header fields (``schema`` is added), or the header's finished JSON
    text (:func:`frame_header_json`).
    """
    chunks: list = []
    size = 0
    texts = []
    for h in hands:
        cached = h.tables.get((size, extra)) if h.tables is not None else None
        if cached is None:
            layout = h.light_layout + h.extra_layout if extra else h.light_layout
            cached = _table_text(layout, size)
            if h.tables is not None:
                h.tables[(size, extra)] = cached
        table, size = cached
        chunks.append(h.light)
        if extra:
            chunks.append(h.extra)
        f = h.fields_json
        texts.append((f[:-1] + "," if len(f) > 2 else "{") + '"arrays":' + table + "}")
    text = (header if isinstance(header, str) else
            _DUMPS({"schema": SCHEMA_VERSION, **header}))[:-1]
    raw = (text + ',"hands":[' + ",".join(texts) + "]}").encode("utf-8")
    prefix = len(topic) + 1 + _LEN.size
    raw += b" " * _pad(prefix + len(raw))
    return b"".join([topic, b" ", _LEN.pack(len(raw)), raw, *chunks])


# -- decoding ---------------------------------------------------------------------------------
def peek_topic(msg: bytes) -> bytes:
    """The topic of a message (everything before the first space)."""
    end = msg.find(b" ", 0, 64)
    return msg[:end] if end > 0 else b""


def _array_specs(table: object, payload_len: int, where: str
                 ) -> list[tuple[str, np.dtype, tuple[int, ...], int, int]]:
    """The array table's entries ``(name, dtype, shape, offset, nbytes)``, each checked
    against itself and the payload (not yet against each other: :func:`_disjoint`)."""
    if not isinstance(table, dict):
        raise MalformedMessage(f"{where}: 'arrays' must be an object")
    if len(table) > topic_schema.MAX_ARRAYS_PER_TABLE:
        raise MalformedMessage(f"{where}: {len(table)} arrays, at most "
                               f"{topic_schema.MAX_ARRAYS_PER_TABLE}")
    out = []
    for name, spec in table.items():
        if not isinstance(spec, dict):
            raise MalformedMessage(f"{where}: array {name!r} has no description")
        try:
            dtype = DTYPES[spec["dtype"]]
            raw_shape, offset, nbytes = spec["shape"], spec["offset"], spec["nbytes"]
            if not (isinstance(raw_shape, list) and all(_is_int(s) for s in raw_shape)
                    and _is_int(offset) and _is_int(nbytes)):
                raise TypeError("shape, offset and nbytes must be integers")
            shape = tuple(raw_shape)
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"{where}: array {name!r}: bad description {spec!r} "
                                   f"(dtype one of {list(DTYPES)}, shape, offset, nbytes)") from exc
        if len(shape) > topic_schema.MAX_NDIM:
            raise MalformedMessage(f"{where}: array {name!r} has {len(shape)} dimensions, "
                                   f"at most {topic_schema.MAX_NDIM}")
        if any(s < 0 for s in shape) or offset < 0 or nbytes < 0:
            raise MalformedMessage(f"{where}: array {name!r}: negative shape, offset or size")
        if any(s >= 1 << 31 for s in shape):
            raise MalformedMessage(f"{where}: array {name!r}: shape {list(shape)} has a "
                                   "dimension of 2**31 or more")
        count = math.prod(shape)
        if count * dtype.itemsize != nbytes:
            raise MalformedMessage(f"{where}: array {name!r}: shape {list(shape)} of "
                                   f"{dtype.str} is {count * dtype.itemsize} bytes, header "
                                   f"says {nbytes}")
        if offset + nbytes > payload_len:
            raise TruncatedMessage(f"{where}: array {name!r} needs payload bytes "
                                   f"{offset}..{offset + nbytes}, the payload has "
                                   f"{payload_len}")
        out.append((name, dtype, shape, offset, nbytes))
    return out


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _disjoint(entries: list[tuple[str, str, int, int]]) -> None:
    """No two arrays may share payload bytes: aliasing entries would let a small message
    decode into many copies of one large payload (a 10 MB payload named 200 times: 2 GB)."""
    spans = sorted((off, off + nb, where, name) for where, name, off, nb in entries if nb)
    for (_, end, w0, n0), (start, _, w1, n1) in itertools.pairwise(spans):
        if start < end:
            raise MalformedMessage(f"{w1}: array {n1!r} overlaps {w0}: array {n0!r} in the "
                                   "payload (array entries must not share bytes)")


def _copy_arrays(specs, payload: memoryview) -> dict[str, np.ndarray]:
    return {name: np.frombuffer(payload, dtype, math.prod(shape), offset).reshape(shape).copy()
            for name, dtype, shape, offset, _ in specs}


class _NonFinite(ValueError):
    """A NaN, an infinity or an overflowing number in a JSON header."""


def _reject_constant(name: str) -> float:
    raise _NonFinite(f"{name} in the header: JSON has no NaN or infinity (send null)")


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise _NonFinite(f"number {text[:40]} in the header is not finite (send null)")
    return x


_LOADS = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float).decode


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
        header = _LOADS(bytes(view[start:start + hlen]).decode("utf-8"))
    except _NonFinite as exc:
        raise MalformedMessage(str(exc)) from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
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
    raw_hands = header.get("hands", [])
    if not isinstance(raw_hands, list):
        raise MalformedMessage("'hands' must be a list")
    if len(raw_hands) > topic_schema.MAX_HANDS:
        raise MalformedMessage(f"{len(raw_hands)} hands in one message, at most "
                               f"{topic_schema.MAX_HANDS}")
    tables = []
    for i, h in enumerate(raw_hands):
        if not isinstance(h, dict):
            raise MalformedMessage(f"hand {i} is not an object")
        tables.append(_array_specs(h.get("arrays", {}), len(payload), f"hand {i}"))
    top = _array_specs(header.get("arrays", {}), len(payload), "message")
    _disjoint([(f"hand {i}", name, off, nb) for i, t in enumerate(tables)
               for name, _, _, off, nb in t]
              + [("message", name, off, nb) for name, _, _, off, nb in top])
    hands = []
    for h, specs in zip(raw_hands, tables):
        fields = {k: v for k, v in h.items() if k != "arrays"}
        fields.update(_copy_arrays(specs, payload))
        hands.append(fields)
    arrays = _copy_arrays(top, payload)
    name = topic.decode("ascii")
    try:
        topic_schema.check(name, header, hands, arrays)
    except topic_schema.SchemaError as exc:
        raise MalformedMessage(f"{name} message: {exc}") from exc
    return Message(name, header, hands, arrays)
