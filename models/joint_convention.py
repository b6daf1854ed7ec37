"""Where MediaPipe puts the 21 joints on our mesh: a small learned keypoint correction.

The regressor outputs the open hand model's keypoints, but MediaPipe (and people who
annotate photos) place some joints elsewhere on the same hand: the knuckles (MCPs) lower
in the palm, the fingertips nearer the pad, the wrist nearer the forearm. Rendered hands
with exact ground truth, run through MediaPipe (``scripts.make_detector_pairs``), show the
systematic part of that difference. Each joint's correction is a fixed linear combination
of vectors from the joint to the mesh vertices nearest it at rest,

    joint_j' = joint_j + sum_n coef[j, n] * (vertex[idx[j, n]] - joint_j),

so it turns, scales and bends with the hand (no per-hand frame to build), and is fitted by
ridge least squares on the pairs (``fit_convention``). Pure numpy; the runtime applies it
to the network's output joints (the mesh stays as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class JointConvention:
    """``idx (21,N)`` vertex indices and ``coef (21,N)`` weights per joint."""

    idx: np.ndarray
    coef: np.ndarray

    def __post_init__(self) -> None:
        if self.idx.shape != self.coef.shape or self.idx.ndim != 2 or self.idx.shape[0] != 21:
            raise ValueError(f"joint convention needs idx and coef of the same (21,N) shape, "
                             f"got {self.idx.shape} and {self.coef.shape}")

    def offsets(self, joints: np.ndarray, verts: np.ndarray) -> np.ndarray:
        """``(...,21,3)`` corrections for ``joints (...,21,3)`` on ``verts (...,V,3)``."""
        rel = verts[..., self.idx, :] - joints[..., :, None, :]  # (...,21,N,3)
        return (self.coef[..., None] * rel).sum(-2)

    def apply(self, joints: np.ndarray, verts: np.ndarray, strength: float = 1.0,
              max_offset: float | None = None) -> np.ndarray:
        """The joints moved to the convention (``strength`` 0..1 of the way); each move
        shortened to at most ``max_offset`` (m): a linear map of nearby vertices can
        overshoot on a pose far from those it was fitted on."""
        off = strength * self.offsets(joints, verts)
        if max_offset is not None:
            norm = np.linalg.norm(off, axis=-1, keepdims=True)
            off = off * np.minimum(1.0, max_offset / np.maximum(norm, 1e-12))
        return joints + off

    def save(self, path: Path, recipe: str) -> None:
        np.savez(path, idx=self.idx.astype(np.int32), coef=self.coef.astype(np.float32),
                 recipe=np.array(recipe))

    @classmethod
    def load(cls, path: Path) -> JointConvention:
        with np.load(path) as z:
            return cls(idx=z["idx"].astype(np.int64), coef=z["coef"].astype(np.float64))


def nearest_vertices(rest_verts: np.ndarray, rest_joints: np.ndarray, count: int) -> np.ndarray:
    """``(21,count)`` indices of the rest-mesh vertices nearest each rest joint."""
    d2 = ((rest_joints[:, None, :] - rest_verts[None]) ** 2).sum(-1)
    return np.argsort(d2, axis=1)[:, :count]


def similarity(src: np.ndarray, dst: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per hand, the best ``k, R, a, b`` with ``k (src - a) @ R + b`` close to ``dst``
    (``src, dst (B,P,3)``)."""
    a, b = src.mean(1, keepdims=True), dst.mean(1, keepdims=True)
    ps, pd = src - a, dst - b
    u, s, vt = np.linalg.svd(ps.transpose(0, 2, 1) @ pd)
    d = np.sign(np.linalg.det(u @ vt))
    u[..., 2] *= d[:, None]
    s[:, 2] *= d
    return s.sum(1) / (ps ** 2).sum((1, 2)), u @ vt, a, b


def shape_error(joints: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``(B,21)`` distances from ``landmarks`` to ``joints`` moved onto them by a similarity:
    the shape difference in the landmarks' units (shrinking the joints gains nothing)."""
    k, rot, a, b = similarity(joints, landmarks)
    return np.linalg.norm(k[:, None, None] * (joints - a) @ rot + b - landmarks, axis=-1)


def fit_convention(verts: np.ndarray, joints: np.ndarray, landmarks: np.ndarray,
                   idx: np.ndarray, ridge: float, rounds: int = 3,
                   trim_mm: float | None = 40.0) -> JointConvention:
    """Ridge least squares for ``coef`` from true meshes ``verts (B,V,3)``, true joints
    ``joints (B,21,3)`` and MediaPipe's landmarks of the same hands ``landmarks (B,21,3)``.

    Per hand, the corrected joints are similarity-aligned onto the landmarks and the
    landmarks' residuals taken back into the joints' frame, weighted by the alignment's
    scale: the fit minimises the shape error in the landmarks' units (MediaPipe's world
    landmarks are smaller than our hands on the renders; shrinking the joints must not
    pass for a fit). Repeated ``rounds`` times (the alignment depends on the correction).
    Residuals over ``trim_mm`` (MediaPipe's gross misses) are left out. ``ridge`` is in
    m^2 per unit weight, added to the normal equations of each joint.
    """
    conv = JointConvention(idx=idx, coef=np.zeros(idx.shape))
    for _ in range(rounds):
        target = conv.apply(joints, verts)
        k, rot, a, b = similarity(target, landmarks)
        back = (landmarks - b) @ rot.transpose(0, 2, 1) / k[:, None, None] + a
        resid = (back - joints) * k[:, None, None]  # (B,21,3), landmark units
        gone = np.linalg.norm(back - target, axis=-1) * k[:, None] >= (
            np.inf if trim_mm is None else trim_mm / 1000)
        coef = np.zeros(idx.shape)
        for j in range(21):
            keep = ~gone[:, j]
            rel = (verts[keep][:, idx[j], :] - joints[keep, j, None, :]) * k[keep, None, None]
            lhs = rel.transpose(0, 2, 1).reshape(-1, idx.shape[1])  # (B*3,N)
            rhs = resid[keep, j].reshape(-1)
            coef[j] = np.linalg.solve(lhs.T @ lhs + ridge * len(rhs) * np.eye(lhs.shape[1]),
                                      lhs.T @ rhs)
        conv = JointConvention(idx=idx, coef=coef)
    return conv
