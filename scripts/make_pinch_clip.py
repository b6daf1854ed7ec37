"""Render the pinch clip (``benchmarks/data/pinch/``): pinches with known fingertips.

The built-in sample has three pinches in 15 s; measuring pinch events needs more. This
script renders, with :mod:`scripts.make_sample`'s machinery (same hand model, skin,
forearm, rooms, camera finish), a clip whose hands alternate between open gestures and
pinches while the wrists turn (palm, side and back to the camera), then stores the truth
the pinch benchmark (``benchmarks/pinch.py``) scores against.

    python -m scripts.make_pinch_clip        # ~2 MB video + small ground truth
    python -m scripts.make_pinch_clip --script random --seed 1001 --out-dir runs/pinch/s1001

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
from scripts.backgrounds import list_kinds
from scripts.make_sample import HandPlan, SampleConfig, Scene, build_sample

PINCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "pinch"
PINCH_VIDEO = PINCH_DIR / "pinch.mp4"
PINCH_GT = PINCH_DIR / "pinch_gt.npz"
WIDTH, HEIGHT, DURATION_S = 640, 360, 14.0
SEED = 18
# Gestures of the random scripts (training / tuning clips): "pinch" and "ok" bring the thumb
# onto the index; the others are the near misses and open hands around them.
RANDOM_OTHERS = ("open", "relaxed", "fist", "point", "spread", "peace", "thumbs_up")


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


def random_pinch_scenes(seed: int, duration_s: float = DURATION_S) -> list[Scene]:
    """A random script in the eval clip's style, for training and tuning clips (never the
    eval clip's): shots of 3-7 s with one or two hands, each alternating pinches ("pinch",
    sometimes "ok") with other gestures while the wrist turns through random yaw keys
    between -60 and 210 degrees (palm, side, back), at random places and depths."""
    rng = np.random.default_rng([seed, 18])
    scenes, t = [], 0.0
    while t < duration_s - 1e-9:
        length = min(float(rng.choice([3.0, 4.0, 5.0, 7.0])), duration_s - t)
        two = bool(rng.random() < 0.5)
        plans = []
        for slot in range(2):
            if slot == 1 and not two:
                plans.append(None)
                continue
            count = max(3, round(length / rng.uniform(0.8, 1.2)))
            gestures = [str(rng.choice(("open", "relaxed")))]
            while len(gestures) < count:
                pinch = gestures[-1] not in ("pinch", "ok") and rng.random() < 0.6
                gestures.append(("ok" if rng.random() < 0.2 else "pinch") if pinch
                                else str(rng.choice(RANDOM_OTHERS)))
            n_keys = int(rng.integers(3, 7))
            yaw_keys = list(zip(np.linspace(t, t + length, n_keys).tolist(),
                                rng.uniform(-60.0, 210.0, n_keys).tolist()))
            u_range = (140.0, 230.0) if two else (200.0, 440.0)
            depth = (0.40, 0.62) if two else (0.33, 0.60)
            plans.append(HandPlan(gestures, yaw_keys, u_range, depth))
        light = Lighting(key_intensity=float(rng.uniform(0.5, 1.0)),
                         fill_intensity=float(rng.uniform(0.1, 0.35)))
        scenes.append(Scene(t, t + length, str(rng.choice(list_kinds())), tuple(plans), light))
        t += length
    return scenes


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


def build_pinch_clip(out_dir: Path = PINCH_DIR, seed: int = SEED,
                     script: str = "eval") -> dict:
    """Render the clip, then replace the sample-style ground truth (meshes, ~10 MB) with
    the pinch truth (keypoints, distances, states; a few hundred kB).

    ``script``: "eval" (:func:`pinch_scenes`, the benchmark's clip) or "random"
    (:func:`random_pinch_scenes` of ``seed``: training and tuning clips)."""
    if script not in ("eval", "random"):
        raise ValueError(f"script must be 'eval' or 'random', got {script!r}")
    out_dir = Path(out_dir)
    if script == "random" and out_dir.resolve() == PINCH_DIR.resolve():
        raise ValueError(f"a random script would overwrite the evaluation clip in {PINCH_DIR}:"
                         " pass --out-dir")
    cfg = SampleConfig(out_dir=out_dir, seed=seed, width=WIDTH, height=HEIGHT,
                       duration_s=DURATION_S, name="pinch", gt_vertices=False)
    scenes = pinch_scenes() if script == "eval" else random_pinch_scenes(seed)
    stats = build_sample(cfg, scenes)
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
    parser.add_argument("--script", choices=("eval", "random"), default="eval",
                        help="eval: the benchmark's clip; random: a random script of the seed "
                             "(training and tuning clips; needs --out-dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build_pinch_clip(args.out_dir, args.seed, args.script)


if __name__ == "__main__":
    main()
