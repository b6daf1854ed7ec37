"""The regressor's per-hand geometry after the network in one compiled call.

Why: per hand and frame, :class:`realtime.mesh.regressor.RegressorEstimator` turned the
network's mesh into the camera frame with a dozen NumPy operations on ``(V,3)`` arrays (cast,
mirror, rotation about the joints' centre, translation, the 2D follow, projection,
reprojection error): ~0.5 ms a hand
of a frame whose whole budget is 33 ms on two cores. Here it is the same float64 arithmetic
in one pass over the vertices (``tests/test_regressor_kernels.py`` compares it with the NumPy
formulation to 1e-9).

Kernels are ``@njit(nogil=True, cache=True)`` like ``realtime.stream.pack_kernels``: compiled
once per installation, loaded from numba's on-disk cache afterwards (:func:`warmup`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_MIN_DEPTH_M = 1e-9  # models.geometry.project's clamp


@njit(nogil=True, cache=True)
def place_hand(verts, mirror, joints, rotate, rot, t, uv, fx, fy, cx, cy, strength, weights,
               out_verts, out_joints, out_uv):
    """The network's hand in the camera frame; returns the mean reprojection error (px).

    ``verts (V,3)`` as the network gave them (any float; mirrored in x when ``mirror``);
    ``joints (21,3)`` float64, already mirrored. With ``rotate``: turned by ``rot (3,3)``
    about the joints' centroid; then moved by ``t (3,)``; then, when ``strength > 0``, each
    joint pulled by ``strength`` toward the ray of its pixel ``uv (21,2)`` at its own depth
    and each vertex by ``weights (V,21) @ shift``.

    The 2D follow: the network's articulation is a few pixels off MediaPipe's 2D landmarks,
    which are the better witness of image position; depth stays the network's. Vertices
    follow the displacements of nearby keypoints (``weights`` from
    :func:`realtime.mesh.regressor.follow_weights`), so the surface stays smooth.
    Writes ``out_verts (V,3)``, ``out_joints (21,3)`` and their projection ``out_uv (21,2)``.
    """
    nj = joints.shape[0]
    c0 = c1 = c2 = 0.0
    for j in range(nj):
        c0 += joints[j, 0]
        c1 += joints[j, 1]
        c2 += joints[j, 2]
    c0, c1, c2 = c0 / nj, c1 / nj, c2 / nj
    shift = np.zeros((nj, 3))
    for j in range(nj):
        x, y, z = joints[j, 0], joints[j, 1], joints[j, 2]
        if rotate:
            d0, d1, d2 = x - c0, y - c1, z - c2
            x = d0 * rot[0, 0] + d1 * rot[0, 1] + d2 * rot[0, 2] + c0
            y = d0 * rot[1, 0] + d1 * rot[1, 1] + d2 * rot[1, 2] + c1
            z = d0 * rot[2, 0] + d1 * rot[2, 1] + d2 * rot[2, 2] + c2
        x, y, z = x + t[0], y + t[1], z + t[2]
        if strength > 0:  # toward the backprojection of the pixel at this depth
            s0 = ((uv[j, 0] - cx) / fx * z - x) * strength
            s1 = ((uv[j, 1] - cy) / fy * z - y) * strength
            s2 = (z - z) * strength
            shift[j, 0], shift[j, 1], shift[j, 2] = s0, s1, s2
            x, y, z = x + s0, y + s1, z + s2
        out_joints[j, 0], out_joints[j, 1], out_joints[j, 2] = x, y, z
    for i in range(verts.shape[0]):
        x = np.float64(verts[i, 0])
        y = np.float64(verts[i, 1])
        z = np.float64(verts[i, 2])
        if mirror:
            x = -x
        if rotate:
            d0, d1, d2 = x - c0, y - c1, z - c2
            x = d0 * rot[0, 0] + d1 * rot[0, 1] + d2 * rot[0, 2] + c0
            y = d0 * rot[1, 0] + d1 * rot[1, 1] + d2 * rot[1, 2] + c1
            z = d0 * rot[2, 0] + d1 * rot[2, 1] + d2 * rot[2, 2] + c2
        x, y, z = x + t[0], y + t[1], z + t[2]
        if strength > 0:
            f0 = f1 = f2 = 0.0
            for j in range(nj):
                w = weights[i, j]
                f0 += w * shift[j, 0]
                f1 += w * shift[j, 1]
                f2 += w * shift[j, 2]
            x, y, z = x + f0, y + f1, z + f2
        out_verts[i, 0], out_verts[i, 1], out_verts[i, 2] = x, y, z
    err = 0.0
    for j in range(nj):
        z = max(out_joints[j, 2], _MIN_DEPTH_M)
        u = out_joints[j, 0] / z * fx + cx
        v = out_joints[j, 1] / z * fy + cy
        out_uv[j, 0], out_uv[j, 1] = u, v
        err += math.sqrt((u - uv[j, 0]) ** 2 + (v - uv[j, 1]) ** 2)
    return err / nj


def warmup() -> None:
    """Compile (or load from the on-disk cache) the kernel for the network's float32 mesh."""
    joints = np.zeros((21, 3))
    joints[:, 2] = 0.5
    for dt in (np.float32, np.float64):
        place_hand(np.zeros((2, 3), dt), True, joints, True, np.eye(3), np.zeros(3),
                   np.zeros((21, 2)), 500.0, 500.0, 320.0, 240.0, 1.0, np.zeros((2, 21)),
                   np.empty((2, 3)), np.empty((21, 3)), np.empty((21, 2)))
