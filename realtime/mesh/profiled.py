"""Calibration in the loop: undistorted landmarks in, profile-sized hands out.

Wraps the learned regressor or the fitting baseline (same ``fit_all``/``faces``
interface). With a lens calibration, every detection's 2D landmarks are undistorted before
placement, so the pinhole model the placement assumes holds. With a hand profile, each
placed hand is rescaled about the camera centre to the user's bone lengths, which keeps its
reprojection and corrects its depth. With a :class:`ProfileRecorder`, open hands are
collected for ``--calibrate-hand``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from calibration.camera_file import CameraCalibration
from calibration.errors import CalibrationError
from calibration.intrinsics import CameraIntrinsics
from calibration.profile import HandProfile, ProfileRecorder, check_scale, profile_scale
from realtime.types import Detection, HandMesh

log = logging.getLogger(__name__)


class CalibratedFitter:
    """``fitter`` with lens undistortion, a hand profile and profile recording."""

    def __init__(self, fitter, calibration: CameraCalibration | None = None,
                 profile: HandProfile | None = None,
                 recorder: ProfileRecorder | None = None) -> None:
        self.fitter = fitter
        self.calibration = calibration
        self.profile = profile
        self.recorder = recorder
        self._scaled: dict[tuple[int, int], CameraCalibration | None] = {}

    def faces(self, handedness: str) -> np.ndarray:
        return self.fitter.faces(handedness)

    def _calibration_for(self, intrinsics: CameraIntrinsics) -> CameraCalibration | None:
        if self.calibration is None:
            return None
        size = (intrinsics.width, intrinsics.height)
        if size not in self._scaled:
            try:
                self._scaled[size] = self.calibration.rescaled(*size)
            except CalibrationError as exc:  # a frame of another aspect ratio (image folders)
                log.warning("%s: landmarks of %dx%d frames are not undistorted", exc, *size)
                self._scaled[size] = None
        return self._scaled[size]

    def fit_all(self, dets: list[Detection], intrinsics: CameraIntrinsics,
                track_ids: list[int]) -> list[HandMesh]:
        calib = self._calibration_for(intrinsics)
        if calib is not None and calib.has_distortion:
            dets = [replace(d, landmarks_px=calib.undistort_points(d.landmarks_px))
                    for d in dets]
        hands = self.fitter.fit_all(dets, intrinsics, track_ids)
        if self.recorder is not None:
            for h in hands:
                self.recorder.add(h.joints, h.score, h.shape)
        if self.profile is None:
            return hands
        out = []
        for h in hands:
            try:
                s = check_scale(profile_scale(h.joints, self.profile))
            except CalibrationError as exc:
                log.warning("hand profile not applied: %s", exc)
                out.append(h)
                continue
            out.append(replace(h, joints=h.joints * s, vertices=h.vertices * s,
                               vertex_std=h.vertex_std * s))
        return out
