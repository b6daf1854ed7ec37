"""The fp16 landmark model in its worker process against the same model in-process.

Usage::

    python -m benchmarks.landmark_worker [--calls 200] [--batch 2] [--threads 2]

On the same crops (the sample clip's two tracked hands):

- the per-call overhead of the worker: a round trip without the model (``ping``: one byte each
  way on the pipe), and the worker's ``run`` against the in-process ``_Fp16Landmarks.run``
  (in alternating blocks of 10 calls);
- the GIL: how far a Python counter thread gets *during* each call, with the pipeline's GIL
  switch interval (1 ms). The in-process call holds the GIL (LiteRT's
  ``CompiledModel.run_by_index``), so the counter moves only in the gaps between its Python
  steps; while the worker computes, the parent waits in ``poll`` without it. (The counter
  also takes a core from the child, as the pipeline's other stages would.)

Prints the figures, then (last) one JSON line; the ratios compare the worker with the
in-process call of the same run. Timings depend on the machine's load: note ``uptime``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np
from tqdm import tqdm

from benchmarks.common import read_frames
from realtime.detect import hand_rois as hr
from realtime.detect.landmark_worker import LandmarkWorker, _Fp16Landmarks
from realtime.detect.litert_models import mediapipe_model_dir, model_path
from realtime.detect.scheduled import ScheduledDetector, ScheduledDetectorConfig
from realtime.engine.gil import switch_interval
from realtime.io.sample import SAMPLE_VIDEO
from realtime.types import Frame

TWO_HANDS_FRAME = 400  # sample clip: both hands tracked from here
BLOCK = 10  # timed calls of one path in a row


def sample_crops(batch: int = 2) -> np.ndarray:
    """``(batch, 224, 224, 3)`` crops of the sample clip's hands, as tracking cuts them."""
    frames = read_frames(SAMPLE_VIDEO, TWO_HANDS_FRAME + 1)
    with ScheduledDetector(ScheduledDetectorConfig()) as det:
        for i in range(TWO_HANDS_FRAME - 20, TWO_HANDS_FRAME + 1):
            det.process(Frame(frames[i], i, i / 30))
        rects = [hand.rect for hand in det._hands]
    image = frames[TWO_HANDS_FRAME]
    h, w = image.shape[:2]
    crops = [hr.to_tensor(image, hr.crop_matrix(hr.rect_to_px(r, w, h), hr.LANDMARK_INPUT),
                          hr.LANDMARK_INPUT, zero_border=False) for r in rects]
    return np.stack([crops[k % len(crops)] for k in range(batch)]).astype(np.float32)


class ProgressCounter:
    """A Python thread counting as fast as it can: it advances only while it holds the GIL."""

    def __init__(self) -> None:
        self.count = 0
        self._stop = False
        self._thread = threading.Thread(target=self._spin, name="counter", daemon=True)

    def _spin(self) -> None:
        while not self._stop:
            self.count += 1

    def __enter__(self) -> ProgressCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()

    def during(self, call) -> int:
        """How far the counter got while ``call()`` ran."""
        before = self.count
        call()
        return self.count - before


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    path = model_path(mediapipe_model_dir(), "landmark", "full")
    crops = sample_crops(args.batch)
    t0 = time.perf_counter()
    worker = LandmarkWorker([(path, args.batch)], args.threads)
    start_s = time.perf_counter() - t0
    local = _Fp16Landmarks(path, args.threads, args.batch)
    worker.inputs[:] = crops
    local.inputs[:] = crops
    same = max(float(np.abs(a - b).max()) for a, b in zip(worker.run(), local.run()))

    ping, run_w, run_l, count_w, count_l = [], [], [], [], []
    for _ in range(10 * args.calls):  # alone: right after a model call, both processes'
        t = time.perf_counter()        # XNNPACK threads still spin and take the cores
        worker.ping()
        ping.append((time.perf_counter() - t) * 1e6)
    # alternating blocks of BLOCK calls: right after one path's call its XNNPACK threads
    # spin a while, and would take the cores from the other path's next call
    for _ in tqdm(range(max(1, args.calls // BLOCK)), desc="timed calls (blocks)"):
        for call, times in ((worker.run, run_w), (local.run, run_l)):
            call()  # the other path's threads settle
            for _ in range(BLOCK):
                t = time.perf_counter()
                call()
                times.append((time.perf_counter() - t) * 1e3)
    # apart: the spinning counter takes a core and delays every return of the GIL
    with switch_interval(), ProgressCounter() as counter:  # the pipeline's GIL interval
        for _ in tqdm(range(args.calls), desc="calls beside a counter thread"):
            count_w.append(counter.during(worker.run))
            count_l.append(counter.during(local.run))
    worker.close()

    def pct(values, q):
        return float(np.percentile(values, q))

    print(f"fp16 landmark model, batch {args.batch}, {args.threads} threads, {args.calls} calls")
    print(f"  worker start-up: {start_s:.2f} s; largest output difference to in-process: {same}")
    print(f"  round trip without the model (ping): p50 {pct(ping, 50):.0f} us, "
          f"p90 {pct(ping, 90):.0f} us")
    print(f"  run, ms p50/p90: worker {pct(run_w, 50):.2f}/{pct(run_w, 90):.2f}, "
          f"in-process {pct(run_l, 50):.2f}/{pct(run_l, 90):.2f}")
    print(f"  counter thread progress per call, mean: worker {np.mean(count_w):.0f}, "
          f"in-process {np.mean(count_l):.0f}")
    print(json.dumps({
        "benchmark": "landmark_worker", "batch": args.batch, "calls": args.calls,
        "start_s": round(start_s, 3), "max_abs_diff": same,
        "ping_us_p50": round(pct(ping, 50), 1), "ping_us_p90": round(pct(ping, 90), 1),
        "worker_ms_p50": round(pct(run_w, 50), 3), "inprocess_ms_p50": round(pct(run_l, 50), 3),
        "worker_over_inprocess_p50": round(pct(run_w, 50) / pct(run_l, 50), 3),
        "counter_per_call_worker": round(float(np.mean(count_w)), 1),
        "counter_per_call_inprocess": round(float(np.mean(count_l)), 1),
    }))


if __name__ == "__main__":
    main()
