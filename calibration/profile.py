"""Per-user hand shape profiles: the size that one camera cannot see.

From one view, a hand twice as large twice as far away gives the same image: the depth of
a single-view hand is only as good as its assumed size. A profile records the user's bone
lengths (averaged over seconds of an open hand, or taken from a triangulated multi-view
hand, or scaled to a measured hand length) and :func:`apply_profile_scale` rescales each
placed hand about the camera centre to those lengths. Scaling about the optical centre
moves every point along its own ray, so the 2D reprojection is unchanged and only depth
(and size) are corrected.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration.errors import CalibrationError
from models.topology import BONES, FINGERS

PROFILE_KIND = "handmesh.hand_profile"
_PARENTS = np.array([p for p, _ in BONES])
_CHILDREN = np.array([c for _, c in BONES])
_MIDDLE_CHAIN = (0, 9, 10, 11, 12)  # wrist -> middle fingertip: the usual "hand length"


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """``(...,21,3)`` keypoints -> ``(...,20)`` bone lengths (meters), in ``BONES`` order."""
    j = np.asarray(joints, dtype=np.float64)
    return np.linalg.norm(j[..., _CHILDREN, :] - j[..., _PARENTS, :], axis=-1)


def hand_length(joints: np.ndarray) -> np.ndarray:
    """Wrist to middle fingertip along the bones, meters ``(...,)``."""
    j = np.asarray(joints, dtype=np.float64)
    c = list(_MIDDLE_CHAIN)
    return np.linalg.norm(np.diff(j[..., c, :], axis=-2), axis=-1).sum(-1)


def finger_extension(joints: np.ndarray) -> np.ndarray:
    """``(...,4)`` straightness of index..pinky: MCP->tip distance / bone-chain length (1 =
    straight)."""
    j = np.asarray(joints, dtype=np.float64)
    out = []
    for name in ("index", "middle", "ring", "pinky"):
        f = list(FINGERS[name])
        chain = np.linalg.norm(np.diff(j[..., f, :], axis=-2), axis=-1).sum(-1)
        out.append(np.linalg.norm(j[..., f[-1], :] - j[..., f[0], :], axis=-1) / chain)
    return np.stack(out, -1)


def is_open_hand(joints: np.ndarray, min_extension: float = 0.9) -> bool:
    """Every long finger nearly straight: bone lengths are then measured best."""
    return bool(np.all(finger_extension(joints) >= min_extension))


@dataclass(frozen=True)
class HandProfile:
    """A user's hand: ``bone_lengths_m (20,)`` in ``BONES`` order, the hand model's
    ``shape (S,)`` coefficients, how it was made (``source``) and from how many frames."""

    bone_lengths_m: np.ndarray
    shape: np.ndarray = field(default_factory=lambda: np.zeros(0))
    source: str = "single-view"
    samples: int = 0
    date: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc)
                      .replace(microsecond=0).isoformat())
    name: str = "user"

    def __post_init__(self) -> None:
        b = np.asarray(self.bone_lengths_m, dtype=np.float64).reshape(-1)
        if b.shape != (len(BONES),):
            raise CalibrationError(f"hand profile field 'bone_lengths_m' needs {len(BONES)} "
                                   f"values, got {b.size}")
        if not np.all(np.isfinite(b)) or np.any(b <= 0.002) or np.any(b > 0.15):
            raise CalibrationError("hand profile field 'bone_lengths_m' must be finite lengths "
                                   f"of 2-150 mm, got {np.round(b * 1000, 1).tolist()} mm")
        s = np.asarray(self.shape, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(s)):
            raise CalibrationError("hand profile field 'shape' contains NaN or inf")
        object.__setattr__(self, "bone_lengths_m", b)
        object.__setattr__(self, "shape", s)

    @property
    def hand_length_mm(self) -> float:
        idx = [BONES.index((a, b)) for a, b in zip(_MIDDLE_CHAIN[:-1], _MIDDLE_CHAIN[1:])]
        return float(self.bone_lengths_m[idx].sum() * 1000.0)

    def with_hand_length(self, length_mm: float) -> "HandProfile":
        """The same proportions scaled to a measured wrist-to-middle-fingertip length."""
        if not 80.0 <= length_mm <= 280.0:
            raise CalibrationError(f"hand length must be 80-280 mm, got {length_mm}")
        s = length_mm / self.hand_length_mm
        return HandProfile(self.bone_lengths_m * s, self.shape, "measured", self.samples,
                           name=self.name)

    def to_dict(self) -> dict:
        return {"kind": PROFILE_KIND, "name": self.name, "date": self.date,
                "source": self.source, "samples": int(self.samples),
                "hand_length_mm": round(self.hand_length_mm, 3),
                "bone_lengths_m": self.bone_lengths_m.tolist(), "shape": self.shape.tolist()}


def save_profile(path: str | Path, profile: HandProfile) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile.to_dict(), indent=2) + "\n")
    return path


def load_profile(path: str | Path) -> HandProfile:
    """Read a profile; errors name the field."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"hand profile not found: {path}; record one with "
                               "`run_demo.py --calibrate-hand FILE`")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: not a JSON hand profile ({exc})") from exc
    if not isinstance(data, dict) or data.get("kind") != PROFILE_KIND:
        raise CalibrationError(f"{path}: field 'kind' must be {PROFILE_KIND!r}")
    if "bone_lengths_m" not in data:
        raise CalibrationError(f"{path}: field 'bone_lengths_m' is missing")
    try:
        return HandProfile(np.asarray(data["bone_lengths_m"], dtype=np.float64),
                           np.asarray(data.get("shape", []), dtype=np.float64),
                           str(data.get("source", "")), int(data.get("samples", 0)),
                           str(data.get("date", "")), str(data.get("name", "user")))
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{path}: bad profile field ({exc})") from exc


def profile_scale(joints: np.ndarray, profile: HandProfile) -> float:
    """Factor that gives ``joints (21,3)`` the profile's size (robust ratio of bones)."""
    got = bone_lengths(joints)
    ok = got > 1e-4
    if ok.sum() < 5:
        return 1.0
    return float(np.median(profile.bone_lengths_m[ok] / got[ok]))


def apply_profile_scale(points: np.ndarray, scale: float) -> np.ndarray:
    """Scale camera-frame points about the camera centre (reprojection unchanged)."""
    return np.asarray(points, dtype=np.float64) * scale


class ProfileRecorder:
    """Collects the bone lengths of open hands, frame by frame, then averages them.

    Weighted by detection score; a frame counts only when the hand is open (every long
    finger straight), since bent fingers are where MediaPipe's lengths are least reliable.
    The average is a per-bone weighted median, robust to the odd bad frame.
    """

    def __init__(self, target_samples: int = 90, min_score: float = 0.6,
                 min_extension: float = 0.9) -> None:
        if target_samples < 1:
            raise CalibrationError(f"target_samples must be at least 1, got {target_samples}")
        self.target_samples = target_samples
        self.min_score = min_score
        self.min_extension = min_extension
        self.lengths: list[np.ndarray] = []
        self.shapes: list[np.ndarray] = []
        self.weights: list[float] = []
        self.seen = 0

    def add(self, joints: np.ndarray, score: float = 1.0,
            shape: np.ndarray | None = None) -> bool:
        """Offer one hand; True if it was used."""
        self.seen += 1
        joints = np.asarray(joints, dtype=np.float64)
        if (joints.shape != (21, 3) or not np.all(np.isfinite(joints))
                or score < self.min_score or not is_open_hand(joints, self.min_extension)):
            return False
        self.lengths.append(bone_lengths(joints))
        self.shapes.append(np.zeros(0) if shape is None else np.asarray(shape, np.float64))
        self.weights.append(float(score))
        return True

    @property
    def done(self) -> bool:
        return len(self.lengths) >= self.target_samples

    def profile(self, source: str = "single-view", name: str = "user") -> HandProfile:
        if not self.lengths:
            raise CalibrationError(
                f"no open hand seen in {self.seen} hands: hold one hand open, fingers "
                "straight, facing the camera, for a few seconds")
        lengths = np.stack(self.lengths)
        w = np.asarray(self.weights)
        med = np.array([_weighted_median(lengths[:, i], w) for i in range(lengths.shape[1])])
        shapes = [s for s in self.shapes if s.size]
        shape = (np.average(np.stack(shapes), axis=0, weights=w[:len(shapes)])
                 if shapes and len(shapes) == len(w) else np.zeros(0))
        return HandProfile(med, shape, source, len(self.lengths), name=name)


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, 0.5 * cw[-1])])


def profile_from_shape(model, shape: np.ndarray, source: str = "model") -> HandProfile:
    """The profile of the hand model at ``shape`` (rest pose bone lengths)."""
    kps = model.rest_keypoints(np.asarray(shape, dtype=np.float64)[None])[0]
    return HandProfile(bone_lengths(kps), np.asarray(shape, dtype=np.float64), source, 1)


def check_scale(scale: float) -> float:
    """A profile that would shrink or grow a hand by more than 2x means the wrong profile."""
    if not math.isfinite(scale) or not 0.5 <= scale <= 2.0:
        raise CalibrationError(f"hand profile rescales the hand by {scale:.2f}: wrong profile "
                               "for this user or hand model; record a new one")
    return scale
