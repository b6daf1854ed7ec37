"""Keypoints moved by a few named millimetres along each joint's own axes, as a JointConvention.

Annotators of photos put some joints elsewhere on the hand than the hand model's skeleton
does (the knuckles nearer the wrist, the wrist nearer the fingers, the thumb's base and the
index tip elsewhere on the surface). A :class:`Move` says that in words a person can check:
"these joints, k mm along their bone / towards the palm / towards the thumb side". Each axis
is the difference of two small groups of mesh vertices around the joint, picked on the rest
mesh, so a move is a fixed linear combination of the vectors to nearby vertices: exactly a
:class:`~models.joint_convention.JointConvention`, applied by the same runtime code. It turns,
bends, scales and mirrors with the hand (points, not a handed frame) and is built from the
model's own rest mesh, so it fits any hand model that keeps ``models.hand_model``'s frame.

Axes at a joint (the rest model faces the camera with its palm: fingers along -y, the back of
the hand +z, the thumb side +x):

- ``along``: from the vertices around the joint to those around the next joint out (the
  wrist: towards the middle finger's knuckle; a tip: along its last segment, outwards);
- ``palm``: from the back of the finger (or hand) to its palm side;
- ``side``: from the little-finger side to the thumb side.

Each is divided by its rest length, so ``mm`` is millimetres on the rest hand and scales
with the hand's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.joint_convention import JointConvention, nearest_vertices
from models.topology import KEYPOINT_PARENTS, NUM_KEYPOINTS, Keypoint

AXES = ("along", "palm", "side")
_ABBREVIATIONS = ("CMC", "MCP", "IP", "PIP", "DIP")  # joint names kept in capitals
#: "wrist", "thumb CMC", ..., "pinky tip": :class:`models.topology.Keypoint`'s names in words.
KEYPOINT_NAMES = tuple(" ".join(w if w in _ABBREVIATIONS else w.lower()
                                for w in k.name.split("_")) for k in Keypoint)
ALONG_GROUP = 12      # vertices nearest each end of a segment, for "along"
COLUMN_M = 0.007      # radius of the column through a joint whose two ends give "palm"/"side"
GROUP = 4             # vertices averaged per end of the palm and side axes


@dataclass(frozen=True)
class Move:
    """``joints`` (keypoint indices) moved ``mm`` millimetres along their ``axis``."""

    joints: tuple[int, ...]
    axis: str
    mm: float

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {self.axis!r}")
        if not self.joints or min(self.joints) < 0 or max(self.joints) >= NUM_KEYPOINTS:
            raise ValueError(f"joints must be keypoint indices 0-20, got {self.joints}")
        if not np.isfinite(self.mm):
            raise ValueError(f"mm must be finite, got {self.mm}")

    def describe(self) -> str:
        names = ", ".join(KEYPOINT_NAMES[j] for j in self.joints)
        return f"{names}: {self.mm:+.1f} mm {self.axis}"


def _children() -> np.ndarray:
    child = np.full(NUM_KEYPOINTS, -1)
    for j, p in enumerate(KEYPOINT_PARENTS):
        if p > 0:
            child[p] = j
    child[0] = 9  # the wrist looks along the middle finger
    return child


def bone_direction(keypoints: np.ndarray, j: int) -> np.ndarray:
    """Unit direction of joint ``j``'s segment at rest (outwards; a tip: its last one)."""
    c = _children()[j]
    d = keypoints[c] - keypoints[j] if c >= 0 else keypoints[j] - keypoints[KEYPOINT_PARENTS[j]]
    return d / np.linalg.norm(d)


def axis_vertices(template: np.ndarray, keypoints: np.ndarray, j: int, axis: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(plus, minus)`` vertex groups whose mean difference is joint ``j``'s ``axis``."""
    a = bone_direction(keypoints, j)
    if axis == "along":
        # the vertices around the segment's two ends: each group's mean sits near its joint
        c = _children()[j]
        ends = (c, j) if c >= 0 else (j, int(KEYPOINT_PARENTS[j]))
        near_ends = nearest_vertices(template, keypoints[list(ends)], ALONG_GROUP)
        return near_ends[0], near_ends[1]
    toward = np.array([0.0, 0.0, -1.0]) if axis == "palm" else np.array([1.0, 0.0, 0.0])
    toward = toward - (toward @ a) * a
    toward /= np.linalg.norm(toward)
    # a column through the joint along the axis: its two ends are the surface on either side
    rel = template - keypoints[j]
    depth = rel @ toward
    cand = np.flatnonzero(np.linalg.norm(rel - depth[:, None] * toward, axis=1) < COLUMN_M)
    order = np.argsort(depth[cand])
    return cand[order[-GROUP:]], cand[order[:GROUP]]


def placement_convention(template: np.ndarray, keypoints: np.ndarray,
                         moves: tuple[Move, ...]) -> JointConvention:
    """The :class:`JointConvention` that makes ``moves`` on a hand model with rest mesh
    ``template (V,3)`` and rest keypoints ``keypoints (21,3)``."""
    terms: list[list[tuple[int, float]]] = [[] for _ in range(NUM_KEYPOINTS)]
    for move in moves:
        for j in move.joints:
            plus, minus = axis_vertices(template, keypoints, j, move.axis)
            if len(plus) == 0 or len(minus) == 0:
                raise ValueError(f"no vertices for the {move.axis} axis of keypoint {j}")
            length = np.linalg.norm(template[plus].mean(0) - template[minus].mean(0))
            k = move.mm / 1000.0 / length
            terms[j] += [(int(v), k / len(plus)) for v in plus]
            terms[j] += [(int(v), -k / len(minus)) for v in minus]
    width = max(1, max(len(t) for t in terms))
    idx = np.zeros((NUM_KEYPOINTS, width), np.int64)
    coef = np.zeros((NUM_KEYPOINTS, width))
    for j, t in enumerate(terms):
        for n, (v, c) in enumerate(t):
            idx[j, n], coef[j, n] = v, c
    return JointConvention(idx=idx, coef=coef)


def local_axes(conv_by_axis: dict[str, JointConvention], joints: np.ndarray,
               verts: np.ndarray) -> np.ndarray:
    """``(...,21,3,3)``: each joint's three axes (columns along, palm, side) as the unit moves
    of ``conv_by_axis`` (``placement_convention`` of a 1 mm move of every joint) produce them:
    for reading residuals in the joints' own frames."""
    cols = [conv_by_axis[a].offsets(joints, verts) * 1000.0 for a in AXES]
    return np.stack(cols, -1)
