"""What each topic's header and arrays must look like, checked when bytes become a message.

``protocol.decode`` calls :func:`check` on every message it decodes, so a receiver (the
Python client, ``handmesh-stream listen``/``record``, the teleop example) only ever sees
fields of the documented types and arrays of the documented shapes and dtypes
(``docs/protocol.md``): a well-formed message with a string ``score``, ``hands`` that is
not a list or ``joints`` of shape (5,3) is refused here with one clear message instead of
crashing whoever reads it later. Fields and arrays are optional (a hand may leave
``vertices`` out) and unknown ones pass (newer publishers may add some), but a known one
must be right. Values inside arrays are not checked: NaN is legal there
(``finger_angles`` of a joint the model lacks). The ``landmarks`` topic of the multi-camera
nodes is checked, more strictly, by ``realtime.multiview.landmark_stream``.

Raises :class:`SchemaError` (a ValueError); ``protocol.decode`` turns it into
``MalformedMessage``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

#: Hands in one message: the detector tracks at most 4; the fusion node publishes at most 8.
MAX_HANDS = 16
#: Arrays in one table (a hand's, or the message's top-level one).
MAX_ARRAYS_PER_TABLE = 32
#: Dimensions of one array (``shape_dirs`` (V,3,S) has the most: 3).
MAX_NDIM = 4
#: Keypoints of a hand on the wire (MediaPipe order).
KEYPOINTS = 21

FLOATS = ("<f4", "<f2")
INTS = ("<i4",)


class SchemaError(ValueError):
    """A field or array of a known name with the wrong type, shape or dtype."""


# -- field types ------------------------------------------------------------------------------
def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: object) -> bool:
    return _is_int(v)


def _count(v: object) -> bool:
    return _is_int(v) and v >= 0


def _num_or_null(v: object) -> bool:
    return v is None or _is_num(v)


def _str(v: object) -> bool:
    return isinstance(v, str) and len(v) <= 256


def _side(v: object) -> bool:
    return v in ("left", "right")


def _size(v: object) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_count(x) for x in v)


def _str_or_int(v: object) -> bool:
    return _str(v) or _is_int(v)


def _int_or_null(v: object) -> bool:
    return v is None or _count(v)


def _str_list(v: object) -> bool:
    return isinstance(v, list) and all(_str(x) for x in v)


def _int_list(v: object) -> bool:
    return isinstance(v, list) and all(_is_int(x) for x in v)


def _counts(v: object) -> bool:
    return isinstance(v, dict) and all(_count(x) for x in v.values())


_TYPE_NAMES = {_int: "an integer", _count: "a non-negative integer",
               _num_or_null: "a number or null",
               _str: "a string", _side: '"left" or "right"', _size: "[width, height]",
               _str_or_int: "a string or an integer", _int_or_null: "an integer or null",
               _str_list: "a list of strings", _int_list: "a list of integers",
               _counts: "an object of counts"}

Fields = Mapping[str, Callable[[object], bool]]

_COMMON: Fields = {"seq": _count}
_FRAME: Fields = {"t_capture": _num_or_null, "t_publish": _num_or_null,
                  "t_publish_wall": _num_or_null, "camera_id": _str_or_int,
                  "frame_index": _int, "image_size": _size, "mode": _str}
_HAND: Fields = {"track_id": _int, "handedness": _side, "score": _num_or_null,
                 "mean_std": _num_or_null, "frame_index": _int, "timestamp": _num_or_null,
                 "reprojection_error_px": _num_or_null}
_TEXTURE_HAND: Fields = {"track_id": _int, "handedness": _side, "version": _int}
_TOPOLOGY: Fields = {"hand_model": _str, "hand_model_sha256": _str, "vertex_count": _int_or_null,
                     "joint_names": _str_list, "joint_parents": _int_list,
                     "keypoint_names": _str_list, "keypoint_parents": _int_list,
                     "finger_joints": _str_list, "mode": _str}
_STATUS: Fields = {"fps": _num_or_null, "latency_ms_p50": _num_or_null,
                   "latency_ms_max": _num_or_null, "frames": _count, "sent": _counts,
                   "dropped": _counts, "topology_requests": _count, "topology_refused": _count}


def _fields(obj: Mapping, spec: Fields, where: str) -> None:
    for name, ok in spec.items():
        if name in obj and not ok(obj[name]):
            raise SchemaError(f"{where}: {name!r} must be {_TYPE_NAMES[ok]}, got "
                              f"{_short(obj[name])}")


def _short(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# -- arrays -----------------------------------------------------------------------------------
#: name -> (allowed dtypes, shape pattern): an int is a fixed size, a str a size shared by
#: every array of the same table that uses the same letter, None any size.
Arrays = Mapping[str, tuple[tuple[str, ...], tuple]]

_HAND_ARRAYS: Arrays = {
    "joints": (FLOATS, (KEYPOINTS, 3)),
    "wrist_position": (FLOATS, (3,)),
    "wrist_rotation": (FLOATS, (3, 3)),
    "finger_angles": (FLOATS, (15,)),
    "keypoints_2d": (FLOATS, (KEYPOINTS, 2)),
    "pose": (FLOATS, ("J", 3)),
    "shape": (FLOATS, ("S",)),
    "vertices": (FLOATS, ("V", 3)),
    "vertex_std": (FLOATS, ("V",)),
    "rotations": (FLOATS, ("R", 4)),
    "model_rotation": (FLOATS, (3, 3)),
    "model_translation": (FLOATS, (3,)),
    "xr_joints": (FLOATS, (26, 8)),
}
_TEXTURE_ARRAYS: Arrays = {
    "vertex_colors": (FLOATS, ("V", 3)),
    "vertex_weight": (FLOATS, ("V",)),
}
_TOPOLOGY_ARRAYS: Arrays = {
    "faces": (INTS, ("F", 3)),
    "uv": (FLOATS, ("T", 2)),
    "uv_faces": (INTS, ("F", 3)),
    "uv_vertex": (INTS, ("T",)),
    "rest_vertices": (FLOATS, ("V", 3)),
    "rest_joints": (FLOATS, ("J", 3)),
    "shape_dirs": (FLOATS, ("V", 3, "S")),
    "joint_shape_dirs": (FLOATS, ("J", 3, "S")),
    "skin_joints": (INTS, ("V", "K")),
    "skin_weights": (FLOATS, ("V", "K")),
}


def _arrays(arrays: Mapping[str, np.ndarray], spec: Arrays, where: str) -> dict[str, int]:
    """Check dtypes and shapes; the sizes the letters stand for."""
    sizes: dict[str, int] = {}
    for name, (dtypes, pattern) in spec.items():
        a = arrays.get(name)
        if a is None:
            continue
        if not isinstance(a, np.ndarray):
            raise SchemaError(f"{where}: {name!r} must be an array (in 'arrays'), got "
                              f"{_short(a)}")
        if a.dtype.str not in dtypes:
            raise SchemaError(f"{where}: array {name!r} has dtype {a.dtype.str}, must be "
                              f"{' or '.join(dtypes)}")
        shape_text = "(" + ", ".join(str(p) for p in pattern) + ")"
        if a.ndim != len(pattern):
            raise SchemaError(f"{where}: array {name!r} has shape {list(a.shape)}, must be "
                              f"{shape_text}")
        for got, want in zip(a.shape, pattern):
            if isinstance(want, int) and got != want:
                raise SchemaError(f"{where}: array {name!r} has shape {list(a.shape)}, must "
                                  f"be {shape_text}")
            if isinstance(want, str) and sizes.setdefault(want, got) != got:
                raise SchemaError(f"{where}: array {name!r} has shape {list(a.shape)}: "
                                  f"its {want} ({got}) differs from another array's "
                                  f"({sizes[want]})")
    return sizes


def _indices(arrays: Mapping[str, np.ndarray], name: str, bound: int | None,
             where: str) -> None:
    """Index arrays (faces...) must point inside what they index: a receiver indexes with them."""
    a = arrays.get(name)
    if a is None or bound is None or a.size == 0:
        return
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= bound:
        raise SchemaError(f"{where}: array {name!r} holds indices {lo}..{hi}, must be in "
                          f"0..{bound - 1}")


# -- topics -----------------------------------------------------------------------------------
def _hands_list(hands: list[dict], where: str = "hands") -> None:
    if len(hands) > MAX_HANDS:
        raise SchemaError(f"{len(hands)} {where} in one message, at most {MAX_HANDS}")


def _frame(header: dict, hands: list[dict], arrays: dict) -> None:
    _fields(header, _FRAME, "header")
    _hands_list(hands)
    for i, hand in enumerate(hands):
        _fields(hand, _HAND, f"hand {i}")
        _arrays(hand, _HAND_ARRAYS, f"hand {i}")


def _texture(header: dict, hands: list[dict], arrays: dict) -> None:
    _hands_list(hands)
    for i, hand in enumerate(hands):
        _fields(hand, _TEXTURE_HAND, f"hand {i}")
        _arrays(hand, _TEXTURE_ARRAYS, f"hand {i}")


def _topology(header: dict, hands: list[dict], arrays: dict) -> None:
    _fields(header, _TOPOLOGY, "header")
    sizes = _arrays(arrays, _TOPOLOGY_ARRAYS, "topology")
    count = header.get("vertex_count")
    if count is not None and "V" in sizes and sizes["V"] != count:
        raise SchemaError(f"topology: rest_vertices has {sizes['V']} vertices, vertex_count "
                          f"says {count}")
    _indices(arrays, "faces", count, "topology")
    _indices(arrays, "uv_faces", sizes.get("T"), "topology")
    _indices(arrays, "uv_vertex", count, "topology")
    _indices(arrays, "skin_joints", sizes.get("J"), "topology")


def _status(header: dict, hands: list[dict], arrays: dict) -> None:
    _fields(header, _STATUS, "header")


_TOPICS: dict[str, Callable[[dict, list[dict], dict], None]] = {
    "hands": _frame, "joints": _frame, "texture": _texture, "topology": _topology,
    "status": _status,
}


def check(topic: str, header: dict, hands: list[dict], arrays: dict[str, np.ndarray]) -> None:
    """Raise :class:`SchemaError` if a known field or array of ``topic`` is wrong."""
    _fields(header, _COMMON, "header")
    rule = _TOPICS.get(topic)
    if rule is not None:
        rule(header, hands, arrays)
