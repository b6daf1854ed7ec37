"""The camera: pinhole intrinsics, lens distortion and a name, in one frozen record."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from calibration.errors import CalibrationError
from calibration.intrinsics import DEFAULT_HFOV_DEG, CameraIntrinsics, guess_intrinsics

DIST_LENGTHS = (4, 5, 8, 12, 14)  # the distortion vector lengths OpenCV accepts
#: Plausible focal lengths, as multiples of the image diagonal: 0.02 is a field of view of
#: about 176 degrees (beyond a pinhole model), 20 about 3 degrees (a long telephoto).
FOCAL_RANGE_DIAGONALS = (0.02, 20.0)
#: Plausible pixel aspect ratios fx/fy (square pixels: 1; anamorphic lenses: up to 2).
FOCAL_RATIO_RANGE = (0.25, 4.0)
#: How far outside the image the principal point may lie, as a fraction of its size
#: (calibrations put it near the centre; a crop can move it towards an edge).
PRINCIPAL_POINT_MARGIN = 0.5
#: Largest magnitude of a distortion coefficient (real lenses: k1 within +-1, a rational
#: model's coefficients within some tens); beyond it a file is wrong, and undistortion
#: would overflow.
MAX_DISTORTION = 1000.0


def check_plausible(intr: CameraIntrinsics) -> None:
    """Refuse intrinsics no camera has (:class:`CalibrationError` naming the value and the
    range): they would divide by ~0 or overflow downstream, or silently find no hands."""
    w, h = intr.width, intr.height
    diag = math.hypot(w, h)
    lo, hi = (k * diag for k in FOCAL_RANGE_DIAGONALS)
    for name, f in (("fx", intr.fx), ("fy", intr.fy)):
        if not lo <= f <= hi:
            raise CalibrationError(
                f"implausible focal length {name}={f:.6g} px for a {w}x{h} image: expected "
                f"{lo:.0f}-{hi:.0f} px ({FOCAL_RANGE_DIAGONALS[0]:g}-"
                f"{FOCAL_RANGE_DIAGONALS[1]:g} x the image diagonal); recalibrate, or check "
                "the file's image_width/image_height")
    ratio = intr.fx / intr.fy
    if not FOCAL_RATIO_RANGE[0] <= ratio <= FOCAL_RATIO_RANGE[1]:
        raise CalibrationError(
            f"implausible focal lengths fx={intr.fx:.6g}, fy={intr.fy:.6g} px: their ratio "
            f"{ratio:.3g} is outside {FOCAL_RATIO_RANGE[0]:g}-{FOCAL_RATIO_RANGE[1]:g}; "
            "recalibrate the camera")
    m = PRINCIPAL_POINT_MARGIN
    if not (-m * w <= intr.cx <= (1 + m) * w and -m * h <= intr.cy <= (1 + m) * h):
        raise CalibrationError(
            f"implausible principal point ({intr.cx:.6g}, {intr.cy:.6g}) px for a {w}x{h} "
            "image: it lies far outside the image; recalibrate, or check the file's "
            "image_width/image_height")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Camera:
    """A camera's pinhole intrinsics, its distortion ``(k1, k2, p1, p2[, k3, ...])`` and
    where they came from. ``rms_px`` is the calibration's RMS reprojection error.

    The one camera object of the project: a calibration file loads into one, an
    uncalibrated webcam gets one guessed from a field of view (:meth:`guess`), and every
    frame carries the one it was captured with (``realtime.types.Frame.camera``).
    """

    intrinsics: CameraIntrinsics
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))
    camera_name: str = "camera"
    date: str = field(default_factory=_now)
    rms_px: float = float("nan")

    def __post_init__(self) -> None:
        dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        if len(dist) not in DIST_LENGTHS:
            raise CalibrationError(f"distortion_coefficients must have one of {DIST_LENGTHS} "
                                   f"values, got {len(dist)}")
        if not np.all(np.isfinite(dist)):
            raise CalibrationError(f"distortion_coefficients contain NaN or inf: {dist}")
        if np.abs(dist).max(initial=0.0) > MAX_DISTORTION:
            raise CalibrationError(
                f"distortion_coefficients {np.array2string(dist, precision=3)}: a coefficient "
                f"beyond +-{MAX_DISTORTION:g} is no real lens; recalibrate the camera")
        object.__setattr__(self, "dist", dist)
        if not self.intrinsics.estimated:  # a guess is ours, made from bounded numbers
            check_plausible(self.intrinsics)

    @classmethod
    def guess(cls, width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> "Camera":
        """An uncalibrated camera: square pixels, centred, focal length from a field of view."""
        return cls(guess_intrinsics(width, height, hfov_deg),
                   camera_name=f"guessed from a {hfov_deg:g} deg field of view")

    @classmethod
    def pinhole(cls, intrinsics: CameraIntrinsics, name: str = "camera") -> "Camera":
        """A camera known by its intrinsics alone (no lens distortion)."""
        return cls(intrinsics, camera_name=name)

    @property
    def estimated(self) -> bool:
        """True when the intrinsics are a guess from the image size, not a calibration."""
        return self.intrinsics.estimated

    @property
    def K(self) -> np.ndarray:  # noqa: N802
        return self.intrinsics.K

    @property
    def size(self) -> tuple[int, int]:
        return self.intrinsics.width, self.intrinsics.height

    @cached_property
    def has_distortion(self) -> bool:
        """Whether the lens distorts (asked on every frame with hands: computed once)."""
        return bool(np.any(self.dist != 0.0))

    def rescaled(self, width: int, height: int) -> "Camera":
        """The same camera streaming at another resolution.

        Webcams scale the full sensor image to each mode, so K scales with the image and
        the distortion (defined on normalised coordinates) stays. A different aspect ratio
        means a crop, which cannot be recovered from the file: refused.
        """
        w0, h0 = self.size
        if (width, height) == (w0, h0):
            return self
        if abs(width / w0 - height / h0) > 0.01 * max(width / w0, height / h0):
            raise CalibrationError(
                f"image_width/image_height: calibrated at {w0}x{h0} but the stream is "
                f"{width}x{height} (another aspect ratio, i.e. a crop): calibrate this "
                "resolution with `handmesh-calibrate intrinsics`")
        return Camera(self.intrinsics.scaled_to(width, height), self.dist,
                                 self.camera_name, self.date, self.rms_px)

    def undistort_points(self, uv: np.ndarray) -> np.ndarray:
        """Pixels ``(N,2)`` of the distorted image -> pixels of the ideal pinhole image."""
        uv = np.asarray(uv, dtype=np.float64)
        if not self.has_distortion or len(uv) == 0:
            return uv.copy()
        import cv2

        out = cv2.undistortPoints(uv.reshape(-1, 1, 2), self.K, self.dist, P=self.K)
        return out.reshape(-1, 2)

    def distort_points(self, uv: np.ndarray) -> np.ndarray:
        """Ideal pinhole pixels ``(N,2)`` -> pixels of the real (distorted) image."""
        uv = np.asarray(uv, dtype=np.float64)
        if not self.has_distortion or len(uv) == 0:
            return uv.copy()
        import cv2

        K = self.K  # noqa: N806
        xy = (uv - K[:2, 2]) / np.array([K[0, 0], K[1, 1]])
        pts = np.concatenate([xy, np.ones((len(xy), 1))], 1)
        out, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, self.dist)
        return out.reshape(-1, 2)

    def to_dict(self) -> dict:
        """The JSON layout (OpenCV's key names)."""
        return {
            "camera_name": self.camera_name,
            "calibration_time": self.date,
            "image_width": int(self.intrinsics.width),
            "image_height": int(self.intrinsics.height),
            "camera_matrix": self.K.tolist(),
            "distortion_coefficients": self.dist.tolist(),
            "avg_reprojection_error": None if math.isnan(self.rms_px) else float(self.rms_px),
        }
