"""The two-hand interaction prior at run time: a small VAE evaluated in NumPy.

After "Reconstructing Interacting Hands with Interaction Prior from Monocular Images"
(arXiv 2308.14082), which compacts plausible two-hand interactions into a latent space;
here the space is learned from synthetic contact-rich pairs, not motion capture.

The network (trained by ``models/training/train_interaction_prior.py`` on
``models.training.interaction_data`` pairs) maps a pair's features (:func:`pair_features`:
the left hand's pose relative to the right hand's wrist, and both hands' joint angles) to a
latent Gaussian
and back. Encoding to the latent mean and decoding projects a pair onto the learned
manifold of plausible interactions; the corrector pulls the hands toward that projection
in proportion to how little the image tells (uncertainty, occlusion). The weights are a
small ``.npz`` (no PyTorch at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import WEIGHTS_DIR
from models.errors import AssetError
from models.geometry import matrix_to_rot6d
from models.npz_files import read_npz
from models.penetration import HandKinematics, HandState

PRIOR_PATH = WEIGHTS_DIR / "interaction_prior.npz"
_LAYERS = ("enc0", "enc1", "mu", "logvar", "dec0", "dec1", "out")


@dataclass(frozen=True)
class InteractionPrior:
    """Weights ``{name}_w (in,out)``, ``{name}_b (out,)`` and the feature normalisation."""

    weights: dict
    mean: np.ndarray
    std: np.ndarray
    latent: int

    @classmethod
    def load(cls, path: str | Path = PRIOR_PATH) -> "InteractionPrior":
        path = Path(path)
        arrays = read_npz(path, "interaction prior", "Train it with "
                          "`python -m models.training.train_interaction_prior`")
        lacking = [k for k in ("feature_mean", "feature_std") if k not in arrays]
        if lacking:
            raise AssetError(f"{path} is not an interaction prior (no {', '.join(lacking)})")
        weights = {k: v.astype(np.float64) for k, v in arrays.items()
                   if k.endswith(("_w", "_b"))}
        mean = arrays["feature_mean"].astype(np.float64)
        std = arrays["feature_std"].astype(np.float64)
        missing = [n for n in _LAYERS if f"{n}_w" not in weights]
        if missing:
            raise AssetError(f"{path}: layers {missing} missing; retrain the prior")
        return cls(weights, mean, std, int(weights["mu_w"].shape[1]))

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[0])

    def _dense(self, name: str, x: np.ndarray, act: bool = True) -> np.ndarray:
        y = x @ self.weights[f"{name}_w"] + self.weights[f"{name}_b"]
        return np.where(y > 0, y, 0.01 * y) if act else y  # leaky ReLU

    def encode(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features ``(B,F)`` -> latent mean and log-variance ``(B,Z)``."""
        x = (np.atleast_2d(features) - self.mean) / self.std
        h = self._dense("enc1", self._dense("enc0", x))
        return self._dense("mu", h, False), self._dense("logvar", h, False)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Latent ``(B,Z)`` -> features ``(B,F)``."""
        h = self._dense("dec1", self._dense("dec0", np.atleast_2d(z)))
        return self._dense("out", h, False) * self.std + self.mean

    def project(self, features: np.ndarray) -> np.ndarray:
        """The nearest plausible pair: decode the latent mean, ``(F,)`` or ``(B,F)``."""
        f = np.asarray(features, dtype=np.float64)
        if f.shape[-1] != self.num_features:
            raise ValueError(f"the prior expects {self.num_features} features, got "
                             f"{f.shape[-1]}")
        out = self.decode(self.encode(f)[0])
        return out[0] if f.ndim == 1 else out


# ---------------------------------------------------------------------------------------
# Features of a pair, as the interaction prior sees them.

_MIRROR = np.diag([-1.0, 1.0, 1.0])

POSE_SCALE = 0.5  # radians per feature unit
TRANS_SCALE = 0.1  # meters per feature unit


def pair_features(kin: HandKinematics, right: HandState, left: HandState) -> np.ndarray:
    """``(6 + 3 + 2 (J-1) 3,)``: the left hand's rotation (6D) and wrist offset in the right
    hand's wrist frame, then both hands' joint angles (right first), scaled to ~unit size."""
    pr, pl = kin.posed(right, False), kin.posed(left, False)
    g_r = right.rot
    g_l = _MIRROR @ left.rot @ _MIRROR
    rel = g_r.T @ g_l
    offset = g_r.T @ (pl.keypoints[0] - pr.keypoints[0])
    return np.concatenate([matrix_to_rot6d(rel[None])[0], offset / TRANS_SCALE,
                           right.pose[1:].ravel() / POSE_SCALE,
                           left.pose[1:].ravel() / POSE_SCALE])


def features_to_poses(features: np.ndarray, num_joints: int) -> tuple[np.ndarray, np.ndarray]:
    """The two hands' joint angles ``(J,3)`` (root zero) back from :func:`pair_features`."""
    n = (num_joints - 1) * 3
    poses = []
    for k in range(2):
        p = np.zeros((num_joints, 3))
        p[1:] = features[9 + k * n: 9 + (k + 1) * n].reshape(-1, 3) * POSE_SCALE
        poses.append(p)
    return poses[0], poses[1]
