"""Train the mesh regressor on synthetic hands and export it to ``models/weights/``.

    python -m models.training.train --device cuda --steps 7600 --batch 1024   # the shipped weights
                                           # (7.4 min on one H100; synthetic PA-MPVPE 3.30 mm)
    python -m models.training.train                 # CPU: 5000 x 256, 42 min on 2 cores, 3.69 mm
    python -m models.training.train --steps 200     # a quick smoke run
    python -m models.training.train --resume        # continue from runs/regressor/last.pt
    python -m models.training.train --init-from models/weights/regressor.pt \
        --pairs runs/pairs.npz --pairs-fraction 0.5 --steps 400 --batch 128 --lr 3e-4
        # fine-tune on real-detector pairs: better on rendered clips, worse on real photos,
        # not shipped (docs/regressor.md, "Fine-tuning on real-detector pairs")
    python -m models.training.train --init-from models/weights/regressor.pt --steps 1000 \
        --batch 256 --lr 5e-4 --pct-start 0.1 --synthetic 'world_z_noise_ratio=[2.5,3.3]' \
        --synthetic 'world_xy_noise_mm=[2.2,4.4]' --synthetic world_scale_std=0.05 \
        --synthetic world_depth_scale_std=0.06
        # noise recalibrated to MediaPipe on the tune photos: within noise there, not shipped

Fixed seed, a progress bar, a checkpoint every ``--checkpoint-every`` steps. Data are drawn
on the fly from the open hand model with MediaPipe-like noise (``models.training.synthetic``), so
there is no data set to download or store. ``--pairs FILE`` mixes in, per batch, hands whose
inputs are MediaPipe's real outputs on rendered images (``scripts.make_detector_pairs``,
``models.training.pairs``); ``--init-from`` starts from trained weights. Loss (after AMVUR):
the negative log-likelihood of the true mesh under the fused distribution and under the prior, a KL term tying the
model-free refinement to the prior, plus L1 terms on vertices and keypoints and small
pose/shape supervision of the prior.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models import WEIGHTS_DIR
from models.hand_model import HandModel
from models.training.pairs import load_pairs, mix, pairs_recipe, sample_pairs, split_pairs
from models.training.regressor import (
    MeshRegressor,
    RegressorConfig,
    gaussian_kl,
    gaussian_nll,
    prepare_inputs_torch,
)
from models.training.synthetic import SyntheticConfig, SyntheticHands
from models.training.torch_skinning import axis_angle_to_matrix, rot6d_to_matrix

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the defaults are the CPU recipe (see the module docstring for
    the GPU recipe of the shipped weights)."""

    steps: int = 5000
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    kl_weight: float = 0.05
    l1_weight: float = 200.0
    pose_weight: float = 0.5
    shape_weight: float = 0.02
    seed: int = 0
    threads: int = 2
    device: str = "cpu"  # "cuda" trains on a GPU (not bit-identical to the CPU run)
    checkpoint_every: int = 500
    validate_every: int = 500
    val_hands: int = 1000
    out_dir: str = "runs/regressor"
    pct_start: float = 0.05  # share of the steps the learning rate warms up over
    init_from: str | None = None  # weights to start from (regressor.pt or a checkpoint)
    pairs: str | None = None  # real-detector pairs (scripts.make_detector_pairs), or none
    pairs_fraction: float = 0.5  # share of each batch drawn from the pairs
    pairs_max_error_mm: float | None = None  # keep pairs where MediaPipe erred less than this
    val_pairs_fraction: float = 0.1  # pairs held out for validation
    keep_checkpoints: bool = False  # also keep step<N>.pt at every checkpoint (to choose one)
    # SyntheticConfig fields to change from their defaults, e.g. {"world_z_noise_ratio":
    # [2.5, 3.5]} (the noise model's scalars; recorded in the manifest with the rest)
    synthetic: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "checkpoint_every", "validate_every", "val_hands"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 < self.pct_start < 1.0:
            raise ValueError(f"pct_start must be in (0, 1), got {self.pct_start}")
        for name in ("pairs_fraction", "val_pairs_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        try:
            self.synthetic_config  # noqa: B018 - bad values fail here, before any work
        except ValueError as exc:
            raise ValueError(f"synthetic: {exc}") from None
        if self.pairs is not None and not 1 <= round(self.pairs_fraction * self.batch) < self.batch:
            raise ValueError(f"pairs_fraction {self.pairs_fraction} of batch {self.batch} must "
                             "leave at least one pair and one synthetic hand per batch")

    @property
    def synthetic_config(self) -> SyntheticConfig:
        """The noise model trained on: the defaults with ``synthetic`` applied."""
        return build_config(SyntheticConfig, self.synthetic)

    @property
    def pairs_per_batch(self) -> int:
        return round(self.pairs_fraction * self.batch) if self.pairs else 0


def build_config(cls, overrides: dict, **fixed):
    """``cls(**fixed, **overrides)``, a config dataclass from ``FIELD=JSON`` overrides
    (:func:`parse_overrides`): JSON lists become tuples; an unknown field or a value of the
    wrong kind is a ValueError, as are the config's own checks."""
    unknown = set(overrides) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}")
    try:
        return cls(**fixed, **{k: tuple(v) if isinstance(v, list) else v
                               for k, v in overrides.items()})
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def parse_overrides(items: list[str], flag: str = "--synthetic") -> dict:
    """``["field=json", ...]`` -> ``{field: value}``; a malformed item raises ValueError."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{flag} {item!r}: expected FIELD=VALUE")
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{flag} {item!r}: {value!r} is not JSON ({exc.msg})") from None
    return out


def initial_weights(path: str | Path) -> tuple[dict, RegressorConfig]:
    """State dict and network config from ``regressor.pt`` (export) or a ``last.pt``."""
    ck = torch.load(path, weights_only=False, map_location="cpu")
    if "state_dict" in ck:
        return ck["state_dict"], RegressorConfig(**ck["config"])
    if "net" in ck:
        return ck["net"], RegressorConfig(**ck.get("net_config", {}))
    raise ValueError(f"{path} holds neither an exported regressor.pt nor a training checkpoint")


def network_inputs(batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return prepare_inputs_torch(batch["world"], batch["image"], batch["image_size"],
                                batch["handedness"])


def losses(out: dict, batch: dict, cfg: TrainConfig) -> tuple[torch.Tensor, dict]:
    gt_v, gt_k = batch["vertices"], batch["keypoints"]
    logvar = 2.0 * torch.log(out["vertex_std"])
    nll = gaussian_nll(gt_v, out["vertices"], logvar).mean()
    nll_prior = gaussian_nll(gt_v, out["prior_vertices"], out["prior_logvar"]).mean()
    kl = gaussian_kl(out["free_vertices"], out["free_logvar"], out["prior_vertices"],
                     out["prior_logvar"]).mean()
    l1_v = (out["vertices"] - gt_v).abs().sum(-1).mean()
    l1_k = (out["joints"] - gt_k).abs().sum(-1).mean()
    l1_p = (out["prior_vertices"] - gt_v).abs().sum(-1).mean()
    pose = ((rot6d_to_matrix(out["pose6d"]) - axis_angle_to_matrix(batch["pose"])) ** 2).mean()
    shape = ((out["shape"] - batch["shape"]) ** 2).mean()
    total = (nll + nll_prior + cfg.kl_weight * kl
             + cfg.l1_weight * (l1_v + l1_k + 0.5 * l1_p)
             + cfg.pose_weight * pose + cfg.shape_weight * shape)
    parts = {"nll": nll.item(), "kl": kl.item(), "v_mm": 1000 * l1_v.item() / 3,
             "k_mm": 1000 * l1_k.item() / 3}
    return total, parts


@torch.no_grad()
def validate(net: MeshRegressor, val: dict) -> dict:
    """Mean vertex and keypoint errors (mm) and 1-sigma coverage on the held-out set."""
    net.eval()
    errs_v, errs_k, within = [], [], []
    n = val["world"].shape[0]
    for i in range(0, n, 500):
        sl = {k: v[i:i + 500] for k, v in val.items()}
        out = net(*network_inputs(sl))
        ev = torch.linalg.norm(out["vertices"] - sl["vertices"], dim=-1)
        errs_v.append(ev.mean(1))
        errs_k.append(torch.linalg.norm(out["joints"] - sl["keypoints"], dim=-1).mean(1))
        within.append((ev <= out["vertex_std"] * np.sqrt(3)).float().mean(1))
    net.train()
    return {"val_vertex_mm": 1000 * torch.cat(errs_v).mean().item(),
            "val_keypoint_mm": 1000 * torch.cat(errs_k).mean().item(),
            "val_within_1sigma": torch.cat(within).mean().item()}


def train(cfg: TrainConfig, resume: bool = False) -> tuple[MeshRegressor, dict]:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model = HandModel.open_hand()
    dev = torch.device(cfg.device)
    net_config, init_state = RegressorConfig(), None
    if cfg.init_from is not None:
        init_state, net_config = initial_weights(cfg.init_from)
    net = MeshRegressor(model.data, net_config).to(dev)
    if init_state is not None:
        net.load_state_dict(init_state)
    data = SyntheticHands(model.data, cfg.synthetic_config, device=dev)
    pairs = val_pairs = None
    if cfg.pairs is not None:
        pairs, val_pairs = split_pairs(load_pairs(Path(cfg.pairs), data, cfg.pairs_max_error_mm),
                                       cfg.val_pairs_fraction, cfg.seed)
        log.info("pairs: %d for training, %d held out", len(pairs["world"]),
                 len(val_pairs["world"]))
    val = data.fixed_set(cfg.val_hands, seed=cfg.seed + 12345)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps,
                                                pct_start=cfg.pct_start)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = 0
    history: list[dict] = []
    if resume and (out_dir / "last.pt").is_file():
        ck = torch.load(out_dir / "last.pt", weights_only=False, map_location=dev)
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"].cpu())
        start, history = ck["step"], ck["history"]
        log.info("resumed at step %d", start)
    extra: dict = {}  # provenance, kept in checkpoints and the manifest's training record
    if cfg.init_from is not None:
        extra["init_from"] = {"file": Path(cfg.init_from).name, "sha256": hashlib.sha256(
            Path(cfg.init_from).read_bytes()).hexdigest()}
    if cfg.pairs is not None:
        extra["pairs_recipe"] = pairs_recipe(Path(cfg.pairs))
    t0 = time.perf_counter()
    if cfg.init_from is not None and start == 0:  # where the fine-tuning starts from
        history.append({"step": 0, **validate(net, val), **({} if val_pairs is None else {
            f"pairs_{k}": v for k, v in validate(net, val_pairs).items()}), "minutes": 0.0})
        log.info(json.dumps(history[-1]))
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train",
               unit="step")
    for step in bar:
        if pairs is None:
            batch = data.sample(cfg.batch, gen)
        else:
            batch = mix(data.sample(cfg.batch - cfg.pairs_per_batch, gen),
                        sample_pairs(pairs, cfg.pairs_per_batch, gen))
        out = net(*network_inputs(batch))
        loss, parts = losses(out, batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 20 == 0:
            bar.set_postfix(v=f"{parts['v_mm']:.2f}mm", k=f"{parts['k_mm']:.2f}mm",
                            nll=f"{parts['nll']:.2f}")
        done = step + 1
        if done % cfg.validate_every == 0 or done == cfg.steps:
            metrics = {"step": done, **validate(net, val),
                       **({} if val_pairs is None else {
                           f"pairs_{k}": v for k, v in validate(net, val_pairs).items()}),
                       "minutes": (time.perf_counter() - t0) / 60}
            history.append(metrics)
            bar.write(json.dumps(metrics))
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "gen": gen.get_state(), "step": done,
                        "history": history, "config": asdict(cfg),
                        "net_config": net.config.to_dict(), "extra": extra},
                       out_dir / "last.pt")
            if cfg.keep_checkpoints:
                shutil.copyfile(out_dir / "last.pt", out_dir / f"step{done:06d}.pt")
    info = {"config": asdict(cfg), "history": history,
            "minutes": (time.perf_counter() - t0) / 60}
    return net.cpu(), {**info, **extra}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak learning rate")
    p.add_argument("--pct-start", type=float, default=TrainConfig.pct_start,
                   help="share of the steps spent warming the learning rate up")
    p.add_argument("--init-from", default=None,
                   help="start from these weights (models/weights/regressor.pt or a last.pt)")
    p.add_argument("--pairs", default=None,
                   help="real-detector pairs (python -m scripts.make_detector_pairs) to mix in")
    p.add_argument("--pairs-fraction", type=float, default=TrainConfig.pairs_fraction,
                   help="share of each batch drawn from --pairs")
    p.add_argument("--pairs-max-error-mm", type=float, default=None,
                   help="keep only pairs whose MediaPipe world landmarks are within this "
                        "PA-MPJPE of the truth")
    p.add_argument("--validate-every", type=int, default=TrainConfig.validate_every)
    p.add_argument("--checkpoint-every", type=int, default=TrainConfig.checkpoint_every)
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every checkpoint as step<N>.pt, not only last.pt")
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--device", default=TrainConfig.device,
                   help="torch device to train on: cpu (default) or cuda")
    p.add_argument("--out-dir", default=TrainConfig.out_dir)
    p.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR,
                   help="where the exported ONNX files and manifest go")
    p.add_argument("--synthetic", action="append", default=[], metavar="FIELD=JSON",
                   help="change a SyntheticConfig field (noise model), e.g. "
                        "world_z_noise_ratio=[2.5,3.5]; repeatable")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-export", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = TrainConfig(synthetic=parse_overrides(args.synthetic), steps=args.steps, batch=args.batch, seed=args.seed,
                          threads=args.threads, device=args.device, out_dir=args.out_dir,
                          lr=args.lr, pct_start=args.pct_start, init_from=args.init_from,
                          pairs=args.pairs, pairs_fraction=args.pairs_fraction,
                          pairs_max_error_mm=args.pairs_max_error_mm,
                          validate_every=args.validate_every,
                          checkpoint_every=args.checkpoint_every,
                          keep_checkpoints=args.keep_checkpoints)
        net, info = train(cfg, resume=args.resume)
    except (ValueError, FileNotFoundError) as exc:  # bad options or files: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.no_export:
        return
    from models.training.export import export_all

    export_all(net, info, args.weights_dir)


if __name__ == "__main__":
    main()
