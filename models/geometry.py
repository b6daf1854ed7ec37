"""Rotation conversions, batched over any leading shape, in NumPy.

Axis-angle (rotation vector) and the continuous 6D representation of Zhou et al.,
"On the Continuity of Rotation Representations in Neural Networks", CVPR 2019.
Pure functions: no state, no I/O. The torch twins live in ``models.training.torch_skinning``.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-8


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues' formula. ``(..., 3)`` rotation vectors (radians) -> ``(..., 3, 3)``."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    axis = rotvec / np.maximum(angle, _EPS)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zeros = np.zeros_like(x)
    skew = np.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], axis=-1)
    skew = skew.reshape(rotvec.shape[:-1] + (3, 3))
    s = np.sin(angle)[..., None]
    c = np.cos(angle)[..., None]
    eye = np.broadcast_to(np.eye(3), skew.shape)
    out = eye + s * skew + (1.0 - c) * (skew @ skew)
    # Below 1e-8 rad the unit axis is meaningless: use the first-order map I + [v]x.
    tiny = angle[..., 0] < _EPS
    if np.any(tiny):
        v = rotvec[tiny]
        z0 = np.zeros(len(v))
        first = np.stack([z0, -v[:, 2], v[:, 1], v[:, 2], z0, -v[:, 0], -v[:, 1], v[:, 0], z0],
                         axis=-1).reshape(-1, 3, 3)
        out[tiny] = np.eye(3) + first
    return out


def matrix_to_axis_angle(matrix: np.ndarray) -> np.ndarray:
    """Inverse of :func:`axis_angle_to_matrix`, robust near 0 and pi. ``(...,3,3)``->``(...,3)``."""
    m = np.asarray(matrix, dtype=np.float64)
    cos = np.clip((np.trace(m, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    vee = np.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]],
        axis=-1,
    )
    # atan2 of sin and cos stays accurate near 0 and pi, where arccos alone does not.
    sin = np.linalg.norm(vee, axis=-1) / 2.0
    angle = np.arctan2(sin, cos)
    small = sin > 1e-4
    axis = np.where(small[..., None], vee / np.maximum(2.0 * sin, _EPS)[..., None], 0.0)
    # Near pi the antisymmetric part vanishes: read the axis off the symmetric part.
    near_pi = (~small) & (cos < 0)
    if np.any(near_pi):
        sym = (m + np.swapaxes(m, -1, -2)) / 2.0 - np.eye(3) * cos[..., None, None]
        diag = np.clip(np.diagonal(sym, axis1=-2, axis2=-1), 0.0, None)
        col = np.argmax(diag, axis=-1)
        pick = np.take_along_axis(sym, col[..., None, None].repeat(3, -1), axis=-2)[..., 0, :]
        pick = pick / np.maximum(np.linalg.norm(pick, axis=-1, keepdims=True), _EPS)
        sign = np.sign(np.sum(pick * vee, axis=-1, keepdims=True))
        sign = np.where(sign == 0, 1.0, sign)
        axis = np.where(near_pi[..., None], pick * sign, axis)
    rotvec = axis * angle[..., None]
    # Near zero: first-order vee map.
    return np.where((~small & ~near_pi)[..., None], vee / 2.0, rotvec)


def rot6d_to_matrix(x: np.ndarray) -> np.ndarray:
    """6D (first two columns) -> rotation by Gram-Schmidt. ``(..., 6)`` -> ``(..., 3, 3)``."""
    x = np.asarray(x, dtype=np.float64)
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), _EPS)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), _EPS)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def matrix_to_rot6d(matrix: np.ndarray) -> np.ndarray:
    """The first two columns, concatenated. ``(..., 3, 3)`` -> ``(..., 6)``."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction ``a`` onto ``b``. ``(..., 3)`` x2 -> ``(..., 3, 3)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), _EPS)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), _EPS)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True)
    angle = np.arctan2(sin, cos)
    # Opposite vectors: any axis perpendicular to a.
    helper = np.where(np.abs(a[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    perp = np.cross(a, helper)
    perp = perp / np.maximum(np.linalg.norm(perp, axis=-1, keepdims=True), _EPS)
    axis = np.where(sin > 1e-9, axis / np.maximum(sin, _EPS), perp)
    return axis_angle_to_matrix(axis * angle)
