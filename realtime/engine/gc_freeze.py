"""Keep Python's full garbage collections out of a run: freeze the startup heap.

After the models are loaded the process tracks ~200 000 objects (MediaPipe, onnxruntime,
Numba, OpenCV bindings, the hand model). A full (generation 2) collection walks all of them
while holding the GIL, so every stage thread stops with it: measured 350-400 ms on the shared
2-core machine under load (``docs/engine.md``, "Tail latency"), one stutter of many frames
whenever the collector decides to run one. ``gc.freeze()`` moves everything alive at the
start into a permanent generation that collections skip; what the run allocates per frame
is still collected as usual (young generations: well under a millisecond). ``unfreeze`` at
the end hands the startup objects back, so a process that builds many pipelines (tests,
benchmarks) still frees the ones it drops.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def frozen_heap(enabled: bool = True) -> Iterator[int]:
    """Collect once, freeze what survives, yield how many objects were frozen; unfreeze on
    exit. ``enabled=False`` does nothing (yields 0), for comparing against."""
    if not enabled:
        yield 0
        return
    gc.collect()
    gc.freeze()
    try:
        yield gc.get_freeze_count()
    finally:
        gc.unfreeze()
