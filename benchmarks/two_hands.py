"""Two interacting hands: interpenetration, keypoint error, handedness flips, cost.

Part 1, interacting pairs. Plausible touching pairs (``models.training.interaction_data``: clasp,
pinch between hands, interlaced fingers, holding a finger, palm to palm; truths whose
meshes overlap by more than ``TRUTH_MAX_MM3`` are redrawn) are seen through MediaPipe-like
noise with the levels of ``models.training.synthetic.SyntheticConfig``: world landmarks with a
global scale error and per-keypoint noise (depth several times x/y), image landmarks with
noise proportional to the hand's size. Each hand is then fitted as the fitting baseline
does (IK on the world landmarks, then the translation that puts the fitted keypoints on the
2D landmarks), which puts each hand at its own depth: the usual cause of two hands
interpenetrating. One pair in three is "occluded": twice the noise and a high vertex_std,
where the interaction prior engages. Measured before and after ``TwoHandCorrector``:
penetration volume of the two meshes (mm^3, z-ray parity on a 1 mm grid), mean 3D keypoint
error (mm, camera frame, both hands), and the cost per frame.

Part 2, crossing trajectories. Two hands sweep across each other (24 crossings a minute);
MediaPipe's labels are simulated with one-frame flips, multi-frame swaps while the hands
overlap, both hands given the same label, and dropped detections. Handedness flips per
minute of the tracker's output for each true hand: the previous tracker (label + streak)
against the fused one (label, 3D chirality, one of each, memory), in the same run.

Usage: ``python -m benchmarks.two_hands [--pairs 60] [--minutes 1]``. The last line printed
is one JSON object with ``penetration_mm3_before``, ``penetration_mm3_after``,
``keypoint_error_mm_before``, ``keypoint_error_mm_after``, ``handedness_flips_per_min``,
``two_hands_ms``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from calibration.placement import solve_translation
from models.geometry import axis_angle_to_matrix, project
from models.hand_model import HandModel, flip_faces, mirror_x
from models.ik import fit_keypoints
from models.penetration import HandKinematics, HandState, penetration_volume, state_vertices
from models.poses import sample_poses
from models.training.interaction_data import KINDS, sample_interaction
from models.training.synthetic import SyntheticConfig
from realtime.mesh.tracking import HandTracker, TrackerConfig
from realtime.mesh.two_hands import TwoHandConfig, TwoHandCorrector
from realtime.types import Detection, HandMesh

WIDTH, HEIGHT = 1280, 720
K = np.array([[900.0, 0.0, 640.0], [0.0, 900.0, 360.0], [0.0, 0.0, 1.0]])
TRUTH_MAX_MM3 = 20.0
FPS = 30.0
REPO = Path(__file__).resolve().parents[1]


# -- part 1: interacting pairs -------------------------------------------------------------
def noisy_fit(model: HandModel, kin: HandKinematics, truth: HandState, cfg: SyntheticConfig,
              rng: np.random.Generator, occluded: bool) -> HandMesh:
    """What the fitting baseline makes of one hand seen through MediaPipe-like noise."""
    kp = kin.posed(truth, False).keypoints
    factor = cfg.occluded_noise_factor if occluded else 1.0
    centred = kp - kp.mean(0)
    scale = 1.0 + cfg.world_scale_std * np.clip(rng.normal(), -3, 3)
    sigma = 1e-3 * rng.uniform(*cfg.world_xy_noise_mm) * factor
    ratio = rng.uniform(*cfg.world_z_noise_ratio)
    world = centred * scale + rng.normal(0.0, sigma, (21, 3)) * [1.0, 1.0, ratio]
    px = project(kp, K)
    extent = float(np.max(px.max(0) - px.min(0)))
    px = px + rng.normal(0.0, rng.uniform(*cfg.image_noise_frac) * extent * factor, px.shape)
    ik = fit_keypoints(model, mirror_x(world) if truth.left else world)
    joints = mirror_x(ik.keypoints) if truth.left else ik.keypoints
    joints = joints + solve_translation(joints, px, K)
    state = kin.fit_state(ik.pose, ik.shape, joints, truth.left)
    verts = state_vertices(kin, state)
    joints = kin.posed(state, False).keypoints
    std = np.full(model.num_vertices, 0.012 if occluded else 0.002)
    return HandMesh(verts, joints, std, ik.pose, ik.shape, project(joints, K),
                    "left" if truth.left else "right", 0.9, int(truth.left), 0.0, 0)


def make_pairs(model: HandModel, kin: HandKinematics, n: int, seed: int):
    rng = np.random.default_rng(seed)
    faces_r, faces_l = model.faces, flip_faces(model.faces)
    pairs = []
    while len(pairs) < n:
        right, left, kind = sample_interaction(kin, rng, KINDS[len(pairs) % len(KINDS)])
        if penetration_volume(state_vertices(kin, right), faces_r, state_vertices(kin, left),
                              faces_l) > TRUTH_MAX_MM3:
            continue
        pairs.append((right, left, kind))
    return pairs


def evaluate_pairs(model, kin, pairs, corrector: TwoHandCorrector, seed: int) -> dict:
    rng = np.random.default_rng(seed)  # same noise for every corrector compared
    cfg = SyntheticConfig()
    faces = {"right": model.faces, "left": flip_faces(model.faces)}
    rows = []
    for i, (right, left, kind) in enumerate(pairs):
        occluded = i % 3 == 2
        hands = [noisy_fit(model, kin, s, cfg, rng, occluded) for s in (right, left)]
        truth = [kin.posed(s, False).keypoints for s in (right, left)]
        t0 = time.perf_counter()
        fixed = corrector.correct(hands, K)
        ms = (time.perf_counter() - t0) * 1e3

        def vol(hs):
            return penetration_volume(hs[0].vertices, faces[hs[0].handedness],
                                      hs[1].vertices, faces[hs[1].handedness])

        def err(hs):
            return 1e3 * float(np.mean([np.linalg.norm(h.joints - t, axis=1).mean()
                                        for h, t in zip(hs, truth)]))

        def rel_err(hs):
            return 1e3 * float(np.mean([np.linalg.norm((h.joints - h.joints[0]) - (t - t[0]),
                                                       axis=1).mean()
                                        for h, t in zip(hs, truth)]))

        def err_2d(hs):
            return float(np.mean([np.linalg.norm(h.keypoints_2d - project(t, K), axis=1).mean()
                                  for h, t in zip(hs, truth)]))

        def ang(hs):
            return float(np.degrees(np.mean([np.abs(h.pose[1:] - t.pose[1:]).mean()
                                             for h, t in zip(hs, (right, left))])))

        rows.append({"kind": kind, "occluded": occluded, "ms": ms,
                     "ang_before": ang(hands), "ang_after": ang(fixed),
                     "vol_before": vol(hands), "vol_after": vol(fixed),
                     "err_before": err(hands), "err_after": err(fixed),
                     "rel_before": rel_err(hands), "rel_after": rel_err(fixed),
                     "px_before": err_2d(hands), "px_after": err_2d(fixed)})
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


# -- part 2: crossing trajectories ---------------------------------------------------------
def crossing_detections(model: HandModel, kin: HandKinematics, minutes: float, seed: int):
    """Per frame: the detections (with simulated MediaPipe labels) and their true sides."""
    rng = np.random.default_rng(seed)
    frames = int(minutes * 60 * FPS)
    period = 2.5 * FPS  # a crossing every 2.5 s: 24 a minute
    names, limits = model.data.joint_names, model.data.limits
    poses = {s: sample_poses(names, limits, frames // 60 + 2, rng) for s in ("right", "left")}
    swap_left, drop_left, drop_side = 0, 0, None
    out = []
    diag = float(np.hypot(WIDTH, HEIGHT))
    for f in range(frames):
        phase = np.sin(2 * np.pi * f / (2 * period))
        centres = {"right": np.array([-0.12 * phase, 0.015, 0.5]),
                   "left": np.array([0.12 * phase, -0.015, 0.53])}
        kps = {}
        for side in ("right", "left"):
            tilt = axis_angle_to_matrix(np.array([[0.3 * np.sin(f / 40), 0.4 * np.sin(f / 55),
                                                   0.2 * np.sin(f / 70)]]))[0]
            st = HandState(poses[side][f // 60], np.zeros(model.num_shape), tilt,
                           np.zeros(3), side == "left")
            kp = kin.posed(st, False).keypoints
            kps[side] = kp - kp.mean(0) + centres[side]
        px = {s: project(kps[s], K) for s in kps}
        near = np.linalg.norm(px["right"].mean(0) - px["left"].mean(0)) < 0.12 * diag
        if near and swap_left == 0 and rng.random() < 0.08:
            swap_left = int(rng.integers(4, 16))  # MediaPipe confused while hands overlap
        if near and drop_left == 0 and rng.random() < 0.04:
            drop_left, drop_side = int(rng.integers(2, 7)), str(rng.choice(["right", "left"]))
        labels = {"right": "right", "left": "left"}
        if swap_left > 0:
            labels = {"right": "left", "left": "right"} if swap_left % 5 else \
                {"right": "right", "left": "right"}
            swap_left -= 1
        for s in labels:
            if rng.random() < 0.02:  # one-frame flips anywhere
                labels[s] = "left" if labels[s] == "right" else "right"
        dets, truth = [], []
        for s in ("right", "left"):
            if drop_left > 0 and s == drop_side:
                continue
            wrong = labels[s] != s
            world = kps[s] - kps[s].mean(0) + rng.normal(0, 0.003, (21, 3)) * [1, 1, 3.5]
            dets.append(Detection(px[s] + rng.normal(0, 2.0, (21, 2)), np.zeros(21), world,
                                  labels[s], float(rng.uniform(0.55, 0.8) if wrong
                                                   else rng.uniform(0.8, 0.99)), f, f / FPS))
            truth.append(s)
        drop_left = max(0, drop_left - 1)
        order = rng.permutation(len(dets))
        out.append(([dets[i] for i in order], [truth[i] for i in order]))
    return out


def count_flips(seq, config: TrackerConfig) -> tuple[float, float]:
    """Handedness flips per minute of the output, per true hand; fraction of wrong labels."""
    tracker = HandTracker(config)
    last = {}
    flips, wrong, seen = 0, 0, 0
    for f, (dets, truth) in enumerate(seq):
        ids = tracker.assign(dets, (WIDTH, HEIGHT), f)
        for tid, side in zip(ids, truth):
            out = tracker.handedness(tid)
            if side in last and last[side] != out:
                flips += 1
            last[side] = out
            wrong += out != side
            seen += 1
    minutes = len(seq) / FPS / 60
    return flips / minutes, wrong / max(seen, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=60)
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "two_hands.png")
    a = p.parse_args(argv)
    model = HandModel.open_hand()
    kin = HandKinematics(model)
    pairs = make_pairs(model, kin, a.pairs, a.seed)
    plain = TwoHandCorrector(model, TwoHandConfig(use_prior=False))
    full = TwoHandCorrector(model, TwoHandConfig(use_prior=True))
    evaluate_pairs(model, kin, pairs[:3], full, a.seed)  # JIT warm-up
    res_plain = evaluate_pairs(model, kin, pairs, plain, a.seed + 1)
    res = evaluate_pairs(model, kin, pairs, full, a.seed + 1)
    print(f"{len(pairs)} interacting pairs ({', '.join(KINDS)}), 1 in 3 occluded; "
          f"MediaPipe-like noise (models.training.synthetic levels), fitting-baseline placement")
    print(f"{'':34}{'pen mm3':>10}{'kp err mm':>11}{'rel err mm':>11}{'2D px':>8}"
          f"{'angle °':>9}{'ms p50':>8}{'ms p95':>8}")
    print(f"{'before (independent hands)':34}{res['vol_before'].mean():10.0f}"
          f"{res['err_before'].mean():11.2f}{res['rel_before'].mean():11.2f}"
          f"{res['px_before'].mean():8.2f}{res['ang_before'].mean():9.2f}")
    for name, r in (("after, correction only", res_plain), ("after, correction + prior", res)):
        print(f"{name:34}{r['vol_after'].mean():10.0f}{r['err_after'].mean():11.2f}"
              f"{r['rel_after'].mean():11.2f}{r['px_after'].mean():8.2f}"
              f"{r['ang_after'].mean():9.2f}"
              f"{np.median(r['ms']):8.2f}{np.percentile(r['ms'], 95):8.2f}")
    for occ in (False, True):
        sel = res["occluded"] == occ
        label = "occluded" if occ else "clear"
        print(f"  {label:9} pairs: kp err {res['err_before'][sel].mean():.2f}"
              f" -> {res_plain['err_after'][sel].mean():.2f} (correction) -> "
              f"{res['err_after'][sel].mean():.2f} mm (+ prior); rel "
              f"{res['rel_before'][sel].mean():.2f} -> {res_plain['rel_after'][sel].mean():.2f}"
              f" -> {res['rel_after'][sel].mean():.2f} mm; joint angles "
              f"{res['ang_before'][sel].mean():.1f} -> {res_plain['ang_after'][sel].mean():.1f}"
              f" -> {res['ang_after'][sel].mean():.1f} deg")
    penetrating = res["vol_before"] > TRUTH_MAX_MM3
    print(f"pairs penetrating before: {penetrating.sum()}/{len(pairs)}, after: "
          f"{(res['vol_after'] > TRUTH_MAX_MM3).sum()}; penetration after / before: "
          f"{res['vol_after'].mean() / max(res['vol_before'].mean(), 1e-9):.3f}")
    seq = crossing_detections(model, kin, a.minutes, a.seed)
    base_flips, base_wrong = count_flips(seq, TrackerConfig(fuse_handedness=False))
    flips, wrong = count_flips(seq, TrackerConfig())
    print(f"crossing trajectories, {a.minutes:g} min at {FPS:.0f} fps, 24 crossings/min:")
    print(f"  previous tracker (label + streak): {base_flips:6.1f} flips/min, "
          f"{100 * base_wrong:5.1f}% frames wrong side")
    print(f"  fused handedness (ours):           {flips:6.1f} flips/min, "
          f"{100 * wrong:5.1f}% frames wrong side; ratio {flips / max(base_flips, 1e-9):.3f}")
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
        ax[0].scatter(res["vol_before"] / 1e3, res["vol_after"] / 1e3, s=12)
        top = max(res["vol_before"].max(), 1.0) / 1e3
        ax[0].plot([0, top], [0, top], "k--", lw=0.8)
        ax[0].set_xlabel("penetration before, cm³")
        ax[0].set_ylabel("after, cm³")
        ax[1].scatter(res["err_before"], res["err_after"], s=12,
                      c=np.where(res["occluded"], "tab:red", "tab:blue"))
        lim = [0, max(res["err_before"].max(), res["err_after"].max())]
        ax[1].plot(lim, lim, "k--", lw=0.8)
        ax[1].set_xlabel("keypoint error before, mm")
        ax[1].set_ylabel("after, mm (red: occluded)")
        fig.tight_layout()
        a.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(a.plot)
        print("plot written to", a.plot)
    print(json.dumps({
        "penetration_mm3_before": round(float(res["vol_before"].mean()), 1),
        "penetration_mm3_after": round(float(res["vol_after"].mean()), 1),
        "keypoint_error_mm_before": round(float(res["err_before"].mean()), 3),
        "keypoint_error_mm_after": round(float(res["err_after"].mean()), 3),
        "handedness_flips_per_min": round(flips, 2),
        "two_hands_ms": round(float(np.median(res["ms"])), 3),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
