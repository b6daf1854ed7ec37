"""A hand's 2D landmarks carried to the next frame by sparse optical flow.

Why: at 60 FPS two cores leave ~33 ms of CPU per frame, and the landmark model on both hands
is the largest part of it. With ``landmark_refresh="alternate"`` the scheduled detector runs
the model on one hand per frame and moves the other hand's 21 landmarks by measuring how the
image moved there (pyramidal Lucas-Kanade, ``cv2.calcOpticalFlowPyrLK``; Bouguet 2000,
"Pyramidal implementation of the Lucas Kanade feature tracker") on a small grayscale crop
around the hand: ~1.5-2.5 ms of CPU on a loaded 2-core VM, about a quarter of a lite landmark
crop's.

Each landmark is tracked forward and back again (Kalal et al. 2010, "Forward-backward error");
a point whose round trip misses its start by more than ``max_fb_error_px``, or that LK lost,
follows the median motion of the good points. Too few good points means the flow cannot be
trusted here (fast motion, blur, occlusion): the caller then runs the model on that hand.
OpenCV's Python binding does not take prebuilt pyramids (``buildOpticalFlowPyramid``'s
output is refused by ``calcOpticalFlowPyrLK``), so each pass builds its own (~0.3 of its
~0.7 ms of CPU on a ~260x260 crop).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FlowConfig:
    """Lucas-Kanade settings. ``win_px``: the search window's side at each pyramid level;
    ``levels``: pyramid levels above the crop (motion up to ~``win_px * 2**levels / 2`` px
    is found); ``margin``: the crop around the hand's box, as a fraction of its larger side
    (plus ``win_px``); ``max_fb_error_px``: largest forward-backward round-trip error of a
    good point; ``min_good_points``: fewer good points of 21 -> the flow failed."""

    win_px: int = 15
    levels: int = 2
    margin: float = 0.3
    max_fb_error_px: float = 1.0
    min_good_points: int = 12

    def __post_init__(self) -> None:
        if not 5 <= self.win_px <= 63 or self.win_px % 2 == 0:
            raise ValueError(f"win_px must be an odd number 5-63, got {self.win_px}")
        if not 0 <= self.levels <= 5:
            raise ValueError(f"levels must be 0-5, got {self.levels}")
        if not 0.0 <= self.margin <= 2.0:
            raise ValueError(f"margin must be in [0, 2], got {self.margin}")
        if not self.max_fb_error_px > 0:
            raise ValueError(f"max_fb_error_px must be > 0, got {self.max_fb_error_px}")
        if not 1 <= self.min_good_points <= 21:
            raise ValueError(f"min_good_points must be 1-21, got {self.min_good_points}")


@dataclass(frozen=True)
class FlowCrop:
    """A grayscale crop of one frame around a hand: ``gray (h, w)`` uint8 and the pixel
    window ``(x0, y0, x1, y1)`` of the frame it was cut from (the next frame is cut from the
    same window, so the points share one coordinate frame)."""

    gray: np.ndarray
    window: tuple[int, int, int, int]


def flow_window(landmarks_px: np.ndarray, image_w: int, image_h: int,
                config: FlowConfig) -> tuple[int, int, int, int]:
    """The crop ``(x0, y0, x1, y1)`` (pixels, clipped to the image) around ``(21, 2)``
    landmarks: their box grown by ``margin`` of its larger side plus one LK window."""
    lo, hi = landmarks_px.min(0), landmarks_px.max(0)
    pad = config.margin * float((hi - lo).max()) + config.win_px
    x0, y0 = (int(max(0.0, v - pad)) for v in lo)
    x1 = int(min(float(image_w), hi[0] + pad + 1))
    y1 = int(min(float(image_h), hi[1] + pad + 1))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def cut_gray(image: np.ndarray, window: tuple[int, int, int, int]) -> FlowCrop:
    """The grayscale crop of a BGR frame over ``window`` (only the crop is converted)."""
    x0, y0, x1, y1 = window
    return FlowCrop(cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY), window)


def track_points(prev: FlowCrop, image: np.ndarray, points_px: np.ndarray,
                 config: FlowConfig) -> tuple[np.ndarray | None, int]:
    """``points_px (21, 2)`` of the frame ``prev`` was cut from, moved to ``image`` (BGR,
    the next frame): the moved points (pixels) and how many were tracked well; None instead
    of the points when fewer than ``min_good_points`` were (the caller re-measures)."""
    cur = cut_gray(image, prev.window)
    x0, y0 = prev.window[:2]
    origin = np.array([x0, y0], np.float32)
    pts = (np.asarray(points_px, np.float32) - origin).reshape(-1, 1, 2)
    win = (config.win_px, config.win_px)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(prev.gray, cur.gray, pts, None, winSize=win,
                                           maxLevel=config.levels, criteria=criteria)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(cur.gray, prev.gray, fwd, None, winSize=win,
                                            maxLevel=config.levels, criteria=criteria)
    fb = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
    good = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= config.max_fb_error_px)
    n_good = int(good.sum())
    if n_good < config.min_good_points:
        return None, n_good
    moved = fwd.reshape(-1, 2).astype(np.float64) + origin
    if n_good < len(good):  # a lost point follows the median motion of the good ones
        shift = np.median(moved[good] - points_px[good], axis=0)
        moved[~good] = points_px[~good] + shift
    return moved, n_good
