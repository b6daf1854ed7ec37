"""OpenXR hand joints (``XR_EXT_hand_tracking``) from a published hand: 26 poses and radii.

Engines and XR runtimes expect hands as the 26 joints of ``XrHandJointEXT`` (Unity XR Hands
and WebXR mirror them), each a pose and a radius. :func:`xr_joints` builds them per hand as
a ``(26, 8)`` float32 array: position ``xyz`` (m), orientation quaternion ``xyzw``, radius (m).

Frame: the camera's, in OpenXR axes (right-handed, +Y up, -Z forward, meters), i.e. our
OpenCV camera frame (x right, y down, z forward) turned by ``(x, y, z) -> (x, -y, -z)`` (a
proper rotation, so handedness is kept). Joint axes follow the spec: -Z along the bone
towards the fingertip, +Y out of the back of the hand (the nail side), X = Y x Z; a left
hand's frames are right-handed too (its +X points to the thumb side, a right hand's to the
little finger side).

Where each joint comes from (``docs/openxr.md``):

* wrist, thumb metacarpal/proximal/distal/tip, finger proximal/intermediate/distal/tip: the
  published keypoints (MediaPipe wrist, CMC, MCP, IP, TIP / MCP, PIP, DIP, TIP), so the
  positions are the ``joints`` array's;
* index..little metacarpal: the hand model's CMC joints (``index_cmc`` ...), posed by the
  hand's ``pose``/``shape`` (forward kinematics) and moved into the camera by the rigid fit
  (Kabsch) of the model's posed joints onto the published keypoints; palm: the centre of
  the middle metacarpal (middle CMC to middle MCP), as the spec places it;
* -Z: from a joint to the next one along its finger (tips, the distal bone's; the wrist,
  towards the palm); +Y: the rig joint's abduction axis (the anatomical frame's axis normal
  to the flexion plane, the back-of-hand side), turned by that joint's posed rotation and
  orthogonalised against Z;
* radius: the mean distance of the mesh vertices around the joint (chosen once on the rest
  mesh: a 4 mm slab across the bone, 7 mm either side of it, skinned to the joint or its
  neighbours) to the bone's axis, on the frame's own vertices.

Quaternions are kept in one hemisphere per track (:class:`XrJointTracker`), so q and -q
never alternate between frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from realtime.stream import openxr_kernels as kernels

log = logging.getLogger(__name__)

NUM_XR_JOINTS = 26
XR_JOINT_NAMES = ("palm", "wrist", "thumb_metacarpal", "thumb_proximal", "thumb_distal",
                  "thumb_tip") + tuple(
    f"{f}_{b}" for f in ("index", "middle", "ring", "little")
    for b in ("metacarpal", "proximal", "intermediate", "distal", "tip"))
#: Columns of an ``xr_joints`` row.
XR_COLUMNS = ("x", "y", "z", "qx", "qy", "qz", "qw", "radius")

#: Camera (OpenCV axes) -> OpenXR axes: (x, y, z) -> (x, -y, -z).
CAMERA_TO_OPENXR = np.diag([1.0, -1.0, -1.0])

# XR joint -> the keypoint at its position (-1: from the rig), the joint whose rotation
# gives +Y (a rig joint), and the pair (a, b) of XR joints whose a -> b is its -Z.
_KP = np.array([-1, 0, 1, 2, 3, 4, -1, 5, 6, 7, 8, -1, 9, 10, 11, 12, -1, 13, 14, 15, 16,
                -1, 17, 18, 19, 20], np.int64)
_RIG_NAMES = ("middle_cmc", "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_ip") + tuple(
    n for f in ("index", "middle", "ring", "pinky")
    for n in (f"{f}_cmc", f"{f}_mcp", f"{f}_pip", f"{f}_dip", f"{f}_dip"))
_METACARPALS = (6, 11, 16, 21)  # XR rows of the index..little metacarpals (rig CMCs)
_CMC_NAMES = ("index_cmc", "middle_cmc", "ring_cmc", "pinky_cmc")
# -Z: from _DIR_A to _DIR_B
_DIR_A = np.array([11, 1, 2, 3, 4, 4] + [b + k for b in _METACARPALS for k in (0, 1, 2, 3, 3)],
                  np.int64)
_DIR_B = np.array([12, 0, 3, 4, 5, 5] + [b + k for b in _METACARPALS for k in (1, 2, 3, 4, 4)],
                  np.int64)
_TIPS = (5, 10, 15, 20, 25)


@dataclass(frozen=True)
class XrRig:
    """What :func:`xr_joints` needs from a hand model, computed once (:func:`xr_rig`)."""

    rest_joints: np.ndarray       # (J,3) model rest joints
    joint_shapedirs: np.ndarray   # (J,3,S)
    frames: np.ndarray            # (J,3,3) anatomical frames
    parents: np.ndarray           # (J,) each parent listed before its child
    fit_joints: np.ndarray        # rig joints that sit on a keypoint (the rigid fit's)
    fit_keypoints: np.ndarray     # ... and those keypoints
    cmc: np.ndarray               # (4,) rig joints of the index..little metacarpals
    dorsal_joint: np.ndarray      # (26,) rig joint whose rotation turns +Y
    dorsal_rest: np.ndarray       # (26,3) +Y in the model frame at rest
    radius_vertices: np.ndarray   # (26,K) vertex indices (padded with 0)
    radius_mask: np.ndarray       # (26,K) which are real
    rest_radius: np.ndarray       # (26,) radii of the rest mesh (no vertices: these)
    num_vertices: int


def xr_rig(model) -> XrRig:
    """The :class:`XrRig` of a :class:`models.hand_model.HandModel` (open hand or MANO, as
    long as it names its joints like the open hand)."""
    d = model.data
    names = {n: i for i, n in enumerate(d.joint_names)}
    missing = [n for n in set(_RIG_NAMES) | set(_CMC_NAMES) if n not in names]
    if missing:
        raise ValueError(f"hand model {d.name!r} lacks joints {sorted(missing)} needed for "
                         "the OpenXR joints")
    parents = d.parents.astype(np.int64)
    rest_kp = d.keypoints
    fit_j, fit_k = [], []
    for k in range(21):  # rig joints at a keypoint: the keypoint is that joint's centre
        hit = np.flatnonzero(np.linalg.norm(d.joints - rest_kp[k], axis=1) < 1e-6)
        if len(hit):
            fit_j.append(int(hit[0]))
            fit_k.append(k)
    if len(fit_j) < 3:
        raise ValueError(f"hand model {d.name!r}: fewer than 3 joints sit on keypoints")
    dorsal_joint = np.array([names[n] for n in _RIG_NAMES], np.int64)
    dorsal_rest = d.frames[dorsal_joint][:, :, 1].copy()  # the abduction axes
    dorsal_rest[1] = (0.0, 0.0, 1.0)  # the wrist: the model's back of the hand
    cmc = np.array([names[n] for n in _CMC_NAMES], np.int64)
    pos = np.empty((NUM_XR_JOINTS, 3))
    axes = np.empty((NUM_XR_JOINTS, 3, 3))
    kernels.positions_into(rest_kp, d.joints[cmc], _KP, pos)
    kernels.frames_into(pos, dorsal_rest, _DIR_A, _DIR_B, axes)
    # radius vertices: a slab across the bone at the joint (tips: 4 mm before the tip),
    # near the bone's axis, skinned mostly to the joint, its parent or a child
    verts = d.template
    owner = np.argmax(d.weights, axis=1)
    chosen = []
    for j in range(NUM_XR_JOINTS):
        r = dorsal_joint[j]
        near = {int(r), int(parents[r])} | set(np.flatnonzero(parents == r).tolist())
        centre = pos[j] + (0.004 * axes[j][:, 2] if j in _TIPS else 0.0)
        local = (verts - centre) @ axes[j]
        ok = np.isin(owner, list(near)) & (np.abs(local[:, 0]) < 0.007) & (
            np.hypot(local[:, 0], local[:, 1]) < 0.03)
        for slab in (0.002, 0.004, 0.008):
            sel = np.flatnonzero(ok & (np.abs(local[:, 2]) < slab))
            if len(sel) >= 6:
                break
        chosen.append(sel)
    k = max(1, max(len(c) for c in chosen))
    idx = np.zeros((NUM_XR_JOINTS, k), np.int64)
    mask = np.zeros((NUM_XR_JOINTS, k), np.bool_)
    for j, c in enumerate(chosen):
        idx[j, :len(c)], mask[j, :len(c)] = c, True
    rest_radius = np.empty(NUM_XR_JOINTS)
    kernels.radii_into(np.ascontiguousarray(verts, np.float64), pos, axes, idx, mask,
                       rest_radius)
    return XrRig(_f64(d.joints), _f64(d.joint_shapedirs), _f64(d.frames), parents,
                 np.array(fit_j, np.int64), np.array(fit_k, np.int64), cmc, dorsal_joint,
                 dorsal_rest, idx, mask, rest_radius, len(verts))


def xr_joints(rig: XrRig, hands: list, previous: list | None = None
              ) -> list[np.ndarray | None]:
    """Per hand the ``(26,8)`` float32 OpenXR joints (see the module docstring), or None for
    a hand without a usable pose (wrong size or not finite) or keypoints.

    ``hands``: :class:`realtime.types.HandMesh`; ``previous``: per hand the last frame's
    joints of its track (quaternions are flipped into their hemisphere) or None.
    """
    out: list = [None] * len(hands)
    nj, ns = len(rig.rest_joints), rig.joint_shapedirs.shape[-1]
    for i, h in enumerate(hands):
        pose, kp = h.pose, h.joints
        if np.shape(pose) != (nj, 3) or np.shape(kp)[:1] != (21,) or np.shape(kp)[1:] != (3,):
            continue
        shape = np.zeros(ns)
        sh = np.asarray(h.shape, np.float64).reshape(-1)[:ns]
        shape[:len(sh)] = sh
        verts = h.vertices
        use = isinstance(verts, np.ndarray) and verts.shape == (rig.num_vertices, 3)
        prev = None if previous is None else previous[i]
        res = np.empty((NUM_XR_JOINTS, 8), np.float32)
        ok = kernels.xr_hand(
            _f64(pose), shape, _f64(kp), _f64(verts) if use else _NO_VERTS, use,
            h.handedness == "left", rig.rest_joints, rig.joint_shapedirs, rig.frames,
            rig.parents, rig.fit_joints, rig.fit_keypoints, rig.cmc, rig.dorsal_joint,
            rig.dorsal_rest, _KP, _DIR_A, _DIR_B, rig.radius_vertices, rig.radius_mask,
            rig.rest_radius, _NO_PREV if prev is None else prev, prev is not None, res)
        if ok:
            out[i] = res
    return out


_NO_VERTS = np.zeros((0, 3))
_NO_PREV = np.zeros((NUM_XR_JOINTS, 8), np.float32)


def _f64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


class XrJointTracker:
    """:func:`xr_joints` with quaternions kept continuous per ``track_id`` (a stream's or a
    file's hands, frame after frame). Not thread-safe: one per publishing thread."""

    MAX_TRACKS = 32

    def __init__(self, model) -> None:
        self.rig = xr_rig(model)
        self._last: dict[int, np.ndarray] = {}

    def __call__(self, hands: list) -> list[np.ndarray | None]:
        last = self._last
        out = xr_joints(self.rig, hands, [last.get(int(h.track_id)) for h in hands])
        for h, xr in zip(hands, out):
            if xr is None:
                continue
            key = int(h.track_id)
            if key not in last and len(last) >= self.MAX_TRACKS:
                last.pop(next(iter(last)))
            last[key] = xr
        return out

    def warmup(self) -> None:
        """Compile (or load from numba's disk cache) the kernel: no JIT in the loop."""
        from realtime.types import HandMesh

        r = self.rig
        kp = np.zeros((21, 3))
        kp[r.fit_keypoints] = r.rest_joints[r.fit_joints]
        hand = HandMesh(vertices=np.zeros((r.num_vertices, 3)), joints=kp,
                        vertex_std=np.zeros(r.num_vertices),
                        pose=np.zeros((len(r.rest_joints), 3)), shape=np.zeros(1),
                        keypoints_2d=np.zeros((21, 2)), handedness="right", score=1.0,
                        track_id=-1, timestamp=0.0, frame_index=0)
        first = xr_joints(r, [hand])[0]
        xr_joints(r, [hand], [first])


def openxr_tracker(model) -> XrJointTracker | None:
    """A warmed-up tracker for ``model``, or None (logged) when the model's joints do not
    map to OpenXR's (a model not named like the open hand)."""
    try:
        tracker = XrJointTracker(model)
    except ValueError as exc:
        log.warning("no OpenXR joints: %s", exc)
        return None
    tracker.warmup()
    return tracker


def openxr_camera_poses(xr: np.ndarray) -> np.ndarray:
    """``(26,8)`` OpenXR joints -> ``(26,7)`` poses (x, y, z, qx, qy, qz, qw) in the camera
    frame (OpenCV axes), for consumers in that frame (ROS 2): positions ``(x, -y, -z)``,
    rotations ``C R`` with C the half turn about x, i.e. quaternion ``(w, -z, y, -x)``."""
    xr = np.asarray(xr, np.float64)
    out = np.empty((len(xr), 7))
    out[:, 0], out[:, 1], out[:, 2] = xr[:, 0], -xr[:, 1], -xr[:, 2]
    x, y, z, w = xr[:, 3], xr[:, 4], xr[:, 5], xr[:, 6]
    out[:, 3], out[:, 4], out[:, 5], out[:, 6] = w, -z, y, -x
    return out
