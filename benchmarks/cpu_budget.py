"""CPU per two-hand frame of each part of the pipeline, against what 60 FPS leaves on two cores.

At 60 FPS two cores give 2 x 16.7 = 33.3 ms of CPU per frame. Everything the demo does for a
frame has to fit in it: decoding, the detector (all its threads), the regressor, smoothing,
drawing and encoding the overlay, writing the hands file. This runs each part on the first
frames of ``realtime/assets/sample/sample60.mp4`` (two hands), one part after another (no
overlap, so each one's CPU is its own; the two landmark refreshes of one model interleaved
frame by frame), and reports process CPU time per frame, including
what worker threads spend after a call returns (a spinning thread pool), with a short pause
between calls as a live source would leave.

The baseline is the 60 FPS budget itself: ``budget_ratio`` = CPU per frame of the demo's
60 FPS defaults (adaptive landmarks refreshed alternately: the model on one of the two hands
per frame, optical flow on the other; the overlay drawn every other frame) / 33.3 ms; below 1
means the parts fit on two cores if nothing else runs. ``latency_path_budget_ratio``: the same
for the published path alone (decode, detect, estimate, smooth), which a live frame waits for:
the overlay yields to it (SCHED_IDLE) and the hands file mostly does (nice 4).
``budget_ratio_every_refresh``: the same with the landmark model on both hands on every frame
(the defaults before the alternate refresh). On a loaded machine every figure grows (other
processes thrash the caches); compare rows of one run.

    .venv/bin/python -m benchmarks.cpu_budget [--frames 120]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.hand_model import HandModel
from realtime.detect.detector import DetectorConfig
from realtime.io.hands_file import HandsFileSink
from realtime.io.sample import SAMPLE60_VIDEO
from realtime.io.sources import SourceConfig, open_source
from realtime.mesher import HandMesher, HandMesherConfig
from realtime.render.overlay_sink import OverlaySink
from realtime.stream.openxr import openxr_tracker
from realtime.types import SIDES, Packet

os.environ.setdefault("GLOG_minloglevel", "2")

FPS = 60.0
BUDGET_MS = 2 * 1000.0 / FPS  # two cores
PAUSE_S = 0.004  # between calls: worker threads that spin after a call are counted


def cpu_per_call(label: str, fn, items: list) -> tuple[list, dict]:
    """Run ``fn`` on every item: the outputs, and process CPU per item (including the pause
    after each call) with the median wall time of the call (:func:`cpu_interleaved` of one)."""
    out, parts = cpu_interleaved(label, {label: fn}, items)
    return out[label], parts[label]


def worker_clock(mesher: HandMesher):
    """CPU seconds of this process plus the mesher's landmark worker process (fp16
    landmarks run there: ``realtime.detect.landmark_worker``), which ``process_time``
    alone does not count."""
    worker = getattr(mesher.detector, "_worker", None)
    if worker is None:
        return time.process_time
    return lambda: time.process_time() + worker.cpu_seconds()


def cpu_interleaved(label: str, fns: dict, items: list,
                    clocks: dict | None = None) -> tuple[dict, dict]:
    """Like :func:`cpu_per_call` for several functions, interleaved item by item (each item
    through every function in turn), so that machine load hits them alike: per name the
    outputs and ``{"cpu_ms", "wall_p50_ms"}``. A call's CPU includes the pause after it;
    ``clocks[name]`` (default ``time.process_time``) is what counts it."""
    out = {name: [] for name in fns}
    cpu = dict.fromkeys(fns, 0.0)
    walls = {name: [] for name in fns}
    clocks = clocks or {}
    for item in tqdm(items, desc=label, leave=False):
        for name, fn in fns.items():
            clock = clocks.get(name, time.process_time)
            c0, t = clock(), time.perf_counter()
            out[name].append(fn(item))
            walls[name].append(time.perf_counter() - t)
            time.sleep(PAUSE_S)
            cpu[name] += clock() - c0
    return out, {name: {"cpu_ms": round(cpu[name] / len(items) * 1e3, 2),
                        "wall_p50_ms": round(float(np.median(walls[name])) * 1e3, 2)}
                 for name in fns}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=120, help="frames of sample60 (<= 480)")
    args = parser.parse_args(argv)
    if not 1 <= args.frames <= 480:
        parser.error(f"--frames must be 1-480, got {args.frames}")
    logging.basicConfig(level=logging.WARNING)
    parts: dict[str, dict] = {}
    with open_source(SourceConfig(str(SAMPLE60_VIDEO))) as source:
        c0 = time.process_time()
        frames = [source.read() for _ in range(args.frames)]
        parts["capture (decode)"] = {
            "cpu_ms": round((time.process_time() - c0) / args.frames * 1e3, 2)}
    model = HandModel.open_hand()
    final = None
    hands_per_frame = {}
    # each landmark model refreshed on every frame and alternating (one hand's model per
    # frame, optical flow on the other: docs/detector.md), interleaved frame by frame
    for landmarks in ("full", "lite"):
        with contextlib.ExitStack() as stack:
            meshers = {
                refresh: stack.enter_context(HandMesher(HandMesherConfig(
                    detector=DetectorConfig(landmarks=landmarks, landmark_refresh=refresh)),
                    model=model)) for refresh in ("every", "alternate")}
            names = {"every": landmarks, "alternate": f"{landmarks} alternate"}
            outs, cpu = cpu_interleaved(
                f"detect {landmarks}", {names[r]: dict(m.stages)["detect"]
                                        for r, m in meshers.items()},
                [Packet(f, 0.0) for f in frames],
                {names[r]: worker_clock(m) for r, m in meshers.items()})
            precision = meshers["every"].detector.precision
            for name, packets in outs.items():
                parts[f"detect, {name} landmarks"] = cpu[name]
                hands_per_frame[name] = float(np.mean([len(p.detections) for p in packets]))
            if landmarks == "full":
                stages = dict(meshers["every"].stages)
                packets, parts["estimate (regressor, both hands)"] = cpu_per_call(
                    "estimate", stages["estimate"], outs[landmarks])
                final, parts["smooth"] = cpu_per_call("smooth", stages["smooth"], packets)
    faces = {side: model.faces_for(side) for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="cpu_budget_") as tmp:
        overlay = OverlaySink(faces, video_path=Path(tmp) / "overlay.mp4", fps=FPS,
                              hud=lambda: ["60.0 FPS  latency p50 20 ms", "hands 100"])
        _, parts["render (draw + encode), every frame"] = cpu_per_call(
            "render", overlay.write, final)
        overlay.close()
        hands = HandsFileSink(Path(tmp) / "hands.jsonl", True, xr=openxr_tracker(model))
        _, parts["record (hands file)"] = cpu_per_call("record", hands.write, final)
        hands.close()

    def total(landmarks: str, render_share: float) -> float:
        return (parts["capture (decode)"]["cpu_ms"]
                + parts[f"detect, {landmarks} landmarks"]["cpu_ms"]
                + parts["estimate (regressor, both hands)"]["cpu_ms"]
                + parts["smooth"]["cpu_ms"]
                + render_share * parts["render (draw + encode), every frame"]["cpu_ms"]
                + parts["record (hands file)"]["cpu_ms"])

    before = total("full", 1.0)
    every = total("lite", 0.5)
    now = total("lite alternate", 0.5)
    # the published path alone (decode, detect, estimate, smooth): what a live source's
    # frame waits for; drawing runs under SCHED_IDLE beside it and recording at nice 4
    latency_path = now - 0.5 * parts["render (draw + encode), every frame"]["cpu_ms"] \
        - parts["record (hands file)"]["cpu_ms"]
    print(f"CPU per two-hand frame (sample60, first {args.frames} frames, hands per frame "
          f"{hands_per_frame['full']:.2f}; landmarks in {precision}, a worker process's CPU "
          f"counted); 60 FPS on two cores leaves {BUDGET_MS:.1f} ms")
    for name, v in parts.items():
        wall = f"  (call wall p50 {v['wall_p50_ms']:.2f})" if "wall_p50_ms" in v else ""
        print(f"  {name:<38} {v['cpu_ms']:6.2f} ms{wall}")
    print(f"  total, full landmarks, every frame drawn  {before:6.2f} ms "
          f"({before / BUDGET_MS:.2f} of the budget)")
    print(f"  total, lite on both hands every frame, every other frame drawn {every:6.2f}"
          f" ms ({every / BUDGET_MS:.2f} of the budget)")
    print(f"  total, 60 FPS defaults (lite alternating: one hand per frame, flow on the other; "
          f"every other frame drawn) {now:6.2f} ms ({now / BUDGET_MS:.2f} of the budget; hands "
          f"per frame {hands_per_frame['lite alternate']:.2f})")
    print(f"  of which the published path (decode, detect, estimate, smooth) "
          f"{latency_path:6.2f} ms ({latency_path / BUDGET_MS:.2f} of the budget; the "
          "overlay runs beside it under SCHED_IDLE, the hands file at nice 4)")
    print(json.dumps({"budget_ms": round(BUDGET_MS, 2), "cpu_ms_per_frame": round(now, 2),
                      "budget_ratio": round(now / BUDGET_MS, 3),
                      "latency_path_cpu_ms_per_frame": round(latency_path, 2),
                      "latency_path_budget_ratio": round(latency_path / BUDGET_MS, 3),
                      "cpu_ms_per_frame_full_every_frame_drawn": round(before, 2),
                      "budget_ratio_full_every_frame_drawn": round(before / BUDGET_MS, 3),
                      "cpu_ms_per_frame_every_refresh": round(every, 2),
                      "budget_ratio_every_refresh": round(every / BUDGET_MS, 3),
                      "load_average": round(os.getloadavg()[0], 2), "precision": precision,
                      "frames": args.frames, "parts": parts}))


if __name__ == "__main__":
    main()
