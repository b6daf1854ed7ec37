"""The pipeline's GIL switch interval: set for the run, restored after, checked."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from realtime.engine.gil import RUN_SWITCH_INTERVAL_S, switch_interval
from realtime.engine.pipeline import Pipeline, PipelineConfig
from realtime.types import Frame, Packet


def test_set_inside_and_restored_after_even_on_error():
    before = sys.getswitchinterval()
    with switch_interval(0.002):
        assert sys.getswitchinterval() == pytest.approx(0.002)
    assert sys.getswitchinterval() == before
    with pytest.raises(RuntimeError), switch_interval():
        assert sys.getswitchinterval() == pytest.approx(RUN_SWITCH_INTERVAL_S)
        raise RuntimeError("stage failed")
    assert sys.getswitchinterval() == before


def test_none_leaves_it_and_bad_values_are_refused():
    before = sys.getswitchinterval()
    with switch_interval(None):
        assert sys.getswitchinterval() == before
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="switch interval"), switch_interval(bad):
            pass
        with pytest.raises(ValueError, match="switch_interval_s"):
            PipelineConfig(switch_interval_s=bad)


@pytest.mark.parametrize("interval", [0.001, None])
def test_a_pipeline_run_uses_its_configured_interval(interval):
    before = sys.getswitchinterval()
    seen: list[float] = []

    def stage(p: Packet) -> Packet:
        seen.append(sys.getswitchinterval())
        return p

    frames = iter([Frame(np.zeros((4, 4, 3), np.uint8), i, i / 30.0, "synthetic")
                   for i in range(3)])
    result = Pipeline(lambda: next(frames, None), [("a", stage)], [],
                      PipelineConfig(switch_interval_s=interval)).run()
    assert result.error is None and len(seen) == 3
    expected = before if interval is None else interval
    assert seen == [pytest.approx(expected)] * 3
    assert sys.getswitchinterval() == before
