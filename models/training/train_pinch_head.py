"""Train the pinch head (``realtime.mesh.pinch_head``): pipeline joints -> true thumb-index
distance, on rendered training clips; checked on tuning clips and on real photos.

    python -m scripts.make_pinch_clip --script random --seed 1001 --out-dir runs/pinch/s1001
    python -m models.training.pinch_data runs/pinch/s1001 --out runs/pinch/rows_s1001.npz
    python -m models.training.pinch_data --stills 1000 --seed 31 --out runs/pinch/stills_31.npz
    python -m models.training.train_pinch_head --train runs/pinch/rows_s10??.npz \\
        --stills runs/pinch/stills_31.npz --tune runs/pinch/rows_s200[12].npz --real-guard

Training rows (``models.training.pinch_data``) hold the smoothed joints the pinch stage
sees and the raw per-frame joints (what it sees for photos, ``stills``); both are used.
The loss is the L1 error of the distance in cm, weighted up below 5 cm where the pinch is
decided. ``--tune``: clips never trained on, scored with the benchmark's own metrics
(frame F1 of the pinch state, distance error), next to the plain joint distance.
``--real-guard``: the thumb-index distance error on real photos with 3D labels
(hgcnn_realworld, tuning split 00000-00299, MediaPipe + the regressor, as the regressor
benchmark runs them), which must not be worse than the joints' own distance.
Writes ``models/weights/pinch_head.npz`` (a few kB) unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from realtime.mesh.pinch import PinchConfig, PinchTracker, pinch_distance
from realtime.mesh.pinch_head import DEFAULT_HEAD, NUM_FEATURES, PinchHead, pinch_features


def load_rows(paths: list[Path]) -> dict[str, np.ndarray]:
    """Concatenate rows files; ``clip`` becomes the file's index."""
    out: dict[str, list] = {}
    for c, path in enumerate(paths):
        with np.load(path) as z:
            for k in ("frame", "slot", "joints", "joints_raw", "right", "true_distance",
                      "true_engaged"):
                out.setdefault(k, []).append(z[k])
            out.setdefault("clip", []).append(np.full(len(z["frame"]), c))
    return {k: np.concatenate(v) for k, v in out.items()}


def load_stills(paths: list[Path]) -> dict[str, np.ndarray]:
    """Concatenate rendered-photo rows (``pinch_data --stills``)."""
    out: dict[str, list] = {}
    for path in paths:
        with np.load(path) as z:
            for k in ("joints", "right", "true_distance"):
                out.setdefault(k, []).append(z[k])
    return {k: np.concatenate(v) for k, v in out.items()}


def train(rows: dict, stills: dict | None = None, hidden: int = 64, layers: int = 2,
          steps: int = 3000, lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0,
          noise_mm: float = 1.0, real: dict | None = None, real_weight: float = 1.0,
          fit_below_m: float = np.inf) -> dict:
    """Fit the MLP on the clips' smoothed and raw joints and the photos' joints; returns
    the arrays of the weights file."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a tiny MLP: threads only contend
    empty = {"joints": np.zeros((0, 21, 3)), "right": np.zeros(0, bool),
             "true_distance": np.zeros(0)}
    stills = stills or empty
    real = real or empty
    joints = np.concatenate([rows["joints"], rows["joints_raw"], stills["joints"],
                             real["joints"]])
    right = np.concatenate([rows["right"], rows["right"], stills["right"], real["right"]])
    target = np.concatenate([rows["true_distance"], rows["true_distance"],
                             stills["true_distance"], real["true_distance"]]) * 100.0  # cm
    domain_w = np.concatenate([np.ones(2 * len(rows["joints"]) + len(stills["joints"])),
                               np.full(len(real["joints"]), real_weight)])
    feats = pinch_features(joints, right)
    near = feats[:, -1] < 100.0 * fit_below_m  # the joints' tip distance, cm
    feats, target, domain_w = feats[near], target[near], domain_w[near]
    mean, std = feats.mean(0), feats.std(0) + 1e-3
    x = torch.tensor((feats - mean) / std, dtype=torch.float32)
    y = torch.tensor(target, dtype=torch.float32)
    w = torch.where(y < 5.0, 3.0, 1.0) * torch.tensor(domain_w, dtype=torch.float32)
    dims = [NUM_FEATURES] + [hidden] * layers + [1]
    net = torch.nn.Sequential(*[m for i in range(len(dims) - 1) for m in (
        [torch.nn.Linear(dims[i], dims[i + 1])] + ([torch.nn.Tanh()] if i < len(dims) - 2
                                                   else []))])
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    jitter = torch.tensor(100.0 * noise_mm / 1000.0 / std, dtype=torch.float32)
    bar = tqdm(range(steps), desc="pinch head", unit="step")
    for _ in bar:
        idx = torch.randint(0, len(x), (1024,), generator=g)
        xb = x[idx] + jitter * torch.randn(len(idx), NUM_FEATURES, generator=g)
        pred = torch.nn.functional.softplus(net(xb)[:, 0])
        loss = (w[idx] * (pred - y[idx]).abs()).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(l1_cm=f"{loss.item():.3f}")
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    arrays = {}
    for i, m in enumerate(linears):
        arrays[f"w{i}"] = m.weight.detach().numpy().T.astype(np.float32)
        arrays[f"b{i}"] = m.bias.detach().numpy().astype(np.float32)
    arrays["mean"], arrays["std"] = mean.astype(np.float32), std.astype(np.float32)
    return arrays


def replay_f1(rows: dict, distance: np.ndarray, config: PinchConfig | None = None) -> float:
    """Frame F1 of the pinch state replayed over ``distance`` per clip and slot, scored as
    ``benchmarks.pinch`` scores (a frame without a row: hand missed, track forgotten)."""
    from benchmarks.pinch import frame_f1

    tp = fp = fn = 0
    for c in np.unique(rows["clip"]):
        for slot in (0, 1):
            sel = np.flatnonzero((rows["clip"] == c) & (rows["slot"] == slot))
            if not len(sel):
                continue
            frames = rows["frame"][sel]
            n = int(frames.max()) + 1
            truth = np.zeros(n, bool)
            valid = np.zeros(n, bool)
            pred = np.zeros(n, bool)
            dist = {int(f): float(d) for f, d in zip(frames, distance[sel])}
            truth[frames] = rows["true_engaged"][sel]
            valid[frames] = True
            tracker = PinchTracker(config or PinchConfig())
            for f in range(n):
                p = tracker.update({0: dist[f]} if f in dist else {}).get(0)
                pred[f] = bool(p and p.engaged)
            r = frame_f1(truth, pred, valid)
            tp, fp, fn = tp + r["tp"], fp + r["fp"], fn + r["fn"]
    return 2 * tp / max(1, 2 * tp + fp + fn)


def report(name: str, rows: dict, head: PinchHead) -> dict:
    t = rows["true_distance"].astype(np.float64)
    close = t < 0.030
    out = {}
    for label, d in (("joints", pinch_distance(rows["joints"])),
                     ("head", head.distance(rows["joints"], rows["right"]))):
        e = np.abs(d - t) * 1000
        out[label] = {"mae_mm": round(float(e.mean()), 2),
                      "mae_pinched_mm": round(float(e[close].mean()), 2),
                      "pinch_f1": round(replay_f1(rows, d), 4)}
    print(f"{name}: {len(t)} hand-frames: " + "; ".join(
        f"{k} F1 {v['pinch_f1']:.3f}, error {v['mae_mm']:.1f} mm ({v['mae_pinched_mm']:.1f} "
        "mm pinched)" for k, v in out.items()))
    return out


def real_rows(tune: bool = True, cache: Path | None = None) -> dict | None:
    """hgcnn_realworld photos through MediaPipe (static) and the regressor: joints in the
    camera frame, side, true distance. ``tune``: images 00000-00299, else 00300-00582."""
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    from benchmarks.common import hgcnn_hands, hgcnn_images
    from calibration.camera import Camera
    from models.hand_model import HandModel
    from realtime.mesh.regressor import RegressorEstimator

    images = hgcnn_images(None, tune)
    if images is None:
        return None
    est = RegressorEstimator(HandModel.open_hand())
    rows: dict[str, list] = {"joints": [], "right": [], "true_distance": [], "image": []}
    for gt3, gt2, intr, d in hgcnn_hands(images):
        h = est.estimate([d], Camera.pinhole(intr), [0])[0]
        rows["image"].append(next(int(Path(im["file"]).stem) for im in images
                                  if np.allclose(im["hands"][0]["keypoints_2d"], gt2)))
        rows["joints"].append(h.joints)
        rows["right"].append(h.handedness == "right")
        rows["true_distance"].append(float(np.linalg.norm(gt3[4] - gt3[8])))
    out = {k: np.asarray(v) for k, v in rows.items()}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **out)
    return out


def real_report(rows: dict, head: PinchHead, name: str = "real photos") -> dict:
    t = rows["true_distance"]
    dj = pinch_distance(rows["joints"])
    dh = head.distance(rows["joints"], rows["right"])
    out = {"photos": len(t), "joints_mae_mm": round(float(np.abs(dj - t).mean() * 1000), 2),
           "head_mae_mm": round(float(np.abs(dh - t).mean() * 1000), 2)}
    close = t < 0.03
    if close.any():
        out.update(pinched=int(close.sum()),
                   joints_mae_pinched_mm=round(float(np.abs(dj - t)[close].mean() * 1000), 2),
                   head_mae_pinched_mm=round(float(np.abs(dh - t)[close].mean() * 1000), 2))
    print(f"{name}: {json.dumps(out)}")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", type=Path, nargs="+", required=True)
    p.add_argument("--stills", type=Path, nargs="*", default=[],
                   help="rendered-photo rows (pinch_data --stills) to train on as well")
    p.add_argument("--tune", type=Path, nargs="*", default=[])
    p.add_argument("--out", type=Path, default=DEFAULT_HEAD)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--noise-mm", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real-guard", action="store_true")
    p.add_argument("--real-train", action="store_true",
                   help="also train on the real tuning photos (00000-00299) outside "
                        "--real-holdout; the guard reports the held-out ones")
    p.add_argument("--real-holdout", type=int, nargs=2, default=(0, 300), metavar=("FROM", "TO"),
                   help="tuning photos FROM <= number < TO: never trained on, the guard")
    p.add_argument("--real-weight", type=float, default=1.0)
    p.add_argument("--gate", type=float, nargs=2, default=(0.04, 0.06), metavar=("LOW", "HIGH"),
                   help="meters of the joints' tip distance: the head below LOW, the joints "
                        "above HIGH, blended between")
    p.add_argument("--head-weight", type=float, default=0.8,
                   help="inside the gate: this x the head + the rest x the joints")
    p.add_argument("--fit-below", type=float, default=0.08,
                   help="train only on hands whose joints' tip distance is under this (m)")
    p.add_argument("--real-cache", type=Path, default=Path("runs/pinch/real_tune.npz"))
    args = p.parse_args(argv)
    rows = load_rows(args.train)
    stills = load_stills(args.stills) if args.stills else None
    real_all = real_rows(True, args.real_cache) if (args.real_guard
                                                    or args.real_train) else None
    real_train = real_guard = None
    if real_all is not None:
        lo, hi = args.real_holdout
        held = (real_all["image"] >= lo) & (real_all["image"] < hi)
        if args.real_train and (~held).any():
            real_train = {k: v[~held] for k, v in real_all.items()}
        real_guard = {k: v[held] for k, v in real_all.items()}
    arrays = train(rows, stills, args.hidden, args.layers, args.steps,
                   weight_decay=args.weight_decay, seed=args.seed, noise_mm=args.noise_mm,
                   real=real_train, real_weight=args.real_weight,
                   fit_below_m=args.fit_below)
    recipe = {"train": [str(x) for x in args.train], "hidden": args.hidden,
              "layers": args.layers, "steps": args.steps, "weight_decay": args.weight_decay,
              "noise_mm": args.noise_mm, "seed": args.seed, "rows": len(rows["frame"]),
              "stills": [str(x) for x in args.stills],
              "real_train": args.real_train, "head_weight": args.head_weight, "real_holdout": list(args.real_holdout), "gate_m": list(args.gate),
              "fit_below_m": None if np.isinf(args.fit_below) else args.fit_below, "real_weight": args.real_weight,
              "still_rows": 0 if stills is None else len(stills["joints"])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays, gate_m=np.array(args.gate, dtype=np.float64),
             head_weight=np.array(args.head_weight),
             recipe=np.array(json.dumps(recipe)))
    head = PinchHead(args.out)
    scores = {"train_clips": report("train", rows, head)}
    if stills is not None:
        scores["train_photos"] = real_report(stills, head, "rendered photos (train)")
    if args.tune:
        scores["tune_clips"] = report("tune", load_rows(args.tune), head)
    if real_train is not None:
        scores["real_trained_on"] = real_report(real_train, head, "real tuning photos, trained on")
    if real_guard is not None:
        scores["real_guard"] = real_report(
            real_guard, head, "real tuning photos {}-{} held out (guard)".format(*args.real_holdout))
    recipe["scores"] = scores
    np.savez(args.out, **arrays, gate_m=np.array(args.gate, dtype=np.float64),
             head_weight=np.array(args.head_weight), recipe=np.array(json.dumps(recipe)))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.1f} kB)")


if __name__ == "__main__":
    main()
