"""The learned mesh regressor against the fitting baseline and MediaPipe's own 3D landmarks.

In one run:
1. held-out synthetic hands with MediaPipe-like noise (fixed seed, 5000 hands): PA-MPVPE /
   PA-MPJPE of the regressor and of the fitting baseline (IK on the same world landmarks),
   and how well the predicted per-vertex std matches the actual errors;
2. the built-in clip, closed loop (rendered -> MediaPipe -> both paths vs ground truth);
3. real photos, ``hgcnn_realworld`` images 00300-00582: PA-MPJPE and root-relative MPJPE of
   the 21 keypoints of both paths and of MediaPipe's world landmarks, and 2D errors; and the
   regressor with photo passes (``--photo-passes``, default 4: the photo, flipped, bordered,
   flipped bordered; ``realtime.mesh.photo_passes``) against the single pass, on the same
   hands ("hgcnn_tta_*" against "hgcnn_*" keys), with the time per photo; and the output
   joints moved to the photo annotators' convention (``--joint-convention photo``, the shipped
   placement, or ``FILE``, a fit of ``scripts.fit_photo_convention``;
   ``realtime.mesh.convention``) after one pass and after the passes ("hgcnn_conv_*",
   "hgcnn_tta_conv_*"; also on the clip, "clip_conv_pa_mpjpe_mm");
4. speed on the CPU execution provider for a batch of 2 hands, against the baseline fit.

``--previous MANIFEST`` runs other weights beside the evaluated ones (``--manifest``, default
the shipped) on 1-3 as a second named baseline, "previous", with ratios: e.g. a fine-tuned
candidate against the shipped weights (docs/regressor.md, "Training").

Prints a table; the last line is one JSON object. Writes docs/regressor_uncertainty.png.

    python -m benchmarks.regressor [--synthetic N] [--max-frames N] [--max-images N] [--tune]
                                   [--manifest M] [--previous M] [--photo-passes 1|2|4]
                                   [--clip-passes 1|2|4] [--joint-convention photo|none|FILE.npz]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from tqdm import tqdm

from benchmarks.common import (
    REPO,
    clip_hands,
    hgcnn_hands,
    hgcnn_images,
    mpjpe,
    pa_error,
    procrustes_align,
    save_figure,
)
from calibration.camera import Camera
from calibration.intrinsics import CameraIntrinsics
from models.hand_model import HandModel
from models.ik import fit_keypoints
from models.training.regressor import prepare_inputs_torch
from models.training.synthetic import SyntheticHands
from realtime.io.sample import SAMPLE_GT
from realtime.mesh.convention import ConventionEstimator, load_convention
from realtime.mesh.ik_fit import FitEstimator
from realtime.mesh.photo_passes import PHOTO_DEFAULT_PASSES, PhotoPassesEstimator, check_passes
from realtime.mesh.regressor import RegressorEstimator, RunnerConfig

MM = 1000.0


def synthetic(model: HandModel, runner, n: int, ik: bool = True) -> dict:
    """Regressor vs IK baseline (``ik``) on held-out synthetic hands; uncertainty calibration."""
    torch.set_num_threads(2)
    data = SyntheticHands(model.data).fixed_set(n, seed=20261123)
    world, image, handed = prepare_inputs_torch(data["world"], data["image"],
                                                data["image_size"], data["handedness"])
    outs = [runner.run(world[i:i + 256].numpy(), image[i:i + 256].numpy(),
                       handed[i:i + 256].numpy()) for i in range(0, n, 256)]
    verts = np.concatenate([o["vertices"] for o in outs]).astype(np.float64)
    joints = np.concatenate([o["joints"] for o in outs]).astype(np.float64)
    std = np.concatenate([o["vertex_std"] for o in outs]).astype(np.float64)
    gt_v = data["vertices"].numpy().astype(np.float64)
    gt_k = data["keypoints"].numpy().astype(np.float64)
    w = data["world"].numpy().astype(np.float64)
    res = {k: [] for k in ("pa_v", "pa_k", "base_pa_v", "base_pa_k", "mp_pa_k", "err", "std")}
    for i in tqdm(range(n), desc="synthetic (regressor + IK baseline)", unit="hand"):
        res["pa_v"].append(pa_error(verts[i], gt_v[i]))
        res["pa_k"].append(pa_error(joints[i], gt_k[i]))
        res["mp_pa_k"].append(pa_error(w[i], gt_k[i]))
        if ik:
            fit = fit_keypoints(model, w[i])
            bv = model.forward(fit.pose[None], fit.shape[None]).vertices[0] + fit.translation
            res["base_pa_v"].append(pa_error(bv, gt_v[i]))
            res["base_pa_k"].append(pa_error(fit.keypoints, gt_k[i]))
        res["err"].append(np.linalg.norm(verts[i] - gt_v[i], axis=1).mean())
        res["std"].append(std[i].mean())
    coord_err = np.abs(verts - gt_v)
    within1 = float((coord_err <= std[..., None]).mean())
    within2 = float((coord_err <= 2 * std[..., None]).mean())
    rho = float(spearmanr(res["std"], res["err"]).statistic)
    out = {k: float(np.mean(v)) for k, v in res.items() if k not in ("err", "std") and v}
    out.update(within_1sigma=within1, within_2sigma=within2, spearman=rho,
               per_hand_err=np.array(res["err"]), per_hand_std=np.array(res["std"]))
    return out


def with_passes(fitters: dict, passes: int) -> dict:
    """``fitters`` plus "regressor_tta" (the photo passes) when ``passes`` > 1, and
    "regressor_tta_conv" when a "regressor_conv" (the joint convention) is among them."""
    if passes == 1:
        return fitters
    out = {**fitters, "regressor_tta": PhotoPassesEstimator(fitters["regressor"])}
    if "regressor_conv" in fitters:
        out["regressor_tta_conv"] = ConventionEstimator(out["regressor_tta"],
                                                        fitters["regressor_conv"].convention)
    return out


def clip(model: HandModel, fitters: dict, max_frames: int | None, passes: int = 1) -> dict:
    """Closed loop on the built-in clip: MediaPipe once, every fitter on its detections;
    with ``passes`` > 1 also "regressor_tta": the regressor on each frame's photo passes
    (static-mode passes on its variants as alternates of the tracked hands: an offline
    option for a video file)."""
    with np.load(SAMPLE_GT) as z:  # read once: NpzFile re-inflates an array on every access
        gt = {k: z[k] for k in ("K", "width", "height", "vertices", "keypoints")}
    camera = Camera.pinhole(CameraIntrinsics.from_matrix(gt["K"], int(gt["width"]),
                                                        int(gt["height"])))
    fitters = with_passes(fitters, passes)
    rows = {name: {"pa_v": [], "mpjpe": [], "pa_k": [], "std": [], "in1": []}
            for name in fitters}
    for i, _, matches in clip_hands(max_frames, passes):
        for slot, best in matches.items():
            for name, fitter in fitters.items():
                det = best if "_tta" in name else replace(best, alternates=())
                hand = fitter.estimate([det], camera, [0])[0]
                true_v = gt["vertices"][i, slot]
                rows[name]["pa_v"].append(pa_error(hand.vertices, true_v))
                rows[name]["std"].append(float(hand.vertex_std.mean()))
                # per coordinate, after Procrustes: within the predicted 1 sigma?
                aligned = procrustes_align(hand.vertices, true_v)
                rows[name]["in1"].append(float(
                    (np.abs(aligned - true_v) <= hand.vertex_std[:, None]).mean()))
                rows[name]["pa_k"].append(pa_error(hand.joints, gt["keypoints"][i, slot]))
                rows[name]["mpjpe"].append(mpjpe(hand.joints, gt["keypoints"][i, slot]))
    out = {name: {k: float(np.mean(v)) for k, v in r.items()} for name, r in rows.items()}
    for name, r in rows.items():  # does the predicted std rank the hands' vertex errors?
        out[name]["rho"] = float(spearmanr(r["std"], r["pa_v"]).statistic)
    return out


def real(fitters: dict, max_images: int | None, tune: bool = False,
         passes: int = PHOTO_DEFAULT_PASSES) -> dict | None:
    """Real photos; with ``passes`` > 1 also "regressor_tta": the regressor on the photo
    passes (the same hands; the single-pass regressor is the named baseline)."""
    images = hgcnn_images(max_images, tune)
    if images is None:
        return None
    fitters = with_passes(fitters, passes)
    names = list(fitters) + ["mediapipe"]
    rows = {n: {"pa": [], "rr": [], "px": [], "std": [], "sec": []} for n in names}
    seconds: list[tuple[float, float]] = []
    for gt3, gt2, intr, d_tta in hgcnn_hands(images, passes, seconds):
        d = replace(d_tta, alternates=())
        for name, fitter in fitters.items():
            start = time.perf_counter()
            h = fitter.estimate([d_tta if "_tta" in name else d],
                                Camera.pinhole(intr), [0])[0]
            rows[name]["sec"].append(time.perf_counter() - start + seconds[-1][0]
                                     + (seconds[-1][1] if "_tta" in name else 0.0))
            rows[name]["std"].append(float(h.vertex_std.mean()))
            rows[name]["pa"].append(pa_error(h.joints, gt3))
            rows[name]["rr"].append(mpjpe(h.joints, gt3))
            rows[name]["px"].append(np.linalg.norm(h.keypoints_2d - gt2, axis=1).mean())
        rows["mediapipe"]["pa"].append(pa_error(d.world, gt3))
        rows["mediapipe"]["rr"].append(mpjpe(d.world, gt3))
        rows["mediapipe"]["px"].append(np.linalg.norm(d.landmarks_px - gt2, axis=1).mean())
    out = {n: {k: float(np.mean(v)) for k, v in r.items() if v} for n, r in rows.items()}
    for n in fitters:  # does the predicted std rank the photos' errors?
        out[n]["rho"] = float(spearmanr(rows[n]["std"], rows[n]["pa"]).statistic)
    out["images"] = len(images)
    out["detected"] = len(rows["mediapipe"]["pa"])
    return out


def speed(model: HandModel, runner, fitter: FitEstimator, calls: int = 500) -> dict:
    """Batch of 2 hands on the CPU execution provider, against two baseline fits."""
    data = SyntheticHands(model.data).sample(2, torch.Generator().manual_seed(5))
    world, image, handed = (t.numpy() for t in prepare_inputs_torch(
        data["world"], data["image"], data["image_size"], data["handedness"]))
    for _ in range(50):
        runner.run(world, image, handed)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        runner.run(world, image, handed)
        times.append(time.perf_counter() - t)
    w64 = data["world"].numpy().astype(np.float64)
    fit_times = []
    for _ in range(40):
        t = time.perf_counter()
        for i in range(2):
            fit_keypoints(model, w64[i])
        fit_times.append(time.perf_counter() - t)
    return {"ms_2hands": 1000 * float(np.median(times)),
            "ms_2hands_p95": 1000 * float(np.percentile(times, 95)),
            "baseline_ms_2hands": 1000 * float(np.median(fit_times))}


def plot(syn: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 1, figsize=(6, 4.5))
    ax.scatter(syn["per_hand_std"] * MM, syn["per_hand_err"] * MM, s=3, alpha=0.3)
    ax.set_xlabel("mean predicted vertex std (mm)")
    ax.set_ylabel("mean vertex error (mm)")
    ax.set_title(f"held-out synthetic hands: Spearman {syn['spearman']:.2f}, "
                 f"{100 * syn['within_1sigma']:.0f}% within 1σ")
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--synthetic", type=int, default=5000)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--manifest", type=Path, default=None)
    p.add_argument("--previous", type=Path, default=None,
                   help="manifest of other weights to run as the named baseline 'previous'")
    p.add_argument("--tune", action="store_true",
                   help="real photos 00000-00299 (the tuning split) instead of the report split")
    p.add_argument("--photo-passes", type=int, default=PHOTO_DEFAULT_PASSES,
                   help="passes per photo for the real-photo 'regressor_tta' row (1: none)")
    p.add_argument("--clip-passes", type=int, default=1,
                   help="also the clip with this many passes per frame (offline; 1: none)")
    p.add_argument("--joint-convention", default="photo", metavar="photo|none|FILE.npz",
                   help="also the joints moved by this convention: 'photo' (default: the "
                        "shipped placement, the demo's default for photos), a .npz of "
                        "scripts.fit_photo_convention, or 'none'")
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "regressor_uncertainty.png")
    args = p.parse_args(argv)
    model = HandModel.open_hand()
    cfg = RunnerConfig() if args.manifest is None else RunnerConfig(manifest=args.manifest)
    learned = RegressorEstimator(model, cfg)
    baseline = FitEstimator(model)
    fitters = {"regressor": learned, "baseline": baseline}
    if args.joint_convention not in (None, "none"):
        fitters["regressor_conv"] = ConventionEstimator(
            learned, load_convention(args.joint_convention, model))
    if args.previous is not None:
        fitters["previous"] = RegressorEstimator(model, RunnerConfig(manifest=args.previous))
    sp = speed(model, learned.runner, baseline)
    syn = synthetic(model, learned.runner, args.synthetic)
    prev_syn = (synthetic(model, fitters["previous"].runner, args.synthetic, ik=False)
                if "previous" in fitters else None)
    cl = clip(model, fitters, args.max_frames, check_passes(args.clip_passes))
    rl = real(fitters, args.max_images, args.tune, check_passes(args.photo_passes))
    plot(syn, args.plot)

    print(f"\n{'':44s} {'regressor':>10s} {'baseline':>10s} {'MediaPipe':>10s} {'ratio':>7s}")
    print(f"{'synthetic PA-MPVPE (mm)':44s} {syn['pa_v'] * MM:10.2f} "
          f"{syn['base_pa_v'] * MM:10.2f} {'-':>10s} {syn['pa_v'] / syn['base_pa_v']:7.2f}")
    print(f"{'synthetic PA-MPJPE (mm)':44s} {syn['pa_k'] * MM:10.2f} "
          f"{syn['base_pa_k'] * MM:10.2f} {syn['mp_pa_k'] * MM:10.2f} "
          f"{syn['pa_k'] / syn['base_pa_k']:7.2f}")
    print(f"{'clip PA-MPVPE (mm)':44s} {cl['regressor']['pa_v'] * MM:10.2f} "
          f"{cl['baseline']['pa_v'] * MM:10.2f} {'-':>10s} "
          f"{cl['regressor']['pa_v'] / cl['baseline']['pa_v']:7.2f}")
    print(f"{'clip MPJPE root-relative (mm)':44s} {cl['regressor']['mpjpe'] * MM:10.2f} "
          f"{cl['baseline']['mpjpe'] * MM:10.2f}")
    result = {
        "synthetic_hands": args.synthetic,
        "synthetic_pa_mpvpe_mm": round(syn["pa_v"] * MM, 2),
        "baseline_synthetic_pa_mpvpe_mm": round(syn["base_pa_v"] * MM, 2),
        "synthetic_pa_mpjpe_mm": round(syn["pa_k"] * MM, 2),
        "baseline_synthetic_pa_mpjpe_mm": round(syn["base_pa_k"] * MM, 2),
        "mediapipe_like_synthetic_pa_mpjpe_mm": round(syn["mp_pa_k"] * MM, 2),
        "synthetic_ratio_vs_baseline": round(syn["pa_v"] / syn["base_pa_v"], 3),
        "clip_pa_mpvpe_mm": round(cl["regressor"]["pa_v"] * MM, 2),
        "baseline_clip_pa_mpvpe_mm": round(cl["baseline"]["pa_v"] * MM, 2),
        "clip_mpjpe_mm": round(cl["regressor"]["mpjpe"] * MM, 2),
        "baseline_clip_mpjpe_mm": round(cl["baseline"]["mpjpe"] * MM, 2),
        "within_1sigma": round(syn["within_1sigma"], 3),
        "within_2sigma": round(syn["within_2sigma"], 3),
        "uncertainty_spearman": round(syn["spearman"], 3),
        "ms_per_call_2hands": round(sp["ms_2hands"], 3),
        "ms_per_call_2hands_p95": round(sp["ms_2hands_p95"], 3),
        "baseline_fit_ms_2hands": round(sp["baseline_ms_2hands"], 3),
        "speedup_vs_baseline": round(sp["baseline_ms_2hands"] / sp["ms_2hands"], 2),
    }
    if "regressor_tta" in cl:
        tta, one = cl["regressor_tta"], cl["regressor"]
        print(f"{f'clip, {args.clip_passes} passes: PA-MPVPE / PA-MPJPE (mm)':44s} "
              f"{tta['pa_v'] * MM:10.2f} {tta['pa_k'] * MM:10.2f}  single pass "
              f"{one['pa_v'] * MM:.2f} / {one['pa_k'] * MM:.2f}, ratio "
              f"{tta['pa_v'] / one['pa_v']:.3f}")
        print(f"{'clip uncertainty: within 1σ (PA), Spearman':44s} "
              f"{100 * tta['in1']:9.1f}% {tta['rho']:10.3f}  single pass "
              f"{100 * one['in1']:.1f}%, {one['rho']:.3f}")
        result.update({"clip_passes": args.clip_passes,
                       "clip_tta_pa_mpvpe_mm": round(tta["pa_v"] * MM, 2),
                       "clip_tta_pa_mpjpe_mm": round(tta["pa_k"] * MM, 2),
                       "clip_single_pa_mpjpe_mm": round(one["pa_k"] * MM, 2),
                       "clip_tta_ratio_vs_single": round(tta["pa_v"] / one["pa_v"], 3),
                       "clip_within_1sigma": round(one["in1"], 3),
                       "clip_tta_within_1sigma": round(tta["in1"], 3),
                       "clip_uncertainty_spearman": round(one["rho"], 3),
                       "clip_tta_uncertainty_spearman": round(tta["rho"], 3)})
    if rl:
        for label, key in (("real PA-MPJPE (mm)", "pa"), ("real MPJPE root-relative (mm)", "rr"),
                           ("real 2D error vs GT (px)", "px")):
            scale = MM if key != "px" else 1.0
            print(f"{label:44s} {rl['regressor'][key] * scale:10.2f} "
                  f"{rl['baseline'][key] * scale:10.2f} {rl['mediapipe'][key] * scale:10.2f} "
                  f"{rl['regressor'][key] / rl['mediapipe'][key]:7.2f}")
        result.update({
            "real_images": rl["images"], "real_detected": rl["detected"],
            "real_pa_mpjpe_mm": round(rl["regressor"]["pa"] * MM, 2),
            "real_mpjpe_mm": round(rl["regressor"]["rr"] * MM, 2),
            "baseline_real_pa_mpjpe_mm": round(rl["baseline"]["pa"] * MM, 2),
            "mediapipe_real_pa_mpjpe_mm": round(rl["mediapipe"]["pa"] * MM, 2),
            "mediapipe_real_mpjpe_mm": round(rl["mediapipe"]["rr"] * MM, 2),
            "real_2d_px": round(rl["regressor"]["px"], 2),
            "mediapipe_real_2d_px": round(rl["mediapipe"]["px"], 2),
            "real_uncertainty_spearman": round(rl["regressor"]["rho"], 3),
        })
        if "regressor_tta" in rl:
            result.update(photo_passes_rows(rl, args.photo_passes))
        if "regressor_conv" in rl:
            result.update(convention_rows(rl, cl))
    print(f"{'uncertainty: within 1σ / 2σ (per coordinate)':44s} "
          f"{100 * syn['within_1sigma']:9.1f}% {100 * syn['within_2sigma']:9.1f}%  "
          f"(Gaussian: 68.3% / 95.4%)")
    print(f"{'uncertainty: Spearman(std, error) per hand':44s} {syn['spearman']:10.3f}")
    print(f"{'ms per call, 2 hands (CPU EP, median)':44s} {sp['ms_2hands']:10.3f} "
          f"{sp['baseline_ms_2hands']:10.3f} {'':>10s} "
          f"{sp['ms_2hands'] / sp['baseline_ms_2hands']:7.2f}")
    if prev_syn is not None:
        result.update(previous_vs_regressor(prev_syn, syn, cl, rl))
    print(json.dumps(result))
    return 0


def photo_passes_rows(rl: dict, passes: int) -> dict:
    """Print the photo passes against the single pass (the named baseline, the same
    hands); the figures for the JSON ("hgcnn_" keys: hgcnn_realworld photos)."""
    tta, one, mp = rl["regressor_tta"], rl["regressor"], rl["mediapipe"]
    print(f"\n{f'real photos, {passes} passes vs single pass':44s} {'passes':>10s} "
          f"{'single':>10s} {'MediaPipe':>10s} {'ratio':>7s}")
    for label, key, scale in (("real PA-MPJPE (mm)", "pa", MM),
                              ("real MPJPE root-relative (mm)", "rr", MM),
                              ("real 2D error vs GT (px)", "px", 1.0)):
        print(f"{label:44s} {tta[key] * scale:10.2f} {one[key] * scale:10.2f} "
              f"{mp[key] * scale:10.2f} {tta[key] / one[key]:7.3f}")
    print(f"{'real Spearman(mean std, PA-MPJPE) per hand':44s} {tta['rho']:10.3f} "
          f"{one['rho']:10.3f}")
    print(f"{'ms per photo (detector + regressor)':44s} {1000 * tta['sec']:10.1f} "
          f"{1000 * one['sec']:10.1f}")
    return {"photo_passes": passes,
            "hgcnn_pa_mpjpe_mm": round(one["pa"] * MM, 2),
            "hgcnn_tta_pa_mpjpe_mm": round(tta["pa"] * MM, 2),
            "hgcnn_tta_ratio_vs_single": round(tta["pa"] / one["pa"], 3),
            "hgcnn_tta_mpjpe_mm": round(tta["rr"] * MM, 2),
            "hgcnn_2d_px": round(one["px"], 2),
            "hgcnn_tta_2d_px": round(tta["px"], 2),
            "hgcnn_tta_uncertainty_spearman": round(tta["rho"], 3),
            "hgcnn_ms_per_photo": round(1000 * one["sec"], 1),
            "hgcnn_tta_ms_per_photo": round(1000 * tta["sec"], 1)}


def convention_rows(rl: dict, cl: dict) -> dict:
    """Print the joints in the annotators' convention against the same estimator's own
    joints (the named baseline: the single pass; for the passes, the passes); JSON keys."""
    print(f"\n{'joint convention vs none':44s} {'moved':>10s} {'as is':>10s} "
          f"{'ratio':>7s}")
    out = {}
    pairs = [("", "regressor_conv", "regressor")]
    if "regressor_tta_conv" in rl:
        pairs.append(("tta_", "regressor_tta_conv", "regressor_tta"))
    for tag, moved, plain in pairs:
        for label, key, scale in (("PA-MPJPE (mm)", "pa", MM),
                                  ("MPJPE root-relative (mm)", "rr", MM),
                                  ("2D error vs GT (px)", "px", 1.0)):
            a, b = rl[moved][key] * scale, rl[plain][key] * scale
            name = f"real, {'passes' if tag else 'single pass'}: {label}"
            print(f"{name:44s} {a:10.2f} {b:10.2f} "
                  f"{a / b:7.3f}")
        out.update({f"hgcnn_{tag}conv_pa_mpjpe_mm": round(rl[moved]["pa"] * MM, 2),
                    f"hgcnn_{tag}conv_mpjpe_mm": round(rl[moved]["rr"] * MM, 2),
                    f"hgcnn_{tag}conv_2d_px": round(rl[moved]["px"], 2),
                    f"hgcnn_{tag}conv_ratio_vs_{'passes' if tag else 'single_pass'}": round(
                        rl[moved]["pa"] / rl[plain]["pa"], 3)})
    if "regressor_conv" in cl:
        a, b = cl["regressor_conv"]["pa_k"] * MM, cl["regressor"]["pa_k"] * MM
        print(f"{'clip PA-MPJPE (mm; GT: the model joints)':44s} {a:10.2f} {b:10.2f} "
              f"{a / b:7.3f}")
        out.update({"clip_conv_pa_mpjpe_mm": round(a, 2),
                    "clip_single_pa_mpjpe_mm": round(b, 2)})
    out["hgcnn_single_pa_mpjpe_mm"] = round(rl["regressor"]["pa"] * MM, 2)
    out["mediapipe_hgcnn_2d_px"] = round(rl["mediapipe"]["px"], 2)
    return out


def previous_vs_regressor(prev_syn: dict, syn: dict, cl: dict, rl: dict | None) -> dict:
    """Print the evaluated weights against ``--previous``; the figures for the JSON."""
    rows = [("synthetic PA-MPVPE (mm)", syn["pa_v"] * MM, prev_syn["pa_v"] * MM),
            ("synthetic PA-MPJPE (mm)", syn["pa_k"] * MM, prev_syn["pa_k"] * MM),
            ("clip PA-MPVPE (mm)", cl["regressor"]["pa_v"] * MM, cl["previous"]["pa_v"] * MM),
            ("clip PA-MPJPE (mm)", cl["regressor"]["pa_k"] * MM, cl["previous"]["pa_k"] * MM),
            ("uncertainty Spearman", syn["spearman"], prev_syn["spearman"]),
            ("uncertainty within 1 sigma", syn["within_1sigma"], prev_syn["within_1sigma"])]
    if rl:
        rows += [("real PA-MPJPE (mm)", rl["regressor"]["pa"] * MM, rl["previous"]["pa"] * MM),
                 ("real MPJPE root-relative (mm)", rl["regressor"]["rr"] * MM,
                  rl["previous"]["rr"] * MM),
                 ("real 2D error vs GT (px)", rl["regressor"]["px"], rl["previous"]["px"])]
    print(f"\n{'evaluated vs --previous weights':44s} {'regressor':>10s} {'previous':>10s} "
          f"{'ratio':>7s}")
    for label, new, old in rows:
        print(f"{label:44s} {new:10.3f} {old:10.3f} {new / old:7.3f}")
    out = {"previous_synthetic_pa_mpvpe_mm": round(prev_syn["pa_v"] * MM, 2),
           "previous_clip_pa_mpvpe_mm": round(cl["previous"]["pa_v"] * MM, 2),
           "clip_pa_mpjpe_mm": round(cl["regressor"]["pa_k"] * MM, 2),
           "previous_clip_pa_mpjpe_mm": round(cl["previous"]["pa_k"] * MM, 2),
           "previous_uncertainty_spearman": round(prev_syn["spearman"], 3),
           "clip_ratio_vs_previous": round(cl["regressor"]["pa_v"] / cl["previous"]["pa_v"], 3)}
    if rl:
        out.update({"previous_real_pa_mpjpe_mm": round(rl["previous"]["pa"] * MM, 2),
                    "previous_real_2d_px": round(rl["previous"]["px"], 2),
                    "real_ratio_vs_previous": round(rl["regressor"]["pa"] / rl["previous"]["pa"],
                                                    3)})
    return out


if __name__ == "__main__":
    sys.exit(main())
