"""Pinhole camera intrinsics, and a guess from the image size when none is calibrated."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from calibration.errors import CalibrationError

#: Horizontal field of view assumed for an uncalibrated webcam: most laptop and USB
#: webcams are 55-70 degrees; 60 keeps the depth error of a wrong guess near 10%.
DEFAULT_HFOV_DEG = 60.0


@dataclass(frozen=True)
class CameraIntrinsics:
    """``fx, fy, cx, cy`` in pixels for an image of ``width`` x ``height`` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    estimated: bool = False  # True when guessed from the image size, not calibrated

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise CalibrationError(f"intrinsics field {name} is not a finite number: {value}")
        if self.fx <= 0 or self.fy <= 0:
            raise CalibrationError(
                f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        if self.width <= 0 or self.height <= 0:
            raise CalibrationError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the usual name of the matrix
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_matrix(cls, K: np.ndarray, width: int, height: int) -> "CameraIntrinsics":  # noqa: N803
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise CalibrationError(f"K must be 3x3, got {K.shape}")
        return cls(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), width, height)

    def scaled_to(self, width: int, height: int) -> "CameraIntrinsics":
        """The same camera at another resolution (same field of view)."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                                width, height, self.estimated)


def guess_intrinsics(
    width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG
) -> CameraIntrinsics:
    """Square pixels, principal point at the centre, focal length from a field-of-view guess."""
    if not 10.0 <= hfov_deg <= 170.0:
        raise CalibrationError(f"field of view must be 10-170 degrees, got {hfov_deg}")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return CameraIntrinsics(f, f, width / 2.0, height / 2.0, width, height, estimated=True)
