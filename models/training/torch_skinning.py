"""The skinning of ``models.skinning`` in torch, for training (differentiable, batched).

Kept line-for-line parallel to the NumPy version; tests hold the two within 1e-5.
torch is imported here only: the runtime never imports this module.
"""

from __future__ import annotations

import torch

from models.hand_model import HandModelData

_EPS = 1e-8


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues. ``(..., 3)`` -> ``(..., 3, 3)``.

    The angle is taken of ``rotvec + 1e-8`` (as smplx does) so that the gradient at an exact
    zero rotation is not zero: poses initialised at zero still train.
    """
    angle = torch.linalg.norm(rotvec + _EPS, dim=-1, keepdim=True)
    axis = rotvec / angle
    x, y, z = axis.unbind(-1)
    zeros = torch.zeros_like(x)
    skew = torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], dim=-1)
    skew = skew.reshape(rotvec.shape[:-1] + (3, 3))
    s = torch.sin(angle)[..., None]
    c = torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(skew)
    return eye + s * skew + (1.0 - c) * (skew @ skew)


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """Zhou et al. 2019 6D -> rotation by Gram-Schmidt. ``(..., 6)`` -> ``(..., 3, 3)``."""
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = a1 / torch.linalg.norm(a1, dim=-1, keepdim=True).clamp_min(_EPS)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / torch.linalg.norm(a2, dim=-1, keepdim=True).clamp_min(_EPS)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def pose_to_matrices(pose: torch.Tensor) -> torch.Tensor:
    if pose.ndim == 4 and pose.shape[-2:] == (3, 3):
        return pose
    if pose.shape[-1] == 3:
        return axis_angle_to_matrix(pose)
    if pose.shape[-1] == 6:
        return rot6d_to_matrix(pose)
    raise ValueError(f"pose must be (B,J,3), (B,J,6) or (B,J,3,3), got {tuple(pose.shape)}")


def tree_levels(parents: list[int]) -> list[list[int]]:
    """Joints grouped by depth in the tree (the root alone at depth 0)."""
    depth = []
    for j, p in enumerate(parents):
        depth.append(0 if p < 0 else depth[p] + 1)
    return [[j for j in range(len(parents)) if depth[j] == d] for d in range(max(depth) + 1)]


def forward_kinematics(
    rot: torch.Tensor, rest_joints: torch.Tensor, parents: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """See ``models.skinning.forward_kinematics``. Returns posed joints ``(B,J,3)`` and the
    skinning transforms as ``(B,J,3,4)`` (rotation | translation).

    All joints of one tree depth are composed at once (a hand is 5 levels deep, not 20
    joints long) and rotations and translations are carried separately: few, large
    operations, which keeps both training and the exported ONNX graph fast.
    """
    rel = torch.cat(
        [rest_joints[:, :1], rest_joints[:, 1:] - rest_joints[:, parents[1:]]], dim=1
    )
    levels = tree_levels(parents)
    rs = [rot[:, levels[0]]]
    ts = [rel[:, levels[0]]]
    for d in range(1, len(levels)):
        prev = levels[d - 1]
        idx = levels[d]
        pidx = [prev.index(parents[j]) for j in idx]
        parent_r = rs[-1][:, pidx]
        rs.append(parent_r @ rot[:, idx])
        ts.append(ts[-1][:, pidx] + (parent_r @ rel[:, idx, :, None])[..., 0])
    order = [j for level in levels for j in level]
    inverse = [order.index(j) for j in range(len(parents))]
    r = torch.cat(rs, dim=1)[:, inverse]
    posed = torch.cat(ts, dim=1)[:, inverse]
    t = posed - (r @ rest_joints[..., None])[..., 0]
    return posed, torch.cat([r, t[..., None]], dim=-1)


def linear_blend(points: torch.Tensor, weights: torch.Tensor, skin: torch.Tensor) -> torch.Tensor:
    """LBS as ``sum_j w_vj (R_j p_v + t_j)``: every joint's rotation applied to all points
    in one large matmul ``(B,J,3,3) @ (B,1,3,N)``, then weighted and summed.

    This shape avoids thousands of tiny per-point 3x3 products, which onnxruntime runs
    slowly; for two hands it is about twice as fast as blending the transforms first.
    """
    rotated = skin[..., :3] @ points.transpose(1, 2)[:, None]  # (B,J,3,N)
    blended = (rotated * weights.t()[None, :, None, :]).sum(dim=1)  # (B,3,N)
    return blended.transpose(1, 2) + weights @ skin[..., 3]


def apply_transforms(points: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """``(B,N,3)`` points through per-point ``(B,N,3,4)`` transforms."""
    return (transforms[..., :3] @ points[..., None])[..., 0] + transforms[..., 3]


class TorchHandModel(torch.nn.Module):
    """The torch twin of ``models.hand_model.HandModel`` (same data, same outputs)."""

    def __init__(self, data: HandModelData, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.parents = [int(p) for p in data.parents]
        self.keypoint_parents = [int(p) for p in data.keypoint_parents]
        self.keypoint_vertices = [int(v) for v in data.keypoint_vertices]

        def buf(name: str, value) -> None:
            self.register_buffer(name, torch.as_tensor(value, dtype=dtype), persistent=False)

        buf("template", data.template)
        buf("weights", data.weights)
        buf("joints", data.joints)
        buf("frames", data.frames)
        buf("shapedirs", data.shapedirs)
        buf("joint_shapedirs", data.joint_shapedirs)
        buf("keypoints", data.keypoints)
        buf("keypoint_shapedirs", data.keypoint_shapedirs)
        buf("posedirs", data.posedirs if data.posedirs is not None else torch.zeros(0))
        self.register_buffer("faces", torch.as_tensor(data.faces), persistent=False)

    def forward(
        self, pose: torch.Tensor, shape: torch.Tensor | None = None,
        trans: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns vertices ``(B,V,3)``, joints ``(B,J,3)``, keypoints ``(B,21,3)``."""
        rot = self.frames @ pose_to_matrices(pose) @ self.frames.transpose(-1, -2)
        b = rot.shape[0]

        def rest(template: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
            if shape is None:
                return template[None].expand(b, -1, -1)
            s = min(shape.shape[-1], dirs.shape[-1])
            # A plain matmul rather than an einsum: one GEMM node in the exported graph.
            offsets = shape[:, :s] @ dirs[..., :s].reshape(-1, s).t()
            return template[None] + offsets.reshape(b, -1, 3)

        verts = rest(self.template, self.shapedirs)
        joints = rest(self.joints, self.joint_shapedirs)
        kps = rest(self.keypoints, self.keypoint_shapedirs)
        if self.posedirs.numel():
            feats = (rot[:, 1:] - torch.eye(3, dtype=rot.dtype, device=rot.device)).reshape(b, -1)
            verts = verts + (feats @ self.posedirs).reshape(b, -1, 3)
        posed_joints, skin = forward_kinematics(rot, joints, self.parents)
        posed_verts = linear_blend(verts, self.weights, skin)
        carried = skin[:, self.keypoint_parents]
        posed_kps = (carried[..., :3] * kps[:, :, None, :]).sum(-1) + carried[..., 3]
        on_vertex = [i for i, v in enumerate(self.keypoint_vertices) if v >= 0]
        if on_vertex:
            vids = [self.keypoint_vertices[i] for i in on_vertex]
            posed_kps = posed_kps.clone()
            posed_kps[:, on_vertex] = posed_verts[:, vids]
        if trans is not None:
            t3 = trans.reshape(-1, 1, 3)
            posed_verts, posed_joints = posed_verts + t3, posed_joints + t3
            posed_kps = posed_kps + t3
        return posed_verts, posed_joints, posed_kps
