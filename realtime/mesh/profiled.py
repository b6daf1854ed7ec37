"""A user's hand profile in the loop: profile-sized hands out, open hands recorded.

Wraps any ``HandEstimator``. With a hand profile, each placed hand is rescaled about the
camera centre to the user's bone lengths, which keeps its reprojection and corrects its
depth (one camera cannot see a hand's true size). With a :class:`ProfileRecorder`, the
estimated open hands are collected to make a profile (the demo's ``--calibrate-hand``).
Lens undistortion is not done here: every estimator gets landmarks undistorted with the
frame's camera (``realtime.engine.stages.EstimateStage``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from calibration.camera import Camera
from calibration.errors import CalibrationError
from calibration.profile import HandProfile, ProfileRecorder, check_scale, profile_scale
from realtime.types import Detection, HandMesh

log = logging.getLogger(__name__)


class ProfiledEstimator:
    """``estimator`` with a hand profile applied and/or open hands recorded."""

    def __init__(self, estimator, profile: HandProfile | None = None,
                 recorder: ProfileRecorder | None = None) -> None:
        self.estimator = estimator
        self.model = estimator.model
        self.profile = profile
        self.recorder = recorder

    def estimate(self, dets: Sequence[Detection], camera: Camera,
                 track_ids: Sequence[int]) -> list[HandMesh]:
        hands = self.estimator.estimate(dets, camera, track_ids)
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
