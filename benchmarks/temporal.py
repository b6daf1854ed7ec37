"""Temporal-quality metrics over tracked hands in a video: pure functions on arrays.

A hand sequence is given per track as the frame indices it was seen in and its points there.
Acceleration is the second difference over frames, taken only inside runs of consecutive
frames (a gap would read as a jump). Used by ``benchmarks.realvideo``; the lag search is
``benchmarks.smoothing.best_shift``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from benchmarks.smoothing import best_shift

LAG_SEARCH_FRAMES = 5.0  # the lag is searched over +-5 frames


def consecutive_runs(frames: np.ndarray) -> list[slice]:
    """Slices of ``frames`` (increasing ints) where each index follows the previous one."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    edges = [0, *breaks.tolist(), len(frames)]
    return [slice(a, b) for a, b in pairwise(edges)]


def accel_norms(frames: np.ndarray, points: np.ndarray) -> np.ndarray:
    """|second difference| of every point ``(T,P,3)`` inside runs of consecutive frames,
    flattened (units of ``points`` per frame^2); runs under 3 frames add nothing."""
    out = [np.linalg.norm(np.diff(points[run], 2, axis=0), axis=-1).ravel()
           for run in consecutive_runs(frames) if run.stop - run.start >= 3]
    return np.concatenate(out) if out else np.zeros(0)


def wrist_relative(joints: np.ndarray) -> np.ndarray:
    """The 20 non-wrist joints minus the wrist, ``(...,21,3) -> (...,20,3)``."""
    return joints[..., 1:, :] - joints[..., :1, :]


def mean_accel(tracks: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean acceleration pooled over tracks ``[(frames (T,), points (T,P,3)), ...]``; NaN
    when no track has a run of 3 frames."""
    norms = np.concatenate([accel_norms(f, p) for f, p in tracks] or [np.zeros(0)])
    return float(norms.mean()) if len(norms) else float("nan")


def side_flips(sides: Sequence[str]) -> int:
    """Changes of handedness between consecutive observations of one track."""
    return int(sum(a != b for a, b in pairwise(sides)))


def hand_size_px(kp: np.ndarray) -> float:
    """The larger side of the bounding box of ``(21,2)`` pixel keypoints."""
    return float(np.ptp(kp, axis=0).max())


def match_hands(prev: Sequence[np.ndarray], cur: Sequence[np.ndarray],
                max_rel: float = 0.5) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of hands in consecutive frames (``(21,2)`` pixels each) that are the
    same hand: greedily nearest (mean keypoint distance) first, each at most ``max_rel`` of
    the hand's size away."""
    cand = sorted((float(np.linalg.norm(a - b, axis=1).mean()), i, j)
                  for i, a in enumerate(prev) for j, b in enumerate(cur))
    used_i, used_j, pairs = set(), set(), []
    for dist, i, j in cand:
        if i in used_i or j in used_j or dist > max_rel * hand_size_px(prev[i]):
            continue
        used_i.add(i)
        used_j.add(j)
        pairs.append((i, j))
    return pairs


def link_tracks(frames_kp: Sequence[Sequence[np.ndarray]], max_rel: float = 0.5
                ) -> list[list[int]]:
    """Track ids for untracked per-frame hands (``frames_kp[t][k]`` ``(21,2)`` pixels): a hand
    keeps the id of the hand it matches in the previous frame (:func:`match_hands`), else
    gets a new one. How MediaPipe's output, which has no ids, is split into tracks."""
    ids: list[list[int]] = []
    next_id = 0
    for t, cur in enumerate(frames_kp):
        here = [-1] * len(cur)
        if t > 0:
            for i, j in match_hands(frames_kp[t - 1], cur, max_rel):
                here[j] = ids[t - 1][i]
        for j in range(len(cur)):
            if here[j] < 0:
                here[j], next_id = next_id, next_id + 1
        ids.append(here)
    return ids


def identity_switches(frames: Sequence[Sequence[tuple[int, np.ndarray]]],
                      max_rel: float = 0.5) -> int:
    """How often a hand that stays visible (matched between consecutive frames by its
    ``(21,2)`` pixel keypoints, :func:`match_hands`) changes its track id.
    ``frames[t]`` is ``[(track_id, keypoints), ...]``."""
    switches = 0
    for prev, cur in pairwise(frames):
        for i, j in match_hands([kp for _, kp in prev], [kp for _, kp in cur], max_rel):
            switches += prev[i][0] != cur[j][0]
    return switches


def lag_frames(ours: np.ndarray, ref: np.ndarray, max_shift: float = LAG_SEARCH_FRAMES
               ) -> float:
    """Lag (frames, positive: ``ours`` behind) of ``ours (T,P,3)`` against ``ref`` over one
    run of consecutive frames, searched over +-``max_shift``. A constant offset per joint is
    ignored (the two skeletons differ), so what aligns is the motion. NaN when the run is too
    short to search."""
    margin = int(np.ceil(max_shift)) + 1
    if len(ours) < 2 * margin + 10:
        return float("nan")
    return best_shift(ours, ref, margin=margin, shift_range=(-max_shift, max_shift),
                      per_point_offset=True)


def aligned_r2(ours: np.ndarray, ref: np.ndarray, shift: float) -> float:
    """Fraction of ``ref``'s motion (variance about each point's mean) that ``ours`` shifted
    by ``round(shift)`` frames explains, a constant offset per point allowed: near 1 when
    the two follow the same motion, near or below 0 when the shared motion is lost in noise
    (then a lag found between them means nothing)."""
    s = round(float(shift))
    margin = abs(s)
    o, r = ours[margin:len(ours) - margin], ref[margin - s:len(ref) - margin - s]
    d = o - r
    d = d - d.mean(0)
    spread = np.sum((r - r.mean(0)) ** 2)
    return float(1.0 - np.sum(d ** 2) / spread) if spread > 0 else float("nan")
