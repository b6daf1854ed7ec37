"""Metric placement of a hand in the camera frame from its 2D landmarks.

Given hand-centred 3D keypoints already in camera axes (the model fitted to MediaPipe's
world landmarks) and their 2D detections, the translation follows from the pinhole model:
``u = fx (X + tx) / (Z + tz) + cx`` is linear in ``t`` after multiplying out, so a linear
least-squares solution starts a few Gauss-Newton steps on the true reprojection error.
Pure functions: NumPy in, NumPy out. The placement's math is one Numba kernel
(``nogil``, cached on disk like ``realtime.stream.pack_kernels``; :func:`warmup`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from calibration.errors import CalibrationError
from models.geometry import project

MIN_DEPTH_M = 0.05


def solve_translation(
    points: np.ndarray,
    uv: np.ndarray,
    K: np.ndarray,  # noqa: N803
    weights: np.ndarray | None = None,
    iterations: int = 5,
) -> np.ndarray:
    """Translation ``(3,)`` placing ``points (N,3)`` so they project onto ``uv (N,2)``;
    ``weights (N,)`` per point (default 1), ``iterations`` Gauss-Newton steps at most.

    The math is one compiled call (:func:`_translation`): called twice a frame, the NumPy
    version's ~40 small array operations per call cost ~0.75 ms, the kernel a few µs."""
    points = np.asarray(points, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    if points.shape != (len(uv), 3) or uv.shape[-1] != 2 or len(uv) < 2:
        raise CalibrationError(f"need matching (N,3) points and (N,2) pixels with N >= 2, got "
                               f"{points.shape} and {uv.shape}")
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(uv))):
        raise CalibrationError("points and pixels must be finite (got NaN or inf)")
    if weights is None:
        w = np.ones(len(uv))
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if len(w) != len(uv):
            raise CalibrationError(f"need one weight per point ({len(uv)}), got weights of "
                                   f"shape {np.shape(weights)}")
    t = np.empty(3)
    if not _translation(np.ascontiguousarray(points), np.ascontiguousarray(uv), w,
                        float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]),
                        int(iterations), t):
        raise np.linalg.LinAlgError("Singular matrix")  # what np.linalg.solve raised
    return t


@njit(nogil=True, cache=True)
def _solve3(m, rhs, out):
    """``out = m^-1 rhs`` for a 3x3 ``m`` by Gaussian elimination with partial pivoting (as
    LAPACK's ``gesv`` does for ``np.linalg.solve``); False when a pivot is exactly 0."""
    a = m.copy()
    b = rhs.copy()
    for c in range(3):
        p = c
        for r in range(c + 1, 3):
            if abs(a[r, c]) > abs(a[p, c]):
                p = r
        if a[p, c] == 0.0:
            return False
        if p != c:
            for k in range(3):
                a[c, k], a[p, k] = a[p, k], a[c, k]
            b[c], b[p] = b[p], b[c]
        for r in range(c + 1, 3):
            f = a[r, c] / a[c, c]
            for k in range(c + 1, 3):
                a[r, k] -= f * a[c, k]
            b[r] -= f * b[c]
    for r in range(2, -1, -1):
        acc = b[r]
        for k in range(r + 1, 3):
            acc -= a[r, k] * out[k]
        out[r] = acc / a[r, r]
    return True


@njit(nogil=True, cache=True)
def _translation(points, uv, w, fx, fy, cx, cy, iterations, t):
    """:func:`solve_translation`'s math into ``t (3,)``; False if a system is singular.

    Linear start: ``u (Z + tz) = fx (X + tx) + cx (Z + tz)`` for each point and axis, the
    weighted normal equations of those 2N rows in t. Then Gauss-Newton on the reprojection
    error (depth clamped at ``MIN_DEPTH_M``), stopping when a step is under 0.1 µm; finally
    no point closer than ``MIN_DEPTH_M``."""
    n = points.shape[0]
    m = np.zeros((3, 3))
    rhs = np.zeros(3)
    for i in range(n):
        x, y, z, u, v, wi = points[i, 0], points[i, 1], points[i, 2], uv[i, 0], uv[i, 1], w[i]
        # row [fx, 0, cx - u] . t = (u - cx) Z - fx X, and [0, fy, cy - v] . t likewise
        au, bu = cx - u, (u - cx) * z - fx * x
        av, bv = cy - v, (v - cy) * z - fy * y
        m[0, 0] += wi * fx * fx
        m[0, 2] += wi * fx * au
        m[1, 1] += wi * fy * fy
        m[1, 2] += wi * fy * av
        m[2, 2] += wi * (au * au + av * av)
        rhs[0] += wi * fx * bu
        rhs[1] += wi * fy * bv
        rhs[2] += wi * (au * bu + av * bv)
    m[2, 0], m[2, 1] = m[0, 2], m[1, 2]
    if not _solve3(m, rhs, t):
        return False
    step = np.empty(3)
    for _ in range(iterations):
        m[:] = 0.0
        rhs[:] = 0.0
        for i in range(n):
            px, py = points[i, 0] + t[0], points[i, 1] + t[1]
            z = max(points[i, 2] + t[2], MIN_DEPTH_M)
            ru = fx * px / z + cx - uv[i, 0]
            rv = fy * py / z + cy - uv[i, 1]
            # Jacobian rows [fx/z, 0, -fx px/z^2] and [0, fy/z, -fy py/z^2]
            ju0, ju2 = fx / z, -fx * px / z**2
            jv1, jv2 = fy / z, -fy * py / z**2
            wi = w[i]
            m[0, 0] += wi * ju0 * ju0
            m[0, 2] += wi * ju0 * ju2
            m[1, 1] += wi * jv1 * jv1
            m[1, 2] += wi * jv1 * jv2
            m[2, 2] += wi * (ju2 * ju2 + jv2 * jv2)
            rhs[0] -= wi * ju0 * ru
            rhs[1] -= wi * jv1 * rv
            rhs[2] -= wi * (ju2 * ru + jv2 * rv)
        m[2, 0], m[2, 1] = m[0, 2], m[1, 2]
        if not _solve3(m, rhs, step):
            return False
        t += step
        if math.sqrt(step[0] ** 2 + step[1] ** 2 + step[2] ** 2) < 1e-7:
            break
    zmin = points[0, 2]
    for i in range(1, n):
        zmin = min(zmin, points[i, 2])
    if t[2] + zmin < MIN_DEPTH_M:
        t[2] = MIN_DEPTH_M - zmin
    return True


def warmup() -> None:
    """Compile (or load from numba's on-disk cache) the placement kernel, so the first hand
    pays no JIT time."""
    points = np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.01], [0.0, 0.05, -0.01]])
    solve_translation(points, points[:, :2] / 0.5 * 500.0 + 320.0,
                      np.array([[500.0, 0, 320], [0, 500, 320], [0, 0, 1]]))


def reprojection_error(points: np.ndarray, uv: np.ndarray, K: np.ndarray) -> np.ndarray:  # noqa: N803
    """Per-point pixel distance between the projection of ``points`` and ``uv``."""
    return np.linalg.norm(project(points, K) - uv, axis=-1)


def refine_pose_pnp(
    points: np.ndarray, uv: np.ndarray, K: np.ndarray, t0: np.ndarray,  # noqa: N803
    max_angle_deg: float = 30.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rotation about the points' centroid and translation that best reproject them.

    MediaPipe's world landmarks come in camera-aligned axes but are fitted without the
    perspective of the real camera; a PnP step from the placement ``t0`` removes most of
    the remaining 2D misfit. A result turning more than ``max_angle_deg`` (a flat hand's
    mirror ambiguity) is refused and ``(I, t0)`` returned.
    """
    import cv2

    centre = points.mean(0)
    obj = (points - centre).astype(np.float64)
    rvec = np.zeros(3)
    tvec = (centre + t0).astype(np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, uv.astype(np.float64), K.astype(np.float64), None,
                                  rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
    angle = np.degrees(np.linalg.norm(rvec))
    tvec = np.asarray(tvec, dtype=np.float64).reshape(3)
    if not ok or angle > max_angle_deg or tvec[2] <= MIN_DEPTH_M:
        return np.eye(3), t0
    rot = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3))[0]
    return rot, tvec - centre
