"""The regressor's work before and after the network, each in one compiled call.

Before: :func:`network_inputs` checks and normalises every detection of a frame (the
per-hand NumPy version was ~20 small calls a hand). After: :func:`place_hand`.

Why: per hand and frame, :class:`realtime.mesh.regressor.RegressorEstimator` turned the
network's mesh into the camera frame with a dozen NumPy operations on ``(V,3)`` arrays
(cast, mirror, rotation about the joints' centre, translation, the 2D follow, projection,
reprojection error): ~0.5 ms a hand of a frame whose whole budget is 33 ms on two cores.
Here it is the same float64 arithmetic in one pass over the vertices
(``tests/test_regressor_kernels.py`` compares both kernels with the NumPy formulations: the
geometry to 1e-9, the inputs bit for bit).

Kernels are ``@njit(nogil=True, cache=True)`` like ``realtime.stream.pack_kernels``: compiled
once per installation, loaded from numba's on-disk cache afterwards (:func:`warmup`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_MIN_DEPTH_M = 1e-9  # models.geometry.project's clamp


@njit(nogil=True, cache=True, inline="always")
def _turn_and_move(x, y, z, rotate, rot, c0, c1, c2, t):
    """A point turned by ``rot`` about ``(c0, c1, c2)`` (when ``rotate``), then moved by
    ``t``: what :func:`place_hand` does to every joint and vertex."""
    if rotate:
        d0, d1, d2 = x - c0, y - c1, z - c2
        x = d0 * rot[0, 0] + d1 * rot[0, 1] + d2 * rot[0, 2] + c0
        y = d0 * rot[1, 0] + d1 * rot[1, 1] + d2 * rot[1, 2] + c1
        z = d0 * rot[2, 0] + d1 * rot[2, 1] + d2 * rot[2, 2] + c2
    return x + t[0], y + t[1], z + t[2]


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
        x, y, z = _turn_and_move(x, y, z, rotate, rot, c0, c1, c2, t)
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
        x, y, z = _turn_and_move(x, y, z, rotate, rot, c0, c1, c2, t)
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


#: ``network_inputs``' verdicts per detection, in the order they are checked.
INPUT_OK, INPUT_NOT_FINITE, INPUT_SPREAD, INPUT_FAR = 0, 1, 2, 3


@njit(nogil=True, cache=True)
def network_inputs(world, uv, z, left, width, height, max_world_m, world_out, image_out,
                   verdicts):
    """The network's inputs for ``B`` detections, and why any of them cannot be used.

    ``world (B,21,3)`` metric landmarks, ``uv (B,21,2)`` pixels, ``z (B,21)`` relative
    depths (float64), ``left (B,)``. Writes ``world_out (B,21,3)`` float32: a left hand
    mirrored in x, then centred on its mean; ``image_out (B,21,3)`` float32: ``u / width``
    (``width - u`` for a left hand), ``v / width``, ``z``; ``verdicts (B,)``: the first of
    NaN/inf anywhere, a landmark farther than ``max_world_m`` from the world mean, a pixel
    beyond one image size outside the frame (``INPUT_*``), or ``INPUT_OK``.
    """
    n = world.shape[1]
    for b in range(world.shape[0]):
        finite = True
        for j in range(n):
            for c in range(3):
                finite = finite and math.isfinite(world[b, j, c])
            finite = finite and math.isfinite(uv[b, j, 0]) and math.isfinite(uv[b, j, 1])
            finite = finite and math.isfinite(z[b, j])
        if not finite:
            verdicts[b] = INPUT_NOT_FINITE
            continue
        s = 1.0 if not left[b] else -1.0
        m0 = m1 = m2 = 0.0
        for j in range(n):
            m0 += s * world[b, j, 0]
            m1 += world[b, j, 1]
            m2 += world[b, j, 2]
        m0, m1, m2 = m0 / n, m1 / n, m2 / n
        spread = 0.0
        far = False
        for j in range(n):
            d0 = s * world[b, j, 0] - m0
            d1 = world[b, j, 1] - m1
            d2 = world[b, j, 2] - m2
            spread = max(spread, abs(d0), abs(d1), abs(d2))
            world_out[b, j, 0] = np.float32(d0)
            world_out[b, j, 1] = np.float32(d1)
            world_out[b, j, 2] = np.float32(d2)
            u, v = uv[b, j, 0], uv[b, j, 1]
            far = far or u < -width or v < -height or u > 2 * width or v > 2 * height
            image_out[b, j, 0] = np.float32((width - u if left[b] else u) / width)
            image_out[b, j, 1] = np.float32(v / width)
            image_out[b, j, 2] = np.float32(z[b, j])
        if spread > max_world_m:
            verdicts[b] = INPUT_SPREAD
        elif far:
            verdicts[b] = INPUT_FAR
        else:
            verdicts[b] = INPUT_OK


def warmup() -> None:
    """Compile (or load from the on-disk cache) the kernel for the network's float32 mesh."""
    joints = np.zeros((21, 3))
    joints[:, 2] = 0.5
    for dt in (np.float32, np.float64):
        place_hand(np.zeros((2, 3), dt), True, joints, True, np.eye(3), np.zeros(3),
                   np.zeros((21, 2)), 500.0, 500.0, 320.0, 240.0, 1.0, np.zeros((2, 21)),
                   np.empty((2, 3)), np.empty((21, 3)), np.empty((21, 2)))
    network_inputs(np.zeros((1, 21, 3)), np.zeros((1, 21, 2)), np.zeros((1, 21)),
                   np.zeros(1, np.bool_), 640.0, 480.0, 0.5, np.empty((1, 21, 3), np.float32),
                   np.empty((1, 21, 3), np.float32), np.empty(1, np.int64))
