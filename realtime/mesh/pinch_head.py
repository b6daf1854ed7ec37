"""A learned thumb-index distance: a small MLP on the hand's own 3D shape, run without torch.

Why: the regressor's fingertips are a centimetre off exactly where a pinch is decided (a
true 1-7 mm pinch reads 10-15 mm seen from the palm, 31-40 mm from the back; a fist reads
9-18 mm). Those errors are systematic, so a head trained on the real pipeline's output of
rendered hands with known fingertips (``models.training.train_pinch_head``) can undo them.

What it sees: the 21 joints expressed in the hand's own frame (origin at the wrist, axes
from the palm: wrist to middle knuckle, palm normal), a left hand mirrored to a right one,
plus the 16 thumb-to-index joint distances. Nothing of the camera pose enters, so the
output is exactly invariant to turning, tilting or moving the joints (a rigid motion of the
input changes no feature), like the plain 3D distance it replaces. It is a distance in
meters (a softplus output), so ``Pinch.distance_m`` keeps its meaning and its thresholds.

Where it applies: only near a pinch, and not alone. Trained on rendered clips of a handful
of gestures, the head is not to be trusted on hand shapes far from those (on real photos of
other gestures it erred by centimetres), so it acts where the joints' own tip distance is
under ``gate_m[0]`` (4 cm), not above ``gate_m[1]`` (6 cm), linearly in between; and there
the distance is ``head_weight`` (0.8) x the head's + the rest x the joints' (on real photos
the head alone scatters more than the joints; the blend is better than either)
(:func:`gate_blend`). A pinch is decided at 15 / 30 mm, well inside the gate.

The weights are one ``.npz`` (``models/weights/pinch_head.npz``): ``w0,b0,w1,b1,...``
(tanh hidden layers), the input normalisation ``mean, std``, ``gate_m``, ``head_weight``
and a ``recipe`` (how it was trained, and its scores). :meth:`PinchHead.forward` and
:func:`gate_blend` are the NumPy reference; every frame runs the same arithmetic compiled
(:func:`_distance_kernel`, one call for all hands: the NumPy path's ~25 small calls cost
~0.5 ms of a two-hand frame with the caches cold).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from numba import njit

from models import WEIGHTS_DIR
from models.npz_files import read_npz
from realtime.mesh.pinch import pinch_distance

DEFAULT_HEAD = WEIGHTS_DIR / "pinch_head.npz"
WRIST, THUMB, INDEX, MIDDLE_MCP, INDEX_MCP, PINKY_MCP = 0, (1, 2, 3, 4), (5, 6, 7, 8), 9, 5, 17
# the thumb-to-index distances' order in the features: thumb joint t, index joint i -> 4t+i
NUM_FEATURES = 21 * 3 + 16


class PinchHeadError(ValueError):
    """The pinch head's weights are missing or do not fit."""


def hand_frame(joints: np.ndarray, right: np.ndarray | bool) -> np.ndarray:
    """``(...,21,3)`` camera-frame joints -> the same joints in the hand's own frame.

    Origin at the wrist; y from the wrist to the middle knuckle; z the palm normal (index
    knuckle x pinky knuckle, made orthogonal to y); x = y x z. A left hand is mirrored
    (x negated) first, so every hand reads as a right hand. Rotations and translations of
    the input leave the output unchanged.
    """
    j = np.array(joints, dtype=np.float64, copy=True)
    right = np.asarray(right, dtype=bool)
    j[..., 0] = np.where(right[..., None], j[..., 0], -j[..., 0])
    j = j - j[..., WRIST:WRIST + 1, :]
    y = j[..., MIDDLE_MCP, :]
    y = y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-9)
    n = np.cross(j[..., INDEX_MCP, :], j[..., PINKY_MCP, :])
    n = n - (n * y).sum(-1, keepdims=True) * y
    z = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    x = np.cross(y, z)
    basis = np.stack([x, y, z], axis=-2)  # rows: the hand's axes in camera coordinates
    return np.einsum("...jc,...kc->...jk", j, basis)


def pinch_features(joints: np.ndarray, right: np.ndarray | bool) -> np.ndarray:
    """``(...,21,3)`` joints -> ``(...,NUM_FEATURES)``: the joints in the hand frame (cm)
    and the thumb-to-index joint distances (cm), all invariant to a rigid motion."""
    local = hand_frame(joints, right)
    t = local[..., THUMB, :][..., :, None, :]
    i = local[..., INDEX, :][..., None, :, :]
    d = np.linalg.norm(t - i, axis=-1).reshape(*local.shape[:-2], 16)
    return 100.0 * np.concatenate([local.reshape(*local.shape[:-2], 63), d], axis=-1)


def gate_blend(joints_m: np.ndarray, head_m: np.ndarray, gate_m: tuple[float, float],
               weight: float = 1.0) -> np.ndarray:
    """``weight`` x the head's distance + the rest of the joints' own where the joints' tip
    distance is under ``gate_m[0]``, the joints' alone above ``gate_m[1]``, linearly between:
    the head corrects where a pinch is decided and leaves open hands (poses it may never
    have seen) to the joints; ``weight`` < 1 keeps part of the joints' reading everywhere."""
    lo, hi = gate_m
    g = np.ones_like(joints_m) if not np.isfinite(hi) else np.clip((hi - joints_m) / (hi - lo),
                                                                    0.0, 1.0)
    return joints_m + weight * g * (head_m - joints_m)


@njit(nogil=True, cache=True)
def _features_kernel(joints: np.ndarray, right: np.ndarray, out: np.ndarray) -> None:
    """:func:`pinch_features` for ``(N,21,3)`` float64 into ``out (N,NUM_FEATURES)``: the
    same arithmetic without NumPy's per-call overhead (the stage runs it every frame)."""
    local = np.empty((21, 3))
    for n in range(joints.shape[0]):
        s = 1.0 if right[n] else -1.0
        w0, w1, w2 = s * joints[n, 0, 0], joints[n, 0, 1], joints[n, 0, 2]
        y0 = s * joints[n, MIDDLE_MCP, 0] - w0
        y1 = joints[n, MIDDLE_MCP, 1] - w1
        y2 = joints[n, MIDDLE_MCP, 2] - w2
        norm = max(np.sqrt(y0 * y0 + y1 * y1 + y2 * y2), 1e-9)
        y0, y1, y2 = y0 / norm, y1 / norm, y2 / norm
        a0 = s * joints[n, INDEX_MCP, 0] - w0
        a1 = joints[n, INDEX_MCP, 1] - w1
        a2 = joints[n, INDEX_MCP, 2] - w2
        b0 = s * joints[n, PINKY_MCP, 0] - w0
        b1 = joints[n, PINKY_MCP, 1] - w1
        b2 = joints[n, PINKY_MCP, 2] - w2
        n0, n1, n2 = a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0
        d = n0 * y0 + n1 * y1 + n2 * y2
        n0, n1, n2 = n0 - d * y0, n1 - d * y1, n2 - d * y2
        norm = max(np.sqrt(n0 * n0 + n1 * n1 + n2 * n2), 1e-9)
        z0, z1, z2 = n0 / norm, n1 / norm, n2 / norm
        x0, x1, x2 = y1 * z2 - y2 * z1, y2 * z0 - y0 * z2, y0 * z1 - y1 * z0
        for k in range(21):
            p0 = s * joints[n, k, 0] - w0
            p1 = joints[n, k, 1] - w1
            p2 = joints[n, k, 2] - w2
            local[k, 0] = p0 * x0 + p1 * x1 + p2 * x2
            local[k, 1] = p0 * y0 + p1 * y1 + p2 * y2
            local[k, 2] = p0 * z0 + p1 * z1 + p2 * z2
            out[n, 3 * k] = 100.0 * local[k, 0]
            out[n, 3 * k + 1] = 100.0 * local[k, 1]
            out[n, 3 * k + 2] = 100.0 * local[k, 2]
        for t in range(4):
            for i in range(4):
                e0 = local[1 + t, 0] - local[5 + i, 0]
                e1 = local[1 + t, 1] - local[5 + i, 1]
                e2 = local[1 + t, 2] - local[5 + i, 2]
                out[n, 63 + 4 * t + i] = 100.0 * np.sqrt(e0 * e0 + e1 * e1 + e2 * e2)


@njit(nogil=True, cache=True)
def _softplus(y):
    """``np.logaddexp(0.0, y)``, its arithmetic (numpy's ``npy_logaddexp``)."""
    if y == 0.0:
        return math.log(2.0)
    tmp = -y
    if tmp > 0:
        return math.log1p(math.exp(-tmp))
    if tmp <= 0:
        return y + math.log1p(math.exp(tmp))
    return tmp  # NaN


@njit(nogil=True, cache=True)
def _distance_kernel(joints, right, tips, ws, bs, gate_lo, gate_hi, weight, out):
    """:meth:`PinchHead.distance` for ``(N,21,3)`` float64 into ``out (N,)``: per hand the
    features (:func:`_features_kernel`), the MLP (``ws``/``bs``: the folded layers, tanh
    between them), softplus, and :func:`gate_blend` with the joints' tip distance ``tips
    (N,)``; NaN for joints that are not finite. The same arithmetic as the NumPy path
    (:meth:`forward`, :func:`gate_blend`), a dozen NumPy calls fewer per frame."""
    feats = np.empty((1, NUM_FEATURES))
    n_layers = len(ws)
    for n in range(joints.shape[0]):
        finite = True
        for k in range(21):
            for c in range(3):
                if not math.isfinite(joints[n, k, c]):
                    finite = False
        if not finite:
            out[n] = np.nan
            continue
        _features_kernel(joints[n:n + 1], right[n:n + 1], feats)
        x = feats[0].copy()
        for layer in range(n_layers):
            w = ws[layer]
            b = bs[layer]
            y = np.zeros(w.shape[1])
            for i in range(w.shape[0]):
                xi = x[i]
                for o in range(w.shape[1]):
                    y[o] += xi * w[i, o]
            for o in range(w.shape[1]):
                y[o] += b[o]
                if layer < n_layers - 1:
                    y[o] = math.tanh(y[o])
            x = y
        head = _softplus(x[0]) / 100.0
        g = 1.0
        if math.isfinite(gate_hi):
            g = min(max((gate_hi - tips[n]) / (gate_hi - gate_lo), 0.0), 1.0)
        out[n] = tips[n] + weight * g * (head - tips[n])


def fast_features(joints: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``(N,21,3)`` joints, ``(N,)`` sides -> ``(N,NUM_FEATURES)``, compiled."""
    j = np.ascontiguousarray(joints, dtype=np.float64)
    out = np.empty((j.shape[0], NUM_FEATURES))
    _features_kernel(j, np.ascontiguousarray(right, dtype=np.bool_), out)
    return out


class PinchHead:
    """``distance(joints, right) -> meters``: the learned thumb-index distance of a hand."""

    def __init__(self, path: Path = DEFAULT_HEAD) -> None:
        path = Path(path)
        data = read_npz(path, "pinch head", "Train it with "
                        "`python -m models.training.train_pinch_head`", PinchHeadError)
        layers = sum(1 for k in data if k.startswith("w"))
        if layers < 1 or any(f"{p}{i}" not in data for i in range(layers) for p in "wb"):
            raise PinchHeadError(f"{path}: needs arrays w0,b0,...; has {sorted(data)}")
        self.weights = [(data[f"w{i}"].astype(np.float64), data[f"b{i}"].astype(np.float64))
                        for i in range(layers)]
        self.mean = data["mean"].astype(np.float64)
        self.std = data["std"].astype(np.float64)
        if self.weights[0][0].shape[0] != NUM_FEATURES or self.mean.shape != (NUM_FEATURES,):
            raise PinchHeadError(f"{path}: the first layer takes {self.weights[0][0].shape[0]}"
                                 f" inputs, the features are {NUM_FEATURES}; retrain it")
        if self.weights[-1][0].shape[1] != 1:
            raise PinchHeadError(f"{path}: the last layer must have one output")
        gate = data.get("gate_m", np.array([np.inf, np.inf]))  # none: the head everywhere
        if gate.shape != (2,) or not (gate[0] < gate[1] or np.isinf(gate).all()):
            raise PinchHeadError(f"{path}: gate_m must be [low, high] with low < high, got "
                                 f"{gate.tolist()}")
        self.gate_m = (float(gate[0]), float(gate[1]))
        self.weight = float(data.get("head_weight", 1.0))
        if not 0.0 <= self.weight <= 1.0:
            raise PinchHeadError(f"{path}: head_weight must be in [0, 1], got {self.weight}")
        self.recipe = json.loads(str(data["recipe"])) if "recipe" in data else {}
        self.path = path
        # the input normalisation folded into the first layer: one product less per frame
        w0, b0 = self.weights[0]
        self._folded = [(w0 / self.std[:, None], b0 - (self.mean / self.std) @ w0),
                        *self.weights[1:]]
        self._ws = tuple(np.ascontiguousarray(w, dtype=np.float64) for w, _ in self._folded)
        self._bs = tuple(np.ascontiguousarray(b, dtype=np.float64).reshape(-1)
                         for _, b in self._folded)
        fast_features(np.zeros((1, 21, 3)), np.ones(1, bool))  # compile (or load) before a frame
        self.distance(np.zeros((21, 3)), True)

    def forward(self, features: np.ndarray) -> np.ndarray:
        """``(N,NUM_FEATURES)`` -> ``(N,)`` the head's distances in meters (no gate)."""
        x = np.asarray(features, dtype=np.float64)
        for w, b in self._folded[:-1]:
            x = np.tanh(x @ w + b)
        w, b = self._folded[-1]
        y = (x @ w + b)[:, 0]
        return np.logaddexp(0.0, y) / 100.0  # softplus, cm -> m: a distance is > 0

    def distance(self, joints: np.ndarray, right: np.ndarray | bool) -> np.ndarray | float:
        """Joints ``(21,3)`` or ``(N,21,3)`` (camera frame, meters) -> distance(s) in
        meters; NaN where the joints are not finite."""
        j = np.asarray(joints, dtype=np.float64)
        if j.shape[-2:] != (21, 3):
            raise ValueError(f"joints must be (...,21,3), got {j.shape}")
        flat = np.ascontiguousarray(j.reshape(-1, 21, 3))
        r = np.ascontiguousarray(
            np.broadcast_to(np.asarray(right, dtype=bool), j.shape[:-2]).reshape(-1))
        out = np.empty(len(flat))
        _distance_kernel(flat, r, np.asarray(pinch_distance(flat), dtype=np.float64),
                         self._ws, self._bs, self.gate_m[0], self.gate_m[1], self.weight, out)
        return float(out[0]) if j.ndim == 2 else out.reshape(j.shape[:-2])
