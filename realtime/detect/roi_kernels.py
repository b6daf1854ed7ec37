"""The landmark model's post-processing for all crops of a frame in one compiled call.

Why: per hand and frame, :mod:`realtime.detect.hand_rois` projects the landmarks and the world
landmarks back (``project_landmarks``, ``project_world``), predicts the next frame's crop
(``landmarks_to_rect``) and the hand's pixel box: some 40 small NumPy operations for two
hands, ~0.4 ms of a two-hand frame whose whole budget is ~12 ms. Here it is the same float64
arithmetic in one call (tests compare it with the NumPy reference to 1e-9).

Kernels are ``@njit(nogil=True, cache=True)`` like ``realtime.mesh.smoothing``: compiled once per
installation, loaded from numba's on-disk cache afterwards (:func:`warmup`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from realtime.detect.hand_rois import (
    HAND_SCALE,
    HAND_SHIFT_Y,
    LANDMARK_INPUT,
    NORMALIZE_Z,
    ROI_LANDMARKS,
)

ROI_INDEX = ROI_LANDMARKS.astype(np.int64)


@njit(nogil=True, cache=True)
def _normalize_radians(angle):
    return angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi))


@njit(nogil=True, cache=True)
def landmark_outputs(raw, raw_world, rects, image_w, image_h, roi, lm, pxs, world, next_rects,
                     boxes):
    """For each crop ``b``: ``lm[b]`` (21, 3) image-normalised landmarks, ``pxs[b]``
    (21, 2) the same in pixels, ``world[b]`` (21, 3) metres in camera axes,
    ``next_rects[b]`` (5,) the next frame's crop and ``boxes[b]`` (4,) the landmarks' pixel
    box (xmin, ymin, xmax, ymax).

    ``raw``/``raw_world`` (B, 63): the model's outputs; ``rects`` (B, 5) the crops they came
    from; ``roi``: :data:`realtime.detect.hand_rois.ROI_LANDMARKS`. The same operations as
    ``hand_rois.project_landmarks``, ``project_world`` and ``landmarks_to_rect``.
    """
    k = 1.0 / LANDMARK_INPUT
    n_roi = roi.shape[0]
    pts = np.empty((n_roi, 2))
    for b in range(rects.shape[0]):
        cx, cy, w, h, rot = rects[b, 0], rects[b, 1], rects[b, 2], rects[b, 3], rects[b, 4]
        c, s = math.cos(rot), math.sin(rot)
        m00, m01, m10, m11 = c * w * k, s * h * k, -s * w * k, c * h * k
        m22 = w * k / NORMALIZE_Z
        t0, t1 = cx - (c - s) * w / 2, cy - (s + c) * h / 2
        xmin = ymin = np.inf
        xmax = ymax = -np.inf
        for i in range(21):
            x = np.float64(raw[b, 3 * i])
            y = np.float64(raw[b, 3 * i + 1])
            z = np.float64(raw[b, 3 * i + 2])
            px = x * m00 + y * m10 + t0
            py = x * m01 + y * m11 + t1
            lm[b, i, 0] = px
            lm[b, i, 1] = py
            lm[b, i, 2] = z * m22
            wx = np.float64(raw_world[b, 3 * i])
            wy = np.float64(raw_world[b, 3 * i + 1])
            world[b, i, 0] = wx * c - wy * s
            world[b, i, 1] = wx * s + wy * c
            world[b, i, 2] = np.float64(raw_world[b, 3 * i + 2])
            qx, qy = px * image_w, py * image_h
            pxs[b, i, 0] = qx
            pxs[b, i, 1] = qy
            xmin, xmax = min(xmin, qx), max(xmax, qx)
            ymin, ymax = min(ymin, qy), max(ymax, qy)
        boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3] = xmin, ymin, xmax, ymax
        # landmarks_to_rect, in pixels
        for j in range(n_roi):
            pts[j, 0] = lm[b, roi[j], 0] * image_w
            pts[j, 1] = lm[b, roi[j], 1] * image_h
        wx0, wy0 = pts[0, 0], pts[0, 1]
        mx = ((pts[4, 0] + pts[8, 0]) / 2 + pts[6, 0]) / 2
        my = ((pts[4, 1] + pts[8, 1]) / 2 + pts[6, 1]) / 2
        r = _normalize_radians(math.pi / 2 - math.atan2(-(my - wy0), mx - wx0))
        lo0, lo1 = pts[:, 0].min(), pts[:, 1].min()
        hi0, hi1 = pts[:, 0].max(), pts[:, 1].max()
        ccx, ccy = (hi0 + lo0) / 2, (hi1 + lo1) / 2
        cr, sr = math.cos(r), math.sin(r)
        plo0 = plo1 = np.inf
        phi0 = phi1 = -np.inf
        for j in range(n_roi):
            dx, dy = pts[j, 0] - ccx, pts[j, 1] - ccy
            q0, q1 = dx * cr + dy * sr, dx * -sr + dy * cr
            plo0, phi0 = min(plo0, q0), max(phi0, q0)
            plo1, phi1 = min(plo1, q1), max(phi1, q1)
        pcx, pcy = (plo0 + phi0) / 2, (plo1 + phi1) / 2
        rcx = (pcx * cr - pcy * sr + ccx) / image_w
        rcy = (pcx * sr + pcy * cr + ccy) / image_h
        rw, rh = (phi0 - plo0) / image_w, (phi1 - plo1) / image_h
        # transform_rect(scale HAND_SCALE, shift_y HAND_SHIFT_Y), square on the long side
        rcx = rcx - rh * image_h * HAND_SHIFT_Y * math.sin(r) / image_w
        rcy = rcy + rh * HAND_SHIFT_Y * math.cos(r)
        long_side = max(rw * image_w, rh * image_h)
        next_rects[b, 0], next_rects[b, 1] = rcx, rcy
        next_rects[b, 2] = long_side / image_w * HAND_SCALE
        next_rects[b, 3] = long_side / image_h * HAND_SCALE
        next_rects[b, 4] = r


def warmup() -> None:
    """Compile (or load from the on-disk cache) the kernel for the model's float32 outputs."""
    raw = np.zeros((1, 63), np.float32)
    raw[0, ::3] = np.arange(21)
    out = (np.empty((1, 21, 3)), np.empty((1, 21, 2)), np.empty((1, 21, 3)), np.empty((1, 5)),
           np.empty((1, 4)))
    landmark_outputs(raw, raw, np.array([[0.5, 0.5, 0.2, 0.2, 0.1]]), 640, 480, ROI_INDEX, *out)
