"""The learned mesh regressor: MediaPipe landmarks -> a probabilistic hand mesh (after AMVUR).

AMVUR (Jiang et al., "A Probabilistic Attention Model with Occlusion-aware Texture
Regression for 3D Hand Reconstruction from a Single RGB Image", CVPR 2023, arXiv 2304.14299)
combines a model-based prior (pose and shape skinned by a hand model) with a model-free,
attention-based vertex regression, both as distributions, fused by their precisions and
trained with a likelihood loss plus a KL term. Here the inputs are MediaPipe's landmarks
instead of an image, and everything is sized to run in about a millisecond on a CPU:

- prior: an MLP regresses 20 joint rotations (6D) and 10 shape coefficients, skinned by
  the open hand model (``models.training.torch_skinning``), plus a per-hand log-variance;
- refinement: joint tokens (landmark features + learned positional encoding) attend among
  themselves; coarse vertex tokens (positional encoding of their index + the prior's
  position) cross-attend to the joints and then to each other, and predict a displacement
  and a log-variance per coarse vertex, upsampled to the full mesh by a fixed sparse matrix;
- fusion: ``N(mu_p, s_p^2)`` and ``N(mu_f, s_f^2)`` per vertex, precision-weighted.

Frames: right hands only (left hands are mirrored before and after), camera axes, centred
on the mean of the 21 keypoints (the origin of MediaPipe's world landmarks).
torch is imported here: this module is for training and export only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from models.hand_model import HandModelData
from models.training.torch_skinning import TorchHandModel

WORLD_SCALE_M = 0.1  # world landmarks are divided by this before the network


@dataclass(frozen=True)
class RegressorConfig:
    """Network sizes. Defaults keep two hands under ~1 ms on a 2-core CPU."""

    width: int = 64
    heads: int = 4
    coarse_vertices: int = 64
    mlp_hidden: int = 256
    joint_layers: int = 1
    vertex_layers: int = 1
    upsample_neighbours: int = 4
    # MediaPipe's handedness is an input, but a network that used it would give a mirrored
    # right hand a mesh that is not exactly the mirrored mesh; held at 0.5 unless asked.
    use_handedness: bool = False

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        for name in ("width", "heads", "coarse_vertices", "mlp_hidden", "upsample_neighbours"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


def prepare_inputs_np(
    world: np.ndarray, image: np.ndarray, image_size: np.ndarray, handedness: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe outputs -> network inputs (NumPy; the runner's side).

    world ``(B,21,3)`` meters; image ``(B,21,3)`` MediaPipe-normalised (x/W, y/H, z);
    image_size ``(B,2)`` (W,H); handedness ``(B,)`` 1 for right, 0 for a mirrored left.
    Returns world centred on its mean, image as ``(u/W, v/W, z)`` (square pixels), and
    handedness ``(B,1)``; all float32.
    """
    world = world - world.mean(axis=-2, keepdims=True)
    image = image.copy()
    image[..., 1] *= (image_size[:, 1] / image_size[:, 0])[:, None]
    return (world.astype(np.float32), image.astype(np.float32),
            np.asarray(handedness, dtype=np.float32).reshape(-1, 1))


def prepare_inputs_torch(
    world: torch.Tensor, image: torch.Tensor, image_size: torch.Tensor, handedness: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The torch twin of :func:`prepare_inputs_np` (the training side)."""
    world = world - world.mean(dim=-2, keepdim=True)
    image = image.clone()
    image[..., 1] = image[..., 1] * (image_size[:, 1] / image_size[:, 0])[:, None]
    return world, image, handedness.reshape(-1, 1)


def farthest_points(points: np.ndarray, count: int) -> np.ndarray:
    """Deterministic farthest-point sampling: ``count`` well-spread indices of ``points``."""
    chosen = [int(np.argmin(points[:, 1]))]  # start at a fingertip
    dist = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(count - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(points - points[nxt], axis=1))
    return np.array(chosen)


def upsample_matrix(
    data: HandModelData, coarse: np.ndarray, neighbours: int
) -> np.ndarray:
    """``(V, Nc)`` interpolation from coarse to all vertices.

    Distance mixes rest position and skinning weights, so that a vertex never borrows from
    a neighbouring finger that merely lies close in the rest pose.
    """
    pos = data.template
    w = data.weights
    d = np.linalg.norm(pos[:, None] - pos[coarse][None], axis=-1)
    d = d + 0.05 * np.abs(w[:, None] - w[coarse][None]).sum(-1)
    idx = np.argsort(d, axis=1)[:, :neighbours]
    near = np.take_along_axis(d, idx, axis=1)
    wts = 1.0 / (near + 1e-4)
    wts /= wts.sum(1, keepdims=True)
    up = np.zeros((len(pos), len(coarse)), dtype=np.float32)
    np.put_along_axis(up, idx, wts.astype(np.float32), axis=1)
    return up


def keypoint_regressor(data: HandModelData, count: int = 8) -> np.ndarray:
    """``(21, V)``: each keypoint follows the mean displacement of its nearest carrier vertices."""
    reg = np.zeros((21, len(data.template)), dtype=np.float32)
    dominant = data.weights.argmax(1)
    for k in range(21):
        owner = data.keypoint_parents[k]
        cand = np.where(dominant == owner)[0]
        if len(cand) < count:
            cand = np.arange(len(data.template))
        d = np.linalg.norm(data.template[cand] - data.keypoints[k], axis=1)
        near = cand[np.argsort(d)[:count]]
        reg[k, near] = 1.0 / count
    return reg


class Attention(nn.Module):
    """Plain multi-head attention from matmuls (exports cleanly to ONNX, FP16 included)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.o = nn.Linear(width, width)
        self.scale = 1.0 / math.sqrt(width // heads)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        m = ctx.shape[1]
        h = self.heads
        q = self.q(x).reshape(b, n, h, c // h).transpose(1, 2)
        k = self.k(ctx).reshape(b, m, h, c // h).transpose(1, 2)
        v = self.v(ctx).reshape(b, m, h, c // h).transpose(1, 2)
        att = torch.softmax((q @ k.transpose(-1, -2)) * self.scale, dim=-1)
        return self.o((att @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm attention block with a small feed-forward part."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm_x = nn.LayerNorm(width)
        self.norm_ctx = nn.LayerNorm(width)
        self.att = Attention(width, heads)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
        xn = self.norm_x(x)
        c = xn if ctx is None else self.norm_ctx(ctx)
        x = x + self.att(xn, c)
        return x + self.ff(self.norm_ff(x))


class MeshRegressor(nn.Module):
    """Landmarks -> (vertices, vertex_std, joints, pose6d, shape), see the module docstring."""

    def __init__(self, data: HandModelData, config: RegressorConfig = RegressorConfig()) -> None:
        super().__init__()
        self.config = config
        c = config
        self.hand = TorchHandModel(data, dtype=torch.float32)
        self.num_joints = int(data.joints.shape[0])
        self.num_shape = int(data.shapedirs.shape[-1])
        nv = int(data.template.shape[0])
        coarse = farthest_points(data.template, c.coarse_vertices)
        self.register_buffer("coarse_index", torch.as_tensor(coarse, dtype=torch.long))
        self.register_buffer("upsample", torch.as_tensor(upsample_matrix(data, coarse,
                                                                         c.upsample_neighbours)))
        self.register_buffer("kp_regressor", torch.as_tensor(keypoint_regressor(data)))
        feat = 21 * 6 + 1
        self.prior_mlp = nn.Sequential(
            nn.Linear(feat, c.mlp_hidden), nn.GELU(),
            nn.Linear(c.mlp_hidden, c.mlp_hidden), nn.GELU(),
        )
        self.pose_head = nn.Linear(c.mlp_hidden, self.num_joints * 6)
        self.shape_head = nn.Linear(c.mlp_hidden, self.num_shape)
        self.prior_logvar_head = nn.Linear(c.mlp_hidden, 1)
        for head in (self.pose_head, self.shape_head):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        identity = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(self.num_joints)
        self.register_buffer("pose_identity", identity)
        self.prior_logvar_vertex = nn.Parameter(torch.full((nv,), -9.0))
        self.joint_embed = nn.Linear(7, c.width)
        self.joint_pos = nn.Parameter(torch.randn(21, c.width) * 0.02)
        self.joint_blocks = nn.ModuleList(Block(c.width, c.heads) for _ in range(c.joint_layers))
        self.vertex_pos = nn.Parameter(torch.randn(c.coarse_vertices, c.width) * 0.02)
        self.vertex_embed = nn.Linear(3, c.width)
        self.cross = Block(c.width, c.heads)
        self.vertex_blocks = nn.ModuleList(Block(c.width, c.heads)
                                           for _ in range(c.vertex_layers))
        self.vertex_out = nn.Linear(c.width, 4)
        nn.init.zeros_(self.vertex_out.weight)
        with torch.no_grad():
            self.vertex_out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, -8.0]))

    def features(self, world: torch.Tensor, image: torch.Tensor, handed: torch.Tensor):
        """Per-joint features ``(B,21,6)``: scaled world and hand-normalised image landmarks."""
        w = world / WORLD_SCALE_M
        rel = image - image.mean(dim=1, keepdim=True)
        size = torch.sqrt((rel[..., :2] ** 2).sum(-1)).amax(dim=1, keepdim=True)
        rel = rel / size.clamp_min(1e-6)[..., None] * 0.5
        return torch.cat([w, rel], dim=-1)

    def forward(self, world: torch.Tensor, image: torch.Tensor, handedness: torch.Tensor):
        b = world.shape[0]
        if not self.config.use_handedness:
            handedness = handedness * 0.0 + 0.5
        feats = self.features(world, image, handedness)  # (B,21,6)
        h = self.prior_mlp(torch.cat([feats.reshape(b, -1), handedness], dim=1))
        pose6d = (self.pose_head(h) + self.pose_identity).reshape(b, self.num_joints, 6)
        shape = self.shape_head(h)
        verts, _, kps = self.hand(pose6d, shape)
        centre = kps.mean(dim=1, keepdim=True)
        mu_p = verts - centre
        kp_p = kps - centre
        logvar_p = self.prior_logvar_vertex[None] + self.prior_logvar_head(h)  # (B,V)

        tokens = self.joint_embed(torch.cat(
            [feats, handedness[:, None].expand(b, 21, 1)], dim=-1)) + self.joint_pos
        for blk in self.joint_blocks:
            tokens = blk(tokens)
        coarse = mu_p[:, self.coarse_index] / WORLD_SCALE_M
        vtok = self.vertex_pos + self.vertex_embed(coarse)
        vtok = self.cross(vtok, tokens)
        for blk in self.vertex_blocks:
            vtok = blk(vtok)
        out = self.vertex_out(vtok)  # (B,Nc,4)
        delta = self.upsample @ (out[..., :3] * 0.01)
        logvar_f = (self.upsample @ out[..., 3:])[..., 0]
        mu_f = mu_p + delta

        # Precision-weighted fusion of N(mu_p, s_p^2) and N(mu_f, s_f^2) with mu_f = mu_p + d:
        # mu = mu_p + d * s_p^2 / (s_p^2 + s_f^2) = mu_p + d * sigmoid(logvar_p - logvar_f),
        # written so that only one op touches every coordinate (fewer, cheaper ONNX nodes).
        gain = torch.sigmoid(logvar_p - logvar_f)
        shift = delta * gain[..., None]
        mu = mu_p + shift
        std = torch.rsqrt(torch.exp(-logvar_p) + torch.exp(-logvar_f))
        joints = kp_p + self.kp_regressor @ shift
        return {
            "vertices": mu, "vertex_std": std, "joints": joints, "pose6d": pose6d,
            "shape": shape, "prior_vertices": mu_p, "prior_logvar": logvar_p,
            "free_vertices": mu_f, "free_logvar": logvar_f, "prior_joints": kp_p,
        }


def gaussian_nll(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Isotropic 3D Gaussian negative log-likelihood per vertex (up to a constant)."""
    return 1.5 * logvar + ((x - mu) ** 2).sum(-1) / (2.0 * torch.exp(logvar))


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, s_q^2 I) || N(mu_p, s_p^2 I)) per vertex, 3 dimensions."""
    return 0.5 * (3.0 * (torch.exp(logvar_q - logvar_p) - 1.0 + logvar_p - logvar_q)
                  + ((mu_q - mu_p) ** 2).sum(-1) / torch.exp(logvar_p))
