"""Fast live sources: the render branch draws every k-th frame, at lower priority; every
published frame is still published and recorded, and what render left out is counted."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from realtime.engine.pipeline import Pipeline, PipelineConfig
from realtime.engine.stats import LatencyRecorder, format_line
from realtime.types import Frame, Packet

IMAGE = np.zeros((8, 8, 3), np.uint8)


@pytest.mark.parametrize("live, cap, fps, stride", [
    (True, 30.0, 60.0, 2),
    (True, 30.0, 59.94, 2),
    (True, 30.0, 90.0, 3),
    (True, 30.0, 30.0, 1),
    (True, 30.0, 25.0, 1),
    (True, 30.0, 0.0, 1),  # a camera that reports no rate: draw every frame
    (True, None, 60.0, 1),
    (False, 30.0, 60.0, 1),  # a file processed every frame keeps every overlay frame
])
def test_render_stride(live, cap, fps, stride):
    assert PipelineConfig(live=live, render_max_fps=cap).render_stride(fps) == stride


@pytest.mark.parametrize("bad", [0.0, -30.0, float("nan")])
def test_render_max_fps_must_be_positive(bad):
    with pytest.raises(ValueError, match="render_max_fps"):
        PipelineConfig(render_max_fps=bad)


class Frames:
    """``count`` frames stamped at ``fps``."""

    def __init__(self, count: int, fps: float) -> None:
        self.count, self.fps, self.i = count, fps, 0

    def __call__(self) -> Frame | None:
        if self.i >= self.count:
            return None
        self.i += 1
        return Frame(IMAGE, self.i - 1, (self.i - 1) / self.fps, "synthetic")


class Collect:
    """A sink that keeps the frame indices it saw and its thread's niceness."""

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.niceness: int | None = None
        self.policy: int | None = None
        self.closed = False

    def write(self, packet: Packet) -> None:
        if self.niceness is None:
            self.niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            self.policy = os.sched_getscheduler(threading.get_native_id())
        self.indices.append(packet.frame.index)

    def close(self) -> None:
        self.closed = True


def _run(config: PipelineConfig, fps: float = 60.0, count: int = 90):
    publish, render, record = Collect(), Collect(), Collect()
    recorder = LatencyRecorder()
    pipeline = Pipeline(Frames(count, fps), [("detect", lambda p: p)], [publish], config,
                        recorder, fps, render_sinks=[render], record_sinks=[record])
    result = pipeline.run()
    assert result.error is None
    return pipeline, recorder, publish, render, record


def _drawn(published: list[int], stride: int) -> list[int]:
    """The stride rule on a sequence of published frame indices."""
    drawn: list[int] = []
    for i in published:
        if not drawn or i - drawn[-1] >= stride or i < drawn[-1]:
            drawn.append(i)
    return drawn


def test_decimated_render_keeps_every_published_and_recorded_packet():
    pipeline, recorder, publish, render, record = _run(
        PipelineConfig(live=True, pace=True))
    assert pipeline.render_stride == 2
    # the latency path and the record branch: every packet the sinks published, in order
    assert record.indices == publish.indices and len(publish.indices) > 0
    # render got the stride's share of the published (less what its busy one-slot mailbox
    # overwrote), and the rest is counted as skipped, not as dropped
    given = _drawn(publish.indices, 2)
    assert set(render.indices) <= set(given)
    snap = recorder.snapshot()
    assert snap["skipped"].get("render", 0) == len(publish.indices) - len(given)
    assert len(render.indices) + snap["dropped"].get("dropped_before_render", 0) == len(given)
    assert "render" not in snap["dropped"]


def test_skipped_renders_are_counted_and_shown():
    """Lossless, so the counts are exact: 30 frames at stride 3 draw 10, skip 20."""
    publish, render = Collect(), Collect()
    recorder = LatencyRecorder()
    pipeline = Pipeline(Frames(30, 90.0), [("detect", lambda p: p)], [publish],
                        PipelineConfig(live=False), recorder, 90.0, render_sinks=[render])
    pipeline.render_stride = 3  # as for a live 90 FPS source
    pipeline.run()
    assert publish.indices == list(range(30))
    assert render.indices == list(range(0, 30, 3))
    snap = recorder.snapshot()
    assert snap["skipped"] == {"render": 20} and recorder.skipped() == 20
    assert snap["dropped_total"] == 0
    assert "render 20" in format_line(snap)


def test_render_every_frame_without_a_cap_or_at_30_fps():
    for config, fps in ((PipelineConfig(live=True, pace=True, render_max_fps=None), 60.0),
                        (PipelineConfig(live=True, pace=True), 30.0),
                        (PipelineConfig(live=False), 60.0)):
        pipeline, recorder, publish, render, _ = _run(config, fps, count=30)
        assert pipeline.render_stride == 1
        assert recorder.skipped("render") == 0 and "render" not in recorder.snapshot()["skipped"]
        if not config.live:  # lossless: every frame drawn
            assert render.indices == publish.indices == list(range(30))


def test_side_branches_run_at_lower_priority():
    """render at +10, record at +4 from the process's own niceness (Linux: per thread), and
    by default a live source's render under SCHED_IDLE; the latency path and record keep the
    process's policy (record never drops: it must not be starved by another busy program), and
    so does a file's render (lossless: it draws every frame, starving it stalls the publisher)."""
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    base_policy = os.sched_getscheduler(threading.get_native_id())
    for live, background, policy in ((True, "idle", os.SCHED_IDLE),
                                     (True, "nice", base_policy),
                                     (False, "idle", base_policy)):
        _, _, publish, render, record = _run(
            PipelineConfig(live=live, background=background), count=3)
        assert publish.niceness == base and publish.policy == base_policy
        assert render.niceness == min(19, base + 10)
        assert record.niceness == min(19, base + 4)
        assert render.policy == policy and record.policy == base_policy
    assert PipelineConfig().background == "idle"


def test_background_policy_is_checked():
    with pytest.raises(ValueError, match="background must be one of idle, nice"):
        PipelineConfig(background="realtime")


def test_a_replay_that_starts_over_is_drawn_again():
    """Frame indices that go back (a looped replay) restart the stride."""

    class Loop(Frames):
        def __call__(self) -> Frame | None:
            frame = super().__call__()
            return None if frame is None else Frame(IMAGE, frame.index % 10, frame.timestamp,
                                                    "synthetic")

    publish, render = Collect(), Collect()
    pipeline = Pipeline(Loop(20, 60.0), [], [publish], PipelineConfig(live=False), None,
                        60.0, render_sinks=[render])
    pipeline.render_stride = 3  # as a live 90 FPS source would; lossless so nothing is lost
    pipeline.run()
    assert render.indices == [0, 3, 6, 9, 0, 3, 6, 9]
    assert pipeline.recorder.skipped("render") == 12
