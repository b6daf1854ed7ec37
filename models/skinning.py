"""Forward kinematics and linear blend skinning: pure, batched NumPy functions.

Shapes are given as ``(B, ...)``; ``J`` joints, ``V`` vertices, ``S`` shape components.
The same math in torch lives in ``models.training.torch_skinning``; tests hold them within 1e-5.
After smplx's ``lbs.py`` (Loper et al., SMPL, 2015), with one addition: every joint has
an anatomical frame ``F_j`` (columns: flexion axis, abduction axis, bone axis), and pose
rotation vectors are expressed in it, so that joint limits read as flexion/abduction/twist.
"""

from __future__ import annotations

import numpy as np

from models.geometry import axis_angle_to_matrix, rot6d_to_matrix


def pose_to_matrices(pose: np.ndarray) -> np.ndarray:
    """Accept ``(B,J,3)`` axis-angle, ``(B,J,6)`` 6D or ``(B,J,3,3)`` matrices -> ``(B,J,3,3)``."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim == 4 and pose.shape[-2:] == (3, 3):
        return pose
    if pose.ndim == 3 and pose.shape[-1] == 3:
        return axis_angle_to_matrix(pose)
    if pose.ndim == 3 and pose.shape[-1] == 6:
        return rot6d_to_matrix(pose)
    raise ValueError(
        f"pose must be (B,J,3) axis-angle, (B,J,6) 6D or (B,J,3,3) matrices, got {pose.shape}"
    )


def anatomical_to_model(local_rot: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Rotations given in each joint's anatomical frame -> model axes: ``F R F^T``.

    local_rot ``(B,J,3,3)``, frames ``(J,3,3)`` -> ``(B,J,3,3)``.
    """
    return frames @ local_rot @ np.swapaxes(frames, -1, -2)


def shaped_rest(
    template: np.ndarray, shapedirs: np.ndarray, shape: np.ndarray | None
) -> np.ndarray:
    """Rest geometry: ``template (N,3) + shapedirs (N,3,S) @ shape (B,S)`` -> ``(B,N,3)``."""
    if shape is None:
        return template[None].astype(np.float64)
    shape = np.asarray(shape, dtype=np.float64)
    s = min(shape.shape[-1], shapedirs.shape[-1])
    return template[None] + np.einsum("nds,bs->bnd", shapedirs[..., :s], shape[:, :s])


def forward_kinematics(
    rot: np.ndarray, rest_joints: np.ndarray, parents: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compose local rotations down the tree.

    rot ``(B,J,3,3)`` local rotations in model axes about each rest joint; rest_joints
    ``(B,J,3)``; parents ``(J,)`` with -1 for the root, each parent listed before its child.
    Returns posed joints ``(B,J,3)`` and skinning transforms ``(B,J,4,4)`` that map rest
    positions to posed positions.
    """
    batch, num_joints = rot.shape[:2]
    rel = rest_joints.copy()
    rel[:, 1:] -= rest_joints[:, parents[1:]]
    world = np.zeros((batch, num_joints, 4, 4))
    world[:, :, 3, 3] = 1.0
    for j in range(num_joints):
        local = np.zeros((batch, 4, 4))
        local[:, :3, :3] = rot[:, j]
        local[:, :3, 3] = rel[:, j]
        local[:, 3, 3] = 1.0
        p = parents[j]
        world[:, j] = local if p < 0 else world[:, p] @ local
    posed = world[:, :, :3, 3].copy()
    skin = world.copy()
    skin[:, :, :3, 3] -= np.einsum("bjik,bjk->bji", world[:, :, :3, :3], rest_joints)
    return posed, skin


def blend_skin(points: np.ndarray, weights: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Linear blend skinning: points ``(B,N,3)``, weights ``(N,J)``, skin ``(B,J,4,4)``."""
    b, j = skin.shape[:2]
    blended = (weights @ skin[:, :, :3, :].reshape(b, j, 12)).reshape(b, -1, 3, 4)
    return (blended[..., :3] @ points[..., None])[..., 0] + blended[..., 3]


def rigid_points(points: np.ndarray, owner: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Points moved rigidly with one joint each: points ``(B,K,3)``, owner ``(K,)``."""
    t = skin[:, owner]
    return np.einsum("bkij,bkj->bki", t[..., :3, :3], points) + t[..., :3, 3]


def pose_features(rot: np.ndarray) -> np.ndarray:
    """SMPL/MANO pose-corrective features: ``(R_j - I)`` of the non-root joints, flattened.

    rot ``(B,J,3,3)`` -> ``(B,(J-1)*9)``.
    """
    return (rot[:, 1:] - np.eye(3)).reshape(rot.shape[0], -1)
