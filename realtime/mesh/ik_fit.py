"""The fitting baseline: MediaPipe landmarks -> a hand mesh in the camera frame, by IK.

Per hand: mirror left hands into right ones; fit shape and pose to MediaPipe's metric
world landmarks (``models.ik``); place the fitted keypoints in the camera frame from the
2D landmarks and the intrinsics (``calibration.placement``); mirror back. The learned
regressor (``realtime.mesh.regressor``) replaces the middle step and keeps the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calibration import placement
from calibration.camera import Camera
from calibration.placement import refine_pose_pnp, solve_translation
from models.geometry import backproject, project
from models.hand_model import HandModel, mirror_x
from models.ik import IKResult, fit_keypoints, fit_pose
from realtime.types import Detection, HandMesh

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """Settings of the fitting baseline."""

    fit_shape: bool = True  # shape from bone lengths; False keeps the mean shape
    ik_passes: int = 2
    refine_rotation: bool = True  # PnP: turn the fitted hand to match the 2D landmarks
    follow_2d: bool = True  # second IK pass on the 2D landmarks lifted to the fitted depths

    def __post_init__(self) -> None:
        if not 1 <= self.ik_passes <= 10:
            raise ValueError(f"ik_passes must be 1-10, got {self.ik_passes}")


class FitEstimator:
    """Fits the hand model to each detection (a ``HandEstimator``); one per pipeline."""

    def __init__(self, model: HandModel, config: FitConfig = FitConfig()) -> None:
        self.model = model
        self.config = config
        placement.warmup()  # numba: compiled or loaded from disk now, not on the first hand

    def estimate(self, dets: Sequence[Detection], camera: Camera,
                 track_ids: Sequence[int]) -> list[HandMesh]:
        """Every detection of a frame, one fit each."""
        return [self.fit(d, camera, t) for d, t in zip(dets, track_ids)]

    def fit(self, det: Detection, camera: Camera, track_id: int = -1) -> HandMesh:
        """One detection -> a :class:`HandMesh` in meters in the camera frame."""
        if not (np.all(np.isfinite(det.world)) and np.all(np.isfinite(det.landmarks_px))):
            raise ValueError("detection has NaN or inf landmarks")
        left = det.handedness == "left"
        target = mirror_x(det.world) if left else det.world
        shape = None if self.config.fit_shape else np.zeros(self.model.num_shape)
        ik = fit_keypoints(self.model, target, shape)
        out = self.model.forward(ik.pose[None], ik.shape[None])
        verts = out.vertices[0] + ik.translation
        joints = ik.keypoints
        if left:
            verts, joints = mirror_x(verts), mirror_x(joints)
        K = camera.K  # noqa: N806
        t = solve_translation(joints, det.landmarks_px, K)
        rot = np.eye(3)
        if self.config.refine_rotation:
            rot, t = refine_pose_pnp(joints, det.landmarks_px, K, t)
        centre = joints.mean(0)
        joints_cam = (joints - centre) @ rot.T + centre + t
        verts = (verts - centre) @ rot.T + centre
        verts = verts + t
        if self.config.follow_2d:
            # MediaPipe's 2D and world landmarks disagree by several pixels; the image is
            # the better witness of x/y, the 3D fit of depth: aim the bones at the 2D rays.
            lifted = backproject(det.landmarks_px, joints_cam[:, 2], K)
            ik2 = fit_pose(self.model, mirror_x(lifted) if left else lifted, ik.shape,
                           passes=self.config.ik_passes)
            verts = self.model.forward(ik2.pose[None], ik2.shape[None]).vertices[0]
            verts = verts + ik2.translation
            joints_cam = ik2.keypoints
            if left:
                verts, joints_cam = mirror_x(verts), mirror_x(joints_cam)
            ik = IKResult(ik2.pose, ik2.shape, ik2.keypoints, ik2.translation,
                          np.maximum(ik.residuals, ik2.residuals))
        uv = project(joints_cam, K)
        reproj = float(np.mean(np.linalg.norm(uv - det.landmarks_px, axis=1)))
        # Uncertainty proxy for the baseline: each vertex inherits the fit residual of the
        # keypoints its joints carry, blended by the skinning weights.
        joint_res = np.zeros(self.model.num_joints)
        np.maximum.at(joint_res, self.model.data.keypoint_parents, ik.residuals)
        vertex_std = self.model.data.weights @ joint_res
        return HandMesh(
            vertices=verts,
            joints=joints_cam,
            vertex_std=vertex_std,
            pose=ik.pose,
            shape=ik.shape,
            keypoints_2d=uv,
            handedness=det.handedness,
            score=det.score,
            track_id=track_id,
            timestamp=det.timestamp,
            frame_index=det.frame_index,
            reprojection_error_px=reproj,
        )
