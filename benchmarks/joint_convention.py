"""Does MediaPipe's joint placement, learned on our renders, transfer to real photos?

Fits ``models.joint_convention`` (where MediaPipe puts each of the 21 joints on our mesh)
on real-detector pairs (``scripts.make_detector_pairs``: MediaPipe on rendered hands with
exact ground truth; 80% fit, 20% held out), then moves the shipped regressor's output joints
by it on the hgcnn_realworld TUNING split (00000-00299) and measures PA-MPJPE against the
people's annotations. Baseline: the same regressor without the correction ("none").
The correction is applied to the final joints on their final mesh (it is linear in the
vertex-to-joint vectors, so it commutes with the runtime's turn, shift and mirror).

    python -m benchmarks.joint_convention [--pairs runs/pairs.npz] [--max-images N]

Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import REPO, hgcnn_hands, hgcnn_images, pa_error
from calibration.camera import Camera
from models.hand_model import HandModel
from models.joint_convention import fit_convention, nearest_vertices, shape_error
from models.training.pairs import PairsError, load_pairs, split_pairs
from models.training.synthetic import SyntheticHands
from realtime.mesh.regressor import RegressorEstimator

MM = 1000.0
VARIANTS = ((1, 1e-5), (8, 1e-4), (8, 1e-5), (32, 1e-4), (32, 1e-5))  # (vertices, ridge)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=Path, default=REPO / "runs" / "pairs2000.npz")
    p.add_argument("--max-images", type=int, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    model = HandModel.open_hand()
    try:
        pairs = load_pairs(args.pairs, SyntheticHands(model.data))
    except PairsError as exc:
        print(f"skipping: {exc}")
        print(json.dumps({"skipped": str(exc)}))
        return 0
    fit, held = (
        {k: v[k].double().numpy() for k in ("vertices", "keypoints", "world")}
        for v in split_pairs(pairs, 0.2, seed=0))
    images = hgcnn_images(args.max_images, tune=True)
    est = RegressorEstimator(model)
    real = []  # (gt joints, final joints, final mesh) per detected photo
    for gt3, _, intr, det in (hgcnn_hands(images) if images is not None else ()):
        h = est.estimate([det], Camera.pinhole(intr), [0])[0]
        real.append((gt3, h.joints, h.vertices))

    def scores(conv, strength: float = 1.0) -> dict:
        def moved(j, v):
            return j if conv is None else conv.apply(j, v, strength)
        out = {"held_out_pairs_mm": MM * float(shape_error(
            moved(held["keypoints"], held["vertices"]), held["world"]).mean())}
        if real:
            out["tune_pa_mpjpe_mm"] = MM * float(np.mean(
                [pa_error(moved(j, v), g) for g, j, v in real]))
        return out

    rows = {"none": scores(None)}
    for count, ridge in VARIANTS:
        idx = nearest_vertices(model.data.template, model.data.keypoints, count)
        conv = fit_convention(fit["vertices"], fit["keypoints"], fit["world"], idx, ridge)
        offset = MM * float(np.linalg.norm(conv.offsets(fit["keypoints"], fit["vertices"]),
                                           axis=-1).mean())
        for strength in (0.5, 1.0):
            rows[f"{count} vertices, ridge {ridge:g}, x{strength:g}"] = {
                **scores(conv, strength), "mean_offset_mm": offset * strength}
    print(f"\npairs: {len(fit['world'])} fitted, {len(held['world'])} held out "
          f"({args.pairs.name}); tune-split photos with a hand found: {len(real)}")
    print(f"{'correction':36s} {'offset mm':>10s} {'held-out pairs':>15s} {'tune PA-MPJPE':>14s}"
          f" {'ratio':>7s}")
    base = rows["none"].get("tune_pa_mpjpe_mm")
    for name, r in rows.items():
        tune = r.get("tune_pa_mpjpe_mm")
        print(f"{name:36s} {r.get('mean_offset_mm', 0.0):10.2f} {r['held_out_pairs_mm']:15.2f} "
              f"{tune if tune is not None else float('nan'):14.2f} "
              f"{tune / base if tune is not None else float('nan'):7.3f}")
    print(json.dumps({"pairs_fitted": len(fit["world"]), "tune_hands": len(real),
                      "rows": {k: {m: round(x, 3) for m, x in r.items()}
                               for k, r in rows.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
