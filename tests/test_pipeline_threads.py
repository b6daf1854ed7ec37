"""Short stages run in the thread before them (no hand-off): smoothing in estimate's thread,
the publish sinks in the last stage's; each stage is still measured on its own."""

from __future__ import annotations

import threading

import pytest

from realtime.engine.pipeline import Pipeline, PipelineConfig
from realtime.types import Packet
from tests.engine_fixtures import BlankFrames


class ThreadOf:
    """A stage (or sink) that notes which thread ran it."""

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.seen: list[int] = []

    def __call__(self, packet: Packet) -> Packet:
        self.threads.add(threading.current_thread().name)
        return packet

    def write(self, packet: Packet) -> None:
        self.threads.add(threading.current_thread().name)
        self.seen.append(packet.frame.index)

    def close(self) -> None:
        pass


def _run(config: PipelineConfig):
    stages = {name: ThreadOf() for name in ("detect", "estimate", "smooth")}
    sink = ThreadOf()
    pipeline = Pipeline(BlankFrames(20), list(stages.items()), [sink], config)
    result = pipeline.run()
    assert result.error is None and result.frames_out == 20
    return pipeline, stages, sink


def test_smooth_and_sinks_run_in_estimates_thread_and_are_still_measured():
    pipeline, stages, sink = _run(PipelineConfig())
    assert [t.name for t in pipeline._threads] == ["capture", "detect", "estimate"]
    assert stages["detect"].threads == {"detect"}
    assert stages["estimate"].threads == stages["smooth"].threads == {"estimate"}
    assert sink.threads == {"estimate"} and sink.seen == list(range(20))
    snap = pipeline.recorder.snapshot()["stages"]
    for name in ("detect", "estimate", "smooth", "sinks"):
        assert snap[name]["count"] == 20 and snap[name]["wait_p50_ms"] is not None
    spans = pipeline.timeline.spans()
    for name in ("detect", "estimate", "smooth", "sinks"):
        assert spans.frame[spans.of(name)].tolist() == list(range(20))


def test_every_stage_in_a_thread_of_its_own_when_asked():
    pipeline, stages, sink = _run(PipelineConfig(inline_stages=(), inline_sinks=False))
    assert [t.name for t in pipeline._threads] == ["capture", "detect", "estimate", "smooth",
                                                   "sinks"]
    assert stages["smooth"].threads == {"smooth"} and sink.threads == {"sinks"}


def test_a_first_stage_named_inline_still_gets_a_thread():
    """Nothing before it to join (a replay re-smoothed: smooth is its only stage)."""
    sink = ThreadOf()
    pipeline = Pipeline(BlankFrames(5), [("smooth", ThreadOf())], [sink], PipelineConfig())
    pipeline.run()
    assert [t.name for t in pipeline._threads] == ["capture", "smooth"]
    assert sink.seen == list(range(5))


def test_no_stages_publish_from_a_sinks_thread():
    sink = ThreadOf()
    pipeline = Pipeline(BlankFrames(5), [], [sink], PipelineConfig())
    pipeline.run()
    assert [t.name for t in pipeline._threads] == ["capture", "sinks"]
    assert sink.seen == list(range(5))


@pytest.mark.parametrize("live", [False, True])
def test_a_failing_inline_sink_stops_the_run_with_its_error(live):
    class Broken(ThreadOf):
        def write(self, packet: Packet) -> None:
            raise RuntimeError("sink broke")

    pipeline = Pipeline(BlankFrames(50), [("detect", ThreadOf()), ("smooth", ThreadOf())],
                        [Broken()], PipelineConfig(live=live))
    result = pipeline.run()
    assert isinstance(result.error, RuntimeError) and result.reason == "error in sinks"
