"""One check for a hand before anything draws or publishes it, live or replayed.

``docs/protocol.md`` promises that no NaN reaches a subscriber; the live estimators refuse NaN
landmarks, and a replayed file must not be able to bring back what they refuse. So both the
estimate stage and the hands-file reader ask :func:`hand_problem`, and the limits here are the
documented ones (``docs/inputs.md``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from calibration.camera import check_plausible
from calibration.errors import CalibrationError
from calibration.intrinsics import CameraIntrinsics
from realtime.types import SIDES, HandMesh

MAX_COORD_M = 10.0
"""Joints and vertices farther than this from the camera (m) are not a hand in view."""
MAX_PIXEL = 1e6
"""Reprojected keypoints beyond this (pixels) are garbage, not a hand off-screen."""
MAX_VERTICES = 50_000
"""Vertices per hand: the hand models have about a thousand."""
MAX_HANDS_PER_FRAME = 8
"""Hands in one frame (the detector tracks at most 4)."""
MAX_TRACK_ID = 2**31 - 1
MAX_FRAME_INDEX = 2**53
"""Frame indices above this are not exact as JSON numbers."""
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = 1920 * 1200
"""A replayed camera image larger than this (WUXGA, 2.3 MP; 1080p fits) is refused before an
image of its size is allocated: the replay draws every frame on a canvas of the recorded size,
and the pipeline's frame copies grow with it (a 4K one cost 140 MB, mixed sizes up to QHD
110 MB; the target is 100 MB over the idle process).
"""
MIN_IMAGE_SIDE = 16


def _array_problem(name: str, a: np.ndarray, shape: tuple, bound: float) -> str | None:
    if a.shape != shape:
        return f"{name} of shape {a.shape}, expected {shape}"
    if not a.size:
        return None
    bad, peak = _scan(np.ascontiguousarray(a, dtype=np.float64).reshape(-1))
    if bad:
        return f"{name} not finite ({bad} NaN/inf values)"
    if peak > bound:
        return f"{name} out of range (|value| {peak:.3g} > {bound:g})"
    return None


@njit(nogil=True, cache=True)
def _scan(flat):
    """How many values of ``flat`` are NaN or inf, and the largest ``|value|`` of the others:
    one compiled pass (six arrays a hand, every frame, live and replayed) instead of four
    NumPy calls with temporaries each."""
    bad = 0
    peak = 0.0
    for x in flat:
        if not math.isfinite(x):
            bad += 1
        elif abs(x) > peak:
            peak = abs(x)
    return bad, peak


def warmup() -> None:
    """Compile (or load from numba's on-disk cache) the array scan before the first hand."""
    _scan(np.zeros(1))


def hand_problem(hand: HandMesh, vertex_count: int | None = None) -> str | None:
    """Why ``hand`` must not be drawn or published (one short phrase), or None if it is sound.

    ``vertex_count``: the vertices every hand of this stream has (the hand model's, or 0 for
    joints only); None accepts any count up to :data:`MAX_VERTICES`.
    """
    if hand.handedness not in SIDES:
        return f"handedness {str(hand.handedness)[:40]!r} (expected 'right' or 'left')"
    if not 0.0 <= float(hand.score) <= 1.0:  # False for NaN too
        return f"score {hand.score!r} (expected 0-1)"
    if not math.isfinite(float(hand.timestamp)):
        return f"timestamp {hand.timestamp!r}"
    if not 0 <= hand.frame_index <= MAX_FRAME_INDEX:
        return f"frame_index {hand.frame_index} (expected 0-{MAX_FRAME_INDEX})"
    if not 0 <= hand.track_id <= MAX_TRACK_ID:
        return f"track_id {hand.track_id} (expected 0-{MAX_TRACK_ID})"
    n = len(hand.vertices)
    if vertex_count is not None and n != vertex_count:
        return f"{n} vertices, expected {vertex_count}"
    if n > MAX_VERTICES:
        return f"{n} vertices (more than {MAX_VERTICES})"
    return (_array_problem("joints", hand.joints, (21, 3), MAX_COORD_M)
            or _array_problem("vertices", hand.vertices, (n, 3), MAX_COORD_M)
            or _array_problem("vertex_std", hand.vertex_std, (n,), MAX_COORD_M)
            or ("vertex_std negative" if n and float(hand.vertex_std.min()) < 0 else None)
            or _array_problem("keypoints_2d", hand.keypoints_2d, (21, 2), MAX_PIXEL)
            or _array_problem("pose", hand.pose, (len(hand.pose), 3), 1e3)
            or _array_problem("shape", hand.shape, (len(hand.shape),), 1e3))


def camera_problem(camera: CameraIntrinsics) -> str | None:
    """Why a recorded camera cannot be replayed (one phrase), or None if it is plausible.

    Checked before an image of its size is allocated: the size is bounded, and the
    intrinsics pass :func:`calibration.camera.check_plausible` (as every loaded camera does).
    """
    w, h = camera.width, camera.height
    if not (MIN_IMAGE_SIDE <= w <= MAX_IMAGE_SIDE and MIN_IMAGE_SIDE <= h <= MAX_IMAGE_SIDE
            and w * h <= MAX_IMAGE_PIXELS):
        return (f"image {w}x{h} (sides {MIN_IMAGE_SIDE}-{MAX_IMAGE_SIDE} pixels, at most "
                f"{MAX_IMAGE_PIXELS:,} pixels)")
    try:  # the intrinsics: the one plausibility check every loaded camera passes
        check_plausible(camera)
    except CalibrationError as exc:
        return str(exc).split(";")[0]
    return None
