"""Synthetic training hands that look like MediaPipe Hands' output, generated on the fly.

Every sample is drawn from the hand model (docs/design.md, "The mesh regressor"): a natural pose
inside the joint limits, a shape, a global rotation covering webcam use, a random pinhole
camera and a placement that keeps the hand in the image. The inputs are then corrupted the
way MediaPipe errs: a wrong global scale (it cannot see true hand size), per-keypoint noise
that grows with depth and occlusion, depth errors several times larger than x/y, fingers
bent as a whole, occasional collapsed or swapped fingertips, fingers pulled toward their
neighbour, and left/right mirroring. Everything is batched torch (no Python loop per
sample), deterministic for a given ``torch.Generator``.

Frames. The model frame is the camera frame (OpenCV: x right, y down, z forward): with an
identity root rotation the camera sees the palm, fingers up. ``pose[:, 0]`` is the global
rotation in camera axes, so ``TorchHandModel(pose, shape)`` re-centred on its keypoint mean
gives the targets exactly. Only right hands are generated: left hands are mirrored to
right ones before the network, which is what ``handedness`` records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import lru_cache

import numpy as np
import torch

from models.hand_model import HandModelData

# The curl tables (open/fist flexion, thumb, MCP spread) are models.poses' own, so the two
# samplers draw the same hands.
from models.poses import (
    _FIST_DEG,
    _OPEN_DEG,
    _SPREAD_DEG,
    _THUMB_FIST,
    _THUMB_OPEN,
    FINGER_NAMES,
    named_pose,
)
from models.topology import FINGERS, TIPS
from models.training.torch_skinning import forward_kinematics, pose_to_matrices

_PALM = (0, 5, 9, 13, 17)
_PINCH_JOINTS = ("thumb_cmc", "thumb_mcp", "thumb_ip", "index_mcp", "index_pip", "index_dip")
_REF_DEPTH_M = 0.5  # depth at which the configured noise levels hold


def _check_range(name: str, value, lo: float, hi: float | None = None) -> None:
    ok = (isinstance(value, tuple) and len(value) == 2
          and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
          and lo <= value[0] <= value[1] and (hi is None or value[1] <= hi))
    if not ok:
        bound = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"SyntheticConfig.{name} must be a (low, high) pair with "
                         f"low <= high, both {bound}; got {value!r}")


def _check_scalar(name: str, value, lo: float, hi: float | None = None) -> None:
    ok = (isinstance(value, (int, float)) and math.isfinite(value) and value >= lo
          and (hi is None or value <= hi))
    if not ok:
        bound = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"SyntheticConfig.{name} must be a number {bound}; got {value!r}")


@dataclass(frozen=True)
class SyntheticConfig:
    """How synthetic hands are drawn and corrupted. Lengths in meters unless named ``_mm``.

    Noise levels given as ``(low, high)`` are drawn uniformly per sample, so the network
    sees clean and noisy hands; they hold at 0.5 m depth and scale linearly with depth.
    """

    # Camera and placement.
    depth_range_m: tuple[float, float] = (0.15, 0.80)  # depth of the keypoint mean
    image_sizes: tuple[tuple[int, int], ...] = ((640, 480), (1280, 720), (1920, 1080))
    hfov_deg: tuple[float, float] = (50.0, 80.0)  # horizontal field of view
    principal_point_std: float = 0.02  # std of (cx, cy) about the centre, fraction of W, H
    image_margin: float = 0.02  # keypoints stay this fraction of W, H inside the border
    min_keypoint_depth_m: float = 0.08  # no keypoint nearer the camera than this
    # Shape: coefficients N(0, shape_std) clipped to +-shape_clip (shapedirs are per unit).
    shape_std: float = 0.8
    shape_clip: float = 2.5
    # Pose and view.
    pose_jitter_deg: float = 4.0  # per joint and axis
    thumb_jitter_deg: float = 8.0  # extra on the thumb CMC (flexion, abduction)
    p_pinch: float = 0.15  # thumb tip brought (partly or fully) onto the index tip
    p_uniform_rotation: float = 0.5  # else fingers within fingers_up_cone_deg of image-up
    fingers_up_cone_deg: float = 70.0
    # World-landmark errors.
    world_scale_std: float = 0.08  # global scale error, N(1, std), clipped to 1 +- 3 std
    world_depth_scale_std: float = 0.10  # extra scale error of z alone (flattened depth)
    world_xy_noise_mm: tuple[float, float] = (2.0, 4.0)  # per-keypoint x/y std at 0.5 m
    world_z_noise_ratio: tuple[float, float] = (3.0, 4.0)  # z std / x-y std
    depth_noise_slope: float = 0.6  # noise factor 1 + slope * (z / 0.5 m - 1), >= 0.25
    finger_bend_mm: float = 3.0  # std of a whole-finger offset at the tip (x/y; z x ratio)
    occluded_noise_factor: float = 2.0  # noise multiplier for occluded keypoints
    occlusion_margin_m: float = 0.02  # behind the palm plane by this much = occluded
    # Image-landmark errors.
    image_noise_frac: tuple[float, float] = (0.008, 0.015)  # 2D std / hand's 2D size
    image_z_noise_frac: tuple[float, float] = (0.04, 0.08)  # z std / hand's 2D size
    image_z_scale_std: float = 0.2  # scale error of the relative depth z
    # Gross MediaPipe errors, per sample.
    p_collapse: float = 0.03  # one fingertip collapsed onto its DIP
    p_swap: float = 0.01  # two adjacent fingertips swapped
    p_pull: float = 0.03  # a finger's distal keypoints pulled toward its neighbour
    # Handedness.
    p_right: float = 0.5  # fraction flagged "was a right hand" (handedness 1)
    p_mirror_error: float = 0.02  # of the left-flagged: inputs are the mirror image

    def __post_init__(self) -> None:
        _check_range("depth_range_m", self.depth_range_m, 1e-3)
        _check_range("hfov_deg", self.hfov_deg, 1.0, 170.0)
        _check_range("world_xy_noise_mm", self.world_xy_noise_mm, 0.0)
        _check_range("world_z_noise_ratio", self.world_z_noise_ratio, 0.0)
        _check_range("image_noise_frac", self.image_noise_frac, 0.0)
        _check_range("image_z_noise_frac", self.image_z_noise_frac, 0.0)
        sizes = self.image_sizes
        if (not isinstance(sizes, tuple) or not sizes or not all(
                isinstance(s, tuple) and len(s) == 2
                and all(isinstance(v, int) and v > 0 for v in s) for s in sizes)):
            raise ValueError("SyntheticConfig.image_sizes must be a non-empty tuple of "
                             f"(width, height) positive int pairs; got {sizes!r}")
        for name in ("principal_point_std", "shape_std", "pose_jitter_deg",
                     "thumb_jitter_deg", "world_scale_std", "world_depth_scale_std",
                     "depth_noise_slope", "finger_bend_mm", "occlusion_margin_m",
                     "image_z_scale_std", "min_keypoint_depth_m"):
            _check_scalar(name, getattr(self, name), 0.0)
        _check_scalar("image_margin", self.image_margin, 0.0, 0.4)
        _check_scalar("shape_clip", self.shape_clip, 0.0)
        _check_scalar("fingers_up_cone_deg", self.fingers_up_cone_deg, 0.0, 180.0)
        _check_scalar("occluded_noise_factor", self.occluded_noise_factor, 1.0)
        if self.world_scale_std >= 1 / 3:
            raise ValueError("SyntheticConfig.world_scale_std must be < 1/3 (scale stays "
                             f"positive); got {self.world_scale_std!r}")
        for f in fields(self):
            if f.name.startswith("p_"):
                _check_scalar(f.name, getattr(self, f.name), 0.0, 1.0)

    @classmethod
    def clean(cls, **overrides) -> "SyntheticConfig":
        """No noise and no gross errors (inputs are exact): for tests and ablations."""
        base = dict(
            world_scale_std=0.0, world_depth_scale_std=0.0, world_xy_noise_mm=(0.0, 0.0),
            finger_bend_mm=0.0, image_noise_frac=(0.0, 0.0), image_z_noise_frac=(0.0, 0.0),
            image_z_scale_std=0.0, p_collapse=0.0, p_swap=0.0, p_pull=0.0,
            p_mirror_error=0.0,
        )
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes) -> "SyntheticConfig":
        return replace(self, **changes)


# ---------------------------------------------------------------------------------------
# Random helpers (all draw from the caller's generator, on its device).


def _rand(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=g, device=g.device)


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=g, device=g.device)


def _uniform(g: torch.Generator, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return lo + (hi - lo) * _rand(g, *shape)


def _beta_symmetric(g: torch.Generator, a: float, shape: tuple[int, ...],
                    tries: int = 12) -> torch.Tensor:
    """Beta(a, a) for a <= 1 by Johnk's rejection method, vectorised over ``tries`` draws.

    torch's Beta takes no generator; this keeps sampling deterministic. With a = 0.7 each
    try is accepted with probability 0.66, so 12 tries all fail about once in 5e5 draws
    (those fall back to a uniform).
    """
    u = _rand(g, tries, *shape).pow(1.0 / a)
    v = _rand(g, tries, *shape).pow(1.0 / a)
    s = u + v
    ok = (s <= 1.0) & (s > 0.0)
    first = torch.argmax(ok.to(torch.uint8), dim=0, keepdim=True)
    x = torch.gather(u / s.clamp_min(1e-12), 0, first)[0]
    any_ok = ok.any(dim=0)
    return torch.where(any_ok, x, _rand(g, *shape))


# ---------------------------------------------------------------------------------------
# Rotations (quaternions w, x, y, z).


def _quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


def _axis_angle_quat(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Unit ``axis (..., 3)`` and ``angle (...)`` radians -> quaternion ``(..., 4)``."""
    half = 0.5 * angle
    return torch.cat([torch.cos(half)[..., None], torch.sin(half)[..., None] * axis], dim=-1)


def quat_to_rotvec(q: torch.Tensor) -> torch.Tensor:
    """Quaternion ``(..., 4)`` (w first) -> rotation vector ``(..., 3)``, angle in [0, pi]."""
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    vec = q[..., 1:]
    sin_half = torch.linalg.norm(vec, dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    # angle / sin(angle / 2) -> 2 as the angle -> 0.
    factor = torch.where(sin_half > 1e-7, angle / sin_half.clamp_min(1e-12),
                         torch.full_like(angle, 2.0))
    return vec * factor


def sample_rotations(g: torch.Generator, n: int, p_uniform: float,
                     cone_deg: float, yaw_deg: float = 180.0) -> torch.Tensor:
    """Global hand rotations ``(n,3)`` (rotation vectors, camera axes) for webcam views.

    A mixture: with probability ``p_uniform`` uniform over SO(3); otherwise any turn about
    the finger axis (palm, side and back views alike) followed by a tilt of the fingers
    uniformly over the cap of directions within ``cone_deg`` of image-up (the tilt axis
    in the image plane or along the view ray covers fingers toward the camera and
    in-plane rotations). ``yaw_deg`` < 180 keeps the turn within that of a palm or a back
    view (each half the time): photos show few hands edge-on.
    """
    q_uniform = _randn(g, n, 4)
    yaw = _uniform(g, -math.pi, math.pi, n)
    if yaw_deg < 180.0:
        yaw = torch.where(yaw > 0, 0.0, math.pi) + yaw * (yaw_deg / 180.0)
    y_axis = torch.zeros(n, 3, device=g.device)
    y_axis[:, 1] = 1.0
    q_yaw = _axis_angle_quat(y_axis, yaw)
    phi = _uniform(g, -math.pi, math.pi, n)
    tilt_axis = torch.stack([torch.cos(phi), torch.zeros_like(phi), torch.sin(phi)], -1)
    cos_tilt = 1.0 - _rand(g, n) * (1.0 - math.cos(math.radians(cone_deg)))
    q_cone = _quat_mul(_axis_angle_quat(tilt_axis, torch.arccos(cos_tilt.clamp(-1, 1))), q_yaw)
    use_uniform = _rand(g, n, 1) < p_uniform
    return quat_to_rotvec(torch.where(use_uniform, q_uniform, q_cone))


# ---------------------------------------------------------------------------------------
# Poses: a torch port of models.poses.sample_poses, with pinches.


@lru_cache(maxsize=8)
def _pose_tables(joint_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-joint open/fist rotations (rad), MCP spread, finger of each joint, pinch pose."""
    j = len(joint_names)
    opened, closed, spread = np.zeros((j, 3)), np.zeros((j, 3)), np.zeros((j, 3))
    finger = np.zeros(j, dtype=np.int64)
    for i, name in enumerate(joint_names):
        f, _, part = name.partition("_")
        if f not in FINGER_NAMES:
            continue
        finger[i] = FINGER_NAMES.index(f)
        if f == "thumb":
            opened[i], closed[i] = _THUMB_OPEN[name], _THUMB_FIST[name]
        else:
            opened[i, 0], closed[i, 0] = _OPEN_DEG[part], _FIST_DEG[part]
            if part == "mcp":
                spread[i, 1] = _SPREAD_DEG[f]
    pinch_mask = np.array([n in _PINCH_JOINTS for n in joint_names])
    return {
        "open": np.deg2rad(opened), "closed": np.deg2rad(closed),
        "spread": np.deg2rad(spread), "finger": finger,
        "pinch": named_pose(joint_names, "pinch")[0], "pinch_mask": pinch_mask,
        "thumb_cmc": np.array([n == "thumb_cmc" for n in joint_names]),
    }


def sample_poses_torch(
    joint_names: tuple[str, ...],
    limits: torch.Tensor | np.ndarray,
    n: int,
    generator: torch.Generator,
    *,
    jitter_deg: float = 4.0,
    thumb_jitter_deg: float = 8.0,
    p_pinch: float = 0.15,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random natural poses ``(n,J,3)`` inside ``limits (J,3,2)``; the root is left at zero.

    As ``models.poses.sample_poses``: one overall curl (Beta(0.7, 0.7), favouring open and
    closed hands) plus per-finger deviations (N(0, 0.25)), fingers that break away (15%),
    a spread that shrinks as fingers close, per-joint jitter. Added here: extra thumb CMC
    freedom, and pinches that move thumb and index part or all of the way onto the named
    ``pinch`` pose (thumb tip on index tip), with the other fingers left as sampled.
    """
    g = generator
    tables = _pose_tables(tuple(joint_names))
    t = {k: torch.as_tensor(v, device=g.device) for k, v in tables.items()}
    lim = torch.as_tensor(limits, dtype=dtype, device=g.device)
    overall = _beta_symmetric(g, 0.7, (n, 1))
    curls = (overall + 0.25 * _randn(g, n, 5)).clamp(0.0, 1.0)
    breakaway = _rand(g, n, 5) < 0.15
    curls = torch.where(breakaway, _rand(g, n, 5), curls)
    spread = _rand(g, n, 1)
    c = curls[:, t["finger"]][..., None]  # (n,J,1)
    opened, closed = t["open"].to(dtype), t["closed"].to(dtype)
    pose = opened + c * (closed - opened) + (spread[..., None] * (1.0 - c)) * t["spread"].to(dtype)
    # Pinch: thumb and index toward the pinch pose by an amount in [0.5, 1] (1 a third of
    # the time: a closed pinch), with less jitter on those joints so the tips stay close.
    pinch = (_rand(g, n, 1, 1) < p_pinch) & t["pinch_mask"][None, :, None]
    amount = _uniform(g, 0.5, 1.25, n, 1, 1).clamp(max=1.0)
    pose = torch.where(pinch, pose + amount * (t["pinch"].to(dtype) - pose), pose)
    jitter = math.radians(jitter_deg) * _randn(g, n, pose.shape[1], 3)
    pose = pose + torch.where(pinch, 0.35 * jitter, jitter)
    thumb = t["thumb_cmc"][None, :, None] & ~pinch
    thumb_jitter = math.radians(thumb_jitter_deg) * _randn(g, n, pose.shape[1], 3)
    thumb_jitter[..., 2] = 0.0
    pose = torch.where(thumb, pose + thumb_jitter, pose)
    pose = torch.maximum(torch.minimum(pose, lim[..., 1]), lim[..., 0])
    pose[:, 0] = 0.0
    return pose


# ---------------------------------------------------------------------------------------
# Camera helpers.


def image_to_pixels(image: torch.Tensor, image_size: torch.Tensor) -> torch.Tensor:
    """MediaPipe normalised image landmarks ``(B,21,3)`` -> pixels ``(B,21,3)``.

    ``image_size`` is ``(B,2)`` (width, height). Columns: u, v in pixels and the relative
    depth z times the width (MediaPipe's z uses the scale of x), also in pixels.
    """
    w = image_size[:, None, 0:1].to(image.dtype)
    h = image_size[:, None, 1:2].to(image.dtype)
    return torch.cat([image[..., 0:1] * w, image[..., 1:2] * h, image[..., 2:3] * w], dim=-1)


def project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Camera-frame points ``(B,N,3)`` -> pixels ``(B,N,2)`` with intrinsics ``(B,3,3)``."""
    z = points[..., 2:3]
    xy = points[..., :2] / z
    f = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None]
    c = torch.stack([K[:, 0, 2], K[:, 1, 2]], -1)[:, None]
    return xy * f + c


def occluded_keypoints(kps: torch.Tensor, margin_m: float) -> torch.Tensor:
    """Which camera-frame keypoints ``(B,21,3)`` hide behind the palm: ``(B,21)`` bool.

    Cheap stand-in for a depth test: intersect the viewing ray of each keypoint with the
    palm plane (wrist, index and pinky MCPs); the keypoint is occluded when it lies more than
    ``margin_m`` behind the plane and the intersection falls inside the palm (within 0.8
    of the wrist-middle MCP length from the palm centre).
    """
    p0, p5, p17 = kps[:, 0], kps[:, 5], kps[:, 17]
    normal = torch.cross(p5 - p0, p17 - p0, dim=-1)
    centre = kps[:, list(_PALM)].mean(1)
    radius = 0.8 * torch.linalg.norm(kps[:, 9] - p0, dim=-1)
    num = (normal * p0).sum(-1, keepdim=True)
    den = (normal[:, None] * kps).sum(-1)
    s = num / torch.where(den.abs() < 1e-12, torch.full_like(den, 1e-12), den)
    hit = s[..., None] * kps  # where the ray meets the palm plane
    inside = torch.linalg.norm(hit - centre[:, None], dim=-1) < radius[:, None]
    behind = kps[..., 2] * (1.0 - s) > margin_m
    return inside & behind & (s > 0)


# ---------------------------------------------------------------------------------------


def _finger_weights() -> torch.Tensor:
    """``(21,5)``: how much of finger f's bend offset keypoint k carries (0, 1/3, 2/3, 1)."""
    w = torch.zeros(21, 5)
    for f, name in enumerate(FINGER_NAMES):
        for step, k in enumerate(FINGERS[name]):
            w[k, f] = step / 3.0
    return w


class SyntheticHands:
    """Draws batches of MediaPipe-like synthetic hands from one hand model.

    ``sample(batch, generator)`` returns a dict of float32 tensors:

    inputs  ``world (B,21,3)`` m, camera axes, centred, with MediaPipe-like errors;
            ``image (B,21,3)`` normalised x/W, y/H and relative depth z;
            ``handedness (B,1)`` 1 right, 0 left mirrored to right;
            ``K (B,3,3)``, ``image_size (B,2)`` (width, height) pixels;
    targets ``vertices (B,V,3)``, ``keypoints (B,21,3)`` m, camera axes, centred on the
            true keypoint mean; ``pose (B,J,3)`` anatomical axis-angle (root = camera-axes
            rotation); ``shape (B,S)``; ``keypoints_cam (B,21,3)``; ``center_cam (B,3)``;
    flags   ``occluded (B,21)``, ``mirror_error (B,1)`` and ``gross_error (B,3)``
            (collapsed tip, swapped tips, pulled finger), 0 or 1.
    """

    def __init__(self, data: HandModelData, config: SyntheticConfig | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.data = data
        self.config = config or SyntheticConfig()
        self.device = torch.device(device)
        dev, f32 = self.device, torch.float32
        v, s = data.template.shape[0], data.shapedirs.shape[-1]
        self.num_vertices, self.num_shape = v, s
        self.parents = [int(p) for p in data.parents]
        self.keypoint_parents = [int(p) for p in data.keypoint_parents]
        self.keypoint_vertices = [int(i) for i in data.keypoint_vertices]
        if data.posedirs is not None:
            raise ValueError(f"hand model {data.name!r} has pose correctives (MANO); the "
                             "synthetic generator supports the open hand's plain skinning")

        def t(x) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x), dtype=f32, device=dev)

        self.template, self.weights = t(data.template), t(data.weights)
        self.shapedirs = t(data.shapedirs).reshape(v * 3, s)
        self.joints, self.joint_shapedirs = t(data.joints), t(data.joint_shapedirs)
        self.kp_rest, self.kp_shapedirs = t(data.keypoints), t(data.keypoint_shapedirs)
        self.frames, self.limits = t(data.frames), t(data.limits)
        self.finger_weights = _finger_weights().to(dev)
        self.sizes = torch.tensor(self.config.image_sizes, dtype=f32, device=dev)

    # -- model ---------------------------------------------------------------------------

    def skin(self, pose: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices ``(B,V,3)`` and keypoints ``(B,21,3)``, model frame.

        The same maths as ``TorchHandModel.forward``, but the skin transforms are blended as
        one ``(V,J) @ (B,J,12)`` product and applied with one ``bmm`` instead of going through
        ``(B,V,4,4)`` (measured 1.5x faster at B=1024 on one CPU thread).
        """
        b, v = pose.shape[0], self.num_vertices
        rot = self.frames @ pose_to_matrices(pose) @ self.frames.transpose(-1, -2)
        verts = self.template + (shape @ self.shapedirs.T).view(b, v, 3)
        joints = self.joints + torch.einsum("nds,bs->bnd", self.joint_shapedirs, shape)
        kps = self.kp_rest + torch.einsum("nds,bs->bnd", self.kp_shapedirs, shape)
        _, skin = forward_kinematics(rot, joints, self.parents)
        top = skin[:, :, :3, :]  # (B,J,3,4)
        blended = torch.matmul(self.weights, top.reshape(b, -1, 12)).view(b * v, 3, 4)
        homog = torch.cat([verts, verts.new_ones(b, v, 1)], -1).view(b * v, 4, 1)
        posed = torch.bmm(blended, homog).view(b, v, 3)
        t = top[:, self.keypoint_parents]
        posed_kps = (t[..., :3] * kps[:, :, None, :]).sum(-1) + t[..., 3]
        on_vertex = [i for i, vi in enumerate(self.keypoint_vertices) if vi >= 0]
        if on_vertex:
            posed_kps[:, on_vertex] = posed[:, [self.keypoint_vertices[i] for i in on_vertex]]
        return posed, posed_kps

    # -- sampling ------------------------------------------------------------------------

    def _camera(self, g: torch.Generator, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        which = torch.randint(len(cfg.image_sizes), (b,), generator=g, device=g.device)
        size = self.sizes[which]  # (B,2) width, height
        hfov = torch.deg2rad(_uniform(g, *cfg.hfov_deg, b))
        f = 0.5 * size[:, 0] / torch.tan(0.5 * hfov)
        c = size * (0.5 + cfg.principal_point_std * _randn(g, b, 2).clamp(-3, 3))
        K = torch.zeros(b, 3, 3, device=g.device)
        K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = f, f, 1.0
        K[:, 0, 2], K[:, 1, 2] = c[:, 0], c[:, 1]
        return K, size

    def _place(self, g: torch.Generator, rel: torch.Tensor, K: torch.Tensor,
               size: torch.Tensor) -> torch.Tensor:
        """Camera-frame position ``(B,3)`` of the keypoint mean so the hand fits the image.

        For a depth Z, keypoint i at ``rel_i + (X, Y, Z)`` projects inside the margins iff X
        lies in an interval that is linear in Z (one bound per keypoint); X and Y are drawn
        uniformly in theirs. A depth whose intervals are empty (hand too big, or a keypoint
        too near the camera) is pushed back by 10% per round (at most to the far end of the
        range) until it fits.
        """
        cfg = self.config
        zmin, zmax = cfg.depth_range_m
        z = _uniform(g, zmin, zmax, rel.shape[0])
        f, cx, cy = K[:, 0, 0, None], K[:, 0, 2, None], K[:, 1, 2, None]
        mw, mh = cfg.image_margin * size[:, 0:1], cfg.image_margin * size[:, 1:2]

        def bounds(zc: torch.Tensor):
            depth = zc[:, None] + rel[..., 2]  # (B,21)
            x_lo = ((mw - cx) * depth / f - rel[..., 0]).amax(1)
            x_hi = ((size[:, 0:1] - mw - cx) * depth / f - rel[..., 0]).amin(1)
            y_lo = ((mh - cy) * depth / f - rel[..., 1]).amax(1)
            y_hi = ((size[:, 1:2] - mh - cy) * depth / f - rel[..., 1]).amin(1)
            ok = (x_lo <= x_hi) & (y_lo <= y_hi) & (depth.amin(1) >= cfg.min_keypoint_depth_m)
            return ok, x_lo, x_hi, y_lo, y_hi

        for _ in range(40):  # a fixed, small number of vectorised rounds
            ok = bounds(z)[0]
            if bool(ok.all()):
                break
            z = torch.where(ok, z, (z * 1.1).clamp(max=zmax))
        ok, x_lo, x_hi, y_lo, y_hi = bounds(z)
        if not bool(ok.all()):
            raise RuntimeError("a synthetic hand does not fit the image at any depth; check "
                               "SyntheticConfig.hfov_deg and image_margin")
        x = x_lo + (x_hi - x_lo) * _rand(g, rel.shape[0])
        y = y_lo + (y_hi - y_lo) * _rand(g, rel.shape[0])
        return torch.stack([x, y, z], -1)

    def _gross_errors(self, g: torch.Generator, kps: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """MediaPipe's gross mistakes on camera-frame keypoints ``(B,21,3)``: a fingertip
        collapsed onto its DIP, two adjacent fingertips swapped, a finger's PIP/DIP/tip
        pulled toward the neighbouring finger's. Returns the keypoints and ``(B,3)`` flags.
        """
        cfg = self.config
        b, dev = kps.shape[0], kps.device
        rows = torch.arange(b, device=dev)
        tips = torch.tensor(TIPS, device=dev)
        index = torch.arange(21, device=dev).repeat(b, 1)
        collapse = _rand(g, b) < cfg.p_collapse
        tip = tips[torch.randint(5, (b,), generator=g, device=g.device)]
        index[rows, tip] = torch.where(collapse, tip - 1, tip)
        swap = _rand(g, b) < cfg.p_swap
        pair = torch.randint(4, (b,), generator=g, device=g.device)
        a, c = tips[pair], tips[pair + 1]
        ia, ic = index[rows, a].clone(), index[rows, c].clone()
        index[rows, a] = torch.where(swap, ic, ia)
        index[rows, c] = torch.where(swap, ia, ic)
        out = torch.gather(kps, 1, index[..., None].expand(-1, -1, 3))
        pull = _rand(g, b) < cfg.p_pull
        finger = torch.randint(1, 5, (b,), generator=g, device=g.device)  # index..pinky
        step = torch.where(_rand(g, b) < 0.5, -1, 1)
        other = torch.where((finger + step < 1) | (finger + step > 4), finger - step, finger + step)
        offsets = torch.tensor([2, 3, 4], device=dev)  # PIP, DIP, tip within a finger
        src = (finger * 4)[:, None] + offsets
        dst = (other * 4)[:, None] + offsets
        amount = _uniform(g, 0.3, 0.8, b, 1, 1) * torch.tensor([0.4, 0.8, 1.0], device=dev)[:, None]
        here, there = out[rows[:, None], src], out[rows[:, None], dst]
        out[rows[:, None], src] = torch.where(pull[:, None, None], here + amount * (there - here),
                                              here)
        return out, torch.stack([collapse, swap, pull], -1).float()

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A batch of synthetic hands (see the class docstring for the keys)."""
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if generator.device != self.device:
            raise ValueError(f"generator is on {generator.device}, the generator's tensors on "
                             f"{self.device}: create it with torch.Generator({str(self.device)!r})")
        cfg, g, b = self.config, generator, batch
        # Hand: pose, view, shape, skinning.
        pose = sample_poses_torch(
            self.data.joint_names, self.limits, b, g, jitter_deg=cfg.pose_jitter_deg,
            thumb_jitter_deg=cfg.thumb_jitter_deg, p_pinch=cfg.p_pinch)
        pose[:, 0] = sample_rotations(g, b, cfg.p_uniform_rotation, cfg.fingers_up_cone_deg)
        shape = (cfg.shape_std * _randn(g, b, self.num_shape)).clamp(-cfg.shape_clip,
                                                                      cfg.shape_clip)
        verts, kps = self.skin(pose, shape)
        mean = kps.mean(1, keepdim=True)
        verts, kps = verts - mean, kps - mean
        # Camera and placement.
        K, size = self._camera(g, b)
        center = self._place(g, kps, K, size)
        kps_cam = kps + center[:, None]
        occluded = occluded_keypoints(kps_cam, cfg.occlusion_margin_m)
        occ_factor = 1.0 + (cfg.occluded_noise_factor - 1.0) * occluded.float()  # (B,21)
        seen, gross = self._gross_errors(g, kps_cam)  # what MediaPipe perceives
        world = self._world(g, seen, center[:, 2], occ_factor)
        image = self._image(g, seen, kps_cam, K, size, occ_factor)
        # Handedness and mirroring errors (inputs mirrored, targets stay the right hand).
        right = _rand(g, b, 1) < cfg.p_right
        mirror = ~right & (_rand(g, b, 1) < cfg.p_mirror_error)
        m = mirror[..., None]
        world = torch.cat([torch.where(m, -world[..., :1], world[..., :1]), world[..., 1:]], -1)
        image = torch.cat([torch.where(m, 1.0 - image[..., :1], image[..., :1]), image[..., 1:]],
                          -1)
        return {
            "world": world, "image": image, "handedness": right.float(), "K": K,
            "image_size": size.clone(), "vertices": verts, "keypoints": kps, "pose": pose,
            "shape": shape, "keypoints_cam": kps_cam, "center_cam": center,
            "occluded": occluded.float(), "mirror_error": mirror.float(), "gross_error": gross,
        }

    def _world(self, g: torch.Generator, seen: torch.Tensor, depth: torch.Tensor,
               occ_factor: torch.Tensor) -> torch.Tensor:
        """MediaPipe-like world landmarks from perceived camera-frame keypoints."""
        cfg = self.config
        b = seen.shape[0]
        world = seen - seen.mean(1, keepdim=True)
        scale = 1.0 + cfg.world_scale_std * _randn(g, b, 1, 1).clamp(-3, 3)
        zscale = 1.0 + cfg.world_depth_scale_std * _randn(g, b, 1).clamp(-3, 3)
        world = world * scale
        world = torch.cat([world[..., :2], world[..., 2:] * zscale[..., None]], -1)
        sigma_xy = 1e-3 * _uniform(g, *cfg.world_xy_noise_mm, b, 1, 1)
        ratio = _uniform(g, *cfg.world_z_noise_ratio, b, 1, 1)
        axis = torch.cat([torch.ones_like(ratio), torch.ones_like(ratio), ratio], -1)  # (B,1,3)
        depth_factor = (1.0 + cfg.depth_noise_slope * (depth / _REF_DEPTH_M - 1.0)).clamp_min(0.25)
        sigma = sigma_xy * depth_factor[:, None, None] * axis  # (B,1,3)
        bend = 1e-3 * cfg.finger_bend_mm * _randn(g, b, 5, 3) * axis * depth_factor[:, None, None]
        world = world + torch.einsum("kf,bfd->bkd", self.finger_weights, bend)
        return world + _randn(g, b, 21, 3) * sigma * occ_factor[..., None]

    def _image(self, g: torch.Generator, seen: torch.Tensor, true_cam: torch.Tensor,
               K: torch.Tensor, size: torch.Tensor, occ_factor: torch.Tensor) -> torch.Tensor:
        """MediaPipe-like normalised image landmarks: x/W, y/H, relative depth z."""
        cfg = self.config
        b = seen.shape[0]
        true_px = project(true_cam, K)
        extent = (true_px.amax(1) - true_px.amin(1)).amax(-1)  # (B,) hand's 2D size, px
        px = project(seen, K)
        frac = _uniform(g, *cfg.image_noise_frac, b, 1, 1)
        px = px + _randn(g, b, 21, 2) * frac * extent[:, None, None] * occ_factor[..., None]
        w = size[:, 0:1]
        z_wrist = seen[:, :1, 2]
        rel_z = (seen[..., 2] - z_wrist) * K[:, 0, 0, None] / (z_wrist * w)
        rel_z = rel_z * (1.0 + cfg.image_z_scale_std * _randn(g, b, 1).clamp(-3, 3))
        z_frac = _uniform(g, *cfg.image_z_noise_frac, b, 1)
        rel_z = rel_z + _randn(g, b, 21) * z_frac * (extent / size[:, 0])[:, None] * occ_factor
        return torch.stack([px[..., 0] / w, px[..., 1] / size[:, 1:2], rel_z], -1)

    def fixed_set(self, n: int, seed: int, batch: int = 1024) -> dict[str, torch.Tensor]:
        """A deterministic held-out set of ``n`` hands (same seed, same hands), in batches."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        g = torch.Generator(self.device).manual_seed(seed)
        parts = [self.sample(min(batch, n - start), g) for start in range(0, n, batch)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
