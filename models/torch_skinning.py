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


def forward_kinematics(
    rot: torch.Tensor, rest_joints: torch.Tensor, parents: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """See ``models.skinning.forward_kinematics``. Returns posed joints and skin transforms."""
    batch, num_joints = rot.shape[:2]
    rel = torch.cat(
        [rest_joints[:, :1], rest_joints[:, 1:] - rest_joints[:, parents[1:]]], dim=1
    )
    bottom = torch.zeros(batch, 1, 4, dtype=rot.dtype, device=rot.device)
    bottom[..., 3] = 1.0
    world: list[torch.Tensor] = []
    for j in range(num_joints):
        local = torch.cat([torch.cat([rot[:, j], rel[:, j, :, None]], dim=2), bottom], dim=1)
        p = parents[j]
        world.append(local if p < 0 else world[p] @ local)
    g = torch.stack(world, dim=1)
    posed = g[:, :, :3, 3]
    offset = torch.einsum("bjik,bjk->bji", g[:, :, :3, :3], rest_joints)
    skin = torch.cat([g[..., :3, :3], (g[..., :3, 3] - offset)[..., None]], dim=-1)
    skin = torch.cat([skin, bottom[:, None].expand(batch, num_joints, 1, 4)], dim=2)
    return posed, skin


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
            return template[None] + torch.einsum("nds,bs->bnd", dirs[..., :s], shape[:, :s])

        verts = rest(self.template, self.shapedirs)
        joints = rest(self.joints, self.joint_shapedirs)
        kps = rest(self.keypoints, self.keypoint_shapedirs)
        if self.posedirs.numel():
            feats = (rot[:, 1:] - torch.eye(3, dtype=rot.dtype, device=rot.device)).reshape(b, -1)
            verts = verts + (feats @ self.posedirs).reshape(b, -1, 3)
        posed_joints, skin = forward_kinematics(rot, joints, self.parents)
        blended = torch.einsum("nj,bjik->bnik", self.weights, skin)
        posed_verts = torch.einsum("bnik,bnk->bni", blended[..., :3, :3], verts)
        posed_verts = posed_verts + blended[..., :3, 3]
        t = skin[:, self.keypoint_parents]
        posed_kps = torch.einsum("bkij,bkj->bki", t[..., :3, :3], kps) + t[..., :3, 3]
        on_vertex = [i for i, v in enumerate(self.keypoint_vertices) if v >= 0]
        if on_vertex:
            vids = [self.keypoint_vertices[i] for i in on_vertex]
            posed_kps = posed_kps.clone()
            posed_kps[:, on_vertex] = posed_verts[:, vids]
        if trans is not None:
            t3 = trans.reshape(-1, 1, 3)
            posed_verts, posed_joints, posed_kps = posed_verts + t3, posed_joints + t3, posed_kps + t3
        return posed_verts, posed_joints, posed_kps
