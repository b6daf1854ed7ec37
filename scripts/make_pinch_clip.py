"""Render the pinch clip (``benchmarks/data/pinch/``): pinches with known fingertips.

The built-in sample has three pinches in 15 s; measuring pinch events needs more. This
script renders, with :mod:`scripts.make_sample`'s machinery (same hand model, skin,
forearm, rooms, camera finish), a clip whose hands alternate between open gestures and
pinches while the wrists turn (palm, side and back to the camera), then stores the truth
the pinch benchmark (``benchmarks/pinch.py``) scores against.

    python -m scripts.make_pinch_clip        # ~2 MB video + small ground truth

14 s, 640x360, 30 FPS: one right hand for 7 s, then two hands. ``pinch_gt.npz`` holds per
frame and hand slot (right, left): ``present``, the exact ``keypoints`` (21,3) in meters,
the true thumb-index ``distance_m`` and the true ``engaged`` state (the hysteresis of
``realtime.mesh.pinch`` with its default thresholds on the exact distance, no debounce:
exact joints have no outliers to reject), plus ``K``, ``fps``, ``width``, ``height``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from realtime.mesh.pinch import PinchConfig, hysteresis, pinch_distance
from realtime.render.raster import Lighting
from scripts.make_sample import HandPlan, SampleConfig, Scene, build_sample

PINCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "pinch"
PINCH_VIDEO = PINCH_DIR / "pinch.mp4"
PINCH_GT = PINCH_DIR / "pinch_gt.npz"
WIDTH, HEIGHT, DURATION_S = 640, 360, 14.0
SEED = 18


def pinch_scenes() -> list[Scene]:
    """The clip's script: every plan starts open (no pinch at a cut) and pinches 3 times,
    with a fist and a point as near misses, while the wrist turns through 180 degrees."""
    return [
        Scene(0.0, 7.0, "office", (
            HandPlan(["open", "pinch", "relaxed", "pinch", "fist", "pinch", "open"],
                     [(0.0, -10), (1.5, 30), (3.0, 150), (4.3, 190), (5.5, 60), (7.0, -20)],
                     (250, 390), (0.36, 0.50)),
            None), Lighting()),
        Scene(7.0, 14.0, "plain_wall", (
            HandPlan(["relaxed", "pinch", "open", "pinch", "point", "pinch", "spread"],
                     [(7.0, 10), (8.5, -35), (10.0, 160), (11.5, 190), (13.0, 20), (14.0, 0)],
                     (150, 210), (0.42, 0.55)),
            HandPlan(["open", "fist", "pinch", "relaxed", "pinch", "open", "pinch"],
                     [(7.0, 0), (8.4, 35), (9.8, 170), (11.2, 195), (12.6, 40), (14.0, 10)],
                     (150, 210), (0.42, 0.55))), Lighting(key_intensity=0.6)),
    ]


def pinch_truth(keypoints: np.ndarray, present: np.ndarray,
                config: PinchConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(N,S)`` true distances (NaN where absent) and engaged states from exact keypoints
    ``(N,S,21,3)``; each stretch of presence starts released, as a new track does."""
    config = config or PinchConfig()
    distance = np.where(present, pinch_distance(keypoints), np.nan)
    engaged = np.zeros(present.shape, dtype=bool)
    for slot in range(present.shape[1]):
        p = np.concatenate([[False], present[:, slot], [False]])
        starts, ends = np.flatnonzero(~p[:-1] & p[1:]), np.flatnonzero(p[:-1] & ~p[1:])
        for a, b in zip(starts, ends):
            engaged[a:b, slot] = hysteresis(distance[a:b, slot], config)
    return distance, engaged


def build_pinch_clip(out_dir: Path = PINCH_DIR, seed: int = SEED) -> dict:
    """Render the clip, then replace the sample-style ground truth (meshes, ~10 MB) with
    the pinch truth (keypoints, distances, states; a few hundred kB)."""
    cfg = SampleConfig(out_dir=out_dir, seed=seed, width=WIDTH, height=HEIGHT,
                       duration_s=DURATION_S, name="pinch")
    stats = build_sample(cfg, pinch_scenes())
    with np.load(cfg.gt_path) as z:
        full = {k: z[k] for k in ("K", "fps", "width", "height", "num_frames", "present",
                                  "keypoints", "handedness", "cut_frames", "seed")}
    distance, engaged = pinch_truth(full["keypoints"].astype(np.float64), full["present"])
    cfg.gt_path.unlink()
    np.savez_compressed(out_dir / "pinch_gt.npz", **full, distance_m=distance.astype(np.float32),
                        engaged=engaged)
    onsets = int((np.diff(engaged.astype(np.int8), axis=0) == 1).sum() + engaged[0].sum())
    stats.update(engage_events=onsets, engaged_frames=int(engaged.sum()),
                 gt_kb=round((out_dir / "pinch_gt.npz").stat().st_size / 1e3, 1))
    print(f"pinch truth: {onsets} engage events, {stats['engaged_frames']} engaged hand-frames,"
          f" {stats['gt_kb']} kB")
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=PINCH_DIR)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build_pinch_clip(args.out_dir, args.seed)


if __name__ == "__main__":
    main()
