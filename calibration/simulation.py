"""Synthetic calibration scenes with known truth: boards seen through a known lens, and
calibrated rigs of several cameras looking at one workspace.

Board images are ray-traced, not warped: every output pixel is undistorted with the true
lens, its ray meets the board plane, and the printed board is sampled there (2x
supersampled, then optional blur and noise). The true corner pixels follow from
``cv2.projectPoints`` with the same lens, so calibration error is measured exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

from calibration.board import BoardSpec
from calibration.camera import Camera
from calibration.intrinsics import CameraIntrinsics
from calibration.multiview import RigCamera


def rotation(rx_deg: float, ry_deg: float, rz_deg: float) -> np.ndarray:
    """Rotation matrix from angles about x, then y, then z (degrees)."""
    return cv2.Rodrigues(np.radians([0.0, 0.0, rz_deg]))[0] @ \
        cv2.Rodrigues(np.radians([0.0, ry_deg, 0.0]))[0] @ \
        cv2.Rodrigues(np.radians([rx_deg, 0.0, 0.0]))[0]


def render_board(
    spec: BoardSpec, calib: Camera, R: np.ndarray, t: np.ndarray,  # noqa: N803
    blur_sigma_px: float = 0.0, noise_std: float = 0.0, seed: int = 0,
    supersample: int = 2, px_per_square: int = 120,
) -> np.ndarray:
    """Grayscale ``(H,W)`` uint8 image of the board at pose ``x_cam = R x_board + t``."""
    w, h = calib.size
    texture = spec.render(px_per_square)
    s = supersample
    ys, xs = np.mgrid[0:h * s, 0:w * s].astype(np.float64)
    uv = np.stack([(xs + 0.5) / s - 0.5, (ys + 0.5) / s - 0.5], -1).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-10)
    xn = cv2.undistortPointsIter(uv, calib.K, calib.dist, None, None, crit).reshape(-1, 2)
    rays = np.concatenate([xn, np.ones((len(xn), 1))], 1)
    rt = R.T
    d_b = rays @ rt.T  # ray directions in board axes
    o_b = -rt @ t  # camera centre in board axes
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = -o_b[2] / d_b[:, 2]
    pts = o_b[None, :2] + lam[:, None] * d_b[:, :2]
    ok = lam > 0
    tex_xy = pts / spec.square_m * px_per_square - 0.5
    tex_xy[~ok] = -1e6
    mx = tex_xy[:, 0].reshape(h * s, w * s).astype(np.float32)
    my = tex_xy[:, 1].reshape(h * s, w * s).astype(np.float32)
    big = cv2.remap(texture, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=200)
    img = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64)
    if blur_sigma_px > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_sigma_px)
    if noise_std > 0:
        img = img + np.random.default_rng(seed).normal(0.0, noise_std, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def board_poses(spec: BoardSpec, n: int, seed: int = 0, distance_m: tuple[float, float] = (
        0.3, 0.6)) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` varied board poses (tilted up to ~40 degrees, spread over the view)."""
    rng = np.random.default_rng(seed)
    centre = np.array([spec.squares_x, spec.squares_y, 0.0]) * spec.square_m / 2
    out = []
    for i in range(n):
        R = rotation(rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(-20, 20))  # noqa: N806
        z = rng.uniform(*distance_m)
        off = np.array([rng.uniform(-0.25, 0.25) * z, rng.uniform(-0.18, 0.18) * z, z])
        out.append((R, off - R @ centre))
    return out


def webcam_calibration(width: int = 640, height: int = 480, hfov_deg: float = 62.0,
                       dist=(-0.12, 0.08, 0.0006, -0.0004, -0.02), name: str = "synthetic"
                       ) -> Camera:
    """A plausible webcam: slightly off-centre principal point, barrel distortion."""
    f = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    intr = CameraIntrinsics(f * 1.002, f * 0.998, width / 2 + 7.3, height / 2 - 5.1,
                            width, height)
    return Camera(intr, np.asarray(dist, dtype=np.float64), name)


def look_at(centre: np.ndarray, target: np.ndarray,
            up: np.ndarray = np.array([0.0, -1.0, 0.0])) -> tuple[np.ndarray, np.ndarray]:
    """``(R, t)`` of a camera at ``centre`` looking at ``target`` (OpenCV axes)."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(-up, z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # noqa: N806 - rows: camera axes in world coordinates
    return R, -R @ centre


def synthetic_rig(n: int, distance_m: float = 0.6, spread_deg: float = 35.0,
                  width: int = 640, height: int = 480) -> list[RigCamera]:
    """``n`` cameras on an arc around the point ``(0, 0, distance_m)`` of camera 0's frame,
    all looking at it; camera 0 is the world frame."""
    target = np.array([0.0, 0.0, distance_m])
    cams = []
    for i in range(n):
        ang = np.radians(spread_deg * ((i + 1) // 2) * (1 if i % 2 else -1)) if i else 0.0
        elev = np.radians(12.0 * (i // 3))
        centre = target + distance_m * np.array([np.sin(ang) * np.cos(elev), -np.sin(elev),
                                                 -np.cos(ang) * np.cos(elev)])
        R, t = look_at(centre, target)  # noqa: N806
        calib = webcam_calibration(width, height, 60.0 + 3 * i, dist=(0, 0, 0, 0, 0),
                                   name=f"cam{i}")
        cams.append(RigCamera(calib, R, t))
    return cams


def synthetic_hands(model, n: int, rng: np.random.Generator, shape_sigma: float = 0.4,
                    max_tilt_deg: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` hands in camera axes, centred on their keypoint mean: ``(true, generic)``, both
    ``(n,21,3)`` meters. ``true`` has a random shape (``shape_sigma`` 0.4 spreads hand length
    by about 7%, like adults); ``generic`` is the same pose with the mean shape: what a
    single view that cannot see hand size (MediaPipe's world landmarks) reports."""
    from models.poses import sample_poses

    d = model.data
    pose = sample_poses(d.joint_names, d.limits, n, rng)
    tilt = np.stack([cv2.Rodrigues(rotation(*rng.uniform(-max_tilt_deg, max_tilt_deg, 3)))[0]
                     .reshape(3) for _ in range(n)])
    pose[:, 0] = tilt
    shape = rng.normal(0.0, shape_sigma, (n, model.num_shape))
    true = model.forward(pose, shape).keypoints
    generic = model.forward(pose, np.zeros((n, model.num_shape))).keypoints
    return true - true.mean(1, keepdims=True), generic - generic.mean(1, keepdims=True)
