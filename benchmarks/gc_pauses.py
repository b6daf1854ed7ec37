"""How long a full garbage collection stops the pipeline, with and without the frozen heap.

Builds the demo's pipeline on the sample (models loaded, 10 frames run, so the heap is what a
live run has), then times ``gc.collect()`` (a full, generation-2 collection: it holds the GIL,
so every stage thread waits) ``--repeats`` times as the process stands (the baseline), and
again inside ``realtime.engine.gc_freeze.frozen_heap`` (what ``Pipeline.run`` does). Also
counts the tracked objects. A pause longer than a frame period (16.7 ms at 60 FPS) is a
dropped or late frame whenever the collector decides to run one.

    .venv/bin/python -m benchmarks.gc_pauses [--repeats 5]

Prints the figures; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from realtime.app import AppConfig, OutputConfig, Sinks, build_pipeline
from realtime.engine.gc_freeze import frozen_heap
from realtime.io.sample import SAMPLE_VIDEO
from realtime.io.sources import SourceConfig

os.environ.setdefault("GLOG_minloglevel", "2")


def full_collections_ms(repeats: int) -> list[float]:
    """Wall time of ``repeats`` full collections, ms."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gc.collect()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench_gc_") as tmp:
        config = AppConfig(source=SourceConfig(spec=str(SAMPLE_VIDEO)),
                           output=OutputConfig(folder=Path(tmp)), realtime=True, max_frames=10)
        with build_pipeline(config, Sinks()) as built:
            built.run()
            tracked = len(gc.get_objects())
            baseline = full_collections_ms(args.repeats)
            with frozen_heap() as frozen:
                left = len(gc.get_objects())
                freeze = full_collections_ms(args.repeats)
    base_ms, frozen_ms = float(np.median(baseline)), float(np.median(freeze))
    print(f"tracked objects after the pipeline is built and run: {tracked} "
          f"({frozen} frozen, {left} left to collect)")
    print(f"full collection, as the process stands: median {base_ms:.1f} ms "
          f"(max {max(baseline):.1f}) over {args.repeats}")
    print(f"full collection, startup heap frozen:   median {frozen_ms:.2f} ms "
          f"(max {max(freeze):.2f})")
    print(json.dumps({"tracked_objects": tracked, "frozen_objects": frozen,
                      "full_gc_ms": round(base_ms, 2), "full_gc_max_ms": round(max(baseline), 2),
                      "full_gc_frozen_ms": round(frozen_ms, 3),
                      "full_gc_frozen_max_ms": round(max(freeze), 3),
                      "pause_ratio_frozen_vs_baseline": round(frozen_ms / base_ms, 5),
                      "repeats": args.repeats}))


if __name__ == "__main__":
    main()
