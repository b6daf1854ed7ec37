"""Pinch events against ground truth: the real pipeline on the pinch clip.

The clip (``benchmarks/data/pinch/``, made by ``python -m scripts.make_pinch_clip``) is
14 s at 30 FPS, 640x360: one right hand for 7 s, then two hands, each alternating open
gestures (open, relaxed, fist, point, spread) with pinches while the wrist turns palm,
side and back to the camera: 9 true engage events. The truth is the hysteresis state
(15 / 30 mm, no debounce) of the exact thumb-index distance.

Every frame goes through :class:`~realtime.HandMesher` (MediaPipe detection, the ONNX
regressor, One-Euro smoothing, the pinch stage: the very stage objects of the ``handmesh``
pipeline) with the clip's true camera. Each true hand is matched to the output hand whose
2D keypoints lie closest (``scripts.make_sample.match_detections``); a missed hand counts
as not pinching.

Metrics, per hand and frame where the true hand is in view:

* ``pinch_f1``: frame-level F1 of ``engaged`` (positive class: pinching), leaving out the
  frames within ``TOLERANCE_FRAMES`` (3) of a true engage or release, where a few frames
  of latency (smoothing, the 1-frame debounce) decide nothing about correctness.
* ``pinch_event_f1``: engage events (``changed`` and ``engaged``) matched one-to-one to
  true engages within +-``TOLERANCE_FRAMES``; precision over output events, recall over
  true ones.
* ``pinch_distance_mae_mm`` / ``_median_mm``: |output distance - true distance| on matched
  hands; ``..._pinched_mm``: the same where the true distance is under 30 mm.
* the baseline, same run: ``pinch_f1_joints``, ``pinch_event_f1_joints``,
  ``pinch_distance_mae_mm_joints``: the plain distance of the smoothed joints' tips (the
  estimator before the learned pinch head) replayed through the same pinch state machine;
  ``pinch_f1_ratio_vs_joints``.
* ``stage_ms_2hands_learned`` / ``_joints``: the pinch stage's median cost per frame for two
  hands with each distance, interleaved.

    .venv/bin/python -m benchmarks.pinch [--quick] [--sweep]

``--quick``: the one-hand first half only. ``--sweep``: also score other thresholds and
debounces on the same run (the pinch state replayed over the recorded distances, which
do not depend on them). Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from calibration.intrinsics import CameraIntrinsics
from models.geometry import project
from realtime.io.camera import CameraConfig
from realtime.mesh.pinch import PinchConfig, PinchTracker, pinch_distance
from realtime.mesher import HandMesher, HandMesherConfig
from scripts.make_pinch_clip import PINCH_GT, PINCH_VIDEO
from scripts.make_sample import match_detections

TOLERANCE_FRAMES = 3
TARGET_F1 = 0.95


# --------------------------------------------------------------------------- scoring


def transitions(engaged: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: frames where the state differs from the previous frame's."""
    e = np.asarray(engaged, dtype=bool)
    return np.concatenate([[bool(e[0])], e[1:] != e[:-1]]) if len(e) else e


def onsets(engaged: np.ndarray) -> np.ndarray:
    """Frame indices where ``engaged`` turns True (a frame 0 start counts)."""
    e = np.asarray(engaged, dtype=bool)
    return np.flatnonzero(e & ~np.concatenate([[False], e[:-1]]))


def frame_f1(truth: np.ndarray, pred: np.ndarray, valid: np.ndarray,
             tolerance: int = TOLERANCE_FRAMES) -> dict:
    """Frame-level precision, recall and F1 of ``pred`` vs ``truth`` ``(N,)`` bool on the
    ``valid`` frames, leaving out frames within ``tolerance`` of a true transition."""
    near = np.zeros(len(truth), dtype=bool)
    for i in np.flatnonzero(transitions(truth) & valid):
        near[max(0, i - tolerance):i + tolerance + 1] = True
    keep = valid & ~near
    t, p = truth[keep], pred[keep]
    tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
    return {"tp": tp, "fp": fp, "fn": fn, "frames": int(keep.sum()), **_prf(tp, fp, fn)}


def event_f1(true_events: np.ndarray, pred_events: np.ndarray,
             tolerance: int = TOLERANCE_FRAMES) -> dict:
    """Events (frame indices) matched one-to-one, nearest first, within ``tolerance``."""
    free = list(np.sort(pred_events))
    tp, offsets = 0, []
    for t in np.sort(true_events):
        if not free:
            break
        k = int(np.argmin([abs(p - t) for p in free]))
        if abs(free[k] - t) <= tolerance:
            offsets.append(int(free[k] - t))
            free.pop(k)
            tp += 1
    fp, fn = len(pred_events) - tp, len(true_events) - tp
    return {"tp": tp, "fp": fp, "fn": fn, "offsets": offsets, **_prf(tp, fp, fn)}


def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1}


# --------------------------------------------------------------------------- running


def run_clip(max_frames: int | None = None, pinch: PinchConfig | None = None,
             video: Path = PINCH_VIDEO, gt_path: Path = PINCH_GT) -> dict:
    """The pipeline's output matched to the truth: per frame and slot, whether the hand was
    found, its pinch distance and state and whether it flipped; plus the truth."""
    import cv2

    with np.load(gt_path) as z:
        gt = {k: z[k] for k in z.files}
    n = int(gt["num_frames"]) if max_frames is None else min(max_frames, int(gt["num_frames"]))
    K, fps = gt["K"], float(gt["fps"])
    present = gt["present"][:n]
    kp2d = np.where(present[..., None, None], project(gt["keypoints"][:n].astype(np.float64), K),
                    0.0)
    found = np.zeros((n, 2), dtype=bool)
    distance = np.full((n, 2), np.nan)
    joints_distance = np.full((n, 2), np.nan)
    engaged = np.zeros((n, 2), dtype=bool)
    changed = np.zeros((n, 2), dtype=bool)
    config = HandMesherConfig(camera=CameraConfig(intrinsics=CameraIntrinsics.from_matrix(
        K, int(gt["width"]), int(gt["height"]))), pinch=pinch or PinchConfig())
    cap = cv2.VideoCapture(str(video))
    t0 = time.perf_counter()
    try:
        with HandMesher(config) as mesher:
            for f in tqdm(range(n), desc="pinch clip", unit="frame"):
                ok, image = cap.read()
                if not ok:
                    raise RuntimeError(f"{video}: frame {f} unreadable; rebuild the clip with "
                                       "`python -m scripts.make_pinch_clip`")
                hands = mesher.process(image, timestamp=f / fps)
                matched = match_detections(kp2d[f], present[f],
                                           [h.keypoints_2d for h in hands])
                for slot in matched:
                    best = min(hands, key=lambda h: float(np.linalg.norm(
                        h.keypoints_2d - kp2d[f, slot], axis=-1).mean()))
                    found[f, slot] = True
                    joints_distance[f, slot] = pinch_distance(best.joints)
                    if best.pinch is not None:
                        distance[f, slot] = best.pinch.distance_m
                        engaged[f, slot] = best.pinch.engaged
                        changed[f, slot] = best.pinch.changed
    finally:
        cap.release()
    return {"present": present, "true_distance": gt["distance_m"][:n].astype(np.float64),
            "true_engaged": gt["engaged"][:n], "found": found, "distance": distance,
            "joints_distance": joints_distance,
            "engaged": engaged, "changed": changed, "seconds": time.perf_counter() - t0,
            "frames": n}


def score(run: dict, tolerance: int = TOLERANCE_FRAMES) -> dict:
    """The metrics of the module docstring from :func:`run_clip`'s arrays."""
    present, found = run["present"], run["found"]
    tp = fp = fn = frames = 0
    ev = {"tp": 0, "fp": 0, "fn": 0, "offsets": []}
    for slot in range(present.shape[1]):
        truth, pred = run["true_engaged"][:, slot], run["engaged"][:, slot] & found[:, slot]
        fr = frame_f1(truth, pred, present[:, slot], tolerance)
        tp, fp, fn, frames = tp + fr["tp"], fp + fr["fp"], fn + fr["fn"], frames + fr["frames"]
        pred_on = np.flatnonzero(run["changed"][:, slot] & run["engaged"][:, slot])
        e = event_f1(onsets(truth & present[:, slot]), pred_on, tolerance)
        for k in ("tp", "fp", "fn"):
            ev[k] += e[k]
        ev["offsets"] += e["offsets"]
    frame = _prf(tp, fp, fn)
    event = _prf(ev["tp"], ev["fp"], ev["fn"])
    both = present & found & np.isfinite(run["distance"])
    err = np.abs(run["distance"] - run["true_distance"])[both] * 1000
    close = both & (run["true_distance"] < 0.030)
    err_close = np.abs(run["distance"] - run["true_distance"])[close] * 1000
    def r(x):
        return round(float(x), 4)

    return {
        "pinch_f1": r(frame["f1"]), "pinch_precision": r(frame["precision"]),
        "pinch_recall": r(frame["recall"]), "scored_hand_frames": frames,
        "pinch_event_f1": r(event["f1"]), "event_precision": r(event["precision"]),
        "event_recall": r(event["recall"]), "true_engage_events": ev["tp"] + ev["fn"],
        "output_engage_events": ev["tp"] + ev["fp"],
        "event_offset_frames_mean": r(np.mean(ev["offsets"])) if ev["offsets"] else None,
        "pinch_distance_mae_mm": r(err.mean()) if err.size else None,
        "pinch_distance_median_mm": r(np.median(err)) if err.size else None,
        "pinch_distance_mae_pinched_mm": r(err_close.mean()) if err_close.size else None,
        "hands_found_ratio": r(found[present].mean()) if present.any() else None,
        "tolerance_frames": tolerance, "frames": run["frames"],
    }


def rescore(run: dict, config: PinchConfig) -> dict:
    """:func:`score` of the same run with the pinch state of another ``config``, replayed
    over the recorded distances (a missed hand: its track forgotten, as in the stage)."""
    engaged, changed = np.zeros_like(run["engaged"]), np.zeros_like(run["changed"])
    for slot in range(run["present"].shape[1]):
        tracker = PinchTracker(config)
        for f in range(run["frames"]):
            seen = run["found"][f, slot]
            pinch = tracker.update({0: run["distance"][f, slot]} if seen else {}).get(0)
            if pinch is not None:
                engaged[f, slot], changed[f, slot] = pinch.engaged, pinch.changed
    return score({**run, "engaged": engaged, "changed": changed})


def stage_cost(calls: int = 2000) -> dict:
    """Per-frame cost of the pinch stage for two hands, ms (median), the learned distance
    and the joints' own, interleaved so that machine load hits both alike."""
    from benchmarks.common import random_hand_mesh
    from models.hand_model import HandModel
    from realtime.engine.stages import PinchStage
    from realtime.types import Frame, Packet

    model = HandModel.open_hand()
    hands = tuple(random_hand_mesh(model, side, seed=i, track_id=i, score=0.9, timestamp=0.0,
                                   frame_index=0) for i, side in ((1, "right"), (2, "left")))
    packet = Packet(Frame(np.zeros((48, 64, 3), np.uint8), 0, 0.0), 0.0, (), hands)
    stages = {"learned": PinchStage(PinchTracker(PinchConfig())),
              "joints": PinchStage(PinchTracker(PinchConfig(distance="joints")))}
    times: dict[str, list] = {k: [] for k in stages}
    for _ in range(calls):
        for name, stage in stages.items():
            t = time.perf_counter()
            stage(packet)
            times[name].append(time.perf_counter() - t)
    return {f"stage_ms_2hands_{k}": round(1000 * float(np.median(v)), 4)
            for k, v in times.items()}


SWEEP = ((0.015, 0.030, 1), (0.015, 0.030, 2), (0.015, 0.030, 3), (0.020, 0.035, 2),
         (0.025, 0.040, 2), (0.030, 0.045, 2))


def pinch_f1(quick: bool = False, sweep: bool = False) -> dict:
    """Run the clip (``quick``: the first, one-hand 7 s) and score it; the ROS 2 benchmark's
    ``pinch_f1`` comes from here."""
    run = run_clip(210 if quick else None)
    out = score(run)
    # The baseline, same run: the plain distance between the smoothed joints' tips (the
    # estimator before the pinch head), through the same pinch state machine.
    base = rescore({**run, "distance": run["joints_distance"]}, PinchConfig(distance="joints"))
    for key in ("pinch_f1", "pinch_event_f1", "pinch_distance_mae_mm",
                "pinch_distance_mae_pinched_mm"):
        out[f"{key}_joints"] = base[key]
    out["pinch_f1_ratio_vs_joints"] = (round(out["pinch_f1"] / base["pinch_f1"], 3)
                                       if base["pinch_f1"] else None)
    out.update(stage_cost())
    out.update(clip=str(PINCH_VIDEO.relative_to(PINCH_VIDEO.parents[3])), quick=quick,
               seconds=round(run["seconds"], 1))
    if sweep:
        out["sweep"] = [{"engage_m": e, "release_m": r, "debounce_frames": n,
                         **{k: v for k, v in rescore(run, PinchConfig(e, r, n)).items()
                            if k in ("pinch_f1", "pinch_event_f1", "event_offset_frames_mean")}}
                        for e, r, n in SWEEP]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the one-hand first 7 s only")
    parser.add_argument("--sweep", action="store_true",
                        help="also score other thresholds and debounces on the same run")
    args = parser.parse_args(argv)
    out = pinch_f1(args.quick, args.sweep)
    print(f"\nclip {out['clip']}: {out['frames']} frames, hands found in "
          f"{out['hands_found_ratio']:.1%} of true hand-frames ({out['seconds']} s)")
    print(f"frame-level (+-{out['tolerance_frames']} frames at transitions): F1 "
          f"{out['pinch_f1']:.3f} (precision {out['pinch_precision']:.3f}, recall "
          f"{out['pinch_recall']:.3f}) over {out['scored_hand_frames']} hand-frames; target "
          f">= {TARGET_F1}")
    print(f"engage events: F1 {out['pinch_event_f1']:.3f} ({out['output_engage_events']} out, "
          f"{out['true_engage_events']} true, mean offset {out['event_offset_frames_mean']} "
          "frames)")
    print(f"distance error: mean {out['pinch_distance_mae_mm']} mm, median "
          f"{out['pinch_distance_median_mm']} mm, {out['pinch_distance_mae_pinched_mm']} mm "
          "where the true distance is under 30 mm")
    print(f"baseline, the joints' own tip distance (same run): F1 {out['pinch_f1_joints']:.3f}"
          f", event F1 {out['pinch_event_f1_joints']:.3f}, distance error mean "
          f"{out['pinch_distance_mae_mm_joints']} mm ({out['pinch_distance_mae_pinched_mm_joints']}"
          " mm under 30 mm)")
    print(f"pinch stage, two hands per frame (median): learned {out['stage_ms_2hands_learned']}"
          f" ms, joints {out['stage_ms_2hands_joints']} ms")
    for row in out.get("sweep", []):
        print(f"  engage {1000 * row['engage_m']:.0f} mm, release {1000 * row['release_m']:.0f} "
              f"mm, debounce {row['debounce_frames']}: F1 {row['pinch_f1']:.3f}, event F1 "
              f"{row['pinch_event_f1']:.3f}, mean engage offset "
              f"{row['event_offset_frames_mean']} frames")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
