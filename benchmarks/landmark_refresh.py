"""Alternate landmark refresh (the model on one of two hands per frame, optical flow on the
other) against the usual refresh of every hand on every frame, on the same frames.

Both scheduled detectors run in one process, interleaved frame by frame (every, then
alternate, on the same frame), so machine noise hits both alike:

- accuracy on ``sample60`` (two hands, 60 FPS, 8 s) against its exact ground truth: mean 2D
  error per hand, and for the alternate detector split into frames where the model ran on the
  hand ("refreshed") and frames where flow carried it ("flow-tracked"); on those same
  flow-tracked hand-frames also the every-frame detector's error and the error of simply
  holding the hand's last model landmarks (no flow): what the flow measurement buys;
- accuracy on the real ASL clip (one hand; ``mediapipe_reference``) against MediaPipe's own
  reference outputs, when the shared data is there: one hand keeps the usual schedule, so
  both must agree;
- CPU per frame (process time, all threads) of each detector on sample60.

The baseline is the every-frame detector of the same run. The last line is one JSON object:
``cpu_ratio`` (alternate / every, < 1 is cheaper) and ``error_delta_px`` (alternate - every,
all hands of sample60) per landmark model.

    .venv/bin/python -m benchmarks.landmark_refresh [--landmarks lite full] [--frames N]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from tqdm import tqdm

from benchmarks.common import CLIP_MATCH_PX, SHARED_DATA, nearest_detection, read_frames
from realtime.detect.detector import LANDMARK_REFRESH
from realtime.detect.scheduled import ScheduledDetector, ScheduledDetectorConfig
from realtime.io.sample import SAMPLE60_GT, SAMPLE60_VIDEO, SAMPLE_GT, SAMPLE_VIDEO
from realtime.types import Frame

os.environ.setdefault("GLOG_minloglevel", "2")

ASL_CLIP = SHARED_DATA / "mediapipe_reference" / "asl_hand.25fps.mp4"
ASL_REFERENCE = SHARED_DATA / "mediapipe_reference" / "asl_hand.reference.json"


def run(frames: list[np.ndarray], fps: float, landmarks: str) -> dict:
    """Both refresh modes on every frame, interleaved: per mode the detections per frame,
    the CPU ms per frame and the detector's counters."""
    dets = {mode: ScheduledDetector(ScheduledDetectorConfig(landmarks=landmarks,
                                                            landmark_refresh=mode))
            for mode in LANDMARK_REFRESH}
    out = {mode: {"dets": [], "cpu_ms": []} for mode in dets}
    for i, image in enumerate(tqdm(frames, desc=f"{landmarks} landmarks", leave=False)):
        frame = Frame(image, i, i / fps)
        for mode, det in dets.items():
            c0 = time.process_time()
            out[mode]["dets"].append(det.process(frame))
            out[mode]["cpu_ms"].append((time.process_time() - c0) * 1e3)
    for mode, det in dets.items():
        out[mode]["counters"] = {"landmark_runs": det.landmark_runs, "palm_runs": det.palm_runs,
                                 "flow_runs": det.flow_runs,
                                 "flow_failures": det.flow_failures}
        det.close()
    return out


def errors(dets_per_frame: list, gt2d: np.ndarray,
           present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(F, H)`` mean 2D error (px) of the detection nearest each GT hand; NaN: missed or
    absent. And ``(F, H)`` whether that detection was flow-tracked."""
    err = np.full(present.shape, np.nan)
    flow = np.zeros(present.shape, bool)
    for i, dets in enumerate(dets_per_frame):
        for h in np.nonzero(present[i])[0]:
            d = nearest_detection(dets, gt2d[i, h], CLIP_MATCH_PX)
            if d is not None:
                err[i, h] = np.linalg.norm(d.landmarks_px - gt2d[i, h], axis=1).mean()
                flow[i, h] = d.flow_tracked
    return err, flow


def held_errors(dets_per_frame: list, gt2d: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """On flow-tracked hand-frames: the error had the hand's previous landmarks simply been
    kept (no flow), i.e. the previous frame's detection of that hand vs this frame's GT."""
    out = np.full(flow.shape, np.nan)
    for i, h in zip(*np.nonzero(flow)):
        prev = nearest_detection(dets_per_frame[i - 1], gt2d[i - 1, h], CLIP_MATCH_PX)
        if prev is not None:
            out[i, h] = np.linalg.norm(prev.landmarks_px - gt2d[i, h], axis=1).mean()
    return out


def deviation_from_every(alt: list, every: list, gt2d: np.ndarray, flow: np.ndarray,
                         held: bool) -> np.ndarray:
    """On flow-tracked hand-frames: mean distance (px) of the alternate detector's landmarks
    (or, ``held``, of its previous frame's landmarks of that hand) to the every-frame
    detector's on the same frame. The same model on both sides, so the constant offset
    between the model's joints and the ground truth's drops out: this is the flow's own
    error (or what holding would cost)."""
    out = np.full(flow.shape, np.nan)
    for i, h in zip(*np.nonzero(flow)):
        ref = nearest_detection(every[i], gt2d[i, h], CLIP_MATCH_PX)
        d = nearest_detection(alt[i - 1] if held else alt[i], gt2d[i - int(held), h],
                              CLIP_MATCH_PX)
        if ref is not None and d is not None:
            out[i, h] = np.linalg.norm(d.landmarks_px - ref.landmarks_px, axis=1).mean()
    return out


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return round(float(x.mean()), 3) if x.size else float("nan")


def sample60_report(frames: list, gt, landmarks: str) -> dict:
    gt2d, present = gt["keypoints_2d"][:len(frames)], gt["present"][:len(frames)]
    res = run(frames, float(gt["fps"]), landmarks)
    err = {mode: errors(res[mode]["dets"], gt2d, present) for mode in res}
    e_every, _ = err["every"]
    e_alt, flow = err["alternate"]
    held = held_errors(res["alternate"]["dets"], gt2d, flow)
    dev = {kind: deviation_from_every(res["alternate"]["dets"], res["every"]["dets"], gt2d,
                                      flow, kind == "held") for kind in ("flow", "held")}
    motion = np.linalg.norm(np.diff(gt2d, axis=0), axis=-1).mean(-1)  # (F-1, H) px/frame
    sides = [str(s) for s in gt["handedness"]]
    report = {"landmarks": landmarks, "frames": len(frames),
              "cpu_ms": {m: round(float(np.mean(res[m]["cpu_ms"])), 2) for m in res},
              "counters": {m: res[m]["counters"] for m in res},
              "error_px": {"every": _mean(e_every), "alternate": _mean(e_alt)},
              "hands_found": {m: int(np.isfinite(err[m][0]).sum()) for m in res},
              "hands": int(present.sum()), "per_hand": {}}
    for h, side in enumerate(sides):
        refreshed = np.isfinite(e_alt[:, h]) & ~flow[:, h]
        tracked = flow[:, h]
        report["per_hand"][side] = {
            "every": _mean(e_every[:, h]), "alternate": _mean(e_alt[:, h]),
            "alternate_refreshed": _mean(e_alt[refreshed, h]),
            "alternate_flow_tracked": _mean(e_alt[tracked, h]),
            "every_on_flow_tracked_frames": _mean(e_every[tracked, h]),
            "held_on_flow_tracked_frames": _mean(held[tracked, h]),
            "flow_vs_every_px": _mean(dev["flow"][tracked, h]),
            "held_vs_every_px": _mean(dev["held"][tracked, h]),
            "gt_motion_px_per_frame": _mean(motion[:, h]),
            "n_refreshed": int(refreshed.sum()), "n_flow_tracked": int(tracked.sum())}
    report["cpu_ratio"] = round(report["cpu_ms"]["alternate"] / report["cpu_ms"]["every"], 3)
    report["error_delta_px"] = round(report["error_px"]["alternate"]
                                     - report["error_px"]["every"], 3)
    return report


def asl_report(landmarks: str, max_frames: int | None) -> dict | None:
    if not (ASL_CLIP.is_file() and ASL_REFERENCE.is_file()):
        print(f"skipping the ASL clip: {ASL_CLIP} not found (shared data absent)")
        return None
    frames = read_frames(ASL_CLIP, max_frames)
    ref = np.array(json.loads(ASL_REFERENCE.read_text())["keypoints_2d"])[:len(frames), None]
    res = run(frames, 25.0, landmarks)
    present = np.ones((len(frames), 1), bool)
    out = {"frames": len(frames)}
    for mode in res:
        e, flow = errors(res[mode]["dets"], ref, present)
        out[mode] = {"error_px": _mean(e), "found": int(np.isfinite(e).sum()),
                     "flow_tracked": int(flow.sum())}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--landmarks", nargs="+", choices=("full", "lite"), default=["lite", "full"],
                   help="landmark models to compare the two refresh modes with")
    p.add_argument("--clip", choices=("sample60", "sample"), default="sample60",
                   help="sample60: two hands at 60 FPS (default); sample: the 30 FPS built-in "
                        "sample (one and two hands), where hands move twice as far per frame")
    p.add_argument("--frames", type=int, default=None,
                   help="first N frames of each clip (default: all; sample60 has 480)")
    args = p.parse_args(argv)
    if args.frames is not None and args.frames < 2:
        p.error(f"--frames must be >= 2, got {args.frames}")
    video, truth = ((SAMPLE60_VIDEO, SAMPLE60_GT) if args.clip == "sample60"
                    else (SAMPLE_VIDEO, SAMPLE_GT))
    gt = np.load(truth)
    frames = read_frames(video, args.frames)
    load = os.getloadavg()
    reports = [sample60_report(frames, gt, lm) for lm in args.landmarks]
    asl = {lm: asl_report(lm, args.frames) for lm in args.landmarks}

    print(f"landmark refresh: every frame vs alternate (flow on the other hand); interleaved, "
          f"load average at start {load[0]:.2f}")
    for r in reports:
        print(f"\n{args.clip} vs exact GT, {r['landmarks']} landmarks, {r['frames']} frames "
              f"({r['hands']} hands; found: every {r['hands_found']['every']}, alternate "
              f"{r['hands_found']['alternate']})")
        print(f"  CPU per frame: every {r['cpu_ms']['every']:.2f} ms, alternate "
              f"{r['cpu_ms']['alternate']:.2f} ms ({r['cpu_ratio']:.2f}x)")
        print(f"  counters: {r['counters']}")
        print(f"  2D error, all hands: every {r['error_px']['every']:.3f} px, alternate "
              f"{r['error_px']['alternate']:.3f} px ({r['error_delta_px']:+.3f})")
        print(f"  {'hand':6s} {'every':>7s} {'alt':>7s} {'alt refr':>9s} {'alt flow':>9s} "
              f"{'every@flow':>11s} {'held@flow':>10s} {'n refr':>7s} {'n flow':>7s} "
              f"{'flow-every':>11s} {'held-every':>11s} {'motion':>7s}")
        for side, h in r["per_hand"].items():
            print(f"  {side:6s} {h['every']:7.3f} {h['alternate']:7.3f} "
                  f"{h['alternate_refreshed']:9.3f} {h['alternate_flow_tracked']:9.3f} "
                  f"{h['every_on_flow_tracked_frames']:11.3f} "
                  f"{h['held_on_flow_tracked_frames']:10.3f} {h['n_refreshed']:7d} "
                  f"{h['n_flow_tracked']:7d} {h['flow_vs_every_px']:11.3f} "
                  f"{h['held_vs_every_px']:11.3f} {h['gt_motion_px_per_frame']:7.2f}")
        print("  (px vs GT; alt refr/flow: frames where the model ran on the hand / flow moved "
              "it; every@flow, held@flow: the every-frame detector, and holding the last "
              "landmarks, on those flow frames; flow-every, held-every: distance to the "
              "every-frame detector's landmarks on them; motion: GT px per frame)")
    for lm, a in asl.items():
        if a:
            print(f"\nASL clip vs MediaPipe reference ({lm}, {a['frames']} frames, one hand): "
                  f"every {a['every']['error_px']:.3f} px ({a['every']['found']} found), "
                  f"alternate {a['alternate']['error_px']:.3f} px ({a['alternate']['found']} "
                  f"found, {a['alternate']['flow_tracked']} flow-tracked)")
    print(json.dumps({"clip": args.clip, "load_average": round(load[0], 2),
                      **{f"{r['landmarks']}_cpu_ratio": r["cpu_ratio"] for r in reports},
                      **{f"{r['landmarks']}_error_delta_px": r["error_delta_px"]
                         for r in reports},
                      args.clip: reports, "asl": asl}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
