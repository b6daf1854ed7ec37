"""Real-detector training pairs (``scripts.make_detector_pairs``) as training batches.

The file holds MediaPipe's actual outputs on rendered hands and the rendered pose and
shape; here the targets are skinned exactly as ``SyntheticHands`` skins its own (same
frame: camera axes, centred on the true keypoint mean), so a batch of pairs and a batch of
synthetic hands can be concatenated and trained with the same losses. A fixed fraction of
the pairs (chosen by a seeded permutation) is held out for validation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from models.training.synthetic import SyntheticHands

TRAIN_KEYS = ("world", "image", "image_size", "handedness", "vertices", "keypoints", "pose",
              "shape")
_INPUT_KEYS = ("world", "image", "image_size", "handedness", "pose", "shape")


class PairsError(ValueError):
    """A pairs file that cannot be used (missing, wrong model, wrong arrays)."""


def load_pairs(path: Path, hands: SyntheticHands, max_error_mm: float | None = None
               ) -> dict[str, torch.Tensor]:
    """The pairs of ``path`` with their targets, float32 tensors on ``hands.device``.

    ``max_error_mm``: keep only pairs whose MediaPipe world landmarks lie within this
    PA-MPJPE of the true keypoints (the renders where MediaPipe errs about as on photos).
    """
    path = Path(path)
    if not path.is_file():
        raise PairsError(f"pairs file {path} not found; make it with "
                         f"`python -m scripts.make_detector_pairs --out {path}`")
    with np.load(path) as z:
        missing = [k for k in _INPUT_KEYS + ("recipe",) if k not in z.files]
        if missing:
            raise PairsError(f"{path} lacks {missing}: not a make_detector_pairs file")
        recipe = json.loads(str(z["recipe"]))
        arrays = {k: z[k] for k in _INPUT_KEYS}
    if recipe.get("model_sha256") != hands.data.sha256:
        raise PairsError(f"{path} was rendered with hand model {recipe.get('model')!r} "
                         f"({recipe.get('model_sha256')}), training uses {hands.data.name!r}; "
                         "make the pairs again")
    if len(arrays["world"]) == 0:
        raise PairsError(f"{path} holds no pairs")
    out = {k: torch.as_tensor(v, dtype=torch.float32, device=hands.device)
           for k, v in arrays.items()}
    verts, kps = [], []
    with torch.no_grad():
        for i in range(0, len(out["pose"]), 1024):
            v, k = hands.skin(out["pose"][i:i + 1024], out["shape"][i:i + 1024])
            mean = k.mean(1, keepdim=True)
            verts.append(v - mean)
            kps.append(k - mean)
    out["vertices"], out["keypoints"] = torch.cat(verts), torch.cat(kps)
    out["handedness"] = out["handedness"].reshape(-1, 1)
    if max_error_mm is not None:
        keep = 1000 * pa_mpjpe(out["world"].double(), out["keypoints"].double()) < max_error_mm
        if not bool(keep.any()):
            raise PairsError(f"no pair of {path} has a MediaPipe error under {max_error_mm} mm")
        out = {k: v[keep] for k, v in out.items()}
    return out


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``(B,)`` mean point distance after similarity (Procrustes) alignment of ``pred`` to ``gt``."""
    p, g = pred - pred.mean(1, keepdim=True), gt - gt.mean(1, keepdim=True)
    u, s, vt = torch.linalg.svd(p.transpose(1, 2) @ g)
    d = torch.sign(torch.linalg.det(u @ vt))
    s = torch.cat([s[:, :2], (s[:, 2] * d)[:, None]], 1)
    u = torch.cat([u[..., :2], u[..., 2:] * d[:, None, None]], -1)
    rot = u @ vt
    scale = s.sum(1) / (p ** 2).sum((1, 2))
    aligned = scale[:, None, None] * p @ rot
    return torch.linalg.norm(aligned - g, dim=-1).mean(1)


def pairs_recipe(path: Path) -> dict:
    """How the pairs file was made (``scripts.make_detector_pairs``' config and counts)."""
    with np.load(path) as z:
        return json.loads(str(z["recipe"]))


def split_pairs(pairs: dict[str, torch.Tensor], val_fraction: float, seed: int
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(train, validation) by a seeded permutation; validation gets at least one pair."""
    n = len(pairs["world"])
    if n < 2:
        raise PairsError(f"need at least 2 pairs to hold some out, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = min(n - 1, max(1, round(val_fraction * n)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return ({k: v[train_idx.to(v.device)] for k, v in pairs.items()},
            {k: v[val_idx.to(v.device)] for k, v in pairs.items()})


def sample_pairs(pairs: dict[str, torch.Tensor], n: int, generator: torch.Generator
                 ) -> dict[str, torch.Tensor]:
    """``n`` pairs drawn with replacement (the file is small next to a training run)."""
    idx = torch.randint(len(pairs["world"]), (n,), generator=generator, device=generator.device)
    return {k: pairs[k][idx] for k in TRAIN_KEYS}


def mix(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One batch of two: the keys the losses and the network use, concatenated."""
    return {k: torch.cat([a[k], b[k]]) for k in TRAIN_KEYS}
