"""Choose the shipped photo keypoint placement: at most 10 named moves, on the hgcnn TUNE split.

The joints where photo annotators put them differ from the hand model's by a mostly fixed
placement (``docs/regressor.md``). A free fit of that (``scripts.fit_photo_convention``:
thousands of weights) is derived from hgcnn_realworld's labels, which are non-commercial, so
it is not shipped. This script chooses a handful of interpretable scalars instead, as the
issue allows for hyperparameters: each a :class:`~models.joint_placement.Move` ("the index
MCP 5 mm towards the wrist"), greedily, one at a time, the move that most lowers PA-MPJPE
on the tuning photos (00000-00299) after the 4 photo passes (the photos' default), its
millimetres refitted by least squares after per-hand Procrustes. It prints the 5-fold
(contiguous blocks) held-out error for each count, and the chosen moves as the Python
constant :data:`realtime.mesh.convention.PHOTO_MOVES`. The report split is never read.

Also measured (``--mediapipe-pairs``): the same axes' offsets that make our rendered hands'
joints reproject onto MediaPipe's 2D landmarks (``scripts.make_detector_pairs``), i.e. where
MediaPipe (Apache-2.0) puts each keypoint on our mesh, and how they do on the tuning photos.

    python -m scripts.fit_photo_convention --cache          # our hands on the tuning photos
    python -m scripts.choose_photo_placement [--moves 10] [--mediapipe-pairs runs/pairs.npz]

Deterministic (no randomness; ties broken by candidate order).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.common import procrustes_align
from models.hand_model import HandModel
from models.joint_placement import AXES, KEYPOINT_NAMES, Move, placement_convention
from scripts.fit_photo_convention import CACHE

MM = 1000.0
# Groups a move may also act on together (one scalar for all of them).
GROUPS = {"MCPs": (5, 9, 13, 17), "index-ring MCPs": (5, 9, 13), "PIPs": (6, 10, 14, 18),
          "DIPs": (7, 11, 15, 19), "finger tips": (8, 12, 16, 20), "tips": (4, 8, 12, 16, 20)}


def candidates() -> list[Move]:
    """Every single keypoint on each axis, then the groups: 1 mm moves (unit columns)."""
    out = [Move((j,), a, 1.0) for j in range(21) for a in AXES]
    out += [Move(js, a, 1.0) for js in GROUPS.values() for a in AXES]
    return out


def columns(model: HandModel, moves: list[Move], joints: np.ndarray, verts: np.ndarray
            ) -> np.ndarray:
    """``(B,21,3,K)``: each move's displacement (m) of the joints of each hand."""
    rest = (model.data.template, model.data.keypoints)
    return np.stack([placement_convention(*rest, (m,)).offsets(joints, verts) for m in moves],
                    -1)


def pa_errors(joints: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(B,)`` PA-MPJPE (m) per hand, as benchmarks.regressor measures it."""
    return np.array([np.linalg.norm(procrustes_align(j, g) - g, axis=1).mean()
                     for j, g in zip(joints, gt)])


def fit_mm(joints: np.ndarray, gt: np.ndarray, cols: np.ndarray, rounds: int = 4
           ) -> np.ndarray:
    """Least-squares millimetres for the unit ``cols``: the annotated joints aligned onto
    the moved ones by a similarity per hand, the moves solved, repeated."""
    theta = np.zeros(cols.shape[-1])
    flat = cols.reshape(-1, cols.shape[-1])
    for _ in range(rounds):
        moved = joints + cols @ theta
        target = np.array([procrustes_align(g, j) for g, j in zip(gt, moved)])
        theta = np.linalg.lstsq(flat, (target - joints).reshape(-1), rcond=None)[0]
    return theta


def held_out(joints, gt, cols, folds: int = 5) -> float:
    """Mean PA-MPJPE (m) with the millimetres fitted on the other contiguous blocks."""
    err = np.zeros(len(gt))
    for held in np.array_split(np.arange(len(gt)), folds):
        keep = np.setdiff1d(np.arange(len(gt)), held)
        theta = fit_mm(joints[keep], gt[keep], cols[keep])
        err[held] = pa_errors(joints[held] + cols[held] @ theta, gt[held])
    return float(err.mean())


def greedy(joints, gt, cols, count: int) -> list[int]:
    """Forward selection: ``count`` columns, each the one that most lowers the in-sample error."""
    chosen: list[int] = []
    for _ in tqdm(range(count), desc="choosing moves", unit="move"):
        best = None
        for k in range(cols.shape[-1]):
            if k in chosen:
                continue
            c = cols[..., chosen + [k]]
            e = pa_errors(joints + c @ fit_mm(joints, gt, c, rounds=2), gt).mean()
            if best is None or e < best[0]:
                best = (e, k)
        chosen.append(best[1])
    return chosen


def mediapipe_offsets(model: HandModel, pairs_path: Path, moves: list[Move]) -> np.ndarray:
    """Millimetres for the unit ``moves`` that bring our rendered hands' joints onto
    MediaPipe's 2D landmarks (Gauss-Newton on the reprojection; hands whose landmarks are
    off by more than a quarter of the palm's length left out)."""
    z = np.load(pairs_path)
    out = model.forward(z["pose"].astype(np.float64), z["shape"].astype(np.float64))
    trans = z["trans"].astype(np.float64)[:, None]
    verts, joints = out.vertices + trans, out.keypoints + trans
    K = z["K"].astype(np.float64)
    lm = z["landmarks_px"].astype(np.float64).copy()
    flipped = z["flipped"].astype(bool)
    width = z["image_size"][:, 0].astype(np.float64)
    lm[flipped, :, 0] = width[flipped, None] - 1 - lm[flipped, :, 0]  # the unflipped render

    def project(x, k):
        uv = np.einsum("bij,bkj->bki", k, x)
        return uv[..., :2] / uv[..., 2:]

    uv = project(joints, K)
    palm_px = np.linalg.norm(uv[:, 9] - uv[:, 0], axis=-1)
    keep = (np.linalg.norm(lm - uv, axis=-1) / palm_px[:, None]).mean(1) < 0.25
    joints, verts, K, lm, palm_px = joints[keep], verts[keep], K[keep], lm[keep], palm_px[keep]
    cols = columns(model, moves, joints, verts)  # (B,21,3,K), 1 mm each
    theta = np.zeros(len(moves))
    w = 1.0 / palm_px[:, None, None]  # each hand in units of its palm's length
    for _ in range(3):
        x = joints + cols @ theta
        base = project(x, K)
        # every column moves one keypoint (unit moves), so its 2D Jacobian is local
        jac = np.stack([(project(x + 1e-3 * cols[..., k], K) - base) / 1e-3
                        for k in range(len(moves))], -1)  # (B,21,2,K)
        theta = theta + np.linalg.lstsq((jac * w[..., None]).reshape(-1, len(moves)),
                                        ((lm - base) * w).reshape(-1), rcond=None)[0]
    print(f"MediaPipe on {len(joints)} of {len(keep)} rendered hands: 2D error "
          f"{np.linalg.norm(lm - uv[keep], axis=-1).mean():.2f} px -> "
          f"{np.linalg.norm(lm - project(joints + cols @ theta, K), axis=-1).mean():.2f} px")
    return theta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--moves", type=int, default=10)
    p.add_argument("--mediapipe-pairs", type=Path, default=None,
                   help="also measure where MediaPipe puts the keypoints on our renders")
    args = p.parse_args(argv)
    if not CACHE.is_file():
        raise SystemExit(f"{CACHE} is missing: run python -m scripts.fit_photo_convention --cache")
    model = HandModel.open_hand()
    z = dict(np.load(CACHE))
    gt = z["gt3"]
    cands = candidates()
    result: dict = {"hands": len(gt)}
    j4, v4 = z["j4"], z["v4"]
    cols4 = columns(model, cands, j4, v4)
    print(f"{len(gt)} tuning hands; none: 4 passes {MM * pa_errors(j4, gt).mean():.3f} mm, "
          f"1 pass {MM * pa_errors(z['j1'], gt).mean():.3f} mm")
    chosen = greedy(j4, gt, cols4, args.moves)
    steps = []
    for n in range(1, len(chosen) + 1):
        c = cols4[..., chosen[:n]]
        theta = fit_mm(j4, gt, c)
        ins = MM * pa_errors(j4 + c @ theta, gt).mean()
        cv = MM * held_out(j4, gt, c)
        steps.append({"moves": n, "in_sample_mm": round(ins, 3), "held_out_mm": round(cv, 3)})
        print(f"{n:2d} + {cands[chosen[n - 1]].describe().split(':')[0]:28s} "
              f"{cands[chosen[n - 1]].axis:6s} in-sample {ins:.3f}  held out {cv:.3f} mm")
    theta = fit_mm(j4, gt, cols4[..., chosen])
    moves = tuple(Move(cands[k].joints, cands[k].axis, round(float(t), 1))
                  for k, t in zip(chosen, theta))
    # the same moves after a single pass (fitted on the 4-pass hands)
    j1, v1 = z["j1"], z["v1"]
    conv = placement_convention(model.data.template, model.data.keypoints, moves)
    for tag, j, v in (("4", j4, v4), ("1", j1, v1)):
        before, after = MM * pa_errors(j, gt).mean(), MM * pa_errors(conv.apply(j, v), gt).mean()
        print(f"{tag} pass(es): {before:.3f} -> {after:.3f} mm (in-sample, rounded moves)")
        result[f"passes{tag}"] = {"none_mm": round(before, 3), "moved_mm": round(after, 3)}
    result["steps"] = steps
    result["moves"] = [m.describe() for m in moves]
    print("\nPHOTO_MOVES = (")
    for m in moves:
        print(f"    Move({m.joints}, {m.axis!r}, {m.mm}),  # {m.describe()}")
    print(")")
    if args.mediapipe_pairs is not None:
        unit = [Move((j,), a, 1.0) for j in range(21) for a in AXES]
        mp = mediapipe_offsets(model, args.mediapipe_pairs, unit).reshape(21, 3)
        print("\nwhere MediaPipe puts each keypoint on our renders (mm along, palm, side):")
        for j, name in enumerate(KEYPOINT_NAMES):
            print(f"{name:12s} {mp[j, 0]:6.1f} {mp[j, 1]:6.1f} {mp[j, 2]:6.1f}")
        mp_moves = tuple(Move((j,), a, float(mp[j, i])) for j in range(21)
                         for i, a in enumerate(AXES))
        mp_conv = placement_convention(model.data.template, model.data.keypoints, mp_moves)
        rows = {}
        for k in (0.25, 0.5, 1.0):
            rows[k] = MM * pa_errors(mp_conv.apply(j4, v4, k), gt).mean()
            print(f"MediaPipe's placement x{k:g} on the tuning photos (4 passes): {rows[k]:.3f} mm")
        result["mediapipe_tune_mm"] = {f"x{k:g}": round(v, 3) for k, v in rows.items()}
        result["mediapipe_mm"] = np.round(mp, 2).tolist()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
