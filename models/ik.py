"""Fit the hand model to 21 metric 3D keypoints: shape from bone lengths, pose by IK.

The fitting baseline that the learned regressor must beat. All pure functions over a
:class:`models.hand_model.HandModel`; no state. Steps:

1. shape: Gauss-Newton on the shape coefficients so that the rest skeleton's bone lengths
   match the observed ones (lengths do not depend on pose), with a prior ``|s|^2``;
2. root: Kabsch rotation of the palm (wrist and four finger MCPs);
3. joints, parents first: the smallest rotation that aims each bone at its observed child
   keypoint, expressed in the joint's anatomical frame and clipped to its limits (twist is
   unobservable from keypoints and stays at the parent's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from models.geometry import (
    kabsch_into,
    log_rotation_into,
    matrix_to_axis_angle,
    rodrigues_into,
    rotation_between_into,
)
from models.hand_model import HandModel
from models.skinning import forward_kinematics, rigid_points, shaped_rest
from models.topology import BONES

PALM_KEYPOINTS = (0, 5, 9, 13, 17)


@dataclass(frozen=True)
class IKResult:
    """pose ``(J,3)`` anatomical axis-angle, shape ``(S,)``, fitted keypoints ``(21,3)`` in the
    target's frame, the translation that aligns them and per-keypoint residuals (meters)."""

    pose: np.ndarray
    shape: np.ndarray
    keypoints: np.ndarray
    translation: np.ndarray
    residuals: np.ndarray


def bone_end_keypoints(model: HandModel) -> np.ndarray:
    """For each joint, the keypoint its bone points at (-1 for the root).

    The keypoint sitting on the joint's first child joint, or, for a finger's last joint,
    the farthest keypoint it carries (the tip).
    """
    d = model.data
    ends = np.full(model.num_joints, -1)
    for j in range(1, model.num_joints):
        kids = np.where(d.parents == j)[0]
        if len(kids):
            dist = np.linalg.norm(d.keypoints[:, None] - d.joints[kids][None], axis=-1)
            k, c = np.unravel_index(np.argmin(dist), dist.shape)
            if dist[k, c] < 1e-4:
                ends[j] = k
                continue
        carried = np.where(d.keypoint_parents == j)[0]
        if len(carried):
            dist = np.linalg.norm(d.keypoints[carried] - d.joints[j], axis=-1)
            ends[j] = carried[np.argmax(dist)]
    return ends


def _rest_bone_lengths(model: HandModel, shape: np.ndarray) -> np.ndarray:
    kps = model.rest_keypoints(shape[None])[0]
    return np.array([np.linalg.norm(kps[c] - kps[p]) for p, c in BONES])


def fit_shape(
    model: HandModel, target: np.ndarray, prior_weight: float = 1e-6, iterations: int = 6,
    components: int | None = None,
) -> np.ndarray:
    """Shape coefficients ``(S,)`` whose bone lengths match those of ``target (21,3)``."""
    d = model.data
    s_count = components or model.num_shape
    observed = np.array([np.linalg.norm(target[c] - target[p]) for p, c in BONES])
    shape = np.zeros(model.num_shape)
    parents = np.array([p for p, _ in BONES])
    children = np.array([c for _, c in BONES])
    for _ in range(iterations):
        kps = model.rest_keypoints(shape[None])[0]
        vec = kps[children] - kps[parents]
        length = np.linalg.norm(vec, axis=1)
        unit = vec / np.maximum(length, 1e-9)[:, None]
        dirs = d.keypoint_shapedirs[..., :s_count]
        jac = np.einsum("bd,bds->bs", unit, dirs[children] - dirs[parents])
        r = length - observed
        h = jac.T @ jac + prior_weight * np.eye(s_count)
        g = jac.T @ r + prior_weight * shape[:s_count]
        shape[:s_count] -= np.linalg.solve(h, g)
    return shape


def _posed(model: HandModel, rot: np.ndarray, rest_joints: np.ndarray, rest_kps: np.ndarray):
    joints, skin = forward_kinematics(rot[None], rest_joints[None], model.data.parents)
    kps = rigid_points(rest_kps[None], model.data.keypoint_parents, skin)
    return joints[0], kps[0], skin[0]


@njit(cache=True, nogil=True)
def _ik_sweeps(rot, rest_joints, rest_kps, ends, carrier, parents, frames, limits, target,
               palm, passes):
    """Numba core of :func:`fit_pose`: ``passes`` sweeps down the tree, in place on ``rot``."""
    num_joints = rot.shape[0]
    world_r = np.zeros_like(rot)
    world_p = np.zeros((num_joints, 3))
    turn, shift, delta, m = np.empty((3, 3)), np.empty(3), np.empty((3, 3)), np.empty((3, 3))
    local = np.empty(3)
    for _ in range(passes):
        # Current palm keypoints (the root and the finger cmc joints move them).
        world_r[0] = rot[0]
        world_p[0] = rest_joints[0]
        for j in range(1, num_joints):
            p = parents[j]
            world_p[j] = world_p[p] + world_r[p] @ (rest_joints[j] - rest_joints[p])
            world_r[j] = world_r[p] @ rot[j]
        src = np.zeros((len(palm), 3))
        for i in range(len(palm)):
            k = palm[i]
            o = carrier[k]
            src[i] = world_p[o] + world_r[o] @ (rest_kps[k] - rest_joints[o])
        kabsch_into(src, target[palm], turn, shift)
        rot[0] = turn @ rot[0]
        world_r[0] = rot[0]
        wrist = world_p[0] + world_r[0] @ (rest_kps[0] - rest_joints[0])
        offset = target[0] - wrist
        for j in range(1, num_joints):
            p = parents[j]
            world_p[j] = world_p[p] + world_r[p] @ (rest_joints[j] - rest_joints[p])
            world_r[j] = world_r[p] @ rot[j]
            end = ends[j]
            if end < 0:
                continue
            owner = carrier[end]
            if owner == j:
                have = world_r[j] @ (rest_kps[end] - rest_joints[j])
            else:
                have = world_r[j] @ (rest_kps[end] - rest_joints[j])
            want = target[end] - offset - world_p[j]
            if np.sum(want * want) < 1e-12 or np.sum(have * have) < 1e-12:
                continue
            rotation_between_into(have, want, delta)
            rot[j] = world_r[p].T @ delta @ world_r[p] @ rot[j]
            log_rotation_into(frames[j].T @ rot[j] @ frames[j], local)
            for ax in range(3):
                local[ax] = min(max(local[ax], limits[j, ax, 0]), limits[j, ax, 1])
            rodrigues_into(local, m)
            rot[j] = frames[j] @ m @ frames[j].T
            world_r[j] = world_r[p] @ rot[j]


def fit_pose(
    model: HandModel, target: np.ndarray, shape: np.ndarray, passes: int = 2
) -> IKResult:
    """Inverse kinematics of a right hand onto ``target (21,3)`` keypoints (meters).

    Joints are visited parents first, so each joint's world transform is final when it is
    reached: a pass is one sweep down the tree (Numba, no Python per joint).
    """
    d = model.data
    rest_joints = shaped_rest(d.joints, d.joint_shapedirs, shape[None])[0]
    rest_kps = shaped_rest(d.keypoints, d.keypoint_shapedirs, shape[None])[0]
    rot = np.repeat(np.eye(3)[None], model.num_joints, axis=0)
    _ik_sweeps(rot, rest_joints, rest_kps, _bone_ends_cached(model), d.keypoint_parents,
               d.parents, d.frames, d.limits, np.ascontiguousarray(target, dtype=np.float64),
               np.array(PALM_KEYPOINTS), passes)
    pose = matrix_to_axis_angle(np.einsum("jki,jkl,jlm->jim", d.frames, rot, d.frames))
    pose[0] = matrix_to_axis_angle(rot[0])  # the root's frame is the model frame
    _, kps, _ = _posed(model, rot, rest_joints, rest_kps)
    translation = (target - kps).mean(0)
    fitted = kps + translation
    return IKResult(pose, shape, fitted, translation, np.linalg.norm(fitted - target, axis=1))


_ENDS_CACHE: dict[int, np.ndarray] = {}


def _bone_ends_cached(model: HandModel) -> np.ndarray:
    key = id(model.data)
    if key not in _ENDS_CACHE:
        _ENDS_CACHE[key] = bone_end_keypoints(model)
    return _ENDS_CACHE[key]


def fit_keypoints(
    model: HandModel, target: np.ndarray, shape: np.ndarray | None = None
) -> IKResult:
    """Shape (unless given) then pose, for one right hand's ``target (21,3)`` keypoints."""
    target = np.asarray(target, dtype=np.float64)
    if target.shape != (21, 3):
        raise ValueError(f"target keypoints must be (21,3), got {target.shape}")
    if not np.all(np.isfinite(target)):
        raise ValueError("target keypoints contain NaN or inf")
    if shape is None:
        shape = fit_shape(model, target)
    return fit_pose(model, target, np.asarray(shape, dtype=np.float64))
