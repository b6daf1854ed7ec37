"""Calibration benchmark: intrinsics from synthetic ChArUco views, metric hand placement,
and multi-view fusion, all against known truth.

1. Intrinsics: ChArUco boards ray-traced through a known webcam lens (K and barrel
   distortion), with blur and noise, plus deliberately blurred and duplicate views that the
   selector must reject; calibrated with ``cv2.calibrateCamera``. Baseline: the K that an
   uncalibrated run guesses from a 60 degree field of view.
2. Metric placement: synthetic hands (random pose, tilt and shape) at 30/50/80 cm, 2D
   landmarks projected through the true lens plus MediaPipe-like noise, hand-centred 3D
   keypoints of the generic (mean) shape plus noise, as a single view reports them.
   Translation error of the hand's centre: guessed K without undistortion (baseline),
   calibrated K with the generic shape, and with the user's hand profile.
3. Multi-view: a rig of 3 cameras around the hands, its extrinsics calibrated from
   rendered board views shared by the cameras (the camera-centre and rotation errors are
   printed); keypoint and depth error (camera 0's z) with 1, 2 and 3 views.
   ``multiview_depth_error_reduction`` is ``1 - err(2 views) / err(1 view)`` at 50 cm.

Real board photos in ``../shared/data`` are used when there are any (none so far).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/calibration.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

if __package__ in (None, ""):  # imported from a file run in this folder: it shadows calibration
    raise SystemExit("run the benchmarks as modules, from the repository: "
                     "python -m benchmarks.NAME (this folder's calibration.py would shadow the "
                     "calibration package)")

import cv2
import numpy as np

from benchmarks.common import save_figure
from calibration.board import BoardDetector, BoardSpec
from calibration.calibrate import SelectorConfig, ViewSelector, calibrate_views
from calibration.extrinsics import calibrate_extrinsics
from calibration.intrinsics import guess_intrinsics
from calibration.multiview import HandView, RigCamera, fuse_views, single_view_joints
from calibration.placement import solve_translation
from calibration.profile import HandProfile, bone_lengths, profile_scale
from calibration.simulation import (
    board_poses,
    render_board,
    rotation,
    synthetic_hands,
    synthetic_rig,
    webcam_calibration,
)
from models.hand_model import HandModel

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SHARED = REPO.parent / "shared" / "data"
DEPTHS_M = (0.3, 0.5, 0.8)
NOISE_2D_PX = 1.5  # MediaPipe-like landmark noise at 640x480
NOISE_3D_M = 0.004  # noise of the hand-centred 3D keypoints (regressor / world landmarks)


def bench_intrinsics(n_views: int, seed: int = 3) -> dict:
    spec = BoardSpec()
    truth = webcam_calibration()
    det = BoardDetector(spec)
    sel = ViewSelector(truth.size, SelectorConfig())
    rng = np.random.default_rng(seed)
    poses = board_poses(spec, n_views, seed=seed)
    offers = [(R, t, rng.uniform(0.0, 0.8)) for R, t in poses]  # noqa: N806
    offers += [(R, t, 2.5) for R, t in poses[:3]]  # defocused: must be rejected
    offers += [(R, t + np.array([0.001, 0, 0]), 0.3) for R, t in poses[3:5]]  # near copies
    outcome: dict[str, int] = {}
    t0 = time.perf_counter()
    for i, (R, t, blur) in enumerate(offers):  # noqa: N806
        img = render_board(spec, truth, R, t, blur_sigma_px=blur, noise_std=2.0, seed=i)
        r = sel.offer(img, det.detect(img))
        outcome[r] = outcome.get(r, 0) + 1
    result = calibrate_views(spec, sel.views, truth.size, "synthetic")
    k, kt = result.calibration.K, truth.K
    guess = guess_intrinsics(*truth.size, 60.0)
    return {
        "views_offered": len(offers), "outcome": outcome,
        "coverage": sel.coverage_fraction, "seconds": time.perf_counter() - t0,
        "focal_error_pct": 100 * max(abs(k[0, 0] / kt[0, 0] - 1), abs(k[1, 1] / kt[1, 1] - 1)),
        "principal_point_error_px": float(np.hypot(k[0, 2] - kt[0, 2], k[1, 2] - kt[1, 2])),
        "rms_px": result.rms_px,
        "guess_focal_error_pct": 100 * abs(guess.fx / kt[0, 0] - 1),
        "guess_principal_point_error_px": float(np.hypot(guess.cx - kt[0, 2],
                                                         guess.cy - kt[1, 2])),
    }


def _noisy_views(model, n, rng):
    true, generic = synthetic_hands(model, n, rng)
    observed = generic + rng.normal(0, NOISE_3D_M, generic.shape)
    return true, observed


def bench_placement(model: HandModel, n: int, seed: int = 5) -> dict:
    """Median translation error (mm) of the hand centre, three ways, per depth."""
    truth = webcam_calibration()
    guess = guess_intrinsics(*truth.size, 60.0)
    rng = np.random.default_rng(seed)
    out: dict = {}
    for depth in DEPTHS_M:
        true, observed = _noisy_views(model, n, rng)
        errs = {"guessed_K": [], "calibrated_generic": [], "calibrated_profile": []}
        for i in range(n):
            off = np.array([rng.uniform(-0.15, 0.15), rng.uniform(-0.1, 0.1), 0.0]) * depth
            centre = np.array([0.0, 0.0, depth]) + off
            x_true = true[i] + centre
            uv_ideal = x_true[:, :2] / x_true[:, 2:] * [truth.K[0, 0], truth.K[1, 1]] \
                + truth.K[:2, 2]
            uv = truth.distort_points(uv_ideal) + rng.normal(0, NOISE_2D_PX, (21, 2))
            rel = observed[i]
            t = solve_translation(rel, uv, guess.K)
            errs["guessed_K"].append(np.linalg.norm(t - centre))
            t = solve_translation(rel, truth.undistort_points(uv), truth.K)
            errs["calibrated_generic"].append(np.linalg.norm(t - centre))
            profile = HandProfile(bone_lengths(true[i]), source="true shape")
            s = profile_scale(rel + t, profile)
            errs["calibrated_profile"].append(np.linalg.norm(((rel + t) * s).mean(0) - centre))
        out[depth] = {k: float(np.median(v) * 1000) for k, v in errs.items()}
    return out


def calibrated_rig(rig: list[RigCamera], depth: float, frames: int, seed: int
                   ) -> tuple[list[RigCamera], float, float]:
    """The rig as ``calibrate_extrinsics`` finds it from rendered board views shared by all
    cameras; also the worst camera-centre error (mm) and rotation error (degrees)."""
    spec = BoardSpec()
    det = BoardDetector(spec)
    rng = np.random.default_rng(seed)
    centre = np.array([spec.squares_x, spec.squares_y, 0]) * spec.square_m / 2
    views = []
    for k in range(frames):
        rb = rotation(*rng.uniform(-25, 25, 3))
        tb = np.array([0.0, 0.0, depth]) + rng.uniform(-0.04, 0.04, 3) * depth - rb @ centre
        views.append([det.detect(render_board(spec, c.calibration, c.R @ rb, c.R @ tb + c.t,
                                              blur_sigma_px=0.4, noise_std=2.0, seed=k))
                      for c in rig])
    result = calibrate_extrinsics(spec, [c.calibration for c in rig], views)
    est = [RigCamera(c.calibration, r, t) for c, (r, t) in zip(rig, result.poses)]
    centre_err = max(np.linalg.norm(e.centre - c.centre) for e, c in zip(est, rig)) * 1000
    rot_err = max(np.degrees(np.linalg.norm(cv2.Rodrigues(e.R @ c.R.T)[0]))
                  for e, c in zip(est, rig))
    return est, float(centre_err), float(rot_err)


def bench_multiview(model: HandModel, n: int, board_frames: int, seed: int = 7) -> dict:
    """Keypoint and depth error (mm) with 1, 2, 3 views, per depth; the fusion uses the
    extrinsics calibrated from board views, the images come from the true rig."""
    rng = np.random.default_rng(seed)
    out: dict = {}
    for depth in DEPTHS_M:
        rig = synthetic_rig(3, distance_m=depth)
        rig = [type(c)(webcam_calibration(640, 480, 60.0 + 3 * i, name=f"cam{i}"), c.R, c.t)
               for i, c in enumerate(rig)]
        est, centre_err, rot_err = calibrated_rig(rig, depth, board_frames, seed)
        true, observed = _noisy_views(model, n, rng)
        acc = {k: ([], []) for k in ("1", "1+profile", "2", "3")}
        for i in range(n):
            centre = np.array([rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04), depth])
            x_true = true[i] + centre
            views = []
            for c, cam in enumerate(rig):
                uv = cam.calibration.distort_points(cam.project(x_true))
                uv = uv + rng.normal(0, NOISE_2D_PX, uv.shape)
                world_c = observed[i] @ cam.R.T  # hand-centred, in that camera's axes
                views.append(HandView(c, uv, np.ones(21), "right", 0.9, world_c))
            prof = HandProfile(bone_lengths(true[i]))
            res = {"1": single_view_joints(views[0], est),
                   "1+profile": single_view_joints(views[0], est, prof),
                   "2": fuse_views(views[:2], est)[0].joints,
                   "3": fuse_views(views, est)[0].joints}
            for k, x in res.items():
                acc[k][0].append(np.linalg.norm(x - x_true, axis=1).mean())
                acc[k][1].append(np.abs(x[:, 2] - x_true[:, 2]).mean())
        out[depth] = {k: {"keypoint_mm": float(np.median(a) * 1000),
                          "depth_mm": float(np.median(b) * 1000)} for k, (a, b) in acc.items()}
        out[depth]["extrinsics"] = {"centre_mm": centre_err, "rotation_deg": rot_err}
    return out


def real_board_photos() -> list[Path]:
    if not SHARED.is_dir():
        return []
    pats = ("*board*", "*charuco*", "*chess*")
    return sorted({p for pat in pats for p in SHARED.rglob(pat)})


def plot(place: dict, mv: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    d_cm = [d * 100 for d in DEPTHS_M]
    for key, label in (("guessed_K", "guessed K (60°), no undistortion"),
                       ("calibrated_generic", "calibrated K, generic shape"),
                       ("calibrated_profile", "calibrated K + hand profile")):
        a.plot(d_cm, [place[d][key] for d in DEPTHS_M], "o-", label=label)
    a.set(xlabel="hand distance (cm)", ylabel="median translation error (mm)",
          title="single-view metric placement")
    a.legend(fontsize=7)
    for key, label in (("1", "1 view"), ("1+profile", "1 view + profile"), ("2", "2 views"),
                       ("3", "3 views")):
        b.plot(d_cm, [mv[d][key]["depth_mm"] for d in DEPTHS_M], "o-", label=label)
    b.set(xlabel="hand distance (cm)", ylabel="median keypoint depth error (mm)",
          title="multi-view fusion", yscale="log")
    b.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer views and hands")
    ap.add_argument("--plot", type=Path, default=DOCS / "calibration_errors.png")
    a = ap.parse_args(argv)
    n_views, n_hands, n_board = (10, 60, 3) if a.quick else (16, 300, 6)
    model = HandModel.open_hand()

    intr = bench_intrinsics(n_views)
    print("== intrinsics (synthetic ChArUco 7x5, 640x480, k1=-0.12) ==")
    print(f"views offered {intr['views_offered']}: {intr['outcome']}, coverage "
          f"{intr['coverage']:.0%}, {intr['seconds']:.1f} s")
    print(f"{'':24}{'focal err %':>12}{'pp err px':>11}{'RMS px':>8}")
    print(f"{'guess (60° hfov)':24}{intr['guess_focal_error_pct']:12.2f}"
          f"{intr['guess_principal_point_error_px']:11.2f}{'-':>8}")
    print(f"{'calibrated':24}{intr['focal_error_pct']:12.3f}"
          f"{intr['principal_point_error_px']:11.2f}{intr['rms_px']:8.3f}")
    photos = real_board_photos()
    print(f"real board photos in {SHARED}: {len(photos) or 'none'}")

    place = bench_placement(model, n_hands)
    print("\n== single-view metric placement: median translation error (mm) ==")
    print(f"{'distance':>9}{'guessed K':>11}{'calib K':>9}{'+profile':>10}{'ratio':>8}")
    for d in DEPTHS_M:
        p = place[d]
        print(f"{d * 100:7.0f}cm{p['guessed_K']:11.1f}{p['calibrated_generic']:9.1f}"
              f"{p['calibrated_profile']:10.1f}"
              f"{p['calibrated_profile'] / p['guessed_K']:8.2f}")

    mv = bench_multiview(model, n_hands // 2, n_board)
    print("\n== extrinsics from shared board views: worst camera of the rig ==")
    for d in DEPTHS_M:
        e = mv[d]["extrinsics"]
        print(f"rig around {d * 100:.0f} cm: centre error {e['centre_mm']:.1f} mm, rotation "
              f"error {e['rotation_deg']:.2f}°")
    print("\n== multi-view: median keypoint / depth error (mm), 3-camera rig, calibrated ==")
    print(f"{'distance':>9}" + "".join(f"{k + ' view':>16}" for k in ("1", "1+profile", "2", "3")))
    for d in DEPTHS_M:
        print(f"{d * 100:7.0f}cm" + "".join(
            f"{mv[d][k]['keypoint_mm']:8.1f}/{mv[d][k]['depth_mm']:<7.1f}"
            for k in ("1", "1+profile", "2", "3")))
    reduction = 1 - mv[0.5]["2"]["depth_mm"] / mv[0.5]["1"]["depth_mm"]
    print(f"depth error 2 views vs 1 at 50 cm: ratio {1 - reduction:.3f} "
          f"(reduction {reduction:.1%}, target >= 50%)")
    plot(place, mv, a.plot)
    print(f"plot: {a.plot}")
    result = {
        "focal_error_pct": round(intr["focal_error_pct"], 4),
        "principal_point_error_px": round(intr["principal_point_error_px"], 3),
        "rms_px": round(intr["rms_px"], 4),
        "translation_error_mm_50cm": round(place[0.5]["calibrated_profile"], 2),
        "multiview_depth_error_reduction": round(reduction, 4),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    cv2.setNumThreads(2)
    main()
