"""Train the two-hand interaction prior (a small denoising VAE) and write its NumPy weights.

    python -m models.training.train_interaction_prior              # shipped weights (~3 min)
    python -m models.training.train_interaction_prior --pairs 300  # a quick smoke run

Data: plausible, touching, non-penetrating pairs from ``models.training.interaction_data`` (clasp,
pinch between hands, interlaced fingers, holding a finger, palm to palm), as
``pair_features``. The encoder sees the features with noise of the size MediaPipe-based
fits make (joint angles, relative pose); the decoder must give back the clean pair, so that
encode -> decode pulls a noisy pair toward a plausible one. Loss: mean squared error of the
(normalised) features plus ``beta`` x KL to N(0, I). Writes
``models/weights/interaction_prior.npz``, read by ``models.interaction_prior`` (no torch).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.hand_model import HandModel
from models.interaction_prior import PRIOR_PATH, pair_features
from models.penetration import HandKinematics
from models.training.interaction_data import KINDS, sample_interaction


class PairVAE(nn.Module):
    """features -> 2 x (hidden, leaky ReLU) -> (mu, logvar) -> 2 x hidden -> features."""

    def __init__(self, features: int, hidden: int = 128, latent: int = 16) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.01)
        self.enc = nn.Sequential(nn.Linear(features, hidden), act, nn.Linear(hidden, hidden), act)
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.dec = nn.Sequential(nn.Linear(latent, hidden), act, nn.Linear(hidden, hidden), act,
                                 nn.Linear(hidden, features))

    def forward(self, x: torch.Tensor):
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h).clamp(-8, 4)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar

    def export(self) -> dict[str, np.ndarray]:
        layers = {"enc0": self.enc[0], "enc1": self.enc[2], "mu": self.mu,
                  "logvar": self.logvar, "dec0": self.dec[0], "dec1": self.dec[2],
                  "out": self.dec[4]}
        out = {}
        for name, lin in layers.items():
            out[f"{name}_w"] = lin.weight.detach().numpy().T.astype(np.float32)
            out[f"{name}_b"] = lin.bias.detach().numpy().astype(np.float32)
        return out


def make_pairs(n: int, seed: int) -> np.ndarray:
    """``(n, F)`` features of synthetic interacting pairs, kinds in equal shares."""
    model = HandModel.open_hand()
    kin = HandKinematics(model)
    rng = np.random.default_rng(seed)
    feats = []
    for i in range(n):
        right, left, _ = sample_interaction(kin, rng, KINDS[i % len(KINDS)])
        feats.append(pair_features(kin, right, left))
    return np.stack(feats)


def feature_noise(n_rows: int, n_feat: int, gen: torch.Generator) -> torch.Tensor:
    """Noise in feature units: ~0.1 rad on joint angles, ~0.1 on the relative 6D rotation,
    ~1 cm on the relative wrist offset (``models.training.interaction_data`` scales)."""
    scale = torch.full((n_feat,), 0.2)
    scale[:6] = 0.1
    scale[6:9] = 0.1
    return torch.randn(n_rows, n_feat, generator=gen) * scale


def train(features: np.ndarray, epochs: int, beta: float, seed: int) -> tuple[PairVAE, dict]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    mean = features.mean(0)
    std = features.std(0) + 1e-3
    n_val = max(1, len(features) // 10)
    x_all = torch.tensor(features, dtype=torch.float32)
    train_x, val_x = x_all[n_val:], x_all[:n_val]
    m_t, s_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    net = PairVAE(features.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        perm = torch.randperm(len(train_x), generator=gen)
        for start in range(0, len(train_x), 128):
            clean = train_x[perm[start:start + 128]]
            noisy = clean + feature_noise(len(clean), clean.shape[1], gen)
            recon, mu, logvar = net((noisy - m_t) / s_t)
            rec = ((recon - (clean - m_t) / s_t) ** 2).mean()
            kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1).mean() / clean.shape[1]
            loss = rec + beta * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    with torch.no_grad():
        noisy = val_x + feature_noise(len(val_x), val_x.shape[1], gen)
        net.eval()
        mu = net.mu(net.enc((noisy - m_t) / s_t))
        recon = net.dec(mu) * s_t + m_t
        metrics = {"val_noisy_rmse": float(((noisy - val_x) ** 2).mean().sqrt()),
                   "val_denoised_rmse": float(((recon - val_x) ** 2).mean().sqrt())}
    return net, {"mean": mean, "std": std, **metrics}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--beta", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=PRIOR_PATH)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    feats = make_pairs(a.pairs, a.seed)
    t1 = time.perf_counter()
    net, info = train(feats, a.epochs, a.beta, a.seed)
    arrays = net.export()
    arrays["feature_mean"] = info["mean"].astype(np.float32)
    arrays["feature_std"] = info["std"].astype(np.float32)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out, **arrays)
    summary = {"pairs": a.pairs, "epochs": a.epochs, "beta": a.beta, "seed": a.seed,
               "data_s": round(t1 - t0, 1), "train_s": round(time.perf_counter() - t1, 1),
               "val_noisy_rmse": round(info["val_noisy_rmse"], 4),
               "val_denoised_rmse": round(info["val_denoised_rmse"], 4)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
