"""Multi-view fusion at run time (after SiMA-Hand): one detector per camera, hands
associated across views, keypoints triangulated with per-view confidence, the mesh fitted
once in the world frame. A hand seen by one camera only falls back to single-view metric
placement, so fusion keeps working when a view loses the hand.

Pure functions and small dataclasses; no sockets, no threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calibration.camera import Camera
from calibration.errors import CalibrationError
from calibration.placement import solve_translation
from calibration.profile import HandProfile, profile_scale
from models.geometry import project


@dataclass(frozen=True)
class RigCamera:
    """A calibrated camera placed in the world: ``x_cam = R x_world + t``."""

    calibration: Camera
    R: np.ndarray
    t: np.ndarray

    @property
    def P(self) -> np.ndarray:  # noqa: N802 - the usual name
        """``(3,4)`` projection matrix of undistorted pixels."""
        return self.calibration.K @ np.concatenate([self.R, self.t.reshape(3, 1)], 1)

    @property
    def centre(self) -> np.ndarray:
        return -self.R.T @ self.t

    def project(self, x_world: np.ndarray) -> np.ndarray:
        """World points ``(N,3)`` -> undistorted pixels ``(N,2)``."""
        return project(x_world @ self.R.T + self.t, self.calibration.K)


@dataclass(frozen=True)
class HandView:
    """One hand as one camera saw it. ``uv (21,2)`` raw (distorted) pixels;
    ``confidence (21,)`` 0..1 per keypoint (score times visibility); ``world (21,3)``
    MediaPipe's hand-centred metric landmarks in that camera's axes (for single-view
    fallback); ``timestamp`` capture time, seconds."""

    camera: int
    uv: np.ndarray
    confidence: np.ndarray
    handedness: str
    score: float = 1.0
    world: np.ndarray | None = None
    timestamp: float = 0.0


@dataclass(frozen=True)
class FusedHand:
    """A hand in the world frame: ``joints (21,3)`` meters; ``views`` the cameras used;
    ``residual_px (21,)`` mean reprojection error per keypoint over those views."""

    joints: np.ndarray
    handedness: str
    score: float
    views: tuple[int, ...]
    residual_px: np.ndarray
    vertices: np.ndarray | None = None
    pose: np.ndarray | None = None
    shape: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def fundamental(a: RigCamera, b: RigCamera) -> np.ndarray:
    """``F`` with ``x_b^T F x_a = 0`` for undistorted pixels of cameras a and b."""
    r = b.R @ a.R.T
    t = b.t - r @ a.t
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    ka, kb = a.calibration.K, b.calibration.K
    return np.linalg.inv(kb).T @ tx @ r @ np.linalg.inv(ka)


def epipolar_distance(uv_a: np.ndarray, uv_b: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Symmetric point-to-epipolar-line distance, pixels ``(N,)``."""
    ha = np.concatenate([uv_a, np.ones((len(uv_a), 1))], 1)
    hb = np.concatenate([uv_b, np.ones((len(uv_b), 1))], 1)
    la = ha @ f.T  # lines in b
    lb = hb @ f  # lines in a
    num = np.abs(np.sum(hb * la, 1))
    return 0.5 * (num / np.hypot(la[:, 0], la[:, 1]) + num / np.hypot(lb[:, 0], lb[:, 1]))


def triangulate(
    uv: np.ndarray, projections: np.ndarray, weights: np.ndarray, refine: int = 3,
) -> np.ndarray:
    """Weighted DLT, then Gauss-Newton on the weighted reprojection error.

    ``uv (C,N,2)`` undistorted pixels, ``projections (C,3,4)``, ``weights (C,N)`` (0: not
    seen) -> ``(N,3)`` world points; NaN where fewer than two views have weight.
    """
    uv = np.asarray(uv, dtype=np.float64)
    p = np.asarray(projections, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    c, n = w.shape
    # rows: u * P3 - P1, v * P3 - P2 for every view, scaled by sqrt(weight) / row norm
    a = np.empty((n, 2 * c, 4))
    a[:, 0::2] = uv[:, :, 0].T[:, :, None] * p[None, :, 2] - p[None, :, 0]
    a[:, 1::2] = uv[:, :, 1].T[:, :, None] * p[None, :, 2] - p[None, :, 1]
    a /= np.linalg.norm(a, axis=2, keepdims=True) + 1e-12
    a *= np.sqrt(np.repeat(w.T, 2, axis=1))[:, :, None]
    _, _, vt = np.linalg.svd(a)
    h = vt[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):  # a point with < 2 views: NaN below
        x = h[:, :3] / h[:, 3:4]
    few = (w > 0).sum(0) < 2
    x[few | ~np.all(np.isfinite(x), axis=1)] = x[~few].mean(0) if np.any(~few) else 0.0
    for _ in range(refine):
        xh = np.concatenate([x, np.ones((n, 1))], 1)
        q = np.einsum("cij,nj->cni", p, xh)  # (C,N,3)
        z = q[..., 2]
        r = q[..., :2] / z[..., None] - uv  # (C,N,2)
        # d(q01/q2)/dx = (P01 - (q01/q2) P2) / q2
        jac = (p[:, None, :2, :3] - (q[..., :2] / z[..., None])[..., None] * p[:, None, 2:3, :3]
               ) / z[..., None, None]  # (C,N,2,3)
        jw = jac * w[..., None, None]
        h_mat = np.einsum("cnki,cnkj->nij", jw, jac) + 1e-9 * np.eye(3)
        g = np.einsum("cnki,cnk->ni", jw, r)
        x = x - np.linalg.solve(h_mat, g[..., None])[..., 0]
    x[few] = np.nan
    return x


def undistort_views(views: list[HandView], rig: list[RigCamera]) -> list[np.ndarray]:
    return [rig[v.camera].calibration.undistort_points(v.uv) for v in views]


def associate(
    views: list[HandView], rig: list[RigCamera], max_epipolar_px: float = 25.0,
) -> list[list[HandView]]:
    """Groups of views of the same hand: same side, one view per camera, epipolar
    consistent (median symmetric distance under ``max_epipolar_px``); greedy, cheapest
    pair first. Unmatched views stay alone (single-view hands)."""
    und = undistort_views(views, rig)
    costs = []
    for i in range(len(views)):
        for j in range(i + 1, len(views)):
            a, b = views[i], views[j]
            if a.camera == b.camera or a.handedness != b.handedness:
                continue
            f = fundamental(rig[a.camera], rig[b.camera])
            d = float(np.median(epipolar_distance(und[i], und[j], f)))
            if d < max_epipolar_px:
                costs.append((d, i, j))
    group_of = list(range(len(views)))
    members: dict[int, set[int]] = {i: {i} for i in range(len(views))}
    for _, i, j in sorted(costs):
        gi, gj = group_of[i], group_of[j]
        if gi == gj:
            continue
        cams_i = {views[k].camera for k in members[gi]}
        cams_j = {views[k].camera for k in members[gj]}
        if cams_i & cams_j:
            continue
        members[gi] |= members.pop(gj)
        for k in members[gi]:
            group_of[k] = gi
    return [sorted((views[k] for k in m), key=lambda v: v.camera) for m in members.values()]


def single_view_joints(view: HandView, rig: list[RigCamera],
                       profile: HandProfile | None = None) -> np.ndarray:
    """A hand seen by one camera: its world landmarks placed by the 2D landmarks (metric
    placement), rescaled to the profile if there is one, in world coordinates."""
    if view.world is None:
        raise CalibrationError(f"camera {view.camera}: a single-view hand needs its 3D "
                               "(world) landmarks for metric placement")
    cam = rig[view.camera]
    uv = cam.calibration.undistort_points(view.uv)
    rel = np.asarray(view.world, dtype=np.float64)
    rel = rel - rel.mean(0)
    t = solve_translation(rel, uv, cam.calibration.K, weights=np.maximum(view.confidence, 1e-3))
    x_cam = rel + t
    if profile is not None:
        x_cam = x_cam * profile_scale(x_cam, profile)
    return (x_cam - cam.t) @ cam.R  # R^T (x - t), row form


def fuse_group(group: list[HandView], rig: list[RigCamera],
               profile: HandProfile | None = None) -> FusedHand:
    """Triangulate a group (>= 2 views), or place its single view."""
    cams = tuple(v.camera for v in group)
    score = float(np.mean([v.score for v in group]))
    if len(group) == 1:
        x = single_view_joints(group[0], rig, profile)
        uv = rig[cams[0]].project(x)
        res = np.linalg.norm(uv - rig[cams[0]].calibration.undistort_points(group[0].uv), axis=1)
        return FusedHand(x, group[0].handedness, score, cams, res)
    und = np.stack(undistort_views(group, rig))
    proj = np.stack([rig[c].P for c in cams])
    w = np.stack([np.clip(v.confidence, 0.0, 1.0) * v.score for v in group])
    x = triangulate(und, proj, w)
    bad = ~np.all(np.isfinite(x), axis=1)
    if np.any(bad):  # keypoints seen by one view only: borrow the single-view placement
        best = group[int(np.argmax([v.score for v in group]))]
        if best.world is not None:
            x[bad] = single_view_joints(best, rig, profile)[bad]
    res = np.mean([np.linalg.norm(rig[c].project(x) - u, axis=1) for c, u in zip(cams, und)], 0)
    return FusedHand(x, group[0].handedness, score, cams, res)


def fuse_views(views: list[HandView], rig: list[RigCamera],
               profile: HandProfile | None = None, max_epipolar_px: float = 25.0
               ) -> list[FusedHand]:
    """All hands of one moment: associate, then triangulate or place each."""
    for v in views:
        if not 0 <= v.camera < len(rig):
            raise CalibrationError(f"view from camera {v.camera}, the rig has {len(rig)}")
    return [fuse_group(g, rig, profile) for g in associate(views, rig, max_epipolar_px)]


def fit_mesh(model, hand: FusedHand, shape: np.ndarray | None = None) -> FusedHand:
    """Fit the hand model once, in the world frame, to the fused keypoints (IK: shape from
    the bone lengths unless given, then pose); left hands are mirrored through x."""
    from models.hand_model import mirror_x
    from models.ik import fit_keypoints

    left = hand.handedness == "left"
    target = mirror_x(hand.joints) if left else hand.joints
    ik = fit_keypoints(model, target, shape)
    verts = model.forward(ik.pose[None], ik.shape[None]).vertices[0] + ik.translation
    if left:
        verts = mirror_x(verts)
    return FusedHand(hand.joints, hand.handedness, hand.score, hand.views, hand.residual_px,
                     verts, ik.pose, ik.shape, dict(hand.extra))
