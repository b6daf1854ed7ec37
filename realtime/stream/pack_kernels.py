"""Numba kernels that pack one hand's arrays into its wire buffer in a single call.

Why: at 60 Hz the publishing thread sleeps 16 ms between frames, and after a sleep each of
the ~25 small NumPy calls per hand of the generic packing (casts, reshapes, the wrist
frame, finger-angle indexing) costs several times its hot-loop price; packing two hands
took ~0.4 ms of the 0.3 ms budget. One compiled call per hand does it all.

The results are bit-identical to :class:`realtime.stream.protocol.HandPacker`'s generic path
(same float64 operations in the same order, IEEE casts to float32, NumPy's pairwise sum
for ``mean_std``); ``tests/test_protocol_fast.py`` checks that byte for byte.
Kernels are ``@njit(nogil=True, cache=True)`` like ``realtime.mesh.smoothing``: compiled once
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
    # the wrist frame: models.hand_geometry.wrist_frame's float64 operations, in its order
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


def _two_signatures() -> list:
    """``pack_two``'s signatures: plain C-contiguous float64 or float32 hands. Anything
    else (a strided view, mixed dtypes, lists) matches none and raises TypeError, which
    sends that frame down the per-hand path instead of compiling in the loop."""
    from numba import types as t

    sigs = []
    for dt in (t.float64, t.float32):
        a2, a1 = t.Array(dt, 2, "C"), t.Array(dt, 1, "C")
        hand = (a2, a2, a1, a2, a2, a1)
        f32 = t.Array(t.float32, 1, "C")
        sigs.append(t.UniTuple(t.float64, 3)(*hand, *hand, t.Array(t.int64, 1, "C"), f32, f32))
    return sigs


#: ``pack_two``'s ``meta``: n_names, mesh32, finger rows (15), have (15), then per hand its
#: slot's offsets (9) and dims (6).
META_SIZE = 2 + 15 + 15 + 2 * (9 + 6)


def two_meta(n_names: int, mesh32: bool, fidx: np.ndarray, have: np.ndarray,
             offs0: np.ndarray, dims0: np.ndarray, offs1: np.ndarray, dims1: np.ndarray
             ) -> np.ndarray:
    """The constants of a pair of slots in one array (each argument costs ~1.4 µs of cold
    dispatch)."""
    return np.concatenate([[n_names, int(mesh32)], fidx, have.astype(np.int64), offs0, dims0,
                           offs1, dims1]).astype(np.int64)


@njit(nogil=True)
def _fits(joints, pose, shape, kp2d, verts, std, dims):
    """Whether a hand has the shapes its slot was laid out for (``dims``: joints, pose,
    shape, keypoints, vertices, vertex_std rows)."""
    return (joints.shape[0] == dims[0] and joints.shape[1] == 3 and pose.shape[0] == dims[1]
            and pose.shape[1] == 3 and shape.shape[0] == dims[2] and kp2d.shape[0] == dims[3]
            and kp2d.shape[1] == 2 and verts.shape[0] == dims[4] and verts.shape[1] == 3
            and std.shape[0] == dims[5])


@njit(_two_signatures(), nogil=True, cache=True)
def pack_two(j0, p0, s0, k0, v0, d0, j1, p1, s1, k1, v1, d1, meta, out0, out1):
    """Two hands into their slots in one call: the publisher's usual frame.

    Why one call, with the checks inside: after a 16 ms sleep every distinct piece of code
    runs cold (the first NumPy or Numba call after the sleep costs ~30 µs, the same call
    again ~2 µs, and each argument ~1.4 µs of dispatch), and the per-hand path's Python
    checks (dtypes, contiguity, shapes) were half of the publish cost. Here the signatures
    check dtypes and layout, the slots' dims (in ``meta``, see :func:`two_meta`) the shapes;
    a hand that does not fit returns ``(0, nan, nan)`` before anything is written, and the
    caller lays out new slots. Returns ``(1, sum0, sum1)``: both ``vertex_std`` sums.
    """
    n_names, mesh32 = meta[0], meta[1] != 0
    fidx, have = meta[2:17], meta[17:32] != 0
    offs0, dims0, offs1, dims1 = meta[32:41], meta[41:47], meta[47:56], meta[56:62]
    if not (_fits(j0, p0, s0, k0, v0, d0, dims0) and _fits(j1, p1, s1, k1, v1, d1, dims1)):
        return 0.0, np.nan, np.nan
    a = pack_hand(j0, p0, s0, k0, v0, d0, fidx, have, n_names > 0 and p0.shape[0] == n_names,
                  mesh32, out0, offs0)
    b = pack_hand(j1, p1, s1, k1, v1, d1, fidx, have, n_names > 0 and p1.shape[0] == n_names,
                  mesh32, out1, offs1)
    return 1.0, a, b


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
    # pack_two has explicit signatures: compiled (or loaded from the cache) at import
