"""Hand poses in the open model's anatomical parameters: named gestures and a sampler.

A pose is ``(B,J,3)`` rotation vectors in each joint's anatomical frame (axes: flexion,
abduction, twist; ``models.limits``). Fingers curl together in real hands, so the sampler
draws one overall curl and lets each finger deviate from it, then clips to the limits.
"""

from __future__ import annotations

import numpy as np

from models.limits import clamp_pose

FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")
# Flexion (deg) at curl 0 (open, slightly hyper-extended) and curl 1 (closed fist).
_OPEN_DEG = {"cmc": -2.0, "mcp": -12.0, "pip": -8.0, "dip": -8.0}
_FIST_DEG = {"cmc": 6.0, "mcp": 85.0, "pip": 100.0, "dip": 65.0}
# Thumb (flexion, abduction, twist) in degrees; the closed values put the thumb tip on the
# middle phalanges of the curled fingers (solved once by least squares on the keypoints).
_THUMB_OPEN = {"thumb_cmc": (-25.0, -25.0, 0.0), "thumb_mcp": (-10.0, 0.0, 0.0),
               "thumb_ip": (-15.0, 0.0, 0.0)}
_THUMB_FIST = {"thumb_cmc": (-3.0, -8.0, -4.0), "thumb_mcp": (42.0, 0.0, 0.0),
               "thumb_ip": (40.0, 0.0, 0.0)}
# Sideways spread (deg) per finger MCP at spread 1; middle stays, the others fan out.
_SPREAD_DEG = {"index": -14.0, "middle": -2.0, "ring": 10.0, "pinky": 20.0}


def _index(names: tuple[str, ...]) -> dict[str, int]:
    return {n: i for i, n in enumerate(names)}


def pose_from_curls(
    joint_names: tuple[str, ...], curls: np.ndarray, spread: np.ndarray | float = 0.0
) -> np.ndarray:
    """Pose ``(B,J,3)`` from per-finger curl ``(B,5)`` in [0,1] (thumb first), spread ``(B,)``."""
    curls = np.atleast_2d(np.asarray(curls, dtype=np.float64))
    b = curls.shape[0]
    spread = np.broadcast_to(np.asarray(spread, dtype=np.float64), (b,))
    idx = _index(joint_names)
    pose = np.zeros((b, len(joint_names), 3))
    for fi, finger in enumerate(FINGER_NAMES):
        c = curls[:, fi]
        if finger == "thumb":
            for joint, opened in _THUMB_OPEN.items():
                closed = np.array(_THUMB_FIST[joint])
                opened = np.array(opened)
                pose[:, idx[joint]] = np.deg2rad(opened + c[:, None] * (closed - opened))
            continue
        for part in ("cmc", "mcp", "pip", "dip"):
            lo, hi = _OPEN_DEG[part], _FIST_DEG[part]
            pose[:, idx[f"{finger}_{part}"], 0] = np.deg2rad(lo + c * (hi - lo))
        # Spread only when the finger is open: curled fingers close ranks.
        pose[:, idx[f"{finger}_mcp"], 1] = np.deg2rad(_SPREAD_DEG[finger]) * spread * (1 - c)
    return pose


def named_pose(joint_names: tuple[str, ...], name: str) -> np.ndarray:
    """A gesture by name: ``relaxed``, ``open``, ``spread``, ``fist``, ``point``, ``pinch``,
    ``peace``, ``thumbs_up``, ``ok``. Returns ``(1,J,3)``."""
    table = {
        "open": ([0.0, 0.0, 0.0, 0.0, 0.0], 0.2),
        "spread": ([0.0, 0.0, 0.0, 0.0, 0.0], 1.0),
        "fist": ([1.0, 1.0, 1.0, 1.0, 1.0], 0.0),
        "point": ([1.0, 0.0, 1.0, 1.0, 1.0], 0.0),
        "peace": ([1.0, 0.0, 0.0, 1.0, 1.0], 0.8),
        "thumbs_up": ([0.0, 1.0, 1.0, 1.0, 1.0], 0.0),
    }
    idx = _index(joint_names)
    if name == "relaxed":
        return np.zeros((1, len(joint_names), 3))
    if name in table:
        curls, spread = table[name]
        pose = pose_from_curls(joint_names, np.array([curls]), spread)
        if name == "thumbs_up":
            pose[:, idx["thumb_cmc"], 1] = np.deg2rad(-30.0)
        return pose
    if name in ("pinch", "ok"):
        rest = 0.15 if name == "ok" else 0.45
        pose = pose_from_curls(joint_names, np.array([[0.0, 0.5, rest, rest, rest]]), 0.3)
        i = idx
        pose[:, i["index_mcp"], 0] = np.deg2rad(45)
        pose[:, i["index_pip"], 0] = np.deg2rad(50)
        pose[:, i["index_dip"], 0] = np.deg2rad(25)
        pose[:, i["thumb_cmc"]] = np.deg2rad([1.0, 1.0, 3.0])  # thumb tip on index tip
        pose[:, i["thumb_mcp"], 0] = np.deg2rad(37)
        pose[:, i["thumb_ip"], 0] = np.deg2rad(37)
        return pose
    raise ValueError(f"unknown pose name {name!r}; choose from relaxed, pinch, ok, "
                     f"{', '.join(table)}")


NAMED_POSES = ("relaxed", "open", "spread", "fist", "point", "pinch", "ok", "peace", "thumbs_up")


def sample_poses(
    joint_names: tuple[str, ...],
    limits: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    global_rotation: bool = False,
) -> np.ndarray:
    """Random natural poses ``(n,J,3)`` inside ``limits``.

    One overall curl (Beta, favouring open and closed hands) plus per-finger deviations,
    a spread that shrinks as fingers close, small per-joint jitter; optionally a uniformly
    random global orientation at the root.
    """
    overall = rng.beta(0.7, 0.7, size=(n, 1))
    curls = np.clip(overall + rng.normal(0.0, 0.25, size=(n, 5)), 0.0, 1.0)
    # Sometimes one or two fingers break away (pointing, peace, pinch-like).
    breakaway = rng.random((n, 5)) < 0.15
    curls = np.where(breakaway, rng.random((n, 5)), curls)
    spread = rng.uniform(0.0, 1.0, size=n)
    pose = pose_from_curls(joint_names, curls, spread)
    pose[:, 1:] += rng.normal(0.0, np.deg2rad(4.0), size=pose[:, 1:].shape)
    pose = clamp_pose(pose, limits)
    if global_rotation:
        q = rng.normal(size=(n, 4))
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        angle = 2 * np.arccos(np.clip(np.abs(q[:, 0]), 0, 1))
        axis = q[:, 1:] * np.sign(q[:, :1])
        axis /= np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-9)
        pose[:, 0] = axis * angle[:, None]
    else:
        pose[:, 0] = 0.0
    return pose
