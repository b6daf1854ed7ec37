"""What a hand's keypoints and pose say: its wrist frame and finger flexion.

Pure functions over MediaPipe's 21 keypoints (``models.topology.Keypoint`` order) and the
hand model's anatomical pose; plain NumPy and Python, no Numba, so stream clients can use
them. The stream publishes both per hand (``realtime.stream.protocol``);
``realtime.stream.pack_kernels`` holds a compiled twin of :func:`wrist_frame`, tested equal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

#: The 15 finger joints of :func:`finger_angles`, by hand-model joint name.
FINGER_JOINTS = (
    "thumb_cmc", "thumb_mcp", "thumb_ip",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
)


def wrist_frame(joints: np.ndarray) -> np.ndarray:
    """The (3,3) rotation of the hand frame (columns: its axes in the keypoints' frame).

    x from the pinky MCP towards the index MCP (orthogonalised against y), y from the middle
    MCP towards the wrist, z = x × y (out of the back of a right hand). The identity when
    the keypoints ``(>=21, 3)`` are degenerate or not finite.

    Plain-float arithmetic on four keypoints: NumPy's per-call overhead on 3-vectors
    (``cross``, ``norm``) cost ~50 µs per hand, a fifth of the publish budget.
    """
    j = np.asarray(joints, dtype=np.float64)
    w, i, m, p = j[0].tolist(), j[5].tolist(), j[9].tolist(), j[17].tolist()
    y = [w[0] - m[0], w[1] - m[1], w[2] - m[2]]  # middle MCP -> wrist
    x = [i[0] - p[0], i[1] - p[1], i[2] - p[2]]  # pinky MCP -> index MCP
    ny = math.sqrt(y[0] * y[0] + y[1] * y[1] + y[2] * y[2])
    if not math.isfinite(ny) or ny < 1e-9:
        return np.eye(3)
    y = [c / ny for c in y]
    d = x[0] * y[0] + x[1] * y[1] + x[2] * y[2]
    x = [x[k] - y[k] * d for k in range(3)]
    nx = math.sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2])
    if not math.isfinite(nx) or nx < 1e-9:
        return np.eye(3)
    x = [c / nx for c in x]
    z = [x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]]
    return np.array([[x[0], y[0], z[0]], [x[1], y[1], z[1]], [x[2], y[2], z[2]]])


@lru_cache(maxsize=16)
def finger_joint_rows(joint_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the :data:`FINGER_JOINTS` in a pose with joints ``joint_names``: ``(15,)``
    indices (0 where missing) and ``(15,)`` bool, whether the model has the joint."""
    index = {n: i for i, n in enumerate(joint_names)}
    have = np.array([n in index for n in FINGER_JOINTS])
    return np.array([index.get(n, 0) for n in FINGER_JOINTS]), have


def finger_angles(pose: np.ndarray, joint_names: Iterable[str]) -> np.ndarray:
    """Flexion (radians) of the 15 :data:`FINGER_JOINTS` from an anatomical pose (J,3).

    The flexion-axis component of each joint's anatomical axis-angle: 0 straight, positive
    towards the palm; NaN where the model lacks the joint (or ``pose`` does not match
    ``joint_names``).
    """
    names = tuple(joint_names)
    pose = np.asarray(pose, dtype=np.float64).reshape(-1, 3) if np.size(pose) else np.zeros((0, 3))
    if len(pose) != len(names) or not names:
        return np.full(len(FINGER_JOINTS), np.nan)
    idx, have = finger_joint_rows(names)
    return np.where(have, pose[idx, 0], np.nan)
