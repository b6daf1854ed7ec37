"""Two interacting hands: a sphere proxy, penetration, and a pose correction that removes it.

After the interacting-hands line of work (e.g. Zhang et al., "Interacting two-hand 3D pose
and shape reconstruction from single color image", ICCV 2021, and its collision term):

* each hand is covered by spheres strung along its bones (radius from the rest mesh), so
  penetration between two hands (and between the fingers of one) is a sum over sphere
  pairs of ``max(0, r_i + r_j - |c_i - c_j|)``: cheap and differentiable in the pose;
* the correction is a few Gauss-Newton steps on the *pose* of both hands (root rotation
  and translation, every finger joint's anatomical angles) minimising penetration while
  keeping the keypoints' 2D reprojection and staying near the input pose (an optional
  target pose, e.g. from the interaction prior, adds a pull); joint limits are enforced;
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

from models.hand_model import HandModel
from models.ik import bone_end_keypoints, kabsch
from models.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from models.skinning import shaped_rest

_MIRROR = np.diag([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SphereProxy:
    """Spheres along the bones: ``owner (S,)`` joint that carries each sphere; it sits at
    ``t (S,)`` of the way from its joint (0) to keypoint ``end_kp (S,)`` (1); ``radius (S,)``
    meters; ``finger (S,)`` 0 thumb .. 4 pinky, -1 palm/wrist; ``segment (S,)`` 0
    metacarpal/palm .. 3 distal phalanx."""

    owner: np.ndarray
    t: np.ndarray
    radius: np.ndarray
    finger: np.ndarray
    segment: np.ndarray
    end_kp: np.ndarray


# The root (wrist) carries capsules toward these keypoints, up to this fraction of the way:
# they fill the heel of the palm and the wrist, which no finger bone covers.
_ROOT_CAPSULES = ((5, 0.6), (9, 0.6), (17, 0.6), (1, 1.0))


def _capsule(verts: np.ndarray, a: np.ndarray, b: np.ndarray, t_max: float = 1.0) -> np.ndarray:
    """Distances of ``verts`` from the segment a -> a + t_max (b - a)."""
    axis = (b - a) * t_max
    s = np.clip((verts - a) @ axis / max(float(axis @ axis), 1e-12), 0.0, 1.0)
    return np.linalg.norm(verts - (a + s[:, None] * axis), axis=1)


def build_proxy(model: HandModel, radius_scale: float = 1.0, spacing: float = 0.8
                ) -> SphereProxy:
    """Cover every bone (and the heel of the palm) with spheres; radius = ``radius_scale`` x
    the median distance of the vertices it carries most from its segment, on the rest mesh."""
    d = model.data
    ends = bone_end_keypoints(model)
    dominant = np.argmax(d.weights, axis=1)
    owner, ts, radii, finger, segment, end_kp = [], [], [], [], [], []

    def add(j: int, end: int, t_max: float, r: float, f: int, seg: int) -> None:
        length = float(np.linalg.norm(d.keypoints[end] - d.joints[j])) * t_max
        n = max(2, int(math.ceil(length / (spacing * r))) + 1)
        for t in np.linspace(0.0, t_max, n):
            owner.append(j)
            ts.append(t)
            radii.append(r)
            finger.append(f)
            segment.append(seg)
            end_kp.append(end)

    wrist_verts = d.template[dominant == 0]
    dist = np.min([_capsule(wrist_verts, d.joints[0], d.keypoints[k], t) for k, t in
                   _ROOT_CAPSULES], axis=0)
    for k, t in _ROOT_CAPSULES:
        add(0, k, t, radius_scale * float(np.median(dist)), -1, 0)
    for j in range(1, model.num_joints):
        verts = d.template[dominant == j]
        if len(verts) < 4:
            continue
        name = d.joint_names[j]
        f = ("thumb", "index", "middle", "ring", "pinky").index(name.split("_")[0])
        part = name.split("_")[1]
        seg = ({"cmc": 0, "mcp": 2, "ip": 3} if f == 0 else
               {"cmc": 0, "mcp": 1, "pip": 2, "dip": 3})[part]
        dist = _capsule(verts, d.joints[j], d.keypoints[ends[j]])
        add(j, int(ends[j]), 1.0, radius_scale * float(np.median(dist)), f, seg)
    return SphereProxy(np.array(owner), np.array(ts), np.array(radii), np.array(finger),
                       np.array(segment), np.array(end_kp))


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
        self._cache: dict[bytes, tuple] = {}

    def rest(self, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rest joints ``(J,3)``, keypoints ``(21,3)`` and sphere centres ``(S,3)`` of a shape."""
        key = np.asarray(shape, np.float64).tobytes()
        if key not in self._cache:
            d, p = self.model.data, self.proxy
            joints = shaped_rest(d.joints, d.joint_shapedirs, shape[None])[0]
            kps = shaped_rest(d.keypoints, d.keypoint_shapedirs, shape[None])[0]
            spheres = joints[p.owner] + p.t[:, None] * (kps[p.end_kp] - joints[p.owner])
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = (joints, kps, spheres)
        return self._cache[key]

    def local_rotations(self, pose: np.ndarray) -> np.ndarray:
        """Anatomical pose ``(J,3)`` -> local rotations in model axes ``(J,3,3)`` (root I)."""
        rot = self.frames @ axis_angle_to_matrix(pose) @ np.swapaxes(self.frames, -1, -2)
        rot[0] = np.eye(3)
        return rot

    def world(self, state: HandState) -> tuple[np.ndarray, np.ndarray]:
        """World (mirrored-space) joint rotations ``(J,3,3)`` and positions ``(J,3)``."""
        joints, _, _ = self.rest(state.shape)
        local = self.local_rotations(state.pose)
        j = len(joints)
        wr = np.empty((j, 3, 3))
        wp = np.empty((j, 3))
        wr[0] = state.rot
        wp[0] = state.rot @ joints[0] + state.trans
        for k in range(1, j):
            p = self.parents[k]
            wp[k] = wp[p] + wr[p] @ (joints[k] - joints[p])
            wr[k] = wr[p] @ local[k]
        return wr, wp

    def posed(self, state: HandState, with_jacobians: bool = True) -> Posed:
        joints, kps, spheres = self.rest(state.shape)
        wr, wp = self.world(state)
        pts_owner = np.concatenate([self.kp_owner, self.proxy.owner])
        rest_pts = np.concatenate([kps, spheres])
        pts = wp[pts_owner] + np.einsum("nij,nj->ni", wr[pts_owner], rest_pts - joints[pts_owner])
        n = len(pts)
        jac = np.zeros((n, 3, self.num_params))
        if with_jacobians:
            # Root rotation about the wrist, then translation.
            rel = pts - wp[0]
            for a in range(3):
                e = np.zeros(3)
                e[a] = 1.0
                jac[:, :, a] = np.cross(e, rel)
            jac[:, :, 3:6] = np.eye(3)
            # Joint k's anatomical axis a, in world axes: parent's world rotation @ F_k e_a.
            for k in range(1, len(joints)):
                moved = self.ancestors[pts_owner, k]
                if not np.any(moved):
                    continue
                axes = wr[self.parents[k]] @ self.frames[k]  # columns: world axes
                rel = pts[moved] - wp[k]
                for a in range(3):
                    jac[moved, :, 6 + 3 * (k - 1) + a] = np.cross(axes[:, a], rel)
        if state.left:
            # Camera point = M p; root increments are given in camera axes, which the
            # mirrored space sees as omega_m = -M omega and dt_m = M dt (see ``step``).
            pts = pts @ _MIRROR
            jac = np.einsum("ij,njp->nip", _MIRROR, jac)
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
        r = axis_angle_to_matrix(omega[None])[0]
        rot = r @ state.rot
        trans = wrist + dt - rot @ joints[0]
        pose = state.pose.copy()
        # Compose, not add: the Jacobian is that of exp(delta) exp(theta) (exact for any
        # joint, where theta + delta is exact only for one-axis rotations).
        inc = axis_angle_to_matrix(delta[6:].reshape(-1, 3))
        pose[1:] = matrix_to_axis_angle(inc @ axis_angle_to_matrix(pose[1:]))
        pose[1:] = np.clip(pose[1:], self.limits[1:, :, 0], self.limits[1:, :, 1])
        return replace(state, pose=pose, rot=rot, trans=trans)

    def fit_state(self, pose: np.ndarray, shape: np.ndarray, keypoints: np.ndarray,
                  left: bool) -> HandState:
        """The state whose keypoints best match camera-frame ``keypoints (21,3)`` (Kabsch)."""
        target = keypoints @ _MIRROR if left else keypoints
        base = HandState(np.asarray(pose, np.float64).copy(), np.asarray(shape, np.float64),
                         np.eye(3), np.zeros(3), False)
        kp = self.posed(base, with_jacobians=False).keypoints
        r = kabsch(kp, target)
        t = target.mean(0) - kp.mean(0) @ r.T
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


def move_vertices(kin: HandKinematics, before: HandState, after: HandState,
                  vertices: np.ndarray) -> np.ndarray:
    """Carry camera-frame ``vertices (V,3)`` from one state to another by the per-joint
    change of the skinning transforms, blended by the skinning weights (keeps the input
    mesh's own detail: only the pose changes)."""
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
    """Sphere pairs of one hand that must not overlap: different fingers, both on the
    proximal-to-distal phalanges (metacarpals sit side by side in the palm)."""
    f, s = proxy.finger, proxy.segment
    mask = (f[:, None] != f[None]) & (s[:, None] >= 2) & (s[None] >= 2) & (f[:, None] >= 0)
    return np.triu(mask, 1)


@dataclass(frozen=True)
class CorrectionConfig:
    """Weights of the pose correction (residual scales: what counts as one unit)."""

    iterations: int = 6
    penetration_m: float = 0.0005  # 0.5 mm of sphere overlap ~ one unit
    self_penetration_m: float = 0.001
    self_allowance_m: float = 0.002  # fingers may touch this deeply (proxy slack)
    reprojection_px: float = 2.0  # keep each keypoint's 2D position within ~this
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
    uv = np.stack([fx * p[:, 0] / z + K[0, 2], fy * p[:, 1] / z + K[1, 2]], -1)
    du = fx / z[:, None] * (jac[:, 0] - p[:, 0, None] / z[:, None] * jac[:, 2])
    dv = fy / z[:, None] * (jac[:, 1] - p[:, 1, None] / z[:, None] * jac[:, 2])
    return uv, np.stack([du, dv], 1)


def total_penetration(kin: HandKinematics, states, config: CorrectionConfig = CorrectionConfig()
                      ) -> float:
    """Sum of sphere overlaps between the hands plus finger-finger overlaps beyond the
    allowance within each hand, meters."""
    posed = [kin.posed(s, with_jacobians=False) for s in states]
    r = kin.proxy.radius
    total = 0.0
    for i in range(len(posed)):
        for j in range(i + 1, len(posed)):
            total += float(sphere_penetration(posed[i].spheres, r, posed[j].spheres, r).sum())
    mask = self_pair_mask(kin.proxy)
    for p in posed:
        pen = sphere_penetration(p.spheres, r, p.spheres, r, mask) - config.self_allowance_m
        total += float(np.maximum(pen, 0.0)[mask].sum())
    return total


def resolve_penetration(
    kin: HandKinematics, states: tuple[HandState, ...], K: np.ndarray,
    config: CorrectionConfig = CorrectionConfig(),
    targets: tuple[np.ndarray | None, ...] | None = None,
    prior_weights: tuple[float, ...] | None = None,
) -> CorrectionResult:
    """Gauss-Newton on both hands' poses: no overlap, same 2D keypoints, near the input.

    ``states``: one or two hands; ``K`` (3,3) intrinsics; ``targets``: optional per-hand
    joint angles ``(J,3)`` to pull toward with weight ``prior_weights`` in [0,1] (the
    interaction prior). Returns the corrected states; hands without any overlap are left
    exactly as they were.
    """
    states = tuple(states)
    n_h, n_p = len(states), kin.num_params
    before = total_penetration(kin, states, config)
    if before <= 0.0:
        return CorrectionResult(states, 0.0, 0.0, 0)
    init = states
    uv0 = [_project_jac(kin.posed(s, False).keypoints, np.zeros((21, 3, n_p)), K)[0]
           for s in states]
    r = kin.proxy.radius
    self_mask = self_pair_mask(kin.proxy)
    prior_scale = np.concatenate([
        np.full(3, config.root_rad), [config.lateral_m, config.lateral_m, config.depth_m],
        np.full(n_p - 6, config.joint_rad)])
    it = 0
    for it in range(1, config.iterations + 1):
        posed = [kin.posed(s) for s in states]
        rows, res = [], []

        def add(jrow: np.ndarray, value: np.ndarray) -> None:
            rows.append(jrow)
            res.append(value)

        for h, (s, p) in enumerate(zip(states, posed)):
            sl = slice(h * n_p, (h + 1) * n_p)
            # 2D reprojection of the keypoints.
            uv, duv = _project_jac(p.keypoints, p.jac_keypoints, K)
            jr = np.zeros((42, n_h * n_p))
            jr[:, sl] = duv.reshape(42, n_p) / config.reprojection_px
            add(jr, ((uv - uv0[h]) / config.reprojection_px).reshape(-1))
            # Stay near the input (root increments are measured from the input too).
            d_root = matrix_to_axis_angle((s.rot @ init[h].rot.T)[None])[0]
            if s.left:
                d_root = -(_MIRROR @ d_root)
            wrist0 = kin.posed(init[h], False).keypoints[0]
            d_trans = p.keypoints[0] - wrist0
            cur = np.concatenate([d_root, d_trans, (s.pose[1:] - init[h].pose[1:]).ravel()])
            jr = np.zeros((n_p, n_h * n_p))
            jr[:, sl] = np.diag(1.0 / prior_scale)
            jr[3:6, sl] = p.jac_keypoints[0] / prior_scale[3:6, None]
            add(jr, cur / prior_scale)
            if targets is not None and targets[h] is not None and prior_weights[h] > 0:
                w = math.sqrt(prior_weights[h]) / config.prior_rad
                jr = np.zeros((n_p - 6, n_h * n_p))
                jr[:, h * n_p + 6:(h + 1) * n_p] = np.eye(n_p - 6) * w
                add(jr, (s.pose[1:] - targets[h][1:]).ravel() * w)
            # Finger-finger overlap within the hand.
            pen = sphere_penetration(p.spheres, r, p.spheres, r, self_mask)
            pen = np.where(self_mask, pen - config.self_allowance_m, 0.0)
            ii, jj = np.nonzero(pen > 0)
            if len(ii):
                nrm = p.spheres[ii] - p.spheres[jj]
                nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)
                jr = np.zeros((len(ii), n_h * n_p))
                jr[:, sl] = -(np.einsum("nd,ndp->np", nrm, p.jac_spheres[ii])
                              - np.einsum("nd,ndp->np", nrm, p.jac_spheres[jj]))
                add(jr / config.self_penetration_m, pen[ii, jj] / config.self_penetration_m)
        for a in range(n_h):
            for b in range(a + 1, n_h):
                pa, pb = posed[a], posed[b]
                pen = sphere_penetration(pa.spheres, r, pb.spheres, r)
                ii, jj = np.nonzero(pen > 0)
                if not len(ii):
                    continue
                nrm = pa.spheres[ii] - pb.spheres[jj]
                nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)
                jr = np.zeros((len(ii), n_h * n_p))
                jr[:, a * n_p:(a + 1) * n_p] = -np.einsum("nd,ndp->np", nrm, pa.jac_spheres[ii])
                jr[:, b * n_p:(b + 1) * n_p] = np.einsum("nd,ndp->np", nrm, pb.jac_spheres[jj])
                add(jr / config.penetration_m, pen[ii, jj] / config.penetration_m)
        jac = np.concatenate(rows)
        vec = np.concatenate(res)
        h_mat = jac.T @ jac
        h_mat[np.diag_indices_from(h_mat)] += config.damping * (1.0 + np.diag(h_mat))
        delta = -np.linalg.solve(h_mat, jac.T @ vec)
        states = tuple(kin.step(s, delta[h * n_p:(h + 1) * n_p]) for h, s in enumerate(states))
        if total_penetration(kin, states, config) <= 0.0:
            break
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
