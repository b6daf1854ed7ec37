"""The hands file: JSON lines, one record per hand per frame (fields as in docs/design.md).

Written line by line and flushed every frame, so a crash or Ctrl-C never leaves a
truncated record behind; the reader skips nothing silently and says where a line is bad.

Schema 2 adds ``"camera": {"fx", "fy", "cx", "cy", "width", "height"}`` (pixels) to every
record, so a replay can draw the hands and place them in an image of the right size without
the original video. Schema 1 files (no camera) are still read.

``xr_joints`` (26 rows of x, y, z, qx, qy, qz, qw, radius): the OpenXR hand joints of
``realtime.stream.openxr`` (camera frame in OpenXR axes), when the writer was given a tracker.

A hand with a pinch state (``HandMesh.pinch``) has ``"pinch": {"distance_m", "engaged",
"changed"}`` (``distance_m`` null when unknown); records without it read as no pinch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

import numpy as np

from calibration.intrinsics import CameraIntrinsics
from realtime.errors import RealtimeError
from realtime.io import fixed_point_kernels
from realtime.types import HandMesh, Packet, Pinch

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
_DECIMALS = fixed_point_kernels.DECIMALS  # 10 micrometres: far below any error we make
_CHUNK_FLOATS = 384  # numbers per formatting call when encoding a mesh (see record_line)
#: Fields every record of every schema has; a line without them is not a hands record.
REQUIRED_FIELDS = ("frame_index", "timestamp", "track_id", "handedness", "joints")


def _arr(a: np.ndarray, decimals: int = _DECIMALS) -> list:
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


def camera_to_record(camera: CameraIntrinsics) -> dict:
    """The ``"camera"`` field of a record: focal lengths and principal point in pixels."""
    return {"fx": round(float(camera.fx), 4), "fy": round(float(camera.fy), 4),
            "cx": round(float(camera.cx), 4), "cy": round(float(camera.cy), 4),
            "width": int(camera.width), "height": int(camera.height)}


def record_camera(record: dict) -> CameraIntrinsics | None:
    """The camera of a record, or None for schema 1 records (which have none)."""
    cam = record.get("camera")
    if cam is None:
        return None
    return CameraIntrinsics(float(cam["fx"]), float(cam["fy"]), float(cam["cx"]),
                            float(cam["cy"]), int(cam["width"]), int(cam["height"]))


def hand_to_record(hand: HandMesh, include_vertices: bool = True,
                   camera: CameraIntrinsics | None = None,
                   xr_joints: np.ndarray | None = None) -> dict:
    """A JSON-ready dict of one hand; ``camera``: the intrinsics of its frame, if known;
    ``xr_joints``: its (26,8) OpenXR joints, if computed."""
    rec = {
        "schema": SCHEMA_VERSION,
        "frame_index": hand.frame_index,
        "timestamp": round(hand.timestamp, 6),
        "track_id": hand.track_id,
        "handedness": hand.handedness,
        "score": round(hand.score, 4),
        "joints": _arr(hand.joints),
        "keypoints_2d": _arr(hand.keypoints_2d, 2),
        "pose": _arr(hand.pose),
        "shape": _arr(hand.shape),
        "reprojection_error_px": round(float(hand.reprojection_error_px), 3),
    }
    if camera is not None:
        rec["camera"] = camera_to_record(camera)
    if hand.pinch is not None:
        rec["pinch"] = pinch_to_record(hand.pinch)
    if xr_joints is not None:
        rec["xr_joints"] = _arr(xr_joints)
    if include_vertices:
        rec["vertices"] = _arr(hand.vertices)
        rec["vertex_std"] = _arr(hand.vertex_std)
    return rec


def record_line(hand: HandMesh, include_vertices: bool = True,
                camera: CameraIntrinsics | None = None,
                xr_joints: np.ndarray | None = None) -> str:
    """``json.dumps(hand_to_record(...))`` with the mesh written faster: the same record, the
    same values once parsed (the mesh's numbers carry all ``_DECIMALS`` digits, "0.50000"
    where ``json.dumps`` writes "0.5").

    Why: the mesh is 5208 numbers per hand, and ``json.dumps`` writes each as a shortest-repr
    float: ~4 ms CPU per hand on the loaded 2-core machine, twice a frame at 60 FPS, taken
    from the detector. Fixed-point ``%`` formatting of the rounded values costs half (2.0 ms);
    a compiled kernel writing the same text (:func:`_mesh_json`) a small part of that. The
    kernel releases the GIL and the ``%`` path runs in pieces of ``_CHUNK_FLOATS`` numbers:
    one long C call holding the GIL makes every stage thread that wakes meanwhile wait for
    it (measured: wake-ups up to 12-16 ms late under load with one ``json.dumps`` of a whole
    mesh)."""
    text = json.dumps(hand_to_record(hand, False, camera, xr_joints))
    if not include_vertices:
        return text
    return "".join((text[:-1], ', "vertices": ', _mesh_json(hand.vertices),
                    ', "vertex_std": ', _mesh_json(hand.vertex_std), "}"))


_FIXED = f"%.{_DECIMALS}f"


def _mesh_json(a: np.ndarray) -> str:
    """A JSON array of ``a``'s rows (or numbers) rounded to ``_DECIMALS``, fixed-point; the
    values parse back to exactly ``_arr(a)``'s. Written by one compiled call
    (:mod:`realtime.io.fixed_point_kernels`, GIL released); the text is that of
    :func:`_mesh_json_formatted`, which still writes what the kernel leaves (non-finite
    values, ``|x| >= 1e9``, neither 1-D nor 2-D)."""
    a = np.asarray(a, dtype=np.float64)
    if a.size and a.ndim in (1, 2):
        text = fixed_point_kernels.fixed_point_json(
            np.ascontiguousarray(a).reshape(-1), a.shape[1] if a.ndim == 2 else 0)
        if len(text):
            return text.tobytes().decode("ascii")
    return _mesh_json_formatted(a)


def _mesh_json_formatted(a: np.ndarray) -> str:
    """:func:`_mesh_json` by ``%`` formatting, in pieces of ``_CHUNK_FLOATS`` numbers (see
    :func:`record_line`). Non-finite values (which JSON cannot hold) go through
    ``json.dumps`` (NaN, Infinity)."""
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        return _chunked_json(a)
    if a.size == 0:
        return "[]"
    rounded = np.round(a, _DECIMALS) + 0.0  # + 0.0: no "-0.00000"
    per_row = rounded.shape[1] if rounded.ndim == 2 else 1
    row = _FIXED if rounded.ndim == 1 else "[" + ", ".join([_FIXED] * per_row) + "]"
    flat = rounded.ravel().tolist()
    rows = len(rounded)
    step = max(1, _CHUNK_FLOATS // per_row)
    pieces = []
    for start in range(0, rows, step):
        n = min(step, rows - start)
        pieces.append(", ".join([row] * n) % tuple(flat[start * per_row:(start + n) * per_row]))
    return "[" + ", ".join(pieces) + "]"


def _chunked_json(a: np.ndarray) -> str:
    """``json.dumps(_arr(a))`` built from several short ``json.dumps`` calls."""
    rows = _arr(a)
    if not rows:
        return "[]"
    per_row = len(rows[0]) if isinstance(rows[0], list) else 1
    step = max(1, _CHUNK_FLOATS // max(1, per_row))
    return "[" + ", ".join(json.dumps(rows[i:i + step])[1:-1]
                           for i in range(0, len(rows), step)) + "]"


def pinch_to_record(pinch: Pinch) -> dict:
    """The ``"pinch"`` field of a record (distance to 10 micrometres, null if unknown)."""
    d = float(pinch.distance_m)
    return {"distance_m": round(d, _DECIMALS) if math.isfinite(d) else None,
            "engaged": bool(pinch.engaged), "changed": bool(pinch.changed)}


def record_pinch(record: dict) -> Pinch | None:
    """The pinch of a record, or None for records without one (older files)."""
    pinch = record.get("pinch")
    if pinch is None:
        return None
    if not isinstance(pinch, dict) or not isinstance(pinch.get("engaged"), bool):
        raise ValueError(f"pinch must be {{\"distance_m\", \"engaged\": true/false, "
                         f"\"changed\"}}, got {pinch!r}")
    d = pinch.get("distance_m")
    return Pinch(float("nan") if d is None else float(d), bool(pinch["engaged"]),
                 bool(pinch.get("changed", False)))


def _float_array(value: object, shape_tail: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(value if value is not None else [], dtype=np.float64)
    return a.reshape((-1, *shape_tail))


def record_to_hand(record: dict) -> HandMesh:
    """The :class:`HandMesh` of a record (the inverse of :func:`hand_to_record`).

    Joints-only files have no ``vertices``/``vertex_std``: the hand then has ``(0,3)``
    vertices and a ``(0,)`` vertex_std. Missing optional fields (``pose``, ``shape``,
    ``keypoints_2d``) become empty arrays; a missing required field raises ``KeyError``,
    wrong shapes ``ValueError``.
    """
    joints = np.asarray(record["joints"], dtype=np.float64).reshape(-1, 3)
    return HandMesh(
        vertices=_float_array(record.get("vertices"), (3,)),
        joints=joints,
        vertex_std=_float_array(record.get("vertex_std"), ()),
        pose=_float_array(record.get("pose"), (3,)),
        shape=_float_array(record.get("shape"), ()),
        keypoints_2d=_float_array(record.get("keypoints_2d"), (2,)),
        handedness=str(record["handedness"]),
        score=float(record.get("score", 1.0)),
        track_id=int(record["track_id"]),
        timestamp=float(record["timestamp"]),
        frame_index=int(record["frame_index"]),
        reprojection_error_px=float(record.get("reprojection_error_px", float("nan"))),
        pinch=record_pinch(record),
    )


class HandsWriter:
    """Appends hand records to a ``.jsonl`` file; one ``write_frame`` call per frame.

    ``camera`` goes into every record; ``write_frame(hands, camera)`` overrides it for one
    frame (a folder of images of different sizes has one camera per size). ``xr``: a
    ``realtime.stream.openxr.XrJointTracker``: records then carry ``xr_joints``.
    """

    def __init__(self, path: str | Path, include_vertices: bool = True,
                 camera: CameraIntrinsics | None = None, xr=None) -> None:
        self.path = Path(path)
        self.include_vertices = include_vertices
        self.camera = camera
        self.xr = xr
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self.records = 0
        if include_vertices:
            fixed_point_kernels.warmup()  # numba: compiled or loaded now, not on frame one

    def write_frame(self, hands: list[HandMesh], camera: CameraIntrinsics | None = None) -> None:
        camera = camera if camera is not None else self.camera
        xr = self.xr(hands) if self.xr is not None else [None] * len(hands)
        for hand, xr_joints in zip(hands, xr):
            self._file.write(record_line(hand, self.include_vertices, camera, xr_joints) + "\n")
            self.records += 1
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "HandsWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_hands(path: str | Path) -> Iterator[dict]:
    """Yield the records of a hands file; a malformed line raises with its line number."""
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise RealtimeError(f"{path}:{number}: not a hands record ({exc.msg})") from exc


class HandsFileSink:
    """``hands.jsonl``: one record per hand per frame, flushed every frame.

    Every record carries the camera of its frame, so that a replay can draw and place the
    hands without the original video.
    """

    def __init__(self, path: Path, include_vertices: bool = True, xr=None) -> None:
        self.writer = HandsWriter(path, include_vertices, xr=xr)
        self.frames = 0
        self.frames_with_hands = 0

    @property
    def records(self) -> int:
        return self.writer.records

    def write(self, packet: Packet) -> None:
        self.writer.write_frame(list(packet.hands), camera=packet.frame.camera.intrinsics)
        self.frames += 1
        self.frames_with_hands += bool(packet.hands)

    def close(self) -> None:
        self.writer.close()
