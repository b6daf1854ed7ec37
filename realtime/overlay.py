"""The AR overlay: hand meshes drawn over the video frame, z-buffered, with skeleton and HUD.

Perspective-correct placement comes from drawing the camera-frame meshes with the camera's
own intrinsics; both hands share one z-buffer so that they occlude each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.topology import SKELETON_EDGES
from realtime.raster import draw_skeleton, new_zbuffer, render_mesh
from realtime.types import HandMesh

# RGB in [0,1]: a cool tint for right hands, a warm one for left hands.
HAND_COLORS = {"right": (0.35, 0.70, 0.95), "left": (0.98, 0.62, 0.30)}
SKELETON_BGR = {"right": (255, 235, 200), "left": (200, 230, 255)}


@dataclass(frozen=True)
class OverlayConfig:
    """What the overlay draws."""

    mesh_alpha: float = 0.65
    draw_mesh: bool = True
    draw_skeleton: bool = True
    draw_labels: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.mesh_alpha <= 1.0:
            raise ValueError(f"mesh_alpha must be in [0, 1], got {self.mesh_alpha}")


def draw_hands(
    image: np.ndarray,
    hands: list[HandMesh],
    faces_for: dict[str, np.ndarray],
    K: np.ndarray,  # noqa: N803
    config: OverlayConfig = OverlayConfig(),
) -> np.ndarray:
    """Draw ``hands`` into a copy of ``image`` (BGR) and return it."""
    out = image.copy()
    if config.draw_mesh and hands:
        zbuf = new_zbuffer(out.shape[0], out.shape[1])
        for hand in hands:
            render_mesh(out, hand.vertices, faces_for[hand.handedness], K,
                        np.array(HAND_COLORS[hand.handedness]), alpha=config.mesh_alpha,
                        zbuffer=zbuf)
    for hand in hands:
        if config.draw_skeleton:
            draw_skeleton(out, hand.keypoints_2d, SKELETON_EDGES, SKELETON_BGR[hand.handedness], 2)
        if config.draw_labels:
            x, y = hand.keypoints_2d[0]
            depth_cm = hand.joints[0, 2] * 100.0
            text = f"{hand.handedness} #{hand.track_id}  {hand.score:.2f}  {depth_cm:.0f} cm"
            _label(out, text, (int(x) - 40, int(y) + 28))
    return out


def _label(image: np.ndarray, text: str, org: tuple[int, int]) -> None:
    h, w = image.shape[:2]
    x = int(np.clip(org[0], 2, max(2, w - 8 * len(text))))
    y = int(np.clip(org[1], 16, h - 4))
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                cv2.LINE_AA)


def draw_hud(image: np.ndarray, lines: list[str]) -> None:
    """A translucent box of status lines in the top-left corner (in place)."""
    if not lines:
        return
    width = 12 + 8 * max(len(s) for s in lines)
    height = 10 + 20 * len(lines)
    roi = image[4:4 + height, 4:4 + width]
    roi[:] = (roi * 0.45).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(image, line, (10, 22 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
