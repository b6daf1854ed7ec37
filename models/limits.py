"""Anatomical joint limits of the open hand, per joint, in degrees (stored in radians).

Axes follow each joint's anatomical frame (``models.hand_model``): 0 flexion (positive
curls toward the palm), 1 abduction (sideways), 2 twist (about the bone). Limits are
relative to the model's rest pose, a relaxed hand whose fingers are already bent
10-25 degrees, so small negative flexion opens the hand flat. Ranges follow the usual
clinical active ranges of motion (e.g. Hume et al. 1990), narrowed for twist, which
the fingers barely have.
"""

from __future__ import annotations

import numpy as np

# (flexion min,max), (abduction min,max), (twist min,max), degrees.
_LIMITS_DEG: dict[str, tuple[tuple[float, float], ...]] = {
    "wrist": ((-180, 180), (-180, 180), (-180, 180)),  # global orientation: free
    "thumb_cmc": ((-50, 60), (-50, 45), (-40, 40)),
    "thumb_mcp": ((-25, 60), (-20, 20), (-20, 20)),
    "thumb_ip": ((-30, 85), (-10, 10), (-10, 10)),
    "finger_cmc": ((-4, 10), (-4, 4), (-4, 4)),
    "ring_cmc": ((-5, 18), (-5, 5), (-8, 8)),
    "pinky_cmc": ((-5, 25), (-6, 6), (-10, 10)),
    "finger_mcp": ((-35, 90), (-22, 22), (-8, 8)),
    "finger_pip": ((-15, 105), (-4, 4), (-4, 4)),
    "finger_dip": ((-20, 75), (-3, 3), (-3, 3)),
}


def limit_class(joint_name: str) -> str:
    """Which row of the table a joint uses, from its name (``index_pip``, ``thumb_cmc`` …)."""
    finger, _, part = joint_name.partition("_")
    if finger in ("wrist", "thumb"):
        return joint_name
    if part == "cmc":
        return f"{finger}_cmc" if finger in ("ring", "pinky") else "finger_cmc"
    return f"finger_{part}"


def default_limits(joint_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Limits ``(J,3,2)`` in radians for the named joints."""
    rows = []
    for name in joint_names:
        key = limit_class(name)
        if key not in _LIMITS_DEG:
            raise KeyError(f"no joint limits for joint {name!r} (class {key!r})")
        rows.append(_LIMITS_DEG[key])
    return np.deg2rad(np.array(rows, dtype=np.float64))


def clamp_pose(pose: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Clip an anatomical axis-angle pose ``(B,J,3)`` into ``limits (J,3,2)``.

    Per-axis clipping of a rotation vector is exact for one-axis rotations and a close
    approximation for the small multi-axis ones fingers make.
    """
    return np.clip(pose, limits[..., 0], limits[..., 1])
