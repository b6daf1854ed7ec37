"""Metric placement of a hand in the camera frame from its 2D landmarks.

Given hand-centred 3D keypoints already in camera axes (the model fitted to MediaPipe's
world landmarks) and their 2D detections, the translation follows from the pinhole model:
``u = fx (X + tx) / (Z + tz) + cx`` is linear in ``t`` after multiplying out, so a linear
least-squares solution starts a few Gauss-Newton steps on the true reprojection error.
Pure functions: NumPy in, NumPy out.
"""

from __future__ import annotations

import numpy as np

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
    """Translation ``(3,)`` placing ``points (N,3)`` so they project onto ``uv (N,2)``."""
    points = np.asarray(points, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    if points.shape != (len(uv), 3) or uv.shape[-1] != 2 or len(uv) < 2:
        raise CalibrationError(f"need matching (N,3) points and (N,2) pixels with N >= 2, got "
                               f"{points.shape} and {uv.shape}")
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(uv))):
        raise CalibrationError("points and pixels must be finite (got NaN or inf)")
    w = np.ones(len(uv)) if weights is None else np.asarray(weights, dtype=np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    X, Y, Z = points.T  # noqa: N806
    u, v = uv.T
    a = np.zeros((2 * len(uv), 3))
    b = np.zeros(2 * len(uv))
    a[0::2, 0] = fx
    a[0::2, 2] = cx - u
    b[0::2] = (u - cx) * Z - fx * X
    a[1::2, 1] = fy
    a[1::2, 2] = cy - v
    b[1::2] = (v - cy) * Z - fy * Y
    w2 = np.repeat(w, 2)
    # 3 unknowns: the normal equations are tiny and well conditioned (hand points spread).
    t = np.linalg.solve((a * w2[:, None]).T @ a, (a * w2[:, None]).T @ b)
    for _ in range(iterations):
        p = points + t
        z = np.maximum(p[:, 2], MIN_DEPTH_M)
        r = np.concatenate([(fx * p[:, 0] / z + cx - u)[:, None],
                            (fy * p[:, 1] / z + cy - v)[:, None]], 1).reshape(-1)
        jac = np.zeros((2 * len(uv), 3))
        jac[0::2, 0] = fx / z
        jac[0::2, 2] = -fx * p[:, 0] / z**2
        jac[1::2, 1] = fy / z
        jac[1::2, 2] = -fy * p[:, 1] / z**2
        jw = jac * w2[:, None]
        step = np.linalg.solve(jw.T @ jac, -(jw.T @ r))
        t = t + step
        if np.linalg.norm(step) < 1e-7:
            break
    if t[2] + points[:, 2].min() < MIN_DEPTH_M:
        t[2] = MIN_DEPTH_M - points[:, 2].min()
    return t


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
