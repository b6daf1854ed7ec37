"""Accuracy of the fitting baseline (MediaPipe + hand-model fit) against ground truth.

1. The built-in sample clip (rendered by the project, exact ground truth): fraction of
   frames with all hands found, MPJPE / PA-MPJPE / PA-MPVPE of our hands, 2D errors.
2. ``../shared/data/realhands/hgcnn_realworld`` (real photos, 3D joints + K): PA-MPJPE and
   root-relative MPJPE of our fitted keypoints next to MediaPipe's own world landmarks, and
   the 2D error of our reprojected keypoints next to MediaPipe's 2D error. Reported on
   images 00300-00582 (00000-00299 are for tuning).

Prints a table and, as its last line, one JSON object. Writes docs/baseline_fit_errors.png.

    python -m benchmarks.baseline_fit [--max-frames N] [--max-images N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import (
    REPO,
    REPORT_FROM,
    clip_hands,
    hgcnn_hands,
    hgcnn_images,
    mpjpe,
    pa_error,
    pa_error_per_point,
    save_figure,
)
from calibration.camera import Camera
from calibration.intrinsics import CameraIntrinsics
from models.hand_model import HandModel
from realtime.io.sample import SAMPLE_GT
from realtime.mesh.ik_fit import FitEstimator


def evaluate_sample(max_frames: int | None) -> dict:
    """Run the baseline on the built-in clip and compare with its ground truth."""
    gt = np.load(SAMPLE_GT)
    camera = Camera.pinhole(CameraIntrinsics.from_matrix(gt["K"], int(gt["width"]),
                                                        int(gt["height"])))
    fitter = FitEstimator(HandModel.open_hand())
    rows = {k: [] for k in ("mpjpe", "pa_mpjpe", "pa_mpvpe", "abs_mpjpe", "ours_2d", "mp_2d",
                            "mp_world_mpjpe", "mp_world_pa")}
    frames = all_found = any_found = hands_present = hands_found = 0
    for i, present, matches in clip_hands(max_frames):
        for slot, best in matches.items():
            gt2d = gt["keypoints_2d"][i, slot]
            hand = fitter.fit(best, camera)
            gk, gv = gt["keypoints"][i, slot], gt["vertices"][i, slot]
            rows["mpjpe"].append(mpjpe(hand.joints, gk))
            rows["pa_mpjpe"].append(pa_error(hand.joints, gk))
            rows["pa_mpvpe"].append(pa_error(hand.vertices, gv))
            rows["abs_mpjpe"].append(float(np.linalg.norm(hand.joints - gk, axis=1).mean()))
            rows["ours_2d"].append(float(np.linalg.norm(hand.keypoints_2d - gt2d, axis=1).mean()))
            rows["mp_2d"].append(float(np.linalg.norm(best.landmarks_px - gt2d, axis=1).mean()))
            rows["mp_world_mpjpe"].append(mpjpe(best.world, gk))
            rows["mp_world_pa"].append(pa_error(best.world, gk))
        frames += 1
        hands_present += len(present)
        hands_found += len(matches)
        all_found += len(matches) == len(present)
        any_found += len(matches) > 0
    out = {k: float(np.mean(v)) if v else float("nan") for k, v in rows.items()}
    out.update(frames=frames, all_hands_rate=all_found / max(frames, 1),
               any_hand_rate=any_found / max(frames, 1),
               hand_recall=hands_found / max(hands_present, 1))
    return out


def evaluate_hgcnn(max_images: int | None) -> dict | None:
    """MediaPipe (static mode) + our fit on the real hgcnn photos with 3D ground truth."""
    images = hgcnn_images(max_images)
    if images is None:
        return None
    fitter = FitEstimator(HandModel.open_hand())
    res = {k: [] for k in ("ours_pa", "ours_rr", "mp_pa", "mp_rr", "ours_2d", "mp_2d", "reproj")}
    per_kp_ours, per_kp_mp = [], []
    for gt3, gt2, intr, d in hgcnn_hands(images):
        fit = fitter.fit(d, Camera.pinhole(intr))
        res["ours_pa"].append(pa_error(fit.joints, gt3))
        res["ours_rr"].append(mpjpe(fit.joints, gt3))
        res["mp_pa"].append(pa_error(d.world, gt3))
        res["mp_rr"].append(mpjpe(d.world, gt3))
        res["ours_2d"].append(float(np.linalg.norm(fit.keypoints_2d - gt2, axis=1).mean()))
        res["mp_2d"].append(float(np.linalg.norm(d.landmarks_px - gt2, axis=1).mean()))
        res["reproj"].append(fit.reprojection_error_px)
        per_kp_ours.append(pa_error_per_point(fit.joints, gt3))
        per_kp_mp.append(pa_error_per_point(d.world, gt3))
    out = {k: float(np.mean(v)) for k, v in res.items()}
    out.update(images=len(images), detected=len(res["ours_pa"]),
               per_kp_ours=np.mean(per_kp_ours, 0), per_kp_mp=np.mean(per_kp_mp, 0))
    return out


def plot_per_keypoint(hg: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.topology import Keypoint

    names = [k.name.lower() for k in Keypoint]
    x = np.arange(21)
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.bar(x - 0.2, hg["per_kp_mp"] * 1000, 0.4, label="MediaPipe world landmarks")
    ax.bar(x + 0.2, hg["per_kp_ours"] * 1000, 0.4, label="our fitted hand model")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("PA error (mm)")
    ax.set_title(f"hgcnn_realworld (images {REPORT_FROM}-582): error per keypoint")
    ax.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "baseline_fit_errors.png")
    args = p.parse_args(argv)
    s = evaluate_sample(args.max_frames)
    hg = evaluate_hgcnn(args.max_images)
    mm = 1000.0
    print()
    print("built-in sample clip (exact ground truth)")
    print(f"  frames {s['frames']}, all hands found {100 * s['all_hands_rate']:.1f}%, "
          f"any hand {100 * s['any_hand_rate']:.1f}%, hand recall {100 * s['hand_recall']:.1f}%")
    print(f"  {'metric':32s} {'ours':>9s} {'MediaPipe':>10s} {'ratio':>7s}")
    print(f"  {'MPJPE root-rel (mm)':32s} {s['mpjpe'] * mm:9.2f} {s['mp_world_mpjpe'] * mm:10.2f} "
          f"{s['mpjpe'] / s['mp_world_mpjpe']:7.2f}")
    print(f"  {'PA-MPJPE (mm)':32s} {s['pa_mpjpe'] * mm:9.2f} {s['mp_world_pa'] * mm:10.2f} "
          f"{s['pa_mpjpe'] / s['mp_world_pa']:7.2f}")
    print(f"  {'PA-MPVPE (mm)':32s} {s['pa_mpvpe'] * mm:9.2f} {'-':>10s}")
    print(f"  {'camera-frame MPJPE (mm)':32s} {s['abs_mpjpe'] * mm:9.2f} {'-':>10s}")
    print(f"  {'2D error (px)':32s} {s['ours_2d']:9.2f} {s['mp_2d']:10.2f} "
          f"{s['ours_2d'] / s['mp_2d']:7.2f}")
    result = {
        "sample_frames": s["frames"],
        "sample_all_hands_rate": round(s["all_hands_rate"], 4),
        "sample_any_hand_rate": round(s["any_hand_rate"], 4),
        "sample_mpjpe_mm": round(s["mpjpe"] * mm, 2),
        "sample_pa_mpjpe_mm": round(s["pa_mpjpe"] * mm, 2),
        "sample_pa_mpvpe_mm": round(s["pa_mpvpe"] * mm, 2),
        "sample_camera_mpjpe_mm": round(s["abs_mpjpe"] * mm, 2),
        "sample_mediapipe_pa_mpjpe_mm": round(s["mp_world_pa"] * mm, 2),
        "sample_2d_px": round(s["ours_2d"], 2),
        "sample_mediapipe_2d_px": round(s["mp_2d"], 2),
    }
    if hg:
        print(f"\nhgcnn_realworld images {REPORT_FROM}-582: {hg['detected']}/{hg['images']} "
              "detected")
        print(f"  {'metric':32s} {'ours':>9s} {'MediaPipe':>10s} {'ratio':>7s}")
        for label, ours, theirs in (
            ("PA-MPJPE (mm)", hg["ours_pa"] * mm, hg["mp_pa"] * mm),
            ("root-relative MPJPE (mm)", hg["ours_rr"] * mm, hg["mp_rr"] * mm),
            ("2D error vs GT (px)", hg["ours_2d"], hg["mp_2d"]),
        ):
            print(f"  {label:32s} {ours:9.2f} {theirs:10.2f} {ours / theirs:7.2f}")
        print(f"  {'reprojection onto MediaPipe 2D (px)':32s} {hg['reproj']:9.2f}")
        plot_per_keypoint(hg, args.plot)
        print(f"  per-keypoint plot: {args.plot}")
        result.update({
            "hgcnn_images": hg["images"], "hgcnn_detected": hg["detected"],
            "hgcnn_pa_mpjpe_mm": round(hg["ours_pa"] * mm, 2),
            "hgcnn_mediapipe_pa_mpjpe_mm": round(hg["mp_pa"] * mm, 2),
            "hgcnn_pa_mpjpe_ratio_vs_mediapipe": round(hg["ours_pa"] / hg["mp_pa"], 3),
            "hgcnn_mpjpe_mm": round(hg["ours_rr"] * mm, 2),
            "hgcnn_mediapipe_mpjpe_mm": round(hg["mp_rr"] * mm, 2),
            "hgcnn_mpjpe_ratio_vs_mediapipe": round(hg["ours_rr"] / hg["mp_rr"], 3),
            "hgcnn_2d_px": round(hg["ours_2d"], 2),
            "hgcnn_mediapipe_2d_px": round(hg["mp_2d"], 2),
            "hgcnn_reprojection_px": round(hg["reproj"], 2),
        })
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
