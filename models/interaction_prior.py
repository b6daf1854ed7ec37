"""The two-hand interaction prior at run time: a small VAE evaluated in NumPy.

After "Reconstructing Interacting Hands with Interaction Prior from Monocular Images"
(arXiv 2308.14082), which compacts plausible two-hand interactions into a latent space;
here the space is learned from synthetic contact-rich pairs, not motion capture.

The network (trained by ``models/train_interaction_prior.py`` on ``models.interaction_data``
pairs) maps a pair's features (``models.interaction_data.pair_features``: the left hand's
pose relative to the right hand's wrist, and both hands' joint angles) to a latent Gaussian
and back. Encoding to the latent mean and decoding projects a pair onto the learned
manifold of plausible interactions; the corrector pulls the hands toward that projection
in proportion to how little the image tells (uncertainty, occlusion). The weights are a
small ``.npz`` (no PyTorch at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import AssetError

PRIOR_PATH = Path(__file__).resolve().parent / "weights" / "interaction_prior.npz"
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
        if not path.is_file():
            raise AssetError(f"interaction prior not found: {path}. Train it with "
                             "`python -m models.train_interaction_prior`")
        try:
            with np.load(path, allow_pickle=False) as z:
                weights = {k: z[k].astype(np.float64) for k in z.files
                           if k.endswith(("_w", "_b"))}
                mean, std = z["feature_mean"].astype(np.float64), z["feature_std"].astype(
                    np.float64)
        except (OSError, ValueError, KeyError) as exc:
            raise AssetError(f"{path} is not an interaction prior ({exc})") from exc
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
