"""Pinch events: thumb tip to index tip, with hysteresis and debouncing, per track.

The distance is the 3D distance in meters between the thumb tip (joint 4) and the index tip
(joint 8) of the smoothed joints, in the camera frame: a rigid motion of the hand (turning
it, tilting it, moving it) leaves it unchanged, unlike a 2D distance in the image, which
shrinks when the fingers point at the camera. Near a pinch (the tips under 4-6 cm apart)
the learned pinch head (``realtime.mesh.pinch_head``) corrects it, from the joints' shape in
the hand's own frame, so still invariant to a rigid motion (``PinchConfig.distance``:
"learned", the default, or "joints", the plain tip distance; :func:`distance_measure`).

A pinch *engages* when the distance falls below ``engage_m`` and *releases* when it rises
above ``release_m`` (> ``engage_m``); in between the state holds, so the noise of a
distance hovering near one threshold cannot make it chatter. The defaults, 15 / 30 mm, are
the engage/release distances XR hand-interaction toolkits use for a thumb-index pinch.

Debounce (``debounce_frames``): the hysteresis must ask for the other state on that many
consecutive frames before the state flips. Counted in frames, not seconds, because what it
rejects is a one-frame outlier (a regressor glitch, a detector's bad frame), which is one
frame at any frame rate; the default of 2 rejects every single-frame blip for one frame of
latency (33 ms at 30 FPS). 1 turns debouncing off.

The math is pure functions (:func:`pinch_distance`, :func:`hysteresis_target`,
:func:`hysteresis`); the per-track state is :class:`PinchTracker`, which forgets a track
on the first frame it is missing: a consumer never sees a stale pinch, and a hand that
comes back starts released (its next engage is a new event).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.types import HandMesh, Pinch

THUMB_TIP = 4
INDEX_TIP = 8
DISTANCES = ("learned", "joints")


@dataclass(frozen=True)
class PinchConfig:
    """Pinch thresholds (meters) and debounce (frames); see the module docstring.

    ``distance``: how the thumb-index distance is measured: "learned" (default: the pinch
    head, ``realtime.mesh.pinch_head``, on the hand's joints; ``head`` names other weights
    than the shipped ones) or "joints" (the plain distance between the joints' tips).
    """

    engage_m: float = 0.015
    release_m: float = 0.030
    debounce_frames: int = 2
    distance: str = "learned"
    head: Path | None = None

    def __post_init__(self) -> None:
        if self.distance not in DISTANCES:
            raise ValueError(f"PinchConfig.distance must be one of {DISTANCES}, got "
                             f"{self.distance!r}")
        for name in ("engage_m", "release_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"PinchConfig.{name} must be a finite number > 0, got {value!r}")
        if not self.release_m > self.engage_m:
            raise ValueError(f"PinchConfig.release_m ({self.release_m}) must be larger than "
                             f"engage_m ({self.engage_m}): hysteresis needs a gap")
        if not (isinstance(self.debounce_frames, int) and self.debounce_frames >= 1):
            raise ValueError(f"PinchConfig.debounce_frames must be an integer >= 1, got "
                             f"{self.debounce_frames!r}")


# --------------------------------------------------------------------------- pure math


def pinch_distance(joints: np.ndarray) -> np.ndarray | float:
    """Thumb tip to index tip in meters: ``(...,21,3)`` joints -> ``(...)`` distances.

    A single hand ``(21,3)`` gives a float; too few joints give NaN (no pinch to measure).
    """
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim < 2 or j.shape[-2] <= INDEX_TIP or j.shape[-1] != 3:
        return math.nan if j.ndim <= 2 else np.full(j.shape[:-2], np.nan)
    d = np.linalg.norm(j[..., THUMB_TIP, :] - j[..., INDEX_TIP, :], axis=-1)
    return float(d) if d.ndim == 0 else d


def hysteresis_target(engaged: bool, distance: float, config: PinchConfig) -> bool:
    """The state ``distance`` asks for when the state is ``engaged``: engage below
    ``engage_m``, release above ``release_m``, else (and for NaN) keep the state."""
    if engaged:
        return not distance > config.release_m
    return bool(distance < config.engage_m)


def hysteresis(distances: np.ndarray, config: PinchConfig, engaged: bool = False) -> np.ndarray:
    """``(N,)`` bool: the hysteresis state along a sequence of distances, no debouncing.

    The ideal the tracker approximates (the ground truth of ``benchmarks/pinch.py``).
    """
    out = np.zeros(len(distances), dtype=bool)
    for i, d in enumerate(np.asarray(distances, dtype=np.float64)):
        engaged = hysteresis_target(engaged, float(d), config)
        out[i] = engaged
    return out


def distance_measure(config: PinchConfig) -> Callable[[Sequence[HandMesh]], np.ndarray]:
    """``hands -> (N,)`` thumb-index distances in meters, as ``config.distance`` says.

    "learned" loads the pinch head once (an error names what to do when its weights are
    missing) and runs every hand of a frame in one NumPy call.
    """
    if config.distance == "joints":
        return lambda hands: np.array([pinch_distance(h.joints) for h in hands], dtype=float)
    from realtime.mesh.pinch_head import DEFAULT_HEAD, PinchHead

    head = PinchHead(config.head or DEFAULT_HEAD)

    def learned(hands: Sequence[HandMesh]) -> np.ndarray:
        if not hands:
            return np.zeros(0)
        joints = np.stack([np.asarray(h.joints, dtype=np.float64) for h in hands])
        if joints.shape[1:] != (21, 3):
            return np.array([pinch_distance(h.joints) for h in hands], dtype=float)
        return head.distance(joints, np.array([h.handedness == "right" for h in hands]))

    return learned


# --------------------------------------------------------------------------- state


@dataclass
class _TrackState:
    engaged: bool = False
    pending: int = 0  # consecutive frames the hysteresis asked for the other state


class PinchTracker:
    """Per-track pinch state machine: ``update({track_id: distance}) -> {track_id: Pinch}``.

    Call once per frame with every track of the frame (an empty mapping for a frame
    without hands): tracks missing from a frame are forgotten. A new track starts
    released, so even its first engage is debounced and reported as an event.
    """

    def __init__(self, config: PinchConfig = PinchConfig()) -> None:
        if not isinstance(config, PinchConfig):
            raise ValueError(f"config must be a PinchConfig, got {type(config).__name__}")
        self.config = config
        self._tracks: dict[int, _TrackState] = {}

    @property
    def track_ids(self) -> list[int]:
        return sorted(self._tracks)

    def reset(self) -> None:
        """Forget every track."""
        self._tracks.clear()

    def update(self, distances: Mapping[int, float]) -> dict[int, Pinch]:
        """One frame: each track's distance (meters, NaN if unknown) -> its pinch."""
        for tid in [t for t in self._tracks if t not in distances]:
            del self._tracks[tid]
        out = {}
        for tid, distance in distances.items():
            state = self._tracks.setdefault(tid, _TrackState())
            distance = float(distance)
            changed = False
            if hysteresis_target(state.engaged, distance, self.config) == state.engaged:
                state.pending = 0
            else:
                state.pending += 1
                if state.pending >= self.config.debounce_frames:
                    state.engaged, state.pending, changed = not state.engaged, 0, True
            out[tid] = Pinch(distance, state.engaged, changed)
        return out
