"""Our scheduled detector against the legacy MediaPipe Hands pipeline, on the same frames.

Both run MediaPipe's full landmark model (ours ``landmarks="full"``, MediaPipe model
complexity 1), ``max_num_hands=2``, confidences 0.5, in one run and interleaved frame by frame
(ours, then MediaPipe, on the same frame), so machine noise hits both alike:

- speed, two hands: per-frame ms on the built-in sample clip's frames with both hands in view
  (tracking mode over the whole clip, so both detectors carry their tracks);
- speed, one hand: per-frame ms on the real ASL clip (``mediapipe_reference/asl_hand``), or the
  sample clip's one-hand frames when the shared data is absent;
- accuracy: mean 2D error and detection rate on hgcnn_realworld images 300-582 (static mode:
  the photos are unrelated, so palm detection on every image, like ``static_image_mode``),
  and on the clips (sample clip vs its exact ground truth, ASL clip vs MediaPipe's own
  reference outputs);
- identity: the demo's ``HandTracker`` fed by each detector on the sample clip; a *swap* is a
  frame where a ground-truth hand takes the track id the other hand had.

Prints a table; the last line is one JSON object (speedups and errors). Writes
docs/detector_latency.png (per-frame latency histograms).

    .venv/bin/python -m benchmarks.detector [--quick] [--landmarks full|lite|adaptive]
        [--split] [--precision auto|fp32|fp16]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import (
    CLIP_MATCH_PX,
    HGCNN,
    REPO,
    SHARED_DATA,
    hgcnn_images,
    nearest_detection,
    read_frames,
    save_figure,
)
from realtime.detect.detector import PRECISIONS, DetectorConfig
from realtime.detect.mediapipe_legacy import MediaPipeDetector
from realtime.detect.scheduled import ScheduledDetector, ScheduledDetectorConfig
from realtime.io.sample import SAMPLE_GT, SAMPLE_VIDEO
from realtime.mesh.tracking import HandTracker
from realtime.types import Frame

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's per-run C++ warnings

ASL_CLIP = SHARED_DATA / "mediapipe_reference" / "asl_hand.25fps.mp4"
ASL_REFERENCE = SHARED_DATA / "mediapipe_reference" / "asl_hand.reference.json"
LATENCY_PNG = REPO / "docs" / "detector_latency.png"
CPU_MS: dict[str, list[np.ndarray]] = {}  # per detector: CPU ms per frame, per clip run


OURS_OPTIONS: dict = {}  # --split / --precision: ScheduledDetectorConfig fields for ours


def make_detectors(landmarks: str, static: bool) -> dict:
    ours = ScheduledDetector(ScheduledDetectorConfig(landmarks=landmarks,
                                                     static_image_mode=static,
                                                     **OURS_OPTIONS))
    mp = MediaPipeDetector(DetectorConfig(kind="mediapipe",
                                          model_complexity=0 if landmarks == "lite" else 1,
                                          static_image_mode=static))
    blank = Frame(np.zeros((240, 320, 3), np.uint8), 0, 0.0)
    for det in (ours, mp):  # load the graph / allocate the tensors outside the timing
        for _ in range(3):
            det.process(blank)
    return {"ours": ours, "mediapipe": mp}


def cpu_time(det) -> float:
    """CPU seconds of this process, plus those of the detector's worker processes (the fp16
    landmark model runs in its own process: ``realtime.detect.landmark_worker``)."""
    worker = getattr(det, "_worker", None)
    return time.process_time() + (worker.cpu_seconds() if worker is not None else 0.0)


def run_interleaved(frames: list[np.ndarray], detectors: dict, fps: float):
    """Every frame through each detector in turn: ``{name: (dets per frame, ms (N,))}``;
    ``CPU_MS[name]`` gets the process CPU time per frame (all threads, and the fp16 worker
    process's), which a busy machine
    does not inflate the way it inflates wall time."""
    out = {name: ([], [], []) for name in detectors}
    for i, image in enumerate(frames):
        frame = Frame(image, i, i / fps)
        for name, det in detectors.items():
            c0, t0 = cpu_time(det), time.perf_counter()
            dets = det.process(frame)
            out[name][1].append((time.perf_counter() - t0) * 1000.0)
            out[name][2].append((cpu_time(det) - c0) * 1000.0)
            out[name][0].append(dets)
    for name, (_, _, cpu) in out.items():
        CPU_MS.setdefault(name, []).append(np.array(cpu))
    return {name: (dets, np.array(ms)) for name, (dets, ms, _) in out.items()}


def clip_accuracy(dets_per_frame: list, gt2d: np.ndarray, present: np.ndarray) -> dict:
    """Mean 2D error (px) over matched hands and the share of hands found."""
    errors, total = [], 0
    for i, dets in enumerate(dets_per_frame):
        for slot in np.nonzero(present[i])[0]:
            total += 1
            d = nearest_detection(dets, gt2d[i, slot], CLIP_MATCH_PX)
            if d is not None:
                errors.append(np.linalg.norm(d.landmarks_px - gt2d[i, slot], axis=1).mean())
    return {"error_px": float(np.mean(errors)) if errors else float("nan"),
            "rate": len(errors) / max(total, 1), "hands": total}


def identity_swaps(dets_per_frame: list, gt2d: np.ndarray, present: np.ndarray,
                   size: tuple[int, int]) -> dict:
    """Track ids from the demo's tracker; swaps (a hand takes the other's id) and switches
    (a hand's id changes at all) over the frames where both hands are in view."""
    tracker = HandTracker()
    last: dict[int, int] = {}
    swaps = switches = 0
    for i, dets in enumerate(dets_per_frame):
        ids = tracker.assign(list(dets), size, i)
        if not present[i].all():
            continue
        for slot in (0, 1):
            d = nearest_detection(dets, gt2d[i, slot], CLIP_MATCH_PX)
            if d is None:
                continue
            tid = ids[next(k for k, x in enumerate(dets) if x is d)]
            if slot in last and last[slot] != tid:
                switches += 1
                swaps += int(last.get(1 - slot) == tid)
            last[slot] = tid
    return {"swaps": swaps, "switches": switches}


def hgcnn_accuracy(images: list[dict], landmarks: str) -> dict:
    """Static mode on each photo, both detectors: mean 2D error and detection rate."""
    detectors = make_detectors(landmarks, static=True)
    res = {name: [] for name in detectors}
    for n, im in enumerate(images):
        gt2 = np.array(im["hands"][0]["keypoints_2d"])
        frame = Frame(cv2.imread(str(HGCNN / im["file"])), n, float(n))
        for name, det in detectors.items():
            d = nearest_detection(det.process(frame), gt2, 0.5 * np.ptp(gt2, 0).max())
            if d is not None:
                res[name].append(np.linalg.norm(d.landmarks_px - gt2, axis=1).mean())
    for det in detectors.values():
        det.close()
    return {name: {"error_px": float(np.mean(e)) if e else float("nan"),
                   "rate": len(e) / max(len(images), 1), "hands": len(images)}
            for name, e in res.items()}


def plot_latency(two: dict, one: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, (title, data) in zip(axes, (("two hands", two), ("one hand", one))):
        hi = max(np.percentile(v, 99) for v in data.values()) * 1.1
        bins = np.linspace(0, hi, 50)
        for name, ms in data.items():
            ax.hist(np.clip(ms, 0, hi), bins=bins, alpha=0.6,
                    label=f"{name} (p50 {np.median(ms):.1f} ms)")
        ax.set_xlabel("detector ms per frame")
        ax.set_title(title)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer frames and photos (a smoke run, not a measurement)")
    p.add_argument("--landmarks", choices=("full", "lite", "adaptive"), default="full",
                   help="our landmark model (MediaPipe runs complexity 0 for lite, else 1)")
    p.add_argument("--split", action="store_true",
                   help="ours: each hand's crop on its own thread and single-thread "
                        "interpreter instead of one batched call on both threads")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="ours: landmark arithmetic (fp16 needs a CPU with native fp16)")
    p.add_argument("--plot", type=Path, default=LATENCY_PNG)
    args = p.parse_args(argv)
    OURS_OPTIONS.update(split_hands=args.split, precision=args.precision)
    max_frames = 120 if args.quick else None

    gt = np.load(SAMPLE_GT)
    sample = read_frames(SAMPLE_VIDEO, None)
    if args.quick:  # the end of the clip: two hands
        keep = np.arange(len(sample))[-max_frames:]
        sample = [sample[i] for i in keep]
    else:
        keep = np.arange(len(sample))
    present, gt2d = gt["present"][keep], gt["keypoints_2d"][keep]
    size = (int(gt["width"]), int(gt["height"]))
    dets = make_detectors(args.landmarks, static=False)
    video_precision = dets["ours"].precision  # what "auto" became on this CPU
    s = run_interleaved(sample, dets, float(gt["fps"]))
    palm_runs = {"sample": dets["ours"].palm_runs}
    two = present.all(1)
    two_ms = {name: ms[two] for name, (_, ms) in s.items()}
    two_cpu = {name: CPU_MS[name][0][two] for name in s}
    sample_acc = {name: clip_accuracy(d, gt2d, present) for name, (d, _) in s.items()}
    swaps = {name: identity_swaps(d, gt2d, present, size) for name, (d, _) in s.items()}

    one_src = "sample clip, one-hand frames"
    asl_acc = None
    if ASL_CLIP.is_file() and ASL_REFERENCE.is_file():
        asl = read_frames(ASL_CLIP, max_frames)
        ref = np.array(json.loads(ASL_REFERENCE.read_text())["keypoints_2d"])[:len(asl), None]
        dets = make_detectors(args.landmarks, static=False)
        a = run_interleaved(asl, dets, 25.0)
        palm_runs["asl"] = dets["ours"].palm_runs
        one_ms = {name: ms for name, (_, ms) in a.items()}
        one_src = "real ASL clip"
        asl_acc = {name: clip_accuracy(d, ref, np.ones((len(asl), 1), bool))
                   for name, (d, _) in a.items()}
    else:
        print(f"skipping the ASL clip: {ASL_CLIP} not found (shared data absent)")
        one = present.sum(1) == 1
        one_ms = {name: ms[one] for name, (_, ms) in s.items()}

    images = hgcnn_images(60 if args.quick else None)
    hg = hgcnn_accuracy(images, args.landmarks) if images else None

    print()
    print(f"detector per-frame cost (ms; ours landmarks={args.landmarks} {video_precision}"
          f"{' (auto)' if args.precision == 'auto' else ''}"
          f"{' split' if args.split else ''}, MediaPipe "
          f"complexity {0 if args.landmarks == 'lite' else 1}; same frames, interleaved)")
    print(f"  {'frames':34s} {'n':>5s} {'ours mean':>10s} {'p50':>6s} {'p95':>6s} "
          f"{'MP mean':>8s} {'p50':>6s} {'p95':>6s} {'speedup':>8s}")
    for label, data in (("two hands (sample clip)", two_ms), (f"one hand ({one_src})", one_ms)):
        o, m = data["ours"], data["mediapipe"]
        print(f"  {label:34s} {len(o):5d} {o.mean():10.1f} {np.median(o):6.1f} "
              f"{np.percentile(o, 95):6.1f} {m.mean():8.1f} {np.median(m):6.1f} "
              f"{np.percentile(m, 95):6.1f} {m.mean() / o.mean():7.2f}x")
    print(f"  CPU time per two-hand frame (all threads): ours {two_cpu['ours'].mean():.1f} ms, "
          f"MediaPipe {two_cpu['mediapipe'].mean():.1f} ms")
    print(f"  our palm detector ran on {palm_runs} frames "
          f"(sample clip {len(sample)}, MediaPipe: every frame with < 2 hands tracked)")
    print()
    print(f"  {'accuracy':34s} {'hands':>6s} {'ours px':>8s} {'rate':>7s} {'MP px':>8s} "
          f"{'rate':>7s}")
    rows = [("sample clip vs exact GT", sample_acc)]
    if asl_acc:
        rows.append(("ASL clip vs MediaPipe reference", asl_acc))
    if hg:
        rows.append(("hgcnn_realworld 300-582 (static)", hg))
    for label, acc in rows:
        o, m = acc["ours"], acc["mediapipe"]
        print(f"  {label:34s} {o['hands']:6d} {o['error_px']:8.2f} {o['rate']:7.3f} "
              f"{m['error_px']:8.2f} {m['rate']:7.3f}")
    print()
    print(f"  identity on the sample clip (demo's HandTracker): ours {swaps['ours']['swaps']} "
          f"swaps / {swaps['ours']['switches']} id switches, MediaPipe "
          f"{swaps['mediapipe']['swaps']} swaps / {swaps['mediapipe']['switches']} switches")

    plot_latency(two_ms, one_ms, args.plot)
    print(f"  latency histogram: {args.plot}")
    acc = hg or sample_acc
    result = {
        "ours_two_hands_ms": round(float(two_ms["ours"].mean()), 2),
        "mediapipe_two_hands_ms": round(float(two_ms["mediapipe"].mean()), 2),
        "speedup_two_hands": round(float(two_ms["mediapipe"].mean() / two_ms["ours"].mean()),
                                   3),
        "ours_two_hands_cpu_ms": round(float(two_cpu["ours"].mean()), 2),
        "mediapipe_two_hands_cpu_ms": round(float(two_cpu["mediapipe"].mean()), 2),
        "ours_one_hand_ms": round(float(one_ms["ours"].mean()), 2),
        "mediapipe_one_hand_ms": round(float(one_ms["mediapipe"].mean()), 2),
        "ours_2d_error_px": round(acc["ours"]["error_px"], 3),
        "mediapipe_2d_error_px": round(acc["mediapipe"]["error_px"], 3),
        "ours_detection_rate": round(acc["ours"]["rate"], 4),
        "mediapipe_detection_rate": round(acc["mediapipe"]["rate"], 4),
        "ours_sample_2d_error_px": round(sample_acc["ours"]["error_px"], 3),
        "mediapipe_sample_2d_error_px": round(sample_acc["mediapipe"]["error_px"], 3),
        "precision_video": video_precision,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
