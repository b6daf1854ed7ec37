"""The camera each frame carries: a calibration file, a known camera, or a guess.

Resolved once per image size at capture (:class:`CameraResolver`), so every stage after it
reads ``frame.camera`` instead of asking for the camera through a callback.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from calibration.camera import Camera
from calibration.errors import CalibrationError
from calibration.intrinsics import DEFAULT_HFOV_DEG, CameraIntrinsics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraConfig:
    """Which camera the frames come from.

    ``calibration``: a calibration file (``handmesh-calibrate intrinsics``), exact K and
    lens distortion, rescaled to the stream's resolution. ``intrinsics``: a camera known
    otherwise (a dataset's K; the built-in sample's). Without either, K is guessed from the
    image size and ``hfov_deg``, the horizontal field of view (most webcams: 55-70 deg).
    """

    calibration: Path | None = None
    intrinsics: CameraIntrinsics | None = None
    hfov_deg: float = DEFAULT_HFOV_DEG

    def __post_init__(self) -> None:
        if not (isinstance(self.hfov_deg, (int, float)) and math.isfinite(self.hfov_deg)
                and 10.0 <= self.hfov_deg <= 170.0):
            raise ValueError(f"hfov_deg must be 10-170 degrees, got {self.hfov_deg!r}")
        if self.calibration is not None and self.intrinsics is not None:
            raise ValueError("give either calibration (a file) or intrinsics, not both")
        if self.intrinsics is not None and not isinstance(self.intrinsics, CameraIntrinsics):
            raise ValueError(f"intrinsics must be a CameraIntrinsics, got "
                             f"{type(self.intrinsics).__name__}")


class CameraResolver:
    """``for_size((w, h)) -> Camera``: the configured camera at a frame's size, cached.

    A known camera at another resolution of the same aspect ratio is rescaled (webcams
    scale the whole sensor); another aspect ratio (a crop) cannot be recovered, so that
    size is guessed from the field of view, with a warning. A calibration file that cannot
    be read raises :class:`CalibrationError` here, before any frame is processed.
    """

    def __init__(self, config: CameraConfig = CameraConfig(),
                 default: CameraIntrinsics | None = None) -> None:
        self.config = config
        self._known: Camera | None = None
        if config.calibration is not None:
            from calibration.camera_file import load_calibration

            self._known = load_calibration(config.calibration)
        elif config.intrinsics is not None:
            self._known = Camera.pinhole(config.intrinsics)
        elif default is not None:
            self._known = Camera.pinhole(default, "built-in sample camera")
        self._cache: dict[tuple[int, int], Camera] = {}

    def for_size(self, size: tuple[int, int], strict: bool = False) -> Camera:
        """The camera at ``size``; ``strict``: a known camera of another aspect ratio raises
        :class:`CalibrationError` (naming the sizes) instead of falling back to a guess."""
        if strict and self._known is not None:
            self._known.rescaled(*size)  # raises for another aspect ratio
        camera = self._cache.get(size)
        if camera is None:
            camera = self._cache[size] = self._resolve(size)
        return camera

    def _resolve(self, size: tuple[int, int]) -> Camera:
        if self._known is not None:
            try:
                return self._known.rescaled(*size)
            except CalibrationError:
                log.warning("frame size %dx%d does not match the camera's %dx%d (another "
                            "aspect ratio): guessing its intrinsics", size[0], size[1],
                            *self._known.size)
        return guessed_camera(size, self.config.hfov_deg)


@lru_cache(maxsize=64)
def guessed_camera(size: tuple[int, int], hfov_deg: float = DEFAULT_HFOV_DEG) -> Camera:
    """A camera guessed from the image size and a field of view (cached: frames share it)."""
    return Camera.guess(int(size[0]), int(size[1]), hfov_deg)
