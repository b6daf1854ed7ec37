"""Numba kernels that pack one hand's arrays into its wire buffer in a single call.

Why: at 60 Hz the publishing thread sleeps 16 ms between frames, and after a sleep each of
the ~25 small NumPy calls per hand of the generic packing (casts, reshapes, the wrist
frame, finger-angle indexing) costs several times its hot-loop price; packing two hands
took ~0.4 ms of the 0.3 ms budget. One compiled call per hand does it all.

The results are bit-identical to :class:`realtime.protocol.HandPacker`'s generic path
(same float64 operations in the same order, IEEE casts to float32, NumPy's pairwise sum
for ``mean_std``); ``tests/test_protocol_fast.py`` checks that byte for byte.
Kernels are ``@njit(nogil=True, cache=True)`` like ``realtime.smoothing``: compiled once
per installation, loaded from numba's on-disk cache afterwards (:func:`warmup`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Element offsets (into the float32 view of a slot buffer) of the arrays, in this order.
OFFSET_NAMES = ("joints", "wrist_position", "wrist_rotation", "finger_angles", "keypoints_2d",
                "pose", "shape", "vertices", "vertex_std")


@njit(nogil=True, cache=True)
def _pairwise(a, lo, n):
    """NumPy's pairwise summation (``pairwise_sum`` in loops_utils.h) of a[lo:lo+n]."""
    if n < 8:
        res = 0.0
        for k in range(n):
            res += np.float64(a[lo + k])
        return res
    if n <= 128:
        r0 = np.float64(a[lo])
        r1 = np.float64(a[lo + 1])
        r2 = np.float64(a[lo + 2])
        r3 = np.float64(a[lo + 3])
        r4 = np.float64(a[lo + 4])
        r5 = np.float64(a[lo + 5])
        r6 = np.float64(a[lo + 6])
        r7 = np.float64(a[lo + 7])
        i = 8
        m = n - n % 8
        while i < m:
            r0 += np.float64(a[lo + i])
            r1 += np.float64(a[lo + i + 1])
            r2 += np.float64(a[lo + i + 2])
            r3 += np.float64(a[lo + i + 3])
            r4 += np.float64(a[lo + i + 4])
            r5 += np.float64(a[lo + i + 5])
            r6 += np.float64(a[lo + i + 6])
            r7 += np.float64(a[lo + i + 7])
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += np.float64(a[lo + i])
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, lo, n2) + _pairwise(a, lo + n2, n - n2)


@njit(nogil=True, cache=True)
def np_sum(a):
    """``a.sum(dtype=np.float64)`` of a 1-D contiguous array, bit-identical to NumPy."""
    n = a.shape[0]
    if n == 0:
        return 0.0
    # NumPy's add.reduce sums pairwise, in buffers of 8192 elements.
    res = 0.0
    lo = 0
    while lo < n:
        m = min(8192, n - lo)
        res += _pairwise(a, lo, m)
        lo += m
    return res


@njit(nogil=True, cache=True)
def pack_hand(joints, pose, shape, kp2d, verts, std, fidx, have, fingers, mesh32, out, offs):
    """Fill ``out`` (float32 view of a slot buffer) at element offsets ``offs`` (see
    :data:`OFFSET_NAMES`) from one hand; returns ``vertex_std``'s float64 sum.

    ``joints`` (N>=21,3), ``pose`` (J,3), ``shape`` (S,), ``kp2d`` (K,2), ``verts`` (V,3),
    ``std`` (V,): C-contiguous, one float dtype. ``fingers``: whether ``pose`` has the
    model's joints (else finger angles are NaN); ``fidx``/``have``: their rows.
    ``mesh32``: also copy vertices and vertex_std (float32 wire; float16 is cast outside).
    """
    o = offs[0]
    for r in range(joints.shape[0]):
        for c in range(3):
            out[o + 3 * r + c] = np.float32(joints[r, c])
    o = offs[1]
    for c in range(3):
        out[o + c] = np.float32(joints[0, c])
    # the wrist frame: protocol.wrist_frame's float64 operations, in its order
    w0, w1, w2 = np.float64(joints[0, 0]), np.float64(joints[0, 1]), np.float64(joints[0, 2])
    i0, i1, i2 = np.float64(joints[5, 0]), np.float64(joints[5, 1]), np.float64(joints[5, 2])
    m0, m1, m2 = np.float64(joints[9, 0]), np.float64(joints[9, 1]), np.float64(joints[9, 2])
    p0, p1, p2 = np.float64(joints[17, 0]), np.float64(joints[17, 1]), np.float64(joints[17, 2])
    y0, y1, y2 = w0 - m0, w1 - m1, w2 - m2
    x0, x1, x2 = i0 - p0, i1 - p1, i2 - p2
    rot = np.eye(3)
    ny = math.sqrt(y0 * y0 + y1 * y1 + y2 * y2)
    if math.isfinite(ny) and not ny < 1e-9:
        y0, y1, y2 = y0 / ny, y1 / ny, y2 / ny
        d = x0 * y0 + x1 * y1 + x2 * y2
        x0, x1, x2 = x0 - y0 * d, x1 - y1 * d, x2 - y2 * d
        nx = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2)
        if math.isfinite(nx) and not nx < 1e-9:
            x0, x1, x2 = x0 / nx, x1 / nx, x2 / nx
            rot[0, 0], rot[1, 0], rot[2, 0] = x0, x1, x2
            rot[0, 1], rot[1, 1], rot[2, 1] = y0, y1, y2
            rot[0, 2] = x1 * y2 - x2 * y1
            rot[1, 2] = x2 * y0 - x0 * y2
            rot[2, 2] = x0 * y1 - x1 * y0
    o = offs[2]
    for r in range(3):
        for c in range(3):
            out[o + 3 * r + c] = np.float32(rot[r, c])
    o = offs[3]
    for k in range(fidx.shape[0]):
        if fingers and have[k]:
            out[o + k] = np.float32(pose[fidx[k], 0])
        else:
            out[o + k] = np.float32(np.nan)
    o = offs[4]
    for r in range(kp2d.shape[0]):
        out[o + 2 * r] = np.float32(kp2d[r, 0])
        out[o + 2 * r + 1] = np.float32(kp2d[r, 1])
    o = offs[5]
    for r in range(pose.shape[0]):
        for c in range(3):
            out[o + 3 * r + c] = np.float32(pose[r, c])
    o = offs[6]
    for k in range(shape.shape[0]):
        out[o + k] = np.float32(shape[k])
    if mesh32:
        o = offs[7]
        for r in range(verts.shape[0]):
            for c in range(3):
                out[o + 3 * r + c] = np.float32(verts[r, c])
        o = offs[8]
        for k in range(std.shape[0]):
            out[o + k] = np.float32(std[k])
    return np_sum(std)


def warmup() -> None:
    """Compile (or load from the on-disk cache) the kernels for float64 and float32 hands,
    so the first published frame pays no JIT time."""
    for dt in (np.float64, np.float32):
        j = np.zeros((21, 3), dt)
        out = np.zeros(200, np.float32)
        offs = np.array([0, 63, 66, 75, 90, 132, 141, 150, 156], np.int64)
        pack_hand(j, np.zeros((1, 3), dt), np.zeros(1, dt), np.zeros((21, 2), dt),
                  np.zeros((2, 3), dt), np.zeros(2, dt), np.zeros(15, np.int64),
                  np.zeros(15, np.bool_), True, True, out, offs)
