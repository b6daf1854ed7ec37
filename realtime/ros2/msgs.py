"""The ROS 2 messages handmesh publishes, defined once: their ``.msg`` text, their DDS types
and a fast CDR encoder, all from :data:`SPEC`.

ROS 2 over DDS is plain DDS with naming conventions: the DDS type of ``sensor_msgs/msg/
JointState`` is ``sensor_msgs::msg::dds_::JointState_``, a *final* struct serialised as
XCDR1 (plain CDR, little-endian, encapsulation header ``00 01 00 00``). So one table of
fields gives:

* :func:`msg_definition` — the ``.msg`` text with its dependencies after ``MSG:``
  separators, the way ``ros2 bag`` writes MCAP schemas (Foxglove and ``ros2 bag`` read it);
* :func:`idl_type` — a ``cyclonedds.idl`` struct with the ROS 2 DDS name, for the topics
  and for subscribers (tests, the benchmark, a user script without ROS);
* :func:`encode` — the CDR bytes of a message given as nested dicts, with NumPy arrays for
  sequences of numeric structs (``Point[]``, ``ColorRGBA[]``, ``Pose[]``). It exists for
  speed: cyclonedds' own (pure Python) serialiser spends ~1 µs per nested object, so a
  mesh marker of 7,800 points would cost ~10 ms per hand; here it is one ``tobytes()``.
  The same bytes go to DDS and into the MCAP file; the tests decode them with both
  libraries' decoders (cyclonedds' and mcap_ros2's), field by field.

Definitions follow ROS 2 Humble/Jazzy (``common_interfaces``; ``Marker`` has the
``texture``/``uv_coordinates``/``mesh_file`` fields added in Humble), which Rolling keeps.
"""

from __future__ import annotations

import struct
from functools import cache, lru_cache

import numpy as np

#: Fields of every message: (type, name[, default]). Types: a primitive, ``pkg/Type`` or a
#: sequence ``T[]``. ``CONSTANTS``: the ``.msg`` constants, for the schema text.
SPEC: dict[str, tuple[tuple[str, ...], ...]] = {
    "builtin_interfaces/Time": (("int32", "sec"), ("uint32", "nanosec")),
    "builtin_interfaces/Duration": (("int32", "sec"), ("uint32", "nanosec")),
    "std_msgs/Header": (("builtin_interfaces/Time", "stamp"), ("string", "frame_id")),
    "std_msgs/ColorRGBA": (("float32", "r"), ("float32", "g"), ("float32", "b"),
                           ("float32", "a")),
    "std_msgs/Float32": (("float32", "data"),),
    "std_msgs/Bool": (("bool", "data"),),
    "geometry_msgs/Point": (("float64", "x"), ("float64", "y"), ("float64", "z")),
    "geometry_msgs/Vector3": (("float64", "x"), ("float64", "y"), ("float64", "z")),
    "geometry_msgs/Quaternion": (("float64", "x", "0"), ("float64", "y", "0"),
                                 ("float64", "z", "0"), ("float64", "w", "1")),
    "geometry_msgs/Pose": (("geometry_msgs/Point", "position"),
                           ("geometry_msgs/Quaternion", "orientation")),
    "geometry_msgs/PoseStamped": (("std_msgs/Header", "header"), ("geometry_msgs/Pose", "pose")),
    "geometry_msgs/PoseArray": (("std_msgs/Header", "header"), ("geometry_msgs/Pose[]", "poses")),
    "geometry_msgs/Transform": (("geometry_msgs/Vector3", "translation"),
                                ("geometry_msgs/Quaternion", "rotation")),
    "geometry_msgs/TransformStamped": (("std_msgs/Header", "header"),
                                       ("string", "child_frame_id"),
                                       ("geometry_msgs/Transform", "transform")),
    "tf2_msgs/TFMessage": (("geometry_msgs/TransformStamped[]", "transforms"),),
    "sensor_msgs/JointState": (("std_msgs/Header", "header"), ("string[]", "name"),
                               ("float64[]", "position"), ("float64[]", "velocity"),
                               ("float64[]", "effort")),
    "sensor_msgs/CompressedImage": (("std_msgs/Header", "header"), ("string", "format"),
                                    ("uint8[]", "data")),
    "visualization_msgs/UVCoordinate": (("float32", "u"), ("float32", "v")),
    "visualization_msgs/MeshFile": (("string", "filename"), ("uint8[]", "data")),
    "visualization_msgs/Marker": (
        ("std_msgs/Header", "header"), ("string", "ns"), ("int32", "id"), ("int32", "type"),
        ("int32", "action"), ("geometry_msgs/Pose", "pose"), ("geometry_msgs/Vector3", "scale"),
        ("std_msgs/ColorRGBA", "color"), ("builtin_interfaces/Duration", "lifetime"),
        ("bool", "frame_locked"), ("geometry_msgs/Point[]", "points"),
        ("std_msgs/ColorRGBA[]", "colors"), ("string", "texture_resource"),
        ("sensor_msgs/CompressedImage", "texture"),
        ("visualization_msgs/UVCoordinate[]", "uv_coordinates"), ("string", "text"),
        ("string", "mesh_resource"), ("visualization_msgs/MeshFile", "mesh_file"),
        ("bool", "mesh_use_embedded_materials")),
    "visualization_msgs/MarkerArray": (("visualization_msgs/Marker[]", "markers"),),
}

MARKER = {"ARROW": 0, "CUBE": 1, "SPHERE": 2, "CYLINDER": 3, "LINE_STRIP": 4, "LINE_LIST": 5,
          "CUBE_LIST": 6, "SPHERE_LIST": 7, "POINTS": 8, "TEXT_VIEW_FACING": 9,
          "MESH_RESOURCE": 10, "TRIANGLE_LIST": 11, "ADD": 0, "MODIFY": 0, "DELETE": 2,
          "DELETEALL": 3}
CONSTANTS: dict[str, dict[str, int]] = {"visualization_msgs/Marker": MARKER}

#: primitive -> (struct code, size) for CDR; bool is one byte.
_PRIM = {"bool": ("?", 1), "int8": ("b", 1), "uint8": ("B", 1), "int16": ("h", 2),
         "uint16": ("H", 2), "int32": ("i", 4), "uint32": ("I", 4), "int64": ("q", 8),
         "uint64": ("Q", 8), "float32": ("f", 4), "float64": ("d", 8)}
SEPARATOR = "=" * 80


def ros_name(short: str) -> str:
    """``sensor_msgs/JointState`` -> ``sensor_msgs/msg/JointState`` (ROS 2's full name)."""
    pkg, name = short.split("/")
    return f"{pkg}/msg/{name}"


def dds_name(short: str) -> str:
    """``sensor_msgs/JointState`` -> ``sensor_msgs::msg::dds_::JointState_`` (the DDS type)."""
    pkg, name = short.split("/")
    return f"{pkg}::msg::dds_::{name}_"


def _base(type_: str) -> str:
    return type_.removesuffix("[]")


# -- .msg text ---------------------------------------------------------------------------------
def _own_text(short: str) -> str:
    lines = [f"int32 {k}={v}" for k, v in CONSTANTS.get(short, {}).items()]
    for field in SPEC[short]:
        type_, name = field[0], field[1]
        lines.append(f"{type_} {name}" + (f" {field[2]}" if len(field) > 2 else ""))
    return "\n".join(lines) + "\n"


def _dependencies(short: str, seen: list[str]) -> list[str]:
    for field in SPEC[short]:
        base = _base(field[0])
        if base in SPEC and base not in seen:
            seen.append(base)
            _dependencies(base, seen)
    return seen


@cache
def msg_definition(short: str) -> str:
    """The ``.msg`` text of ``short`` and, after ``====``/``MSG: pkg/Type`` separators, of
    every type it uses (depth first), as ROS 2's bag recorder writes MCAP schemas."""
    parts = [_own_text(short)]
    for dep in _dependencies(short, []):
        parts.append(f"{SEPARATOR}\nMSG: {dep}\n{_own_text(dep)}")
    return "\n".join(parts)


# -- cyclonedds types --------------------------------------------------------------------------
@cache
def idl_type(short: str):
    """The ``cyclonedds.idl`` struct of ``short``, named as ROS 2 names it on DDS. Needs
    cyclonedds (raises ImportError without it)."""
    from cyclonedds.idl import make_idl_struct
    from cyclonedds.idl import types as t

    prims = {"bool": bool, "int8": t.int8, "uint8": t.uint8, "int16": t.int16,
             "uint16": t.uint16, "int32": t.int32, "uint32": t.uint32, "int64": t.int64,
             "uint64": t.uint64, "float32": t.float32, "float64": t.float64, "string": str}

    def resolve(type_: str):
        base = _base(type_)
        inner = prims[base] if base in prims else idl_type(base)
        return t.sequence[inner] if type_.endswith("[]") else inner

    fields = {f[1]: resolve(f[0]) for f in SPEC[short]}
    return make_idl_struct(short.split("/")[1] + "_", dds_name(short), fields)


# -- CDR encoding ------------------------------------------------------------------------------
@cache
def _flat_primitive(short: str) -> tuple[str, int] | None:
    """(primitive, count) when ``short`` is a struct of one numeric primitive only (Point:
    3 float64, Pose: 7 float64, ColorRGBA: 4 float32), so a sequence of them is one array."""
    prims: list[str] = []

    def walk(s: str) -> bool:
        for field in SPEC[s]:
            type_ = field[0]
            if type_.endswith("[]") or type_ == "string":
                return False
            if type_ in SPEC:
                if not walk(type_):
                    return False
            else:
                prims.append(type_)
        return True

    if not walk(short) or len(set(prims)) != 1 or prims[0] == "bool":
        return None
    return prims[0], len(prims)


class _Cdr:
    """Little-endian XCDR1 (alignment counted from after the 4-byte encapsulation header)."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray(b"\x00\x01\x00\x00")

    def align(self, n: int) -> None:
        pad = -(len(self.buf) - 4) % n
        if pad:
            self.buf += b"\x00" * pad

    def prim(self, type_: str, value) -> None:
        code, size = _PRIM[type_]
        self.align(size)
        self.buf += struct.pack("<" + code, value)

    def string(self, value: str) -> None:
        data = value.encode()
        self.align(4)
        self.buf += struct.pack("<I", len(data) + 1) + data + b"\x00"

    def value(self, type_: str, value) -> None:
        if type_.endswith("[]"):
            self.sequence(type_[:-2], value)
        elif type_ == "string":
            self.string(value if value is not None else "")
        elif type_ in _PRIM:
            self.prim(type_, 0 if value is None else value)
        else:
            self.struct(type_, value if value is not None else {})

    def struct(self, short: str, value) -> None:
        get = value.get if isinstance(value, dict) else (lambda k, d=None: getattr(value, k, d))
        for field in SPEC[short]:
            default = None if len(field) < 3 else float(field[2])
            v = get(field[1], None)
            self.value(field[0], default if v is None else v)

    def sequence(self, base: str, items) -> None:
        items = () if items is None else items
        self.align(4)
        self.buf += struct.pack("<I", len(items))
        if not len(items):
            return
        flat = _flat_primitive(base) if base in SPEC else None
        if base in _PRIM or flat is not None:
            prim = base if base in _PRIM else flat[0]
            code, size = _PRIM[prim]
            self.align(size)
            self.buf += np.ascontiguousarray(items, dtype="<" + code).tobytes()
            return
        for item in items:
            self.value(base, item)


def encode_generic(short: str, message) -> bytes:
    """:func:`encode` by walking :data:`SPEC` (every type; the reference for the fast paths)."""
    w = _Cdr()
    w.struct(short, message)
    w.align(4)
    return bytes(w.buf)


# Fast paths for the messages sent every frame, ~5x quicker than walking SPEC (the
# generic walk costs ~1 µs per field); tests/test_ros2.py checks them byte-equal to it.
_TIME = struct.Struct("<iI")
_U32 = struct.Struct("<I")
_POSE = struct.Struct("<7d")


def _header(w: _Cdr, h: dict) -> None:
    st = h.get("stamp") or {}
    w.buf += _TIME.pack(st.get("sec", 0), st.get("nanosec", 0))
    w.string(h.get("frame_id", ""))


def _pose7(p: dict) -> tuple:
    pos, q = p.get("position") or {}, p.get("orientation") or {}
    return (pos.get("x", 0.0), pos.get("y", 0.0), pos.get("z", 0.0), q.get("x", 0.0),
            q.get("y", 0.0), q.get("z", 0.0), q.get("w", 1.0))


def _fast_pose_stamped(m: dict, w: _Cdr) -> None:
    _header(w, m["header"])
    w.align(8)
    w.buf += _POSE.pack(*_pose7(m.get("pose") or {}))


@lru_cache(maxsize=64)
def _string_sequence(names: tuple[str, ...]) -> bytes:
    """A ``string[]`` starting 4-aligned: the same bytes wherever it starts (strings align
    to 4 only), so a JointState's constant names are encoded once."""
    w = _Cdr()
    w.sequence("string", names)
    return bytes(w.buf[4:])


def _fast_joint_state(m: dict, w: _Cdr) -> None:
    _header(w, m["header"])
    w.align(4)
    w.buf += _string_sequence(tuple(m.get("name") or ()))
    for key in ("position", "velocity", "effort"):
        w.sequence("float64", m.get(key))


def _fast_tf(m: dict, w: _Cdr) -> None:
    ts = m.get("transforms") or ()
    w.buf += _U32.pack(len(ts))
    for t in ts:
        w.align(4)
        _header(w, t["header"])
        w.string(t.get("child_frame_id", ""))
        w.align(8)
        tf = t.get("transform") or {}
        w.buf += _POSE.pack(*_pose7({"position": tf.get("translation"),
                                     "orientation": tf.get("rotation")}))


_FAST = {"geometry_msgs/PoseStamped": _fast_pose_stamped,
         "sensor_msgs/JointState": _fast_joint_state,
         "tf2_msgs/TFMessage": _fast_tf}


def encode(short: str, message) -> bytes:
    """The CDR bytes (with the encapsulation header, padded to 4) of ``message``: a dict (or
    object) with the fields of ``short``; a missing field is zero/empty (Quaternion ``w``: 1).
    Sequences of numeric structs may be ``(N, k)`` arrays (``Point[]`` as ``(N,3)``)."""
    fast = _FAST.get(short)
    if fast is None or not isinstance(message, dict):
        return encode_generic(short, message)
    w = _Cdr()
    fast(message, w)
    w.align(4)
    return bytes(w.buf)


# -- decoding helpers --------------------------------------------------------------------------
def _flatten(short: str, value, default=None) -> list:
    """The primitive values of a flat numeric struct, in field order (defaults filled)."""
    out: list = []
    get = value.get if isinstance(value, dict) else (lambda k, d=None: getattr(value, k, d))
    for field in SPEC[short]:
        v = get(field[1], None) if value is not None else None
        if field[0] in SPEC:
            out.extend(_flatten(field[0], v))
        else:
            out.append(float(field[2]) if v is None and len(field) > 2 else (v or 0))
    return out


def to_plain(short: str, value) -> dict:
    """A message (dict, cyclonedds struct or mcap_ros2 object) as plain nested dicts, with
    every numeric sequence as a float64 array (``Point[]`` as ``(N,3)``): what tests and
    tools compare. Missing fields take their defaults, as on the wire."""
    get = value.get if isinstance(value, dict) else (lambda k, d=None: getattr(value, k, d))
    out = {}
    for field in SPEC[short]:
        type_, name = field[0], field[1]
        v = get(name, None) if value is not None else None
        if type_.endswith("[]"):
            base = type_[:-2]
            items = [] if v is None else v
            flat = _flat_primitive(base) if base in SPEC else None
            if flat is not None:
                arr = (np.asarray(items, dtype=np.float64) if isinstance(items, np.ndarray)
                       else np.array([_flatten(base, i) for i in items], dtype=np.float64))
                out[name] = arr.reshape(len(arr), flat[1])
            elif base in SPEC:
                out[name] = [to_plain(base, i) for i in items]
            elif base == "string":
                out[name] = list(items)
            else:
                out[name] = np.asarray(list(items) if not isinstance(items, np.ndarray)
                                       else items, dtype=np.float64).reshape(-1)
        elif type_ in SPEC:
            out[name] = to_plain(type_, v)
        elif type_ == "string":
            out[name] = "" if v is None else str(v)
        else:
            out[name] = (float(field[2]) if v is None and len(field) > 2 else
                         (0 if v is None else (bool(v) if type_ == "bool" else float(v))))
    return out
