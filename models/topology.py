"""The 21 hand keypoints (MediaPipe / OpenPose order) and the skeleton's edges, as data.

Everything that names a keypoint or draws a bone imports it from here.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Keypoint(IntEnum):
    """MediaPipe hand landmark indices."""

    WRIST = 0
    THUMB_CMC = 1
    THUMB_MCP = 2
    THUMB_IP = 3
    THUMB_TIP = 4
    INDEX_MCP = 5
    INDEX_PIP = 6
    INDEX_DIP = 7
    INDEX_TIP = 8
    MIDDLE_MCP = 9
    MIDDLE_PIP = 10
    MIDDLE_DIP = 11
    MIDDLE_TIP = 12
    RING_MCP = 13
    RING_PIP = 14
    RING_DIP = 15
    RING_TIP = 16
    PINKY_MCP = 17
    PINKY_PIP = 18
    PINKY_DIP = 19
    PINKY_TIP = 20


NUM_KEYPOINTS = 21

#: Parent of each keypoint in the kinematic tree (-1 for the wrist).
KEYPOINT_PARENTS = np.array(
    [-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19], dtype=np.int64
)

#: Bones as (parent, child) keypoint pairs: the 20 edges of the tree.
BONES: tuple[tuple[int, int], ...] = tuple(
    (int(p), c) for c, p in enumerate(KEYPOINT_PARENTS) if p >= 0
)

#: Extra edges across the palm, as MediaPipe draws them.
PALM_EDGES: tuple[tuple[int, int], ...] = ((5, 9), (9, 13), (13, 17))

#: Everything a skeleton drawing needs.
SKELETON_EDGES: tuple[tuple[int, int], ...] = BONES + PALM_EDGES

FINGERS: dict[str, tuple[int, int, int, int]] = {
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}

TIPS = (4, 8, 12, 16, 20)
MCPS = (5, 9, 13, 17)
