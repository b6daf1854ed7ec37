"""Numba kernels of :mod:`realtime.stream.openxr`: one compiled call per hand.

Why compiled: the same math in NumPy took ~750 small array calls per two-hand frame (several
ms on a loaded core), against a publish budget of 0.3 ms. ``@njit(nogil=True, cache=True)``
as :mod:`realtime.stream.pack_kernels`: compiled once per installation
(``XrJointTracker.warmup``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from models.geometry import _rodrigues3, kabsch_into

#: Row of the palm and of the four metacarpals in the 26 (XrHandJointEXT order).
PALM, MIDDLE_METACARPAL, MIDDLE_PROXIMAL = 0, 11, 12
METACARPALS = (6, 11, 16, 21)


@njit(cache=True, nogil=True)
def positions_into(kp, cmc, kp_of, out):
    """The 26 positions: keypoints where ``kp_of >= 0``, the four metacarpal (CMC) joints
    ``cmc`` (4,3), and the palm halfway along the middle metacarpal."""
    for j in range(26):
        if kp_of[j] >= 0:
            for c in range(3):
                out[j, c] = kp[kp_of[j], c]
    for f in range(4):
        for c in range(3):
            out[METACARPALS[f], c] = cmc[f, c]
    for c in range(3):
        out[PALM, c] = 0.5 * (out[MIDDLE_METACARPAL, c] + out[MIDDLE_PROXIMAL, c])


@njit(cache=True, nogil=True)
def frames_into(pos, dorsal, dir_a, dir_b, axes):
    """Axes (columns X, Y, Z) of the 26 joints: Z = -(pos[b] - pos[a]) normalised (-Z along
    the bone), Y = ``dorsal`` orthogonalised against Z, X = Y x Z (right-handed)."""
    for j in range(26):
        a, b = dir_a[j], dir_b[j]
        z0, z1, z2 = pos[a, 0] - pos[b, 0], pos[a, 1] - pos[b, 1], pos[a, 2] - pos[b, 2]
        n = max(math.sqrt(z0 * z0 + z1 * z1 + z2 * z2), 1e-12)
        z0, z1, z2 = z0 / n, z1 / n, z2 / n
        d = dorsal[j, 0] * z0 + dorsal[j, 1] * z1 + dorsal[j, 2] * z2
        y0, y1, y2 = dorsal[j, 0] - d * z0, dorsal[j, 1] - d * z1, dorsal[j, 2] - d * z2
        n = max(math.sqrt(y0 * y0 + y1 * y1 + y2 * y2), 1e-12)
        y0, y1, y2 = y0 / n, y1 / n, y2 / n
        axes[j, 0, 0], axes[j, 1, 0], axes[j, 2, 0] = y1 * z2 - y2 * z1, y2 * z0 - y0 * z2, \
            y0 * z1 - y1 * z0
        axes[j, 0, 1], axes[j, 1, 1], axes[j, 2, 1] = y0, y1, y2
        axes[j, 0, 2], axes[j, 1, 2], axes[j, 2, 2] = z0, z1, z2


@njit(cache=True, nogil=True)
def radii_into(verts, pos, axes, idx, mask, out):
    """Per joint the mean distance of its vertices ``verts[idx[j]]`` (where ``mask``) to the
    line through ``pos[j]`` along its Z axis; NaN without vertices."""
    for j in range(26):
        s, n = 0.0, 0
        z0, z1, z2 = axes[j, 0, 2], axes[j, 1, 2], axes[j, 2, 2]
        for k in range(idx.shape[1]):
            if not mask[j, k]:
                continue
            v = idx[j, k]
            d0, d1, d2 = verts[v, 0] - pos[j, 0], verts[v, 1] - pos[j, 1], verts[v, 2] - pos[j, 2]
            a = d0 * z0 + d1 * z1 + d2 * z2
            d0, d1, d2 = d0 - a * z0, d1 - a * z1, d2 - a * z2
            s += math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
            n += 1
        out[j] = s / n if n else np.nan


@njit(cache=True, nogil=True)
def quaternion_into(m, q):
    """Rotation matrix (3,3) -> unit quaternion (x, y, z, w), Shepperd's method, w >= 0
    (``models.geometry.matrix_to_quaternion``'s formulas, one matrix)."""
    t0 = 1 + m[0, 0] - m[1, 1] - m[2, 2]
    t1 = 1 - m[0, 0] + m[1, 1] - m[2, 2]
    t2 = 1 - m[0, 0] - m[1, 1] + m[2, 2]
    t3 = 1 + m[0, 0] + m[1, 1] + m[2, 2]
    if t0 >= t1 and t0 >= t2 and t0 >= t3:
        x, y, z, w = t0, m[0, 1] + m[1, 0], m[0, 2] + m[2, 0], m[2, 1] - m[1, 2]
    elif t1 >= t2 and t1 >= t3:
        x, y, z, w = m[0, 1] + m[1, 0], t1, m[1, 2] + m[2, 1], m[0, 2] - m[2, 0]
    elif t2 >= t3:
        x, y, z, w = m[0, 2] + m[2, 0], m[1, 2] + m[2, 1], t2, m[1, 0] - m[0, 1]
    else:
        x, y, z, w = m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1], t3
    n = math.sqrt(x * x + y * y + z * z + w * w)
    s = 1.0 / n if w >= 0 else -1.0 / n
    q[0], q[1], q[2], q[3] = x * s, y * s, z * s, w * s


@njit(cache=True, nogil=True)
def xr_hand(pose, shape, kp, verts, use_verts, left, rest_joints, jsd, frames, parents,
            fit_j, fit_k, cmc_j, dorsal_j, dorsal_rest, kp_of, dir_a, dir_b, rad_idx,
            rad_mask, rest_radius, prev, has_prev, out):
    """One hand's ``(26,8)`` OpenXR joints into ``out`` (float32); False (out untouched) when
    the pose or keypoints are not finite. See :mod:`realtime.stream.openxr` for the steps:
    shaped rest joints, local rotations ``F R(pose) F^T``, forward kinematics, the rigid fit
    of the posed joints onto the keypoints (a left hand mirrored), the 26 positions and
    frames in the camera, the radii, then OpenXR axes ``(x, -y, -z)`` and quaternions in
    the previous frame's hemisphere."""
    nj = rest_joints.shape[0]
    for j in range(nj):
        for c in range(3):
            if not math.isfinite(pose[j, c]):
                return False
    for j in range(21):
        for c in range(3):
            if not math.isfinite(kp[j, c]):
                return False
    ns = min(shape.shape[0], jsd.shape[2])
    rest = np.empty((nj, 3))
    for j in range(nj):
        for c in range(3):
            v = rest_joints[j, c]
            for s in range(ns):
                v += jsd[j, c, s] * shape[s]
            rest[j, c] = v
    a = np.empty((3, 3))
    fa = np.empty((3, 3))
    local = np.empty((3, 3))
    g = np.empty((nj, 3, 3))
    t = np.empty((nj, 3))
    for j in range(nj):
        _rodrigues3(pose[j, 0], pose[j, 1], pose[j, 2], a)
        f = frames[j]
        for r in range(3):  # local = F a F^T
            for c in range(3):
                fa[r, c] = f[r, 0] * a[0, c] + f[r, 1] * a[1, c] + f[r, 2] * a[2, c]
        for r in range(3):
            for c in range(3):
                local[r, c] = fa[r, 0] * f[c, 0] + fa[r, 1] * f[c, 1] + fa[r, 2] * f[c, 2]
        p = parents[j]
        if p < 0:
            g[j] = local
            t[j] = rest[j]
            continue
        for r in range(3):
            for c in range(3):
                g[j, r, c] = (g[p, r, 0] * local[0, c] + g[p, r, 1] * local[1, c]
                              + g[p, r, 2] * local[2, c])
            t[j, r] = (g[p, r, 0] * (rest[j, 0] - rest[p, 0])
                       + g[p, r, 1] * (rest[j, 1] - rest[p, 1])
                       + g[p, r, 2] * (rest[j, 2] - rest[p, 2]) + t[p, r])
    sx = -1.0 if left else 1.0
    nf = fit_j.shape[0]
    src = np.empty((nf, 3))
    dst = np.empty((nf, 3))
    for i in range(nf):
        for c in range(3):
            src[i, c] = t[fit_j[i], c]
            dst[i, c] = kp[fit_k[i], c]
        dst[i, 0] *= sx
    rot = np.empty((3, 3))
    trans = np.empty(3)
    kabsch_into(src, dst, rot, trans)
    cmc = np.empty((4, 3))
    for f in range(4):
        q = t[cmc_j[f]]
        for c in range(3):
            cmc[f, c] = rot[c, 0] * q[0] + rot[c, 1] * q[1] + rot[c, 2] * q[2] + trans[c]
        cmc[f, 0] *= sx
    dorsal = np.empty((26, 3))
    for j in range(26):
        gj, dr = g[dorsal_j[j]], dorsal_rest[j]
        d0 = gj[0, 0] * dr[0] + gj[0, 1] * dr[1] + gj[0, 2] * dr[2]
        d1 = gj[1, 0] * dr[0] + gj[1, 1] * dr[1] + gj[1, 2] * dr[2]
        d2 = gj[2, 0] * dr[0] + gj[2, 1] * dr[1] + gj[2, 2] * dr[2]
        for c in range(3):
            dorsal[j, c] = rot[c, 0] * d0 + rot[c, 1] * d1 + rot[c, 2] * d2
        dorsal[j, 0] *= sx
    pos = np.empty((26, 3))
    positions_into(kp, cmc, kp_of, pos)
    axes = np.empty((26, 3, 3))
    frames_into(pos, dorsal, dir_a, dir_b, axes)
    radius = np.empty(26)
    if use_verts:
        radii_into(verts, pos, axes, rad_idx, rad_mask, radius)
    else:
        radius[:] = rest_radius
    qv = np.empty(4)
    m = np.empty((3, 3))
    for j in range(26):
        for r in range(3):  # OpenXR axes: rows y and z negated, columns are the joint's axes
            sr = 1.0 if r == 0 else -1.0
            for c in range(3):
                m[r, c] = sr * axes[j, r, c]
        quaternion_into(m, qv)
        if has_prev:
            dot = 0.0
            for k in range(4):
                dot += prev[j, 3 + k] * qv[k]
            if dot < 0:
                for k in range(4):
                    qv[k] = -qv[k]
        out[j, 0] = pos[j, 0]
        out[j, 1] = -pos[j, 1]
        out[j, 2] = -pos[j, 2]
        for k in range(4):
            out[j, 3 + k] = qv[k]
        out[j, 7] = radius[j]
    return True

