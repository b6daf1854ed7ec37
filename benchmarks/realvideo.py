"""Temporal quality of our hands on three real clips, against MediaPipe Hands alone.

Each clip (the ASL clip of ``mediapipe_reference`` and the two Pixabay clips of
``videos_nogt`` in ``../shared/data/realhands``, read in place) is decoded once; every frame
goes through

- ours: the library's pipeline, :class:`realtime.HandMesher` with its default config
  (scheduled detector, regressor, tracking, the default One-Euro smoothing), fed the
  source's timestamps and camera;
- the baseline: MediaPipe Hands alone (legacy ``mp.solutions.hands``, video mode,
  max_num_hands=2, model_complexity=1), its metric world landmarks.

Per clip (metric functions in ``benchmarks.temporal``):

- accel: mean |second difference| of the 20 wrist-relative joints (mm/frame^2) over runs of
  consecutive frames of one track, ours vs MediaPipe's world landmarks, and their ratio
  (target <= 0.4). MediaPipe has no track ids: its hands are linked frame to frame by pixel
  proximity (``temporal.link_tracks``).
- lag: the shift (frames, +-5, positive = ours behind) best aligning our wrist-relative
  joints to MediaPipe's (``benchmarks.smoothing.best_shift``, a constant offset per joint
  ignored) over the longest run where one of our tracks and one MediaPipe track are the
  same hand (target |lag| <= 1). Where that alignment explains under half of MediaPipe's
  wrist-relative motion (``lag_fit_r2`` < 0.5: a held pose, MediaPipe's motion mostly its
  own noise) no lag can be read and it is null. ``image_lag_frames``: the same over the
  pixel traces of all 21 joints (ours projected), which include the hand's travel, so it
  is measurable on every clip (target |lag| <= 1).
- camera-frame accel of ours (all 21 joints, mm/frame^2). MediaPipe's world landmarks have
  no camera translation, so nothing metric compares; what does is the image plane: our
  smoothed joints projected with the frame's camera vs MediaPipe's pixel landmarks
  (px/frame^2, and their ratio).
- side_flips: handedness changes within one of our tracks (target 0); MediaPipe's own
  flips within its linked tracks are shown beside it.
- hand_rate_ratio: frames with a hand in ours / frames with a hand in MediaPipe (>= 0.99).
- identity_switches: our track id changing while the hand stays visible (matched between
  consecutive frames by pixel proximity).

Prints a table; the last line is one JSON object (per clip, and the worst case over clips).
Writes docs/realvideo_trace.png (index tip, wrist-relative y, ours vs MediaPipe). ``--quick``
(the first 75 frames of each clip) is a smoke run: no plot, targets not judged.

    .venv/bin/python -m benchmarks.realvideo [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks import temporal
from benchmarks.common import REPO, SHARED_DATA, save_figure
from models.geometry import project

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's per-run C++ warnings

CLIPS = (SHARED_DATA / "mediapipe_reference" / "asl_hand.25fps.mp4",
         SHARED_DATA / "videos_nogt" / "pixabay_hand_129422.mp4",
         SHARED_DATA / "videos_nogt" / "pixabay_victory_44639.mp4")
TRACE_PNG = REPO / "docs" / "realvideo_trace.png"
QUICK_FRAMES = 75
TRACE_JOINT = 8  # index tip
TARGETS = {"accel_ratio_vs_mediapipe": 0.4, "side_flips": 0,
           "hand_rate_ratio_vs_mediapipe": 0.99, "lag_frames": 1.0, "image_lag_frames": 1.0}
MIN_LAG_R2 = 0.5  # below this, ours and MediaPipe share too little motion to read a lag


@dataclass
class Seen:
    """One hand in one frame: its track, side, 3D points (m) and pixel points."""

    frame: int
    track: int
    side: str
    points: np.ndarray  # (21,3) m: ours in the camera frame, MediaPipe's world landmarks
    px: np.ndarray      # (21,2): ours projected (smoothed joints), MediaPipe's landmarks


@dataclass
class ClipResult:
    """The figures of one clip, and the index-tip trace of its longest paired run."""

    name: str
    frames: int
    fps: float
    metrics: dict
    trace: dict = field(default_factory=dict)


def _tracks(seen: list[Seen]) -> dict[int, list[Seen]]:
    out: dict[int, list[Seen]] = {}
    for s in seen:
        out.setdefault(s.track, []).append(s)
    return out


def _accel(tracks: dict[int, list[Seen]], what) -> float:
    return temporal.mean_accel([(np.array([s.frame for s in t]), np.stack([what(s) for s in t]))
                                for t in tracks.values()])


def run_clip(path: Path, max_frames: int | None = None
             ) -> tuple[list[Seen], list[Seen], int, float]:
    """Our hands and MediaPipe's on the same decoded frames of ``path``; the frame count and
    rate."""
    from tqdm import tqdm

    from realtime.detect.detector import DetectorConfig
    from realtime.detect.mediapipe_legacy import MediaPipeDetector
    from realtime.io.sources import SourceConfig, open_source
    from realtime.mesher import HandMesher, HandMesherConfig

    ours: list[Seen] = []
    mp_frames: list[list] = []
    with open_source(SourceConfig(spec=str(path))) as src, \
            HandMesher(HandMesherConfig()) as mesher, \
            MediaPipeDetector(DetectorConfig(kind="mediapipe", max_num_hands=2,
                                             model_complexity=1)) as mp:
        fps = float(src.fps)
        total = min(src.frame_count or 0, max_frames or 10**9)
        for n, frame in enumerate(tqdm(src, total=total, desc=path.name, unit="frame")):
            if max_frames is not None and n >= max_frames:
                break
            for h in mesher.process(frame.image, frame.timestamp, frame.camera):
                ours.append(Seen(n, h.track_id, h.handedness, h.joints,
                                 project(h.joints, frame.camera.K)))
            mp_frames.append([(d.handedness, d.world, d.landmarks_px) for d in mp.process(frame)])
    ids = temporal.link_tracks([[px for _, _, px in f] for f in mp_frames])
    theirs = [Seen(n, i, side, world, px) for n, f in enumerate(mp_frames)
              for i, (side, world, px) in zip(ids[n], f)]
    return ours, theirs, len(mp_frames), fps


def _longest_pair(ours: list[Seen], theirs: list[Seen], frames: int):
    """The longest run of consecutive frames in which one of our tracks and one MediaPipe
    track are the same hand: ``(our Seen list, their Seen list)``."""
    by_frame_o = [[] for _ in range(frames)]
    by_frame_t = [[] for _ in range(frames)]
    for s in ours:
        by_frame_o[s.frame].append(s)
    for s in theirs:
        by_frame_t[s.frame].append(s)
    pairs: dict[tuple[int, int], list[tuple[Seen, Seen]]] = {}
    for o, t in zip(by_frame_o, by_frame_t):
        for i, j in temporal.match_hands([s.px for s in o], [s.px for s in t]):
            pairs.setdefault((o[i].track, t[j].track), []).append((o[i], t[j]))
    best: list[tuple[Seen, Seen]] = []
    for seq in pairs.values():
        for run in temporal.consecutive_runs(np.array([o.frame for o, _ in seq])):
            if run.stop - run.start > len(best):
                best = seq[run]
    return [o for o, _ in best], [t for _, t in best]


def clip_metrics(ours: list[Seen], theirs: list[Seen], frames: int, fps: float
                 ) -> tuple[dict, dict]:
    """The figures of one clip (see the module docstring) and the index-tip trace."""
    to, tt = _tracks(ours), _tracks(theirs)
    rel = lambda s: 1000.0 * temporal.wrist_relative(s.points)  # mm
    accel_o, accel_t = _accel(to, rel), _accel(tt, rel)
    img_o, img_t = _accel(to, lambda s: s.px), _accel(tt, lambda s: s.px)
    frames_o = len({s.frame for s in ours})
    frames_t = len({s.frame for s in theirs})
    po, pt = _longest_pair(ours, theirs, frames)
    lag, r2, image_lag, corr, trace = (float("nan"),) * 4 + ({},)
    if po:
        a, b = np.stack([rel(s) for s in po]), np.stack([rel(s) for s in pt])
        lag = temporal.lag_frames(a, b)
        if np.isfinite(lag):
            r2 = temporal.aligned_r2(a, b, lag)
            lag = lag if r2 >= MIN_LAG_R2 else float("nan")
        flat = lambda s: np.c_[s.px, np.zeros(len(s.px))]  # (21,3), z = 0
        image_lag = temporal.lag_frames(np.stack([flat(s) for s in po]),
                                        np.stack([flat(s) for s in pt]))
        ya, yb = a[:, TRACE_JOINT - 1, 1], b[:, TRACE_JOINT - 1, 1]
        if len(ya) > 2 and ya.std() > 0 and yb.std() > 0:
            corr = float(np.corrcoef(ya, yb)[0, 1])
        trace = {"t": np.array([s.frame for s in po]) / fps, "ours": ya, "mediapipe": yb}
    by_frame: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(frames)]
    for s in ours:
        by_frame[s.frame].append((s.track, s.px))
    metrics = {
        "frames": frames,
        "accel_ours_mm": accel_o,
        "accel_mediapipe_mm": accel_t,
        "accel_ratio_vs_mediapipe": accel_o / accel_t if accel_t > 0 else float("nan"),
        "camera_accel_ours_mm": _accel(to, lambda s: 1000.0 * s.points),
        "image_accel_ours_px": img_o,
        "image_accel_mediapipe_px": img_t,
        "image_accel_ratio_vs_mediapipe": img_o / img_t if img_t > 0 else float("nan"),
        "lag_frames": lag,
        "lag_fit_r2": r2,
        "image_lag_frames": image_lag,
        "lag_run_frames": len(po),
        "index_tip_y_corr": corr,
        "side_flips": sum(temporal.side_flips([s.side for s in t]) for t in to.values()),
        "mediapipe_side_flips": sum(temporal.side_flips([s.side for s in t])
                                    for t in tt.values()),
        "frames_with_hand_ours": frames_o,
        "frames_with_hand_mediapipe": frames_t,
        "hand_rate_ratio_vs_mediapipe": frames_o / frames_t if frames_t else float("nan"),
        "hands_ours": len(ours),
        "hands_mediapipe": len(theirs),
        "identity_switches": temporal.identity_switches(by_frame),
        "tracks_ours": len(to),
        "tracks_mediapipe": len(tt),
    }
    return metrics, trace


def measure_clip(path: Path, max_frames: int | None = None) -> ClipResult:
    """Run ours and MediaPipe on ``path`` (its first ``max_frames``) and measure them."""
    ours, theirs, frames, fps = run_clip(path, max_frames)
    metrics, trace = clip_metrics(ours, theirs, frames, fps)
    return ClipResult(path.stem, metrics["frames"], fps, metrics, trace)


def plot(result: ClipResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = result.trace
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(tr["t"], tr["mediapipe"], ".-", ms=3, lw=0.8, color="0.5",
            label="MediaPipe world landmarks")
    ax.plot(tr["t"], tr["ours"], "C3-", lw=1.3, label="ours (smoothed)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("index tip y - wrist y (mm)")
    ax.set_title(f"{result.name}: index tip, wrist-relative y (longest run with both, "
                 f"{len(tr['t'])} frames)")
    ax.legend(loc="best")
    save_figure(fig, path)


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _round(v):
    """JSON-ready: floats to 4 places, NaN (nothing to measure) to null."""
    if isinstance(v, float):
        return round(v, 4) if np.isfinite(v) else None
    return v


def _worst(values, pick):
    finite = [v for v in values if np.isfinite(v)]
    return float(pick(finite)) if finite else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only the first {QUICK_FRAMES} frames of each clip")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    missing = [p for p in CLIPS if not p.is_file()]
    if missing:
        reason = f"real clip {missing[0]} not found (shared data absent)"
        print(f"skipping realvideo: {reason}")
        print(json.dumps({"skipped": reason}))
        return
    results = [measure_clip(p, QUICK_FRAMES if args.quick else None) for p in CLIPS]
    keys = list(results[0].metrics)
    width = max(len(k) for k in keys)
    print(f"{'':<{width}}  " + "  ".join(f"{r.name[:22]:>22}" for r in results) + "  target")
    for k in keys:
        target = TARGETS.get(k, "")
        target = f"{'>=' if k.startswith('hand_rate') else '<='} {target}" if target != "" else ""
        print(f"{k:<{width}}  " + "  ".join(f"{_fmt(r.metrics[k]):>22}" for r in results)
              + f"  {target}")
    with_trace = [r for r in results if r.trace]
    if with_trace and not args.quick:  # the docs figure is of the full clips
        plot(max(with_trace, key=lambda r: len(r.trace["t"])), TRACE_PNG)
        print(f"trace plot: {TRACE_PNG.relative_to(REPO)}")
    m = [r.metrics for r in results]
    worst = {
        "accel_ratio_vs_mediapipe": _worst([x["accel_ratio_vs_mediapipe"] for x in m], max),
        "side_flips": sum(x["side_flips"] for x in m),
        "hand_rate_ratio_vs_mediapipe": _worst([x["hand_rate_ratio_vs_mediapipe"]
                                                for x in m], min),
        "lag_frames": _worst([abs(x["lag_frames"]) for x in m], max),
        "lag_clips_measured": sum(bool(np.isfinite(x["lag_frames"])) for x in m),
        "image_lag_frames": _worst([abs(x["image_lag_frames"]) for x in m], max),
        "identity_switches": sum(x["identity_switches"] for x in m),
    }
    fails = [k for k, v in worst.items() if k in TARGETS and not (
        v >= TARGETS[k] if k.startswith("hand_rate") else v <= TARGETS[k])]
    if args.quick:  # a few seconds of real motion is not the clips' mix of motion and rest
        print(f"targets: not judged (--quick: {QUICK_FRAMES} frames per clip)")
    else:
        print("targets: " + ("all met" if not fails else "MISSED " + ", ".join(fails)))
    out = {k: _round(v) for k, v in worst.items()}
    out["clips"] = len(results)
    out["quick"] = args.quick
    out["per_clip"] = {r.name: {k: _round(v) for k, v in r.metrics.items()} for r in results}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
