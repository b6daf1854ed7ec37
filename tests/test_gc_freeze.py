"""The startup heap is frozen for a pipeline run (no full GC walk over it) and given back."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from realtime.engine.gc_freeze import frozen_heap
from realtime.engine.pipeline import Pipeline, PipelineConfig
from realtime.types import Frame, Packet


class Node:
    """A reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_frozen_heap_freezes_what_is_alive_and_unfreezes_on_exit():
    assert gc.get_freeze_count() == 0
    keep = [Node() for _ in range(10)]
    with frozen_heap() as frozen:
        assert frozen >= len(keep) and gc.get_freeze_count() > 0
        assert not any(o is keep[0] for o in gc.get_objects())  # in no collected generation
    assert gc.get_freeze_count() == 0
    assert any(o is keep[0] for o in gc.get_objects())  # collected normally again


def test_disabled_does_nothing():
    with frozen_heap(enabled=False) as frozen:
        assert frozen == 0 and gc.get_freeze_count() == 0


def test_unfrozen_even_when_the_body_raises():
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("stage failed")
    assert gc.get_freeze_count() == 0


def test_garbage_made_during_the_run_is_still_collected():
    with frozen_heap():
        Node()  # a cycle dropped at once
        assert gc.collect() >= 1


@pytest.mark.parametrize("freeze", [True, False])
def test_a_pipeline_run_freezes_only_while_it_runs(freeze):
    seen: list[int] = []

    def stage(p: Packet) -> Packet:
        seen.append(gc.get_freeze_count())
        return p

    frames = iter([Frame(np.zeros((4, 4, 3), np.uint8), i, i / 30.0, "synthetic")
                   for i in range(3)])
    result = Pipeline(lambda: next(frames, None), [("a", stage)], [],
                      PipelineConfig(freeze_gc=freeze)).run()
    assert result.error is None and len(seen) == 3
    assert all(n > 0 for n in seen) if freeze else all(n == 0 for n in seen)
    assert gc.get_freeze_count() == 0
