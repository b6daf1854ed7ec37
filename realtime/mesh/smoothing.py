"""Temporal smoothing of hands: the One-Euro filter, per track, in Numba.

The One-Euro filter (Casiez, Roussel, Vogel, "1 Euro Filter: A Simple Speed-based Low-pass
Filter for Noisy Input in Interactive Systems", CHI 2012) is a first-order low-pass filter
whose cutoff grows with the (filtered) speed of the signal::

    alpha(fc, dt) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)
    dx_hat  = dx_hat_prev + alpha(d_cutoff, dt) * ((x - x_hat_prev) / dt - dx_hat_prev)
    fc      = min_cutoff + beta * |dx_hat|
    x_hat   = x_hat_prev + alpha(fc, dt) * (x - x_hat_prev)

A still hand gets a low cutoff (jitter removed), a fast one a high cutoff (little lag).

Speed is the norm over groups of 3 values (one 3D point, one row of a rotation matrix, one
joint's rotation vector), not per coordinate: with per-coordinate cutoffs a point moving
diagonally is smoothed more along its slow axis than its fast one, which bends its path and
changes its direction of motion; one cutoff per point keeps the filtered motion parallel to
the input motion.

Kernels are ``@njit(nogil=True, cache=True)``: they release the GIL (the smoothing stage
overlaps the others) and their machine code is cached on disk beside this file (numba's
``__pycache__``, or ``NUMBA_CACHE_DIR``), so only the very first run of an installation
compiles; :meth:`HandSmoother.warmup` compiles or loads every kernel before the first frame.

:class:`HandSmoother` keeps one slot per track in pooled arrays, so the points of every hand
of a frame are filtered in one kernel call.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from models.geometry import log_rotation_into, rodrigues_into
from realtime.types import HandMesh

log = logging.getLogger(__name__)

MODES = ("mesh", "pose")


# --------------------------------------------------------------------------- kernels


@njit(nogil=True, cache=True)
def _group(x, state, g0, g1, inv_dt, a_d, w0, min_cutoff, beta, out):
    """One One-Euro step of the values ``g0:g1`` (one group), generic length."""
    for i in range(g0, g1):
        if not math.isfinite(x[i]):
            for j in range(g0, g1):
                out[j] = state[0, j] if state[2, j] != 0.0 else x[j]
            return
    if state[2, g0] == 0.0:
        for i in range(g0, g1):
            state[0, i] = x[i]
            state[1, i] = 0.0
            state[2, i] = 1.0
            out[i] = x[i]
        return
    speed2 = 0.0
    for i in range(g0, g1):
        dx_hat = state[1, i] + a_d * ((x[i] - state[0, i]) * inv_dt - state[1, i])
        state[1, i] = dx_hat
        speed2 += dx_hat * dx_hat
    w = w0 * (min_cutoff + beta * math.sqrt(speed2))
    a = w / (1.0 + w)
    for i in range(g0, g1):
        x_hat = state[0, i] + a * (x[i] - state[0, i])
        state[0, i] = x_hat
        out[i] = x_hat


@njit(nogil=True, cache=True)
def one_euro_step(x, state, dt, min_cutoff, beta, d_cutoff, out):
    """One One-Euro step over ``x (N,)`` in place of ``state (3,N)``; result in ``out (N,)``.

    ``state`` rows: filtered value, filtered derivative (units per second), initialised
    flag (0/1). Values are grouped by 3 (the last group may be shorter): a group shares one
    speed, hence one cutoff. A group with any non-finite value is skipped: ``out`` gets the
    previous estimate (or the input if there is none yet) and the state is left untouched.
    The first finite sample of a group initialises it (output = input, derivative 0).
    ``dt`` seconds, must be > 0; cutoffs in Hz; ``beta`` in Hz per unit/s. ``out`` may be
    ``x`` itself.

    alpha = 1/(1 + tau/dt) with tau = 1/(2 pi fc) is computed as w/(1+w), w = 2 pi fc dt.
    Full groups are unrolled (about 3x faster than the generic loop, which serves the tail).
    """
    n = x.shape[0]
    inv_dt = 1.0 / dt
    wd = 2.0 * math.pi * d_cutoff * dt
    a_d = wd / (1.0 + wd)
    w0 = 2.0 * math.pi * dt
    xh = state[0]
    dxh = state[1]
    init = state[2]
    full = n - n % 3
    for i in range(0, full, 3):
        x0, x1, x2 = x[i], x[i + 1], x[i + 2]
        if not (math.isfinite(x0) and math.isfinite(x1) and math.isfinite(x2)) or init[i] == 0.0:
            _group(x, state, i, i + 3, inv_dt, a_d, w0, min_cutoff, beta, out)
            continue
        p0, p1, p2 = xh[i], xh[i + 1], xh[i + 2]
        d0 = dxh[i] + a_d * ((x0 - p0) * inv_dt - dxh[i])
        d1 = dxh[i + 1] + a_d * ((x1 - p1) * inv_dt - dxh[i + 1])
        d2 = dxh[i + 2] + a_d * ((x2 - p2) * inv_dt - dxh[i + 2])
        dxh[i], dxh[i + 1], dxh[i + 2] = d0, d1, d2
        w = w0 * (min_cutoff + beta * math.sqrt(d0 * d0 + d1 * d1 + d2 * d2))
        a = w / (1.0 + w)
        p0 += a * (x0 - p0)
        p1 += a * (x1 - p1)
        p2 += a * (x2 - p2)
        xh[i], xh[i + 1], xh[i + 2] = p0, p1, p2
        out[i], out[i + 1], out[i + 2] = p0, p1, p2
    if full < n:
        _group(x, state, full, n, inv_dt, a_d, w0, min_cutoff, beta, out)


@njit(nogil=True, cache=True)
def one_euro_batch(x, state, dt, active, min_cutoff, beta, d_cutoff, out):
    """:func:`one_euro_step` over slots: ``x (K,N)``, ``state (K,3,N)``, ``dt (K,)``,
    ``active (K,)`` uint8 (inactive slots are left alone), ``out (K,N)``."""
    for k in range(x.shape[0]):
        if active[k] != 0:
            one_euro_step(x[k], state[k], dt[k], min_cutoff, beta, d_cutoff, out[k])


@njit(nogil=True, cache=True)
def _orthonormalise(m):
    """Nearest rotation to ``m (3,3)`` in place (polar factor, Newton: R <- (R + R^-T)/2).

    Returns False (``m`` untouched) when ``m`` is too far from a rotation (determinant not
    clearly positive), e.g. the average of two nearly opposite orientations.
    """
    r = m.copy()
    for _ in range(8):
        c00 = r[1, 1] * r[2, 2] - r[1, 2] * r[2, 1]
        c01 = r[1, 2] * r[2, 0] - r[1, 0] * r[2, 2]
        c02 = r[1, 0] * r[2, 1] - r[1, 1] * r[2, 0]
        det = r[0, 0] * c00 + r[0, 1] * c01 + r[0, 2] * c02
        if not det > 1e-3:
            return False
        # cofactor matrix / det = inverse transpose
        c10 = r[0, 2] * r[2, 1] - r[0, 1] * r[2, 2]
        c11 = r[0, 0] * r[2, 2] - r[0, 2] * r[2, 0]
        c12 = r[0, 1] * r[2, 0] - r[0, 0] * r[2, 1]
        c20 = r[0, 1] * r[1, 2] - r[0, 2] * r[1, 1]
        c21 = r[0, 2] * r[1, 0] - r[0, 0] * r[1, 2]
        c22 = r[0, 0] * r[1, 1] - r[0, 1] * r[1, 0]
        cof = ((c00, c01, c02), (c10, c11, c12), (c20, c21, c22))
        change = 0.0
        for i in range(3):
            for j in range(3):
                new = 0.5 * (r[i, j] + cof[i][j] / det)
                change = max(change, abs(new - r[i, j]))
                r[i, j] = new
        if change < 1e-13:
            break
    m[:, :] = r
    return True


@njit(nogil=True, cache=True)
def pack_pose(pose, out):
    """Pose ``(J,3)`` axis-angle -> ``out (9 + 3(J-1),)``: root as the 9 entries of its matrix
    (row-major: each row is a unit vector, a group of 3), then the other joints' vectors.

    Matrix entries are continuous in the rotation (no 2 pi wrap of axis-angle, no sign flip
    of quaternions), so averaging them is well defined; :func:`unpack_pose` projects back.
    """
    m = np.empty((3, 3))
    rodrigues_into(pose[0], m)
    for i in range(3):
        for j in range(3):
            out[3 * i + j] = m[i, j]
    for k in range(1, pose.shape[0]):
        for c in range(3):
            out[9 + 3 * (k - 1) + c] = pose[k, c]


@njit(nogil=True, cache=True)
def unpack_pose(packed, raw_pose, pose):
    """Inverse of :func:`pack_pose` into ``pose (J,3)``, re-orthonormalising the root.

    A filtered root matrix that is no longer near a rotation falls back to ``raw_pose[0]``.
    """
    m = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            m[i, j] = packed[3 * i + j]
    root = np.empty(3)
    if _orthonormalise(m):
        log_rotation_into(m, root)
    else:
        root[:] = raw_pose[0]
    pose[0, :] = root
    for k in range(1, pose.shape[0]):
        for c in range(3):
            pose[k, c] = packed[9 + 3 * (k - 1) + c]


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SmootherConfig:
    """One-Euro settings per quantity, and how tracks are managed.

    Positions (joints, vertices, the wrist in "pose" mode) use ``min_cutoff_hz``/``beta``
    with ``beta`` in Hz per m/s; rotations (the root rotation matrix rows and the other
    joints' rotation vectors) use the ``rotation_*`` settings, ``rotation_beta`` in Hz per
    rad/s; shape coefficients a fixed low-pass at ``shape_cutoff_hz``. Defaults were tuned
    on ``benchmarks/smoothing.py`` (30 FPS, MediaPipe-like noise): 69% less jitter with 0.5
    frame of added lag (targets >= 60%, <= 1 frame); beta=10 trades to 75% / 0.8 frame.
    Rotations: rotation_beta=2 cuts the root's error to truth by a third there.

    ``mode``: "mesh" filters joints, vertices and pose directly (cheapest); "pose" filters
    pose, shape and the wrist position, then re-skins with the hand model and places the
    mesh at the filtered wrist (always a valid hand; assumes ``pose[0]`` is the orientation
    in camera axes, as produced by the fitting baseline and by the regressor without its PnP
    rotation refinement). A track unseen for more than ``reset_after_s`` starts afresh;
    ``nominal_fps`` gives the step used when timestamps do not advance.
    """

    mode: str = "mesh"
    min_cutoff_hz: float = 1.0
    beta: float = 20.0
    d_cutoff_hz: float = 1.0
    rotation_min_cutoff_hz: float = 1.0
    rotation_beta: float = 2.0
    rotation_d_cutoff_hz: float = 1.0
    shape_cutoff_hz: float = 0.5
    reset_after_s: float = 0.5
    nominal_fps: float = 30.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"SmootherConfig.mode must be one of {MODES}, got {self.mode!r}")
        positive = ("min_cutoff_hz", "d_cutoff_hz", "rotation_min_cutoff_hz",
                    "rotation_d_cutoff_hz", "shape_cutoff_hz", "reset_after_s", "nominal_fps")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"SmootherConfig.{name} must be a finite number > 0, "
                                 f"got {value!r}")
        for name in ("beta", "rotation_beta"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"SmootherConfig.{name} must be a finite number >= 0, "
                                 f"got {value!r}")


# --------------------------------------------------------------------------- smoother


class _Channel:
    """Pooled buffers for one kind of value: slot k holds one track's ``n`` values."""

    def __init__(self, n: int, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        self.n = n
        self.params = (float(min_cutoff), float(beta), float(d_cutoff))
        self.x = np.zeros((0, n))
        self.state = np.zeros((0, 3, n))
        self.out = np.zeros((0, n))

    def grow(self, slots: int) -> None:
        k = self.x.shape[0]
        if slots <= k:
            return
        extra = slots - k
        self.x = np.concatenate([self.x, np.zeros((extra, self.n))])
        self.state = np.concatenate([self.state, np.zeros((extra, 3, self.n))])
        self.out = np.concatenate([self.out, np.zeros((extra, self.n))])

    def reset(self, slot: int) -> None:
        self.state[slot, 2, :] = 0.0

    def run(self, dt: np.ndarray, active: np.ndarray) -> None:
        one_euro_batch(self.x, self.state, dt, active, *self.params, self.out)


@dataclass
class _Track:
    slot: int
    handedness: str
    last_timestamp: float


class HandSmoother:
    """Per-track One-Euro smoothing of :class:`HandMesh` streams (one instance per pipeline).

    ``model`` (a ``models.hand_model.HandModel``) is needed only in "pose" mode.
    """

    def __init__(self, config: SmootherConfig = SmootherConfig(), model=None) -> None:
        if config.mode == "pose" and model is None:
            raise ValueError("SmootherConfig.mode='pose' re-skins the hand: pass the HandModel "
                             "(HandSmoother(config, model=HandModel.open_hand()))")
        self.config = config
        self.model = model
        self._tracks: dict[int, _Track] = {}
        self._free: list[int] = []
        self._slots = 0
        self._pos: _Channel | None = None
        self._rot: _Channel | None = None
        self._shape: _Channel | None = None
        self._sizes: tuple[int, int, int] | None = None
        self._dt = np.zeros(0)
        self._active = np.zeros(0, np.uint8)

    # ---- lifecycle

    def reset(self, track_id: int) -> None:
        """Forget one track's history: its next frame passes through unfiltered."""
        track = self._tracks.pop(track_id, None)
        if track is not None:
            self._free.append(track.slot)

    def reset_all(self) -> None:
        """Forget every track (and the array sizes: a new hand model may follow)."""
        self._tracks.clear()
        self._free.clear()
        self._slots = 0
        self._pos = self._rot = self._shape = None
        self._sizes = None

    @property
    def track_ids(self) -> list[int]:
        return sorted(self._tracks)

    def warmup(self) -> None:
        """Compile (or load from numba's on-disk cache) every kernel on tiny data, so the
        first real frame pays no JIT time. Call once before the loop starts."""
        x = np.zeros(4)
        state = np.zeros((3, 4))
        out = np.zeros(4)
        one_euro_step(x, state, 1.0 / 30, 1.0, 0.0, 1.0, out)
        one_euro_batch(np.zeros((1, 4)), np.zeros((1, 3, 4)), np.full(1, 1.0 / 30),
                       np.ones(1, np.uint8), 1.0, 0.0, 1.0, np.zeros((1, 4)))
        pose = np.full((2, 3), 0.1)
        packed = np.zeros(12)
        pack_pose(pose, packed)
        unpack_pose(packed, pose, np.zeros((2, 3)))
        if self.model is not None and self.config.mode == "pose":
            self.model.forward(self.model.zero_pose(1))

    # ---- per frame

    def _layout(self, hand: HandMesh) -> tuple[int, int, int]:
        n_pos = 3 if self.config.mode == "pose" else 3 * (len(hand.joints) + len(hand.vertices))
        n_rot = 9 + 3 * (len(hand.pose) - 1)
        return n_pos, n_rot, int(np.size(hand.shape))

    def _ensure(self, sizes: tuple[int, int, int]) -> None:
        if self._sizes is None:
            c = self.config
            self._sizes = sizes
            self._pos = _Channel(sizes[0], c.min_cutoff_hz, c.beta, c.d_cutoff_hz)
            self._rot = _Channel(sizes[1], c.rotation_min_cutoff_hz, c.rotation_beta,
                                 c.rotation_d_cutoff_hz)
            self._shape = _Channel(sizes[2], c.shape_cutoff_hz, 0.0, 1.0)
        elif sizes != self._sizes:
            raise ValueError(f"hand arrays changed size (positions, pose, shape) {sizes} vs "
                             f"{self._sizes}: call reset_all() when switching hand models")

    def _slot_for(self, hand: HandMesh) -> tuple[int, float]:
        """The slot of ``hand``'s track (new or reset as needed) and the step dt to use."""
        nominal = 1.0 / self.config.nominal_fps
        track = self._tracks.get(hand.track_id)
        if track is not None:
            gap = float(hand.timestamp) - track.last_timestamp
            if track.handedness != hand.handedness:
                log.debug("track %d changed hands: smoothing restarts", hand.track_id)
                self.reset(hand.track_id)
                track = None
            elif not math.isfinite(gap) or abs(gap) > self.config.reset_after_s:
                log.debug("track %d unseen for %.3f s: smoothing restarts", hand.track_id, gap)
                self.reset(hand.track_id)
                track = None
        if track is None:
            if self._free:
                slot = self._free.pop()
            else:
                slot = self._slots
                self._slots += 1
                for ch in (self._pos, self._rot, self._shape):
                    ch.grow(self._slots)
                self._dt = np.resize(self._dt, self._slots)
                self._active = np.resize(self._active, self._slots)
            for ch in (self._pos, self._rot, self._shape):
                ch.reset(slot)
            track = _Track(slot, hand.handedness, float(hand.timestamp))
            self._tracks[hand.track_id] = track
            dt = nominal
        else:
            dt = float(hand.timestamp) - track.last_timestamp
            if not dt > 0.0:
                dt = nominal
        if math.isfinite(float(hand.timestamp)):
            track.last_timestamp = float(hand.timestamp)
        return track.slot, dt

    def smooth(self, hands: list[HandMesh]) -> list[HandMesh]:
        """Smoothed copies of one frame's ``hands``, in the same order.

        Each track is filtered with its own history. A second hand with the same track id
        in one frame is passed through unchanged (ids are the tracker's job).
        """
        now = max((float(h.timestamp) for h in hands), default=None)
        if now is not None and math.isfinite(now):
            stale = [tid for tid, t in self._tracks.items()
                     if now - t.last_timestamp > self.config.reset_after_s]
            for tid in stale:
                self.reset(tid)
        if not hands:
            return []
        self._ensure(self._layout(hands[0]))
        pos, rot, shp = self._pos, self._rot, self._shape
        pose_mode = self.config.mode == "pose"
        slots: list[int | None] = []
        seen: set[int] = set()
        self._active[:] = 0
        for hand in hands:
            if hand.track_id in seen:
                log.warning("track id %d twice in one frame: the second hand is not smoothed",
                            hand.track_id)
                slots.append(None)
                continue
            seen.add(hand.track_id)
            self._ensure(self._layout(hand))
            slot, dt = self._slot_for(hand)
            slots.append(slot)
            self._dt[slot] = dt
            self._active[slot] = 1
            if pose_mode:
                pos.x[slot] = hand.joints[0]
            else:
                nj = 3 * len(hand.joints)
                pos.x[slot, :nj] = hand.joints.reshape(-1)
                pos.x[slot, nj:] = hand.vertices.reshape(-1)
            pack_pose(np.ascontiguousarray(hand.pose, dtype=np.float64), rot.x[slot])
            shp.x[slot] = np.reshape(hand.shape, -1)
        for ch in (pos, rot, shp):
            ch.run(self._dt, self._active)

        poses, shapes = [], []
        for hand, slot in zip(hands, slots):
            if slot is None:
                poses.append(None)
                shapes.append(None)
                continue
            pose = np.empty((len(hand.pose), 3))
            unpack_pose(rot.out[slot], np.asarray(hand.pose, dtype=np.float64), pose)
            poses.append(pose)
            shapes.append(shp.out[slot].reshape(np.shape(hand.shape)).copy())
        if pose_mode:
            return self._reskin(hands, slots, poses, shapes)
        result = []
        for hand, slot, pose, shape in zip(hands, slots, poses, shapes):
            if slot is None:
                result.append(hand)
                continue
            nj = 3 * len(hand.joints)
            result.append(replace(
                hand,
                joints=pos.out[slot, :nj].reshape(hand.joints.shape).copy(),
                vertices=pos.out[slot, nj:].reshape(hand.vertices.shape).copy(),
                pose=pose,
                shape=shape,
            ))
        return result

    def _reskin(self, hands, slots, poses, shapes) -> list[HandMesh]:
        """Pose mode: skin every smoothed hand in one batch, place it at the filtered wrist."""
        idx = [i for i, s in enumerate(slots) if s is not None]
        result = list(hands)
        if not idx:
            return result
        out = self.model.forward(np.stack([poses[i] for i in idx]),
                                 np.stack([shapes[i] for i in idx]))
        for b, i in enumerate(idx):
            hand = hands[i]
            verts, kps = out.vertices[b], out.keypoints[b]
            if hand.handedness == "left":  # left hands are mirrored right hands
                verts = verts * np.array([-1.0, 1.0, 1.0])
                kps = kps * np.array([-1.0, 1.0, 1.0])
            offset = self._pos.out[slots[i]] - kps[0]
            result[i] = replace(hand, vertices=verts + offset, joints=kps + offset,
                                pose=poses[i], shape=shapes[i])
        return result
