"""Intrinsic calibration from board views: view selection, coverage, cv2.calibrateCamera.

Views are screened before they are used: a blurred image (low variance of the Laplacian
around the corners) gives biased corners, and a near-copy of an accepted view only adds
weight to one pose. Coverage is tracked on a coarse grid of the image, because a lens
calibrated only in the centre extrapolates its distortion badly at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.board import BoardSpec, BoardView
from calibration.camera import Camera
from calibration.errors import CalibrationError
from calibration.intrinsics import CameraIntrinsics


@dataclass(frozen=True)
class SelectorConfig:
    """When a view is accepted."""

    min_sharpness: float = 0.05  # Laplacian variance / intensity variance near the corners
    min_new_motion: float = 0.03  # mean corner shift / image diagonal to count as new
    min_corners: int = 6
    grid: tuple[int, int] = (6, 4)  # coverage cells across, down

    def __post_init__(self) -> None:
        if self.min_sharpness < 0 or self.min_new_motion < 0 or self.min_corners < 4:
            raise CalibrationError(f"bad SelectorConfig: {self}")


def sharpness(gray: np.ndarray, view: BoardView) -> float:
    """Variance of the Laplacian inside the board's bounding box over the variance of the
    intensity there: blur lowers it, and dividing by the contrast makes one threshold
    work for a dim printout and a bright screen alike."""
    x0, y0 = np.floor(view.corners.min(0)).astype(int)
    x1, y1 = np.ceil(view.corners.max(0)).astype(int)
    h, w = gray.shape[:2]
    roi = gray[max(0, y0):min(h, y1 + 1), max(0, x0):min(w, x1 + 1)]
    if roi.size < 16:
        return 0.0
    contrast = float(roi.astype(np.float64).var())
    return float(cv2.Laplacian(roi, cv2.CV_64F).var()) / max(contrast, 1.0)


@dataclass
class ViewSelector:
    """Accepts sharp, new board views and keeps the coverage grid; ``offer`` says why not."""

    image_size: tuple[int, int]
    config: SelectorConfig = field(default_factory=SelectorConfig)
    views: list[BoardView] = field(default_factory=list)
    coverage: np.ndarray = field(init=False)
    rejected: dict[str, int] = field(default_factory=lambda: {"blurred": 0, "duplicate": 0,
                                                              "too_few_corners": 0})

    def __post_init__(self) -> None:
        gx, gy = self.config.grid
        self.coverage = np.zeros((gy, gx), dtype=np.int64)

    def offer(self, gray: np.ndarray, view: BoardView | None) -> str:
        """"accepted", or the reason the view was rejected."""
        if view is None or len(view.ids) < self.config.min_corners:
            self.rejected["too_few_corners"] += 1
            return "too_few_corners"
        if sharpness(gray, view) < self.config.min_sharpness:
            self.rejected["blurred"] += 1
            return "blurred"
        diag = float(np.hypot(*self.image_size))
        for old in self.views:
            common, ia, ib = np.intersect1d(view.ids, old.ids, return_indices=True)
            if len(common) >= 0.5 * len(view.ids):
                shift = np.linalg.norm(view.corners[ia] - old.corners[ib], axis=1).mean()
                if shift / diag < self.config.min_new_motion:
                    self.rejected["duplicate"] += 1
                    return "duplicate"
        self.views.append(view)
        gx, gy = self.config.grid
        w, h = self.image_size
        cells = np.unique(np.stack([np.clip((view.corners[:, 0] / w * gx).astype(int), 0, gx - 1),
                                    np.clip((view.corners[:, 1] / h * gy).astype(int), 0, gy - 1)],
                                   1), axis=0)
        self.coverage[cells[:, 1], cells[:, 0]] += 1
        return "accepted"

    @property
    def coverage_fraction(self) -> float:
        return float((self.coverage > 0).mean())


@dataclass(frozen=True)
class CalibrationResult:
    """The calibrated camera and how well each view fits it (pixels)."""

    calibration: Camera
    rms_px: float
    per_view_rms_px: np.ndarray
    rvecs: tuple[np.ndarray, ...]
    tvecs: tuple[np.ndarray, ...]


def calibrate_views(
    spec: BoardSpec, views: list[BoardView], image_size: tuple[int, int],
    camera_name: str = "camera", rational: bool = False,
) -> CalibrationResult:
    """``cv2.calibrateCamera`` on accepted views; k1, k2, p1, p2, k3 (8 with ``rational``)."""
    if len(views) < 4:
        raise CalibrationError(f"need at least 4 board views to calibrate, got {len(views)}: "
                               "show the board at more angles and distances")
    obj_all = spec.object_points()
    obj = [obj_all[v.ids].astype(np.float32) for v in views]
    img = [v.corners.astype(np.float32).reshape(-1, 1, 2) for v in views]
    w, h = image_size
    f0 = 0.8 * max(w, h)
    K0 = np.array([[f0, 0, w / 2], [0, f0, h / 2], [0, 0, 1]])  # noqa: N806
    flags = cv2.CALIB_USE_INTRINSIC_GUESS | (cv2.CALIB_RATIONAL_MODEL if rational else 0)
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-10)
    rms, K, dist, rvecs, tvecs, _, _, per_view = cv2.calibrateCameraExtended(  # noqa: N806
        obj, img, (w, h), K0, np.zeros(8 if rational else 5), flags=flags, criteria=criteria)
    if not np.all(np.isfinite(K)) or not np.all(np.isfinite(dist)):
        raise CalibrationError("calibration diverged (NaN): use more, sharper, varied views")
    intr = CameraIntrinsics.from_matrix(K, w, h)
    calib = Camera(intr, dist.reshape(-1), camera_name, rms_px=float(rms))
    return CalibrationResult(calib, float(rms), per_view.reshape(-1), tuple(rvecs), tuple(tvecs))


def board_pose(spec: BoardSpec, view: BoardView, calib: Camera
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(R, t)`` of the board in the camera frame (``x_cam = R x_board + t``), or None."""
    if len(view.ids) < 4:
        return None
    obj = spec.object_points()[view.ids]
    ok, rvec, tvec = cv2.solvePnP(obj, view.corners, calib.K, calib.dist,
                                  flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        return None
    ok, rvec, tvec = cv2.solvePnP(obj, view.corners, calib.K, calib.dist, rvec, tvec, True,
                                  cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    return cv2.Rodrigues(rvec)[0], tvec.reshape(3)
