"""Stable track ids for hands across frames, from handedness plus position.

Each frame's detections are matched to the live tracks by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``): as many pairs as the distance gate allows, then
the minimal total distance, not nearest-first: when two hands cross, the greedy choice for
one hand can steal the other's track, while the minimal sum keeps both. Distances are
measured from each track's *predicted* position (its last position plus its last velocity
times the frames since it was seen), so a hand that vanishes for a few frames (motion blur,
occlusion) and comes back where it was heading gets its old id back, and two hands passing
each other are told apart by where they were going.

Handedness rule. MediaPipe sometimes flips a hand's label for a frame or two. A detection may
keep a track of the *other* side only when position says so unambiguously: that track is
within ``flip_radius_fraction`` of the image diagonal of the detection and it is the only
live track that near (so no track of the detection's own side is near it either). Otherwise
labels win: a detection is matched only to tracks of its own side. A track's side changes
only after ``relabel_after_frames`` consecutive frames with the other label, so a one-frame
flip leaves the track's side (:meth:`HandTracker.handedness`) as it was.

Fused handedness (``fuse_handedness``, on by default). MediaPipe's label swaps for many
frames in a row when hands cross or touch, and sometimes gives both hands the same label.
Each detection's side is then judged from three witnesses together, as log-odds:

* MediaPipe's label and score (``logit(score)``), down-weighted while another hand is
  near (where the classifier is known to be confused);
* geometry: the chirality of the metric 3D landmarks (:func:`chirality`), which a label
  cannot flip: fingers and thumb bend toward the palm, whose normal is fixed by the index
  and pinky MCPs, so the sign tells a right hand from its mirror image;
* the frame: two hands in one frame are one left and one right, so when both claim the
  same side, the one with weaker evidence takes the other.

A detection whose side is in doubt (weak log-odds) may also take a track of the other side,
at a cost that grows with its certainty: it follows its motion, not a doubtful label.

A track keeps a decaying sum of its detections' log-odds (its memory) and changes side
only when that sum has changed sign *and* ``relabel_after_frames`` detections in a row
disagreed (hysteresis).

Pure bookkeeping: no I/O, no threads; one tracker per pipeline, called from one stage.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np
from numba import njit
from scipy.optimize import linear_sum_assignment

from realtime.types import Detection

log = logging.getLogger(__name__)

_INFEASIBLE = 1e6  # cost of a forbidden pairing (finite keeps the assignment well posed)


@dataclass(frozen=True)
class TrackerConfig:
    """How far and how long a hand may move or vanish and still keep its id.

    Distances are fractions of the image diagonal, so the same config fits any resolution.
    """

    max_gap_frames: int = 15  # a track unseen for more frames than this is forgotten
    max_jump_fraction: float = 0.3  # farthest match from the predicted position
    flip_radius_fraction: float = 0.1  # how near a track must be to override the label
    relabel_after_frames: int = 3  # consecutive other-label frames before a track's side flips
    fuse_handedness: bool = True  # label + geometry + one-of-each + track memory (see above)
    label_weight: float = 1.0  # log-odds per unit of logit(MediaPipe's score)
    near_label_weight: float = 0.3  # the label's weight while another hand is near
    geometry_weight: float = 3.0  # log-odds of a clearly curled hand's chirality
    geometry_scale: float = 0.12  # chirality at which geometry counts fully
    geometry_deadzone: float = 0.03  # |chirality| below this (a flat hand) says nothing
    memory_decay: float = 0.9  # per sighting, of a track's summed log-odds
    max_evidence: float = 10.0  # the memory saturates here
    weak_evidence: float = 2.5  # below this a detection's side only tips the matching

    def __post_init__(self) -> None:
        if self.max_gap_frames < 0:
            raise ValueError(f"max_gap_frames must be >= 0, got {self.max_gap_frames}")
        for name in ("max_jump_fraction", "flip_radius_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if self.flip_radius_fraction > self.max_jump_fraction:
            raise ValueError(f"flip_radius_fraction ({self.flip_radius_fraction}) must not "
                             f"exceed max_jump_fraction ({self.max_jump_fraction})")
        for name in ("label_weight", "near_label_weight", "geometry_weight",
                     "geometry_scale", "max_evidence", "weak_evidence"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.memory_decay <= 1.0:
            raise ValueError(f"memory_decay must be in [0, 1], got {self.memory_decay}")
        if self.relabel_after_frames < 1:
            raise ValueError(f"relabel_after_frames must be >= 1, got "
                             f"{self.relabel_after_frames}")


@dataclass
class _Track:
    track_id: int
    handedness: str
    position: np.ndarray  # (2,) pixels: the centroid of the 21 landmarks
    velocity: np.ndarray  # (2,) pixels per frame, from the last two sightings
    last_frame: int
    flip_streak: int = 0  # consecutive sightings with the other label
    evidence: float = 0.0  # decaying sum of log-odds that this is a right hand

    def predict(self, frame: int) -> np.ndarray:
        return self.position + self.velocity * max(0, frame - self.last_frame)


def chirality(world: np.ndarray) -> float:
    """Signed handedness of metric 3D landmarks ``(21,3)``: > 0 right, < 0 left, ~0 flat.

    The palm normal ``(index MCP - wrist) x (pinky MCP - wrist)`` points out of the palm
    of a right hand and out of the back of a left one; fingers and thumb bend toward the
    palm. Returns the mean height of the thumb and finger joints above the palm plane
    along that normal, in units of the wrist-middle MCP length (a mirror image negates it).
    One compiled call (:func:`_chirality`): the NumPy version's dozen small array calls
    cost ~0.1 ms a hand, every frame.
    """
    k = np.ascontiguousarray(world, dtype=np.float64).reshape(21, 3)
    return float(_chirality(k))


_CHIRAL_POINTS = (2, 3, 4, 7, 8, 11, 12, 15, 16, 19, 20)
_PALM_POINTS = (0, 5, 9, 13, 17)


@njit(nogil=True, cache=True)
def _chirality(k):
    """:func:`chirality` of ``k (21,3)`` float64."""
    a0, a1, a2 = k[5, 0] - k[0, 0], k[5, 1] - k[0, 1], k[5, 2] - k[0, 2]
    b0, b1, b2 = k[17, 0] - k[0, 0], k[17, 1] - k[0, 1], k[17, 2] - k[0, 2]
    n0, n1, n2 = a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0
    norm = math.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
    s0, s1, s2 = k[9, 0] - k[0, 0], k[9, 1] - k[0, 1], k[9, 2] - k[0, 2]
    size = math.sqrt(s0 * s0 + s1 * s1 + s2 * s2)
    if norm < 1e-9 or size < 1e-6 or not math.isfinite(norm):
        return 0.0
    c0 = c1 = c2 = 0.0
    for i in _PALM_POINTS:
        c0 += k[i, 0]
        c1 += k[i, 1]
        c2 += k[i, 2]
    c0, c1, c2 = c0 / 5, c1 / 5, c2 / 5
    u0, u1, u2 = n0 / norm, n1 / norm, n2 / norm
    height = 0.0
    for i in _CHIRAL_POINTS:
        height += (k[i, 0] - c0) * u0 + (k[i, 1] - c1) * u1 + (k[i, 2] - c2) * u2
    return height / len(_CHIRAL_POINTS) / size


def _logit(p: float) -> float:
    p = min(max(float(p), 0.5), 0.999)
    return float(np.log(p / (1.0 - p)))


def _centre(det: Detection) -> np.ndarray:
    """Centroid of the landmarks, pixels ``(2,)``: steadier than the wrist alone."""
    return np.asarray(det.landmarks_px, dtype=np.float64).reshape(-1, 2).mean(axis=0)


@dataclass
class HandTracker:
    """Assigns each detection a track id that stays the same for the same hand."""

    config: TrackerConfig = field(default_factory=TrackerConfig)
    _tracks: dict[int, _Track] = field(default_factory=dict, init=False, repr=False)
    _next_id: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.config.fuse_handedness:
            chirality(np.zeros((21, 3)))  # numba: compiled or loaded now, not on frame one

    def reset(self) -> None:
        """Forget every track (ids keep counting up, so old ids are never reused)."""
        self._tracks.clear()

    @property
    def track_ids(self) -> list[int]:
        """Ids of the live tracks (seen within ``max_gap_frames``)."""
        return sorted(self._tracks)

    def handedness(self, track_id: int) -> str | None:
        """The track's side, robust to one-frame label flips; None for an unknown id."""
        track = self._tracks.get(track_id)
        return None if track is None else track.handedness

    def assign(self, detections: list[Detection], image_size: tuple[int, int],
               frame_index: int | None = None) -> list[int]:
        """Track ids for ``detections``, in their order.

        ``image_size`` is ``(width, height)`` in pixels; ``frame_index`` defaults to the
        detections' own (pass it for a frame without hands to age the tracks).
        """
        if frame_index is None:
            frame_index = detections[0].frame_index if detections else None
        if frame_index is not None:
            self._forget_old(frame_index)
        if not detections:
            return []
        diag = float(np.hypot(*image_size))
        centres = np.stack([_centre(d) for d in detections])
        evidence = [0.0] * len(detections)
        if self.config.fuse_handedness:
            evidence = self._evidence(detections, centres, diag)
            detections = [replace(d, handedness="right" if e > 0 else "left")
                          if e != 0 else d for d, e in zip(detections, evidence)]
        tracks = list(self._tracks.values())
        cost = self._costs(detections, centres, tracks, frame_index, diag, evidence)
        ids = [-1] * len(detections)
        # Each forbidden pairing costs more than all allowed ones together, so the solver
        # first matches as many hands as the gates allow, then minimises the total distance.
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if cost[r, c] < _INFEASIBLE:
                ids[r] = self._update(tracks[c], detections[r], centres[r], frame_index,
                                      evidence[r])
        for r in range(len(detections)):
            if ids[r] < 0:
                ids[r] = self._new(detections[r], centres[r], frame_index, evidence[r])
        return ids

    def _evidence(self, detections: list[Detection], centres: np.ndarray,
                  diag: float) -> list[float]:
        """Log-odds that each detection is a right hand: label, geometry, one of each."""
        cfg = self.config
        out = []
        for i, d in enumerate(detections):
            others = np.delete(centres, i, axis=0)
            near = len(others) and np.min(np.linalg.norm(others - centres[i], axis=1)) \
                <= cfg.flip_radius_fraction * 1.5 * diag
            w = cfg.near_label_weight if near else cfg.label_weight
            e = (1.0 if d.handedness == "right" else -1.0) * w * _logit(d.score)
            c = chirality(d.world) if d.world is not None and np.size(d.world) == 63 else 0.0
            if abs(c) > cfg.geometry_deadzone:
                e += cfg.geometry_weight * float(np.clip(c / cfg.geometry_scale, -1.0, 1.0))
            out.append(e)
        # One of each: when both claim a side and one clearly less, it takes the other
        # (equal claims keep their labels: one frame of doubt is left to the memory).
        if len(out) == 2 and out[0] * out[1] > 0 and abs(abs(out[0]) - abs(out[1])) > 1.0:
            weak = int(abs(out[1]) < abs(out[0]))
            out[weak] = -out[weak]
        return out

    # -- internals ------------------------------------------------------------------------
    def _forget_old(self, frame: int) -> None:
        gone = [k for k, t in self._tracks.items()
                if frame - t.last_frame > self.config.max_gap_frames]
        for k in gone:
            log.debug("track %d lost", k)
            del self._tracks[k]

    def _costs(self, detections: list[Detection], centres: np.ndarray, tracks: list[_Track],
               frame: int | None, diag: float, evidence: list[float] | None = None
               ) -> np.ndarray:
        """``(n_det, n_tracks)`` distances in diagonals; ``_INFEASIBLE`` where not allowed.

        Fused mode: a detection may take a track of the other side at a cost that grows
        with how sure its evidence is (up to ``flip_radius_fraction`` at ``weak_evidence``
        log-odds), so a hand whose side is in doubt follows its motion, not its label.
        """
        cfg = self.config
        cost = np.full((len(detections), len(tracks)), _INFEASIBLE)
        if not tracks:
            return cost
        now = frame if frame is not None else max(t.last_frame for t in tracks)
        predicted = np.stack([t.predict(now) for t in tracks])
        dist = np.linalg.norm(centres[:, None, :] - predicted[None, :, :], axis=2) / diag
        for i, det in enumerate(detections):
            near = dist[i] <= cfg.flip_radius_fraction
            for j, track in enumerate(tracks):
                if dist[i, j] > cfg.max_jump_fraction:
                    continue
                if track.handedness == det.handedness:
                    cost[i, j] = dist[i, j]
                elif near[j] and near.sum() == 1:
                    # A flipped label on a hand that stayed put: keep its track, but let a
                    # same-side pairing of similar distance win.
                    cost[i, j] = dist[i, j] + cfg.flip_radius_fraction
                elif cfg.fuse_handedness and evidence is not None:
                    doubt = min(1.0, abs(evidence[i]) / cfg.weak_evidence)
                    cost[i, j] = dist[i, j] + cfg.flip_radius_fraction * doubt
        return cost

    def _update(self, track: _Track, det: Detection, centre: np.ndarray,
                frame: int | None, evidence: float = 0.0) -> int:
        cfg = self.config
        if frame is not None and frame > track.last_frame:
            track.velocity = (centre - track.position) / (frame - track.last_frame)
            track.last_frame = frame
        track.position = centre
        track.evidence = float(np.clip(cfg.memory_decay * track.evidence + evidence,
                                       -cfg.max_evidence, cfg.max_evidence))
        if det.handedness == track.handedness:
            track.flip_streak = 0
        else:
            track.flip_streak += 1
            memory_agrees = (not cfg.fuse_handedness
                             or (track.evidence > 0) == (det.handedness == "right"))
            if track.flip_streak >= cfg.relabel_after_frames and memory_agrees:
                log.debug("track %d relabelled %s -> %s", track.track_id, track.handedness,
                          det.handedness)
                track.handedness = det.handedness
                track.flip_streak = 0
        return track.track_id

    def _new(self, det: Detection, centre: np.ndarray, frame: int | None,
             evidence: float = 0.0) -> int:
        tid = self._next_id
        self._next_id += 1
        self._tracks[tid] = _Track(tid, det.handedness, centre, np.zeros(2),
                                   frame if frame is not None else det.frame_index,
                                   evidence=evidence)
        return tid


