"""The ``HandEstimator`` interface, its config, and the choice between the estimators.

An estimator turns one frame's detections into metric hand meshes in the camera frame.
Two ship: the learned regressor (``realtime.mesh.regressor``, the default: an ONNX network,
both hands in one call) and the fitting baseline (``realtime.mesh.ik_fit``: inverse
kinematics). Anything with the same two members plugs into :class:`~realtime.HandMesher`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from calibration.camera import Camera
from models.geometry import project
from models.hand_model import HandModel
from realtime.mesh.ik_fit import FitConfig, FitEstimator
from realtime.mesh.regressor import DEFAULT_MANIFEST, RunnerConfig
from realtime.types import Detection, HandMesh

log = logging.getLogger(__name__)

ESTIMATOR_KINDS = ("regressor", "fit")


@runtime_checkable
class HandEstimator(Protocol):
    """Detections of one frame -> hand meshes, in the detections' order.

    ``dets`` have landmarks of an ideal pinhole image (undistorted with ``camera``);
    ``track_ids[i]`` and the settled side in ``dets[i].handedness`` come from the tracker.
    A frame whose landmarks cannot be used raises ``ValueError`` (the stage counts it).
    """

    model: HandModel

    def estimate(self, dets: Sequence[Detection], camera: Camera,
                 track_ids: Sequence[int]) -> list[HandMesh]: ...


def with_joints(hand: HandMesh, joints: np.ndarray, K: np.ndarray,
                landmarks_px: np.ndarray) -> HandMesh:
    """``hand`` with ``joints`` (camera frame) in place of its own, and what follows from
    them: ``keypoints_2d`` (projected with ``K``) and the reprojection error against the
    detector's ``landmarks_px``. For estimators that wrap another and move its joints."""
    uv = project(joints, K)
    return replace(hand, joints=joints, keypoints_2d=uv,
                   reprojection_error_px=float(np.linalg.norm(uv - landmarks_px, axis=1).mean()))


@dataclass(frozen=True)
class EstimatorConfig:
    """Which estimator makes the meshes, and the user's hand size.

    ``kind``: "regressor" (the learned regressor, default; ``regressor.manifest`` names
    another ONNX regressor) or "fit" (the fitting baseline). When the shipped regressor's
    weights are missing, "regressor" falls back to "fit" with a warning.
    ``hand_profile``: a hand profile file (``--calibrate-hand``): hands take its size.
    ``joint_convention``: None (the hand model's joints), "photo" (the shipped placement:
    where people who annotate photos put the joints) or a ``.npz`` made by
    ``scripts.fit_photo_convention`` (:mod:`realtime.mesh.convention`): moves the output
    joints only, the mesh stays.
    """

    kind: Literal["regressor", "fit"] = "regressor"
    regressor: RunnerConfig = field(default_factory=RunnerConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    hand_profile: Path | None = None
    joint_convention: str | Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in ESTIMATOR_KINDS:
            raise ValueError(f"estimator kind must be one of {ESTIMATOR_KINDS}, got "
                             f"{self.kind!r}")
        if self.joint_convention is not None:
            from realtime.mesh.convention import convention_path

            convention_path(self.joint_convention)  # a clear error now, not at the first hand


def open_estimator(config: EstimatorConfig, model: HandModel,
                   recorder=None) -> HandEstimator:
    """The estimator ``config`` names, wrapped for a hand profile or a profile ``recorder``
    (a :class:`calibration.profile.ProfileRecorder`) when either is given."""
    estimator: HandEstimator
    manifest = Path(config.regressor.manifest)
    if config.kind == "fit":
        estimator = FitEstimator(model, config.fit)
    elif manifest == DEFAULT_MANIFEST and not manifest.is_file():
        log.warning("no learned regressor at %s: using the fitting baseline", manifest)
        estimator = FitEstimator(model, config.fit)
    else:
        from realtime.mesh.regressor import RegressorEstimator

        estimator = RegressorEstimator(model, config.regressor)
    profile = None
    if config.hand_profile is not None:
        from calibration.profile import load_profile

        profile = load_profile(config.hand_profile)
    if profile is None and recorder is None:
        return estimator
    from realtime.mesh.profiled import ProfiledEstimator

    return ProfiledEstimator(estimator, profile, recorder)
