"""Two interacting hands: a sphere proxy, penetration, and a pose correction that removes it.

After "Reconstructing Interacting Hands with Interaction Prior from Monocular Images"
(arXiv 2308.14082), whose interaction prior lives in ``models.interaction_prior``, and the
collision terms of two-hand fitting in general:

* each hand is covered by spheres along its finger bones and a grid of spheres filling its
  palm (radii from the rest mesh), so penetration between two hands (and between fingers
  of one) is a sum over sphere pairs of ``max(0, r_i + r_j - |c_i - c_j|)``: cheap and
  differentiable in the pose;
* the correction is a few Levenberg-Marquardt steps on the *pose* of both hands (root
  rotation and translation, flexion and abduction of every finger joint) minimising
  penetration while keeping the keypoints' 2D reprojection and staying near the input pose
  (an optional target pose adds a pull); joint limits are enforced;
* the mesh-level penetration volume (mm^3) is measured independently of the proxy, by
  casting rays along the camera's z axis on a regular grid and intersecting the inside
  intervals of the two closed meshes (:func:`penetration_volume`).

All pure NumPy/Numba over a :class:`models.hand_model.HandModel`; no state, no I/O.
Conventions: camera frame (OpenCV), meters; a left hand is the right model mirrored in x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from models.geometry import kabsch, log_rotation, log_rotation_into, project, rodrigues
from models.hand_model import HandModel
from models.ik import bone_end_keypoints
from models.skinning import shaped_rest
from models.topology import BONES

_MIRROR = np.diag([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SphereProxy:
    """Spheres fixed to joints: ``owner (S,)`` joint, ``centre (S,3)`` on the rest mesh of
    the mean shape, ``radius (S,)`` meters, ``finger (S,)`` 0 thumb .. 4 pinky, -1 palm;
    ``segment (S,)`` 0 palm/metacarpal .. 3 distal phalanx."""

    owner: np.ndarray
    centre: np.ndarray
    radius: np.ndarray
    finger: np.ndarray
    segment: np.ndarray


_PALM_JOINTS = ("wrist", "index_cmc", "middle_cmc", "ring_cmc", "pinky_cmc")


def _capsule(verts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances of ``verts`` from the segment a-b."""
    axis = b - a
    s = np.clip((verts - a) @ axis / max(float(axis @ axis), 1e-12), 0.0, 1.0)
    return np.linalg.norm(verts - (a + s[:, None] * axis), axis=1)


def _palm_spheres(model: HandModel, spacing_m: float, radius_scale: float):
    """Fill the palm slab (back +z, palm -z in the model frame) with spheres on a grid:
    each sits at mid-thickness with the local half-thickness as radius, shrunk near the
    palm's outline so it does not stick out sideways; owned by the nearest metacarpal."""
    d = model.data
    names = d.joint_names
    ids = [names.index(n) for n in _PALM_JOINTS]
    verts = d.template[np.isin(np.argmax(d.weights, axis=1), ids)]
    lo, hi = verts[:, :2].min(0), verts[:, :2].max(0)
    xs = np.arange(lo[0], hi[0] + 1e-9, spacing_m)
    ys = np.arange(lo[1], hi[1] + 1e-9, spacing_m)
    grid = np.array([(x, y) for x in xs for y in ys])
    near = np.linalg.norm(verts[None, :, :2] - grid[:, None], axis=-1) < 0.7 * spacing_m
    filled = np.array([np.any(n & (verts[:, 2] < 0)) and np.any(n & (verts[:, 2] > 0))
                       for n in near])
    empty = grid[~filled]
    mcp_lines = [(names.index(f"{f}_cmc"), d.keypoints[k]) for f, k in
                 (("index", 5), ("middle", 9), ("ring", 13), ("pinky", 17))]
    out = []
    for g, n, ok in zip(grid, near, filled):
        if not ok:
            continue
        z = verts[n, 2]
        half = (z.max() - z.min()) / 2
        edge = np.min(np.linalg.norm(empty - g, axis=1)) if len(empty) else np.inf
        r = min(half, edge)
        if r < 0.003:
            continue
        # Thinner than the slab near the outline: stack spheres through the thickness.
        stack = max(1, int(math.ceil((2 * half - 2 * r) / r)) + 1)
        for zc in np.linspace(z.min() + r, z.max() - r, stack):
            centre = np.array([g[0], g[1], zc])
            if g[1] > d.keypoints[[5, 9, 13, 17], 1].max() + 0.5 * (0 - d.keypoints[9, 1]):
                owner = 0  # the heel of the palm moves with the wrist
            else:
                owner = min(mcp_lines, key=lambda jl: float(
                    _capsule(centre[None], d.joints[jl[0]], jl[1])[0]))[0]
            out.append((owner, centre, radius_scale * r))
    return out


def build_proxy(model: HandModel, radius_scale: float = 1.0, spacing: float = 0.8,
                palm_spacing_m: float = 0.009) -> SphereProxy:
    """Spheres along every finger bone (radius = ``radius_scale`` x the median distance of
    the vertices the bone carries most from its segment, on the rest mesh) and a grid of
    spheres filling the palm (:func:`_palm_spheres`)."""
    d = model.data
    ends = bone_end_keypoints(model)
    dominant = np.argmax(d.weights, axis=1)
    owner, centres, radii, finger, segment = [], [], [], [], []
    for j, c, r in _palm_spheres(model, palm_spacing_m, radius_scale):
        owner.append(j)
        centres.append(c)
        radii.append(r)
        finger.append(-1)
        segment.append(0)
    for j in range(1, model.num_joints):
        name = d.joint_names[j]
        if name in _PALM_JOINTS:
            continue
        verts = d.template[dominant == j]
        if len(verts) < 4:
            continue
        f = ("thumb", "index", "middle", "ring", "pinky").index(name.split("_")[0])
        part = name.split("_")[1]
        seg = ({"cmc": 0, "mcp": 2, "ip": 3} if f == 0 else
               {"mcp": 1, "pip": 2, "dip": 3})[part]
        a, b = d.joints[j], d.keypoints[ends[j]]
        r = radius_scale * float(np.median(_capsule(verts, a, b)))
        n = max(2, int(math.ceil(float(np.linalg.norm(b - a)) / (spacing * r))) + 1)
        for t in np.linspace(0.0, 1.0, n):
            owner.append(j)
            centres.append(a + t * (b - a))
            radii.append(r)
            finger.append(f)
            segment.append(seg)
    return SphereProxy(np.array(owner), np.array(centres), np.array(radii), np.array(finger),
                       np.array(segment))


@dataclass(frozen=True)
class HandState:
    """One hand's pose for the correction: ``pose (J,3)`` anatomical (root ignored),
    ``shape (S,)``, root rotation ``rot (3,3)`` and translation ``trans (3,)`` of the right
    model in (mirrored, for a left hand) camera space."""

    pose: np.ndarray
    shape: np.ndarray
    rot: np.ndarray
    trans: np.ndarray
    left: bool


@dataclass(frozen=True)
class Posed:
    """Camera-frame results of a state: keypoints ``(21,3)``, spheres ``(S,3)``, the
    Jacobians of both w.r.t. the state's parameters ``(21,3,P)``, ``(S,3,P)``, and the
    world joint rotations/positions ``(J,3,3)``, ``(J,3)`` (mirrored space)."""

    keypoints: np.ndarray
    spheres: np.ndarray
    jac_keypoints: np.ndarray
    jac_spheres: np.ndarray
    world_rot: np.ndarray
    world_pos: np.ndarray


def _bone_sum(kps: np.ndarray) -> float:
    """Sum of the 20 bone lengths of keypoints ``(21,3)``: a hand's size, meters."""
    return float(np.linalg.norm(kps[_KP_CHILD] - kps[_KP_PARENT], axis=1).sum())


_KP_PARENT = np.array([p for p, _ in BONES])
_KP_CHILD = np.array([c for _, c in BONES])


@njit(cache=True, nogil=True)
def _local_kernel(pose, frames, out):
    """``F_j exp(pose_j) F_j^T`` for every joint but the root (identity): ``(J,3,3)``."""
    out[0] = np.eye(3)
    for j in range(1, pose.shape[0]):
        out[j] = frames[j] @ rodrigues(pose[j]) @ frames[j].T


@njit(cache=True, nogil=True)
def _compose_kernel(delta, pose, out):
    """Rotation vectors of ``exp(delta_j) exp(pose_j)``, ``(N,3)`` each."""
    for j in range(pose.shape[0]):
        log_rotation_into(rodrigues(delta[j]) @ rodrigues(pose[j]), out[j])


@njit(cache=True, nogil=True)
def _world_kernel(local, joints, parents, rot, trans, wr, wp):
    """Joint world rotations/positions down the tree (root: ``rot``, ``trans``)."""
    wr[0] = rot
    wp[0] = rot @ joints[0] + trans
    for k in range(1, joints.shape[0]):
        p = parents[k]
        wp[k] = wp[p] + wr[p] @ (joints[k] - joints[p])
        wr[k] = wr[p] @ local[k]


@njit(cache=True, nogil=True)
def _points_kernel(wr, wp, joints, owners, rest_pts, parents, frames, with_jac, pts, jac):
    """Posed points fixed to joints, and d point / d parameters (root rotation about the
    wrist, translation, each joint's anatomical axes as world rotations about the joint)."""
    for i in range(rest_pts.shape[0]):
        j = owners[i]
        pts[i] = wp[j] + wr[j] @ (rest_pts[i] - joints[j])
        if not with_jac:
            continue
        rel = pts[i] - wp[0]
        # e_a x rel for the root, identity for the translation.
        jac[i, 0, 1], jac[i, 0, 2] = rel[2], -rel[1]
        jac[i, 1, 0], jac[i, 1, 2] = -rel[2], rel[0]
        jac[i, 2, 0], jac[i, 2, 1] = rel[1], -rel[0]
        jac[i, 0, 3] = 1.0
        jac[i, 1, 4] = 1.0
        jac[i, 2, 5] = 1.0
        k = j
        while k > 0:
            axes = wr[parents[k]] @ frames[k]
            r = pts[i] - wp[k]
            for a in range(3):
                c = 6 + 3 * (k - 1) + a
                jac[i, 0, c] = axes[1, a] * r[2] - axes[2, a] * r[1]
                jac[i, 1, c] = axes[2, a] * r[0] - axes[0, a] * r[2]
                jac[i, 2, c] = axes[0, a] * r[1] - axes[1, a] * r[0]
            k = parents[k]


class HandKinematics:
    """Forward kinematics of points fixed to joints, with analytic Jacobians.

    Parameters of a state (``P = 6 + 3 (J-1)``): root rotation increment (world axes,
    about the wrist), translation, then each non-root joint's anatomical angles.
    """

    def __init__(self, model: HandModel, proxy: SphereProxy | None = None) -> None:
        self.model = model
        self.proxy = proxy or build_proxy(model)
        d = model.data
        self.parents = d.parents
        self.frames = d.frames
        self.limits = d.limits
        j = model.num_joints
        self.num_params = 6 + 3 * (j - 1)
        # ancestors[j, k]: joint k moves joint j's points (k = j included, root excluded).
        anc = np.zeros((j, j), dtype=bool)
        for jj in range(1, j):
            k = jj
            while k > 0:
                anc[jj, k] = True
                k = self.parents[k]
        self.kp_owner = d.keypoint_parents
        self.ancestors = anc
        self._mean_size = _bone_sum(d.keypoints)
        self._pts_owner = np.concatenate([self.kp_owner, self.proxy.owner]).astype(np.int64)
        self.self_mask = self_pair_mask(self.proxy)
        # Parameters the correction moves: root, translation, flexion and abduction of the
        # thumb and finger joints (twist and the finger CMCs barely move in real hands).
        active = np.zeros(self.num_params, dtype=bool)
        active[:6] = True
        for k in range(1, j):
            part = d.joint_names[k].split("_")[1]
            if d.joint_names[k].startswith("thumb") or part != "cmc":
                active[6 + 3 * (k - 1): 6 + 3 * (k - 1) + 2] = True
        self.active = active
        self._cache: dict[bytes, tuple] = {}

    def rest(self, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rest joints ``(J,3)``, keypoints ``(21,3)`` and sphere centres ``(S,3)`` of a shape."""
        key = np.asarray(shape, np.float64).tobytes()
        if key not in self._cache:
            d, p = self.model.data, self.proxy
            joints = shaped_rest(d.joints, d.joint_shapedirs, shape[None])[0]
            kps = shaped_rest(d.keypoints, d.keypoint_shapedirs, shape[None])[0]
            # Offsets from the owning joint scale with the hand (shape is mostly size).
            size = _bone_sum(kps) / self._mean_size
            spheres = joints[p.owner] + (p.centre - d.joints[p.owner]) * size
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = (joints, kps, spheres)
        return self._cache[key]

    def local_rotations(self, pose: np.ndarray) -> np.ndarray:
        """Anatomical pose ``(J,3)`` -> local rotations in model axes ``(J,3,3)`` (root I)."""
        rot = np.empty((len(pose), 3, 3))
        _local_kernel(np.ascontiguousarray(pose, dtype=np.float64), self.frames, rot)
        return rot

    def world(self, state: HandState) -> tuple[np.ndarray, np.ndarray]:
        """World (mirrored-space) joint rotations ``(J,3,3)`` and positions ``(J,3)``."""
        joints, _, _ = self.rest(state.shape)
        local = self.local_rotations(state.pose)
        wr = np.empty((len(joints), 3, 3))
        wp = np.empty((len(joints), 3))
        _world_kernel(local, joints, self.parents, np.ascontiguousarray(state.rot),
                      np.asarray(state.trans, np.float64), wr, wp)
        return wr, wp

    def posed(self, state: HandState, with_jacobians: bool = True) -> Posed:
        joints, kps, spheres = self.rest(state.shape)
        wr, wp = self.world(state)
        rest_pts = np.concatenate([kps, spheres])
        n = len(rest_pts)
        pts = np.empty((n, 3))
        jac = np.zeros((n, 3, self.num_params if with_jacobians else 0))
        _points_kernel(wr, wp, joints, self._pts_owner, rest_pts, self.parents, self.frames,
                       with_jacobians, pts, jac)
        if state.left:
            # Camera point = M p; root increments are given in camera axes, which the
            # mirrored space sees as omega_m = -M omega and dt_m = M dt (see ``step``).
            pts = pts @ _MIRROR
            if with_jacobians:
                jac[:, 0] *= -1.0
                jac[:, :, :3] = -jac[:, :, :3] @ _MIRROR
                jac[:, :, 3:6] = jac[:, :, 3:6] @ _MIRROR
        return Posed(pts[:21], pts[21:], jac[:21], jac[21:], wr, wp)

    def step(self, state: HandState, delta: np.ndarray) -> HandState:
        """Apply a parameter increment ``(P,)`` (in camera axes for the root) within limits."""
        omega = delta[:3]
        if state.left:  # the increment is in camera axes; the state lives mirrored
            omega = -(_MIRROR @ omega)
            dt = _MIRROR @ delta[3:6]
        else:
            dt = delta[3:6]
        joints, _, _ = self.rest(state.shape)
        wrist = state.rot @ joints[0] + state.trans
        r = rodrigues(np.ascontiguousarray(omega, dtype=np.float64))
        rot = r @ state.rot
        trans = wrist + dt - rot @ joints[0]
        pose = state.pose.copy()
        # Compose, not add: the Jacobian is that of exp(delta) exp(theta) (exact for any
        # joint, where theta + delta is exact only for one-axis rotations).
        composed = np.empty((len(pose) - 1, 3))
        _compose_kernel(np.ascontiguousarray(delta[6:].reshape(-1, 3)),
                        np.ascontiguousarray(pose[1:]), composed)
        pose[1:] = composed
        pose[1:] = np.clip(pose[1:], self.limits[1:, :, 0], self.limits[1:, :, 1])
        return replace(state, pose=pose, rot=rot, trans=trans)

    def fit_state(self, pose: np.ndarray, shape: np.ndarray, keypoints: np.ndarray,
                  left: bool) -> HandState:
        """The state whose keypoints best match camera-frame ``keypoints (21,3)`` (Kabsch)."""
        target = keypoints @ _MIRROR if left else keypoints
        base = HandState(np.asarray(pose, np.float64).copy(), np.asarray(shape, np.float64),
                         np.eye(3), np.zeros(3), False)
        kp = self.posed(base, with_jacobians=False).keypoints
        r, t = kabsch(kp, target)
        return replace(base, rot=r, trans=t, left=left)

    def skin_transforms(self, state: HandState) -> np.ndarray:
        """LBS transforms ``(J,4,4)`` (rest -> mirrored camera space) of a state."""
        joints, _, _ = self.rest(state.shape)
        wr, wp = self.world(state)
        out = np.zeros((len(joints), 4, 4))
        out[:, :3, :3] = wr
        out[:, :3, 3] = wp - np.einsum("jik,jk->ji", wr, joints)
        out[:, 3, 3] = 1.0
        return out


def state_vertices(kin: HandKinematics, state: HandState) -> np.ndarray:
    """The model's own camera-frame mesh ``(V,3)`` of a state (mirrored for a left hand)."""
    d = kin.model.data
    rest = shaped_rest(d.template, d.shapedirs, state.shape[None])[0]
    t = kin.skin_transforms(state)
    blended = (d.weights @ t[:, :3, :].reshape(len(t), 12)).reshape(-1, 3, 4)
    out = np.einsum("vij,vj->vi", blended[:, :, :3], rest) + blended[:, :, 3]
    return out @ _MIRROR if state.left else out


def move_vertices(kin: HandKinematics, before: HandState, after: HandState,
                  vertices: np.ndarray) -> np.ndarray:
    """Carry camera-frame ``vertices (V,3)`` from one state to another by the per-joint
    change of the skinning transforms, blended by the skinning weights (keeps the input
    mesh's own detail: only the pose changes). Blending the changes is not exactly the
    change of the blend: for the small corrections made here the two differ by well under
    a millimetre."""
    t0, t1 = kin.skin_transforms(before), kin.skin_transforms(after)
    delta = t1 @ np.linalg.inv(t0)  # (J,4,4)
    v = vertices @ _MIRROR if before.left else np.asarray(vertices, np.float64)
    blended = (kin.model.data.weights @ delta[:, :3, :].reshape(len(delta), 12)).reshape(-1, 3, 4)
    out = np.einsum("vij,vj->vi", blended[:, :, :3], v) + blended[:, :, 3]
    return out @ _MIRROR if before.left else out


# ---------------------------------------------------------------------------------------
# Penetration between sphere sets.


def sphere_penetration(ca: np.ndarray, ra: np.ndarray, cb: np.ndarray, rb: np.ndarray,
                       mask: np.ndarray | None = None) -> np.ndarray:
    """Pairwise depths ``max(0, r_i + r_j - |c_i - c_j|)`` ``(Sa,Sb)``, meters."""
    dist = np.linalg.norm(ca[:, None] - cb[None], axis=-1)
    pen = np.maximum(0.0, ra[:, None] + rb[None] - dist)
    return pen if mask is None else pen * mask


def self_pair_mask(proxy: SphereProxy) -> np.ndarray:
    """Sphere pairs of one hand that must not overlap: the middle and distal phalanges of
    two fingers that are not neighbours (index-ring, index-pinky, middle-pinky). Neighbours
    press together and the thumb meets every finger in natural grips, so their proxies
    overlap in plausible poses too; fingers two apart only meet by passing through."""
    f, s = proxy.finger, proxy.segment
    fingers = (f[:, None] >= 1) & (f[None] >= 1)
    mask = fingers & (np.abs(f[:, None] - f[None]) >= 2) & (s[:, None] >= 2) & (s[None] >= 2)
    return np.triu(mask, 1)


def _deepest(ii: np.ndarray, jj: np.ndarray, dd: np.ndarray):
    """Keep, for every sphere on either side, only its deepest overlapping pair: the same
    push with far fewer rows when two hands overlap widely."""
    if len(dd) <= 1:
        return ii, jj, dd
    order = np.argsort(-dd)
    _, first_i = np.unique(ii[order], return_index=True)
    _, first_j = np.unique(jj[order], return_index=True)
    keep = np.union1d(order[first_i], order[first_j])
    return ii[keep], jj[keep], dd[keep]


@dataclass(frozen=True)
class CorrectionConfig:
    """Weights of the pose correction (residual scales: what counts as one unit)."""

    iterations: int = 5
    penetration_m: float = 0.0005  # 0.5 mm of sphere overlap ~ one unit
    self_penetration_m: float = 0.001
    self_allowance_m: float = 0.002  # fingers may touch this deeply (proxy slack)
    reprojection_px: float = 4.0  # keep each keypoint's 2D position within ~this
    joint_rad: float = 0.15  # stay near the input joint angles
    root_rad: float = 0.05  # and the input hand orientation
    depth_m: float = 0.03  # depth (along the ray) is what the image tells least
    lateral_m: float = 0.005
    prior_rad: float = 0.10  # pull toward a target pose (interaction prior), when given
    damping: float = 1e-3

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"CorrectionConfig.iterations must be >= 1, got {self.iterations}")
        for name in ("penetration_m", "self_penetration_m", "reprojection_px", "joint_rad",
                     "root_rad", "depth_m", "lateral_m", "prior_rad"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"CorrectionConfig.{name} must be > 0, got {value!r}")


@dataclass(frozen=True)
class CorrectionResult:
    states: tuple[HandState, ...]
    penetration_before_m: float  # sum of sphere overlaps between the hands (and self)
    penetration_after_m: float
    iterations: int


def _project_jac(p: np.ndarray, jac: np.ndarray, K: np.ndarray):
    """Pixels ``(N,2)`` and their Jacobian ``(N,2,P)`` of camera points ``p (N,3)``."""
    z = p[:, 2]
    fx, fy = K[0, 0], K[1, 1]
    uv = project(p, K)
    du = fx / z[:, None] * (jac[:, 0] - p[:, 0, None] / z[:, None] * jac[:, 2])
    dv = fy / z[:, None] * (jac[:, 1] - p[:, 1, None] / z[:, None] * jac[:, 2])
    return uv, np.stack([du, dv], 1)


@njit(cache=True, nogil=True)
def _overlap_kernel(ca, ra, cb, rb, mask, use_mask, allowance, out_i, out_j, out_d):
    """Sphere pairs overlapping by more than ``allowance``: indices and depths; count."""
    n = 0
    for i in range(ca.shape[0]):
        for j in range(cb.shape[0]):
            if use_mask and not mask[i, j]:
                continue
            dx = ca[i, 0] - cb[j, 0]
            dy = ca[i, 1] - cb[j, 1]
            dz = ca[i, 2] - cb[j, 2]
            reach = ra[i] + rb[j] - allowance
            d2 = dx * dx + dy * dy + dz * dz
            if reach > 0.0 and d2 < reach * reach:
                out_i[n] = i
                out_j[n] = j
                out_d[n] = reach - math.sqrt(d2)
                n += 1
    return n


def overlaps(ca: np.ndarray, ra: np.ndarray, cb: np.ndarray, rb: np.ndarray,
             mask: np.ndarray | None = None, allowance: float = 0.0):
    """Overlapping sphere pairs ``(i, j, depth)`` (depth beyond ``allowance``, meters)."""
    size = len(ca) * len(cb)
    oi, oj, od = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size)
    m = mask if mask is not None else np.zeros((1, 1), dtype=np.bool_)
    n = _overlap_kernel(ca, ra, cb, rb, m, mask is not None, allowance, oi, oj, od)
    return oi[:n], oj[:n], od[:n]


def total_penetration(kin: HandKinematics, states, config: CorrectionConfig = CorrectionConfig()
                      ) -> float:
    """Sum of sphere overlaps between the hands plus finger-finger overlaps beyond the
    allowance within each hand, meters."""
    posed = [kin.posed(s, with_jacobians=False) for s in states]
    r = kin.proxy.radius
    total = 0.0
    for i in range(len(posed)):
        for j in range(i + 1, len(posed)):
            total += float(overlaps(posed[i].spheres, r, posed[j].spheres, r)[2].sum())
    for p in posed:
        total += float(overlaps(p.spheres, r, p.spheres, r, kin.self_mask,
                                config.self_allowance_m)[2].sum())
    return total


class _Problem:
    """Residuals and Jacobian of the correction for a set of hands (active parameters)."""

    def __init__(self, kin: HandKinematics, init: tuple[HandState, ...], K: np.ndarray,  # noqa
                 config: CorrectionConfig, targets, prior_weights) -> None:
        self.kin, self.init, self.K, self.config = kin, init, K, config
        self.targets, self.prior_weights = targets, prior_weights
        self.n_p = kin.num_params
        self.act = np.flatnonzero(kin.active)
        posed0 = [kin.posed(s, False) for s in init]
        self.uv0 = [_project_jac(p.keypoints, np.zeros((21, 3, 0)), K)[0] for p in posed0]
        self.wrist0 = [p.keypoints[0] for p in posed0]
        self.prior_scale = np.concatenate([
            np.full(3, config.root_rad), [config.lateral_m, config.lateral_m, config.depth_m],
            np.full(self.n_p - 6, config.joint_rad)])

    def __call__(self, states, with_jac: bool = True):
        kin, cfg, n_h, n_p = self.kin, self.config, len(states), self.n_p
        posed = [kin.posed(s, with_jac) for s in states]
        r = kin.proxy.radius
        rows, res = [], []
        width = n_h * n_p

        def block(h: int, jr: np.ndarray) -> np.ndarray:
            out = np.zeros((len(jr), width))
            out[:, h * n_p:(h + 1) * n_p] = jr
            return out

        for h, (s, p) in enumerate(zip(states, posed)):
            uv, duv = _project_jac(p.keypoints, p.jac_keypoints, self.K)
            res.append(((uv - self.uv0[h]) / cfg.reprojection_px).ravel())
            d_root = log_rotation(s.rot @ self.init[h].rot.T)
            if s.left:
                d_root = -(_MIRROR @ d_root)
            cur = np.concatenate([d_root, p.keypoints[0] - self.wrist0[h],
                                  (s.pose[1:] - self.init[h].pose[1:]).ravel()])
            res.append(cur / self.prior_scale)
            pulled = (self.targets is not None and self.targets[h] is not None
                      and self.prior_weights[h] > 0)
            w = math.sqrt(self.prior_weights[h]) / cfg.prior_rad if pulled else 0.0
            if pulled:
                res.append((s.pose[1:] - self.targets[h][1:]).ravel() * w)
            ii, jj, dd = overlaps(p.spheres, r, p.spheres, r, kin.self_mask,
                                  cfg.self_allowance_m)
            res.append(dd / cfg.self_penetration_m)
            if with_jac:
                rows.append(block(h, duv.reshape(42, n_p) / cfg.reprojection_px))
                jr = np.diag(1.0 / self.prior_scale)
                jr[3:6] = p.jac_keypoints[0] / self.prior_scale[3:6, None]
                rows.append(block(h, jr))
                if pulled:
                    jr = np.zeros((n_p - 6, n_p))
                    jr[:, 6:] = np.eye(n_p - 6) * w
                    rows.append(block(h, jr))
                nrm = p.spheres[ii] - p.spheres[jj]
                nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)
                jr = -(np.einsum("nd,ndp->np", nrm, p.jac_spheres[ii])
                       - np.einsum("nd,ndp->np", nrm, p.jac_spheres[jj]))
                rows.append(block(h, jr / cfg.self_penetration_m))
        for a in range(n_h):
            for b in range(a + 1, n_h):
                pa, pb = posed[a], posed[b]
                ii, jj, dd = _deepest(*overlaps(pa.spheres, r, pb.spheres, r))
                res.append(dd / cfg.penetration_m)
                if with_jac:
                    nrm = pa.spheres[ii] - pb.spheres[jj]
                    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)
                    jr = np.zeros((len(ii), width))
                    jr[:, a * n_p:(a + 1) * n_p] = -np.einsum("nd,ndp->np", nrm,
                                                              pa.jac_spheres[ii])
                    jr[:, b * n_p:(b + 1) * n_p] = np.einsum("nd,ndp->np", nrm,
                                                             pb.jac_spheres[jj])
                    rows.append(jr / cfg.penetration_m)
        vec = np.concatenate(res)
        if not with_jac:
            return vec, None
        jac = np.concatenate(rows)
        cols = np.concatenate([h * n_p + self.act for h in range(n_h)])
        return vec, jac[:, cols]

    def blocked(self, states, delta_active: np.ndarray) -> np.ndarray:
        """Active parameters at a joint limit that the step pushes further out (these are
        frozen for the step, else clipping would undo it and stall the solver)."""
        n_a = len(self.act)
        out = np.zeros(len(delta_active), dtype=bool)
        lim = self.kin.limits
        for h, s in enumerate(states):
            for i, col in enumerate(self.act):
                if col < 6:
                    continue
                k, ax = 1 + (col - 6) // 3, (col - 6) % 3
                d, th = delta_active[h * n_a + i], s.pose[k, ax]
                if (d < 0 and th <= lim[k, ax, 0] + 1e-4) or (d > 0 and th >= lim[k, ax, 1] - 1e-4):
                    out[h * n_a + i] = True
        return out

    def apply(self, states, delta_active: np.ndarray):
        n_p, n_a = self.n_p, len(self.act)
        out = []
        for h, s in enumerate(states):
            full = np.zeros(n_p)
            full[self.act] = delta_active[h * n_a:(h + 1) * n_a]
            out.append(self.kin.step(s, full))
        return tuple(out)


def resolve_penetration(
    kin: HandKinematics, states: tuple[HandState, ...], K: np.ndarray,  # noqa: N803
    config: CorrectionConfig = CorrectionConfig(),
    targets: tuple[np.ndarray | None, ...] | None = None,
    prior_weights: tuple[float, ...] | None = None,
) -> CorrectionResult:
    """Levenberg-Marquardt on both hands' poses: no overlap, same 2D keypoints, near the
    input (and near ``targets``, the interaction prior's joint angles ``(J,3)`` per hand,
    with weights ``prior_weights`` in [0,1], when given).

    A step is kept only if it lowers the cost (else the damping grows and it is retried),
    so the result is never worse than the input by the cost's own measure. Hands without
    any overlap (and no prior pull) are returned untouched.
    """
    states = tuple(states)
    before = total_penetration(kin, states, config)
    pulled = (targets is not None and prior_weights is not None
              and any(t is not None and w > 0 for t, w in zip(targets, prior_weights)))
    if before <= 0.0 and not pulled:
        return CorrectionResult(states, 0.0, 0.0, 0)
    problem = _Problem(kin, states, K, config, targets, prior_weights)
    vec, jac = problem(states)
    cost = float(vec @ vec)
    lam = config.damping
    it = 0
    for it in range(1, config.iterations + 1):
        h_mat = jac.T @ jac
        g = jac.T @ vec
        accepted = False
        for _ in range(4):
            a = h_mat + lam * np.diag(1.0 + np.diag(h_mat))
            delta = -np.linalg.solve(a, g)
            frozen = problem.blocked(states, delta)
            if frozen.any():
                free = ~frozen
                delta = np.zeros_like(delta)
                delta[free] = -np.linalg.solve(a[np.ix_(free, free)], g[free])
            cand = problem.apply(states, delta)
            v_c, _ = problem(cand, with_jac=False)
            c_c = float(v_c @ v_c)
            if c_c < cost:
                accepted = True
                break
            lam *= 10.0
        if not accepted:
            break
        lam = max(lam / 3.0, 1e-6)
        states = cand
        improvement = cost - c_c
        cost = c_c
        if improvement < 1e-4 * cost:
            break
        if not pulled and total_penetration(kin, states, config) <= 0.0:
            break
        vec, jac = problem(states)
    after = total_penetration(kin, states, config)
    return CorrectionResult(states, before, after, it)


# ---------------------------------------------------------------------------------------
# Mesh penetration volume (independent of the proxy).

_MAX_HITS = 48


@njit(cache=True, nogil=True)
def _column_hits(verts, faces, x0, y0, h, nx, ny, hits, counts):
    """z of every crossing of each grid column (x0 + i h, y0 + j h) with the mesh."""
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        ax, ay, az = verts[a, 0], verts[a, 1], verts[a, 2]
        bx, by, bz = verts[b, 0], verts[b, 1], verts[b, 2]
        cx, cy, cz = verts[c, 0], verts[c, 1], verts[c, 2]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-18:
            continue
        i0 = max(0, int(math.ceil((min(ax, min(bx, cx)) - x0) / h)))
        i1 = min(nx - 1, int(math.floor((max(ax, max(bx, cx)) - x0) / h)))
        j0 = max(0, int(math.ceil((min(ay, min(by, cy)) - y0) / h)))
        j1 = min(ny - 1, int(math.floor((max(ay, max(by, cy)) - y0) / h)))
        for i in range(i0, i1 + 1):
            px = x0 + i * h
            for j in range(j0, j1 + 1):
                py = y0 + j * h
                l1 = ((px - ax) * (cy - ay) - (py - ay) * (cx - ax)) / area
                l2 = ((bx - ax) * (py - ay) - (by - ay) * (px - ax)) / area
                l0 = 1.0 - l1 - l2
                # Half-open edges: a column through a shared edge counts once.
                if l0 < 0.0 or l1 < 0.0 or l2 < 0.0 or l0 == 0.0 and l1 == 0.0:
                    continue
                col = i * ny + j
                k = counts[col]
                if k < hits.shape[1]:
                    hits[col, k] = l0 * az + l1 * bz + l2 * cz
                counts[col] = k + 1


@njit(cache=True, nogil=True)
def _overlap_length(ha, na, hb, nb):
    """Length of the intersection of two sets of inside intervals (sorted pairs)."""
    total = 0.0
    for p in range(0, na - 1, 2):
        for q in range(0, nb - 1, 2):
            lo = max(ha[p], hb[q])
            hi = min(ha[p + 1], hb[q + 1])
            if hi > lo:
                total += hi - lo
    return total


@njit(cache=True, nogil=True)
def _volume_kernel(va, fa, vb, fb, x0, y0, h, nx, ny):
    n = nx * ny
    ha = np.zeros((n, _MAX_HITS))
    hb = np.zeros((n, _MAX_HITS))
    ca = np.zeros(n, dtype=np.int64)
    cb = np.zeros(n, dtype=np.int64)
    _column_hits(va, fa, x0, y0, h, nx, ny, ha, ca)
    _column_hits(vb, fb, x0, y0, h, nx, ny, hb, cb)
    total = 0.0
    for col in range(n):
        na, nb = ca[col], cb[col]
        if na < 2 or nb < 2 or na % 2 or nb % 2 or na > _MAX_HITS or nb > _MAX_HITS:
            continue  # no overlap possible, or a degenerate column (skipped)
        a = np.sort(ha[col, :na])
        b = np.sort(hb[col, :nb])
        total += _overlap_length(a, na, b, nb)
    return total * h * h


def penetration_volume(verts_a: np.ndarray, faces_a: np.ndarray, verts_b: np.ndarray,
                       faces_b: np.ndarray, voxel_m: float = 0.001) -> float:
    """Volume inside both closed meshes, mm^3, by z-rays on a ``voxel_m`` grid (parity).

    A column with an odd number of crossings (a ray grazing an edge) is skipped; the grid
    is offset by an irrational fraction of a cell so that this stays rare.
    """
    va = np.ascontiguousarray(verts_a, np.float64)
    vb = np.ascontiguousarray(verts_b, np.float64)
    lo = np.maximum(va.min(0), vb.min(0))
    hi = np.minimum(va.max(0), vb.max(0))
    if np.any(hi <= lo):
        return 0.0
    h = float(voxel_m)
    x0, y0 = lo[0] + 0.3183 * h, lo[1] + 0.5772 * h
    nx = int((hi[0] - x0) / h) + 1
    ny = int((hi[1] - y0) / h) + 1
    vol = _volume_kernel(va, np.ascontiguousarray(faces_a, np.int64), vb,
                         np.ascontiguousarray(faces_b, np.int64), x0, y0, h, nx, ny)
    return vol * 1e9
