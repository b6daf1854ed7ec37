"""Rotations, rigid alignment and the pinhole camera: every formula of the project, once.

The rotation formulas (Rodrigues and its inverse, rotation_between, 6D) and Kabsch are
scalar Numba kernels that write into output arguments (``rodrigues_into``,
``log_rotation_into``, ...), so compiled callers (the IK sweeps, the smoother, the
penetration solver) inline them without allocating. Thin wrappers give the same kernel a
return value (``rodrigues``) or the batched NumPy API over any leading shape
(``axis_angle_to_matrix``: a compiled loop over the flattened batch). Quaternions (for the
wire) and the pinhole camera are plain NumPy. Float64 throughout.

Conventions: rotation vectors (axis-angle) are axis times angle in radians, angle in
[0, pi]; matrices act on column vectors; one convention near 0 (first-order maps below
:data:`SMALL_ANGLE_RAD`) and near pi (the axis read off the symmetric part). Camera frame as
OpenCV (x right, y down, z forward), meters; pixels with K the 3x3 intrinsics.

References: Rodrigues' rotation formula (1840); W. Kabsch, "A solution for the best rotation
to relate two sets of vectors", Acta Cryst. A32, 1976; Y. Zhou et al., "On the Continuity
of Rotation Representations in Neural Networks", CVPR 2019 (the 6D representation).
The torch twins (training only) live in ``models.training.torch_skinning``.

Numba's disk cache keys each compiled function on its own file: after editing a kernel
here, delete the ``*.nbi``/``*.nbc`` cache files of the modules that call it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

SMALL_ANGLE_RAD = 1e-8
"""Below this angle the unit axis is meaningless: ``I + [v]x`` and its inverse ``vee / 2``."""
_NEAR_PI_SIN = 1e-4  # below this sin(angle), the inverse takes the axis from R + R^T
_PARALLEL_SIN = 1e-9  # rotation_between: below this sin, opposite directions need an axis
_EPS = 1e-8
_MIN_DEPTH_M = 1e-9


# --------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _rodrigues3(vx, vy, vz, out):
    """Rodrigues' formula: rotation vector ``(vx, vy, vz)`` radians -> ``out (3,3)``.

    ``R = I + sin(a) [k]x + (1 - cos(a)) [k]x^2`` with ``a = |v|``, ``k = v / a``;
    below :data:`SMALL_ANGLE_RAD` the first-order ``I + [v]x``.
    """
    angle = math.sqrt(vx * vx + vy * vy + vz * vz)
    if angle < SMALL_ANGLE_RAD:
        s, c1 = 1.0, 0.0
        x, y, z = vx, vy, vz
    else:
        s, c1 = math.sin(angle), 1.0 - math.cos(angle)
        x, y, z = vx / angle, vy / angle, vz / angle
    out[0, 0] = 1.0 - c1 * (y * y + z * z)
    out[0, 1] = -s * z + c1 * x * y
    out[0, 2] = s * y + c1 * x * z
    out[1, 0] = s * z + c1 * x * y
    out[1, 1] = 1.0 - c1 * (x * x + z * z)
    out[1, 2] = -s * x + c1 * y * z
    out[2, 0] = -s * y + c1 * x * z
    out[2, 1] = s * x + c1 * y * z
    out[2, 2] = 1.0 - c1 * (x * x + y * y)


@njit(cache=True, nogil=True)
def rodrigues_into(v, out):
    """Rodrigues' formula: rotation vector ``v (3,)`` radians -> ``out (3,3)``."""
    _rodrigues3(v[0], v[1], v[2], out)


@njit(cache=True, nogil=True)
def log_rotation_into(m, out):
    """Inverse of :func:`rodrigues_into`: rotation ``m (3,3)`` -> ``out (3,)``, angle <= pi.

    The angle is ``atan2(sin, cos)`` (accurate near 0 and pi, where ``arccos`` alone is
    not). Near 0: ``vee(m) / 2``. Near pi the antisymmetric part vanishes, so the axis is
    the dominant column of ``(m + m^T) / 2 - cos I = (1 - cos) k k^T``, signed by ``vee(m)``.
    NaN in, NaN out.
    """
    cos = (m[0, 0] + m[1, 1] + m[2, 2] - 1.0) / 2.0
    if cos > 1.0:
        cos = 1.0
    elif cos < -1.0:
        cos = -1.0
    w0, w1, w2 = m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]
    sin = math.sqrt(w0 * w0 + w1 * w1 + w2 * w2) / 2.0
    angle = math.atan2(sin, cos)
    if sin > _NEAR_PI_SIN:
        f = angle / (2.0 * sin)
        out[0], out[1], out[2] = w0 * f, w1 * f, w2 * f
    elif cos >= 0.0:
        out[0], out[1], out[2] = w0 / 2.0, w1 / 2.0, w2 / 2.0
    else:
        best, col = -1.0, 0
        for i in range(3):
            d = m[i, i] - cos
            if d > best:
                best, col = d, i
        p0 = (m[col, 0] + m[0, col]) / 2.0 - (cos if col == 0 else 0.0)
        p1 = (m[col, 1] + m[1, col]) / 2.0 - (cos if col == 1 else 0.0)
        p2 = (m[col, 2] + m[2, col]) / 2.0 - (cos if col == 2 else 0.0)
        norm = max(math.sqrt(p0 * p0 + p1 * p1 + p2 * p2), _EPS)
        sign = 1.0 if p0 * w0 + p1 * w1 + p2 * w2 >= 0.0 else -1.0
        f = sign * angle / norm
        out[0], out[1], out[2] = p0 * f, p1 * f, p2 * f


@njit(cache=True, nogil=True)
def rotation_between_into(a, b, out):
    """Smallest rotation ``out (3,3)`` turning direction ``a (3,)`` onto ``b (3,)``.

    About ``a x b`` by the angle between them; opposite directions turn by pi about an axis
    perpendicular to ``a``. Lengths do not matter (zero vectors give the identity).
    """
    na = max(math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]), _EPS)
    nb = max(math.sqrt(b[0] * b[0] + b[1] * b[1] + b[2] * b[2]), _EPS)
    a0, a1, a2 = a[0] / na, a[1] / na, a[2] / na
    b0, b1, b2 = b[0] / nb, b[1] / nb, b[2] / nb
    c0, c1, c2 = a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0
    sin = math.sqrt(c0 * c0 + c1 * c1 + c2 * c2)
    cos = a0 * b0 + a1 * b1 + a2 * b2
    angle = math.atan2(sin, cos)
    if sin > _PARALLEL_SIN or cos >= 0.0:
        # angle / sin -> 1 for parallel directions: the first-order map takes over.
        f = angle / sin if sin > 0.0 else 0.0
        _rodrigues3(c0 * f, c1 * f, c2 * f, out)
        return
    # Opposite: about a x e_x (or a x e_y when a is near e_x).
    if abs(a0) < 0.9:
        p0, p1, p2 = 0.0, a2, -a1
    else:
        p0, p1, p2 = -a2, 0.0, a0
    f = angle / max(math.sqrt(p0 * p0 + p1 * p1 + p2 * p2), _EPS)
    _rodrigues3(p0 * f, p1 * f, p2 * f, out)


@njit(cache=True, nogil=True)
def rot6d_to_matrix_into(x, out):
    """6D ``x (6,)`` (two 3-vectors) -> rotation ``out (3,3)`` by Gram-Schmidt (Zhou et al.).

    Columns: ``b1 = a1/|a1|``, ``b2`` = ``a2`` minus its ``b1`` part, normalised, ``b3 = b1 x b2``.
    """
    n1 = max(math.sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]), _EPS)
    b0, b1, b2 = x[0] / n1, x[1] / n1, x[2] / n1
    d = b0 * x[3] + b1 * x[4] + b2 * x[5]
    c0, c1, c2 = x[3] - d * b0, x[4] - d * b1, x[5] - d * b2
    n2 = max(math.sqrt(c0 * c0 + c1 * c1 + c2 * c2), _EPS)
    c0, c1, c2 = c0 / n2, c1 / n2, c2 / n2
    out[0, 0], out[1, 0], out[2, 0] = b0, b1, b2
    out[0, 1], out[1, 1], out[2, 1] = c0, c1, c2
    out[0, 2] = b1 * c2 - b2 * c1
    out[1, 2] = b2 * c0 - b0 * c2
    out[2, 2] = b0 * c1 - b1 * c0


@njit(cache=True, nogil=True)
def _det3(m):
    return (m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
            - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
            + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]))


@njit(cache=True, nogil=True)
def kabsch_into(source, target, rot, trans):
    """Kabsch (1976): the proper rotation ``rot (3,3)`` and ``trans (3,)`` minimising
    ``sum_i |rot source_i + trans - target_i|^2`` over point pairs ``(N,3)``.

    SVD of the cross-covariance ``H = A^T B`` of the centred points: ``rot = V D U^T`` with
    ``D = diag(1, 1, sign det(V U^T))`` (a reflection is never returned).
    """
    n = source.shape[0]
    cs = np.zeros(3)
    ct = np.zeros(3)
    for i in range(n):
        for k in range(3):
            cs[k] += source[i, k]
            ct[k] += target[i, k]
    for k in range(3):
        cs[k] /= n
        ct[k] /= n
    h = np.zeros((3, 3))
    for i in range(n):
        for r in range(3):
            a = source[i, r] - cs[r]
            for c in range(3):
                h[r, c] += a * (target[i, c] - ct[c])
    u, _, vt = np.linalg.svd(h)
    d = -1.0 if _det3(u) * _det3(vt) < 0.0 else 1.0
    for r in range(3):
        for c in range(3):
            rot[r, c] = vt[0, r] * u[c, 0] + vt[1, r] * u[c, 1] + d * vt[2, r] * u[c, 2]
    for r in range(3):
        trans[r] = ct[r] - (rot[r, 0] * cs[0] + rot[r, 1] * cs[1] + rot[r, 2] * cs[2])


# --------------------------------------------------------------------------- returning


@njit(cache=True, nogil=True)
def rodrigues(v):
    """:func:`rodrigues_into` returning a new ``(3,3)``: rotation vector ``(3,)`` radians."""
    out = np.empty((3, 3))
    rodrigues_into(v, out)
    return out


@njit(cache=True, nogil=True)
def log_rotation(m):
    """:func:`log_rotation_into` returning a new ``(3,)``: rotation ``(3,3)`` -> radians."""
    out = np.empty(3)
    log_rotation_into(m, out)
    return out


# --------------------------------------------------------------------------- batched


@njit(cache=True, nogil=True)
def _rodrigues_batch(v, out):
    for i in range(v.shape[0]):
        rodrigues_into(v[i], out[i])


@njit(cache=True, nogil=True)
def _log_rotation_batch(m, out):
    for i in range(m.shape[0]):
        log_rotation_into(m[i], out[i])


@njit(cache=True, nogil=True)
def _rot6d_batch(x, out):
    for i in range(x.shape[0]):
        rot6d_to_matrix_into(x[i], out[i])


@njit(cache=True, nogil=True)
def _rotation_between_batch(a, b, out):
    for i in range(a.shape[0]):
        rotation_between_into(a[i], b[i], out[i])


def _rows(x, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``x`` as C-contiguous float64 rows of ``shape``: ``(..., *shape)`` -> ``(N, *shape)``."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"{name} must have shape (..., {', '.join(map(str, shape))}), "
                         f"got {x.shape}")
    return np.ascontiguousarray(x.reshape((-1,) + shape))


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues' formula, batched. ``(..., 3)`` rotation vectors (radians) -> ``(..., 3, 3)``."""
    rotvec = np.asarray(rotvec)
    flat = _rows(rotvec, (3,), "rotvec")
    out = np.empty((len(flat), 3, 3))
    _rodrigues_batch(flat, out)
    return out.reshape(rotvec.shape[:-1] + (3, 3))


def matrix_to_axis_angle(matrix: np.ndarray) -> np.ndarray:
    """Inverse of :func:`axis_angle_to_matrix`, robust near 0 and pi. ``(...,3,3)``->``(...,3)``."""
    matrix = np.asarray(matrix)
    flat = _rows(matrix, (3, 3), "matrix")
    out = np.empty((len(flat), 3))
    _log_rotation_batch(flat, out)
    return out.reshape(matrix.shape[:-2] + (3,))


def rot6d_to_matrix(x: np.ndarray) -> np.ndarray:
    """6D (first two columns) -> rotation by Gram-Schmidt. ``(..., 6)`` -> ``(..., 3, 3)``."""
    x = np.asarray(x)
    flat = _rows(x, (6,), "x")
    out = np.empty((len(flat), 3, 3))
    _rot6d_batch(flat, out)
    return out.reshape(x.shape[:-1] + (3, 3))


def matrix_to_rot6d(matrix: np.ndarray) -> np.ndarray:
    """The first two columns, concatenated. ``(..., 3, 3)`` -> ``(..., 6)``."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction ``a`` onto ``b``. ``(..., 3)`` x2 -> ``(..., 3, 3)``.

    Leading shapes broadcast. See :func:`rotation_between_into`.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    fa, fb = _rows(a, (3,), "a"), _rows(b, (3,), "b")
    out = np.empty((len(fa), 3, 3))
    _rotation_between_batch(fa, fb, out)
    return out.reshape(a.shape[:-1] + (3, 3))


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(...,3,3)`` -> unit quaternions ``(...,4)`` as ``(x, y, z, w)``, w >= 0.

    Shepperd's method: the largest of the four squared components picks the stable formula.
    """
    m = np.asarray(m, dtype=np.float64)
    t = np.stack([1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                  1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                  1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2],
                  1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]], axis=-1)  # 4 x^2, ...
    k = np.argmax(t, axis=-1)[..., None]
    r = np.sqrt(np.maximum(np.take_along_axis(t, k, -1), 1e-300))  # 2|q_k|
    m21, m12 = m[..., 2, 1], m[..., 1, 2]
    m02, m20 = m[..., 0, 2], m[..., 2, 0]
    m10, m01 = m[..., 1, 0], m[..., 0, 1]
    cand = np.stack([
        np.stack([t[..., 0], m01 + m10, m02 + m20, m21 - m12], -1),
        np.stack([m01 + m10, t[..., 1], m12 + m21, m02 - m20], -1),
        np.stack([m02 + m20, m12 + m21, t[..., 2], m10 - m01], -1),
        np.stack([m21 - m12, m02 - m20, m10 - m01, t[..., 3]], -1),
    ], axis=-2)  # row k = 2 r q
    q = np.take_along_axis(cand, k[..., None], -2)[..., 0, :] / (2 * r)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:] < 0, -q, q)


def kabsch(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigid fit (Kabsch 1976): ``R (3,3)`` (det +1) and ``t (3,)`` minimising
    ``|R source + t - target|`` over point pairs ``(N,3)`` each (see :func:`kabsch_into`)."""
    src = np.ascontiguousarray(source, dtype=np.float64)
    dst = np.ascontiguousarray(target, dtype=np.float64)
    if src.ndim != 2 or src.shape[1:] != (3,) or src.shape != dst.shape or not len(src):
        raise ValueError(f"kabsch needs two (N,3) point sets with N >= 1, got {src.shape} "
                         f"and {dst.shape}")
    rot = np.empty((3, 3))
    trans = np.empty(3)
    kabsch_into(src, dst, rot, trans)
    return rot, trans


# --------------------------------------------------------------------------- camera


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:  # noqa: N803
    """Pinhole projection: camera-frame points ``(..., 3)`` meters -> pixels ``(..., 2)``.

    ``u = fx x / z + cx``, ``v = fy y / z + cy`` (no skew, no distortion). Depths under 1e-9 m
    are clamped to it, so points at or behind the camera stay finite (and far off-image).
    """
    points = np.asarray(points)
    z = np.maximum(points[..., 2:3], _MIN_DEPTH_M)
    return points[..., :2] / z * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def backproject(uv: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:  # noqa: N803
    """Inverse of :func:`project` at known depth: pixels ``(..., 2)`` and depths ``(...)``
    meters -> camera-frame points ``(..., 3)``."""
    depth = np.asarray(depth)
    xy = (np.asarray(uv) - np.array([K[0, 2], K[1, 2]])) / np.array([K[0, 0], K[1, 1]])
    return np.concatenate([xy * depth[..., None], depth[..., None]], axis=-1)
