"""The per-frame timeline: the ring's order and bounds, the tail helpers, and a real run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from realtime.engine.pipeline import Pipeline, PipelineConfig
from realtime.engine.timeline import Timeline, frame_latency, tail_breakdown, tail_frames
from realtime.types import Packet
from tests.engine_fixtures import BlankFrames


def test_spans_come_back_oldest_first_with_stage_names():
    tl = Timeline(capacity=8)
    tl.add("capture", 0, math.nan, 1.0, 1.1)
    tl.add("detect", 0, 1.1, 1.2, 1.5)
    spans = tl.spans()
    assert spans.names == ("capture", "detect") and len(spans) == 2
    assert spans.frame.tolist() == [0, 0]
    assert np.isnan(spans.ready[0]) and spans.ready[1] == 1.1
    assert spans.start.tolist() == [1.0, 1.2] and spans.end.tolist() == [1.1, 1.5]
    assert spans.of("detect").tolist() == [False, True]
    assert not spans.of("render").any()


def test_ring_keeps_the_last_capacity_spans():
    tl = Timeline(capacity=3)
    for i in range(7):
        tl.add("detect", i, i, i + 0.1, i + 0.2)
    spans = tl.spans()
    assert tl.added == 7
    assert spans.frame.tolist() == [4, 5, 6]
    assert spans.start.tolist() == pytest.approx([4.1, 5.1, 6.1])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_capacity_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="capacity"):
        Timeline(capacity=bad)


def _known_run() -> Timeline:
    """Frames 0-9, each 10 ms capture->published except frame 7 (40 ms, 30 of it waiting for
    detect) and frame 3 (25 ms, 15 of it in estimate)."""
    tl = Timeline()
    for f in range(10):
        t = f * 0.1
        wait_detect = 0.030 if f == 7 else 0.0
        est_work = 0.017 if f == 3 else 0.002
        tl.add("capture", f, math.nan, t - 0.001, t)
        d0 = t + wait_detect
        tl.add("detect", f, t, d0, d0 + 0.006)
        e0 = d0 + 0.006
        tl.add("estimate", f, e0, e0, e0 + est_work)
        s0 = e0 + est_work
        tl.add("sinks", f, s0, s0, s0 + 0.002)
    return tl


def test_frame_latency_tail_frames_and_breakdown_known_answer():
    spans = _known_run().spans()
    frames, seconds = frame_latency(spans)
    assert frames.tolist() == list(range(10))
    expected = [0.010] * 10
    expected[7], expected[3] = 0.040, 0.025
    assert seconds == pytest.approx(expected)
    assert tail_frames(spans, q=90).tolist() == [7]
    assert sorted(tail_frames(spans, q=80).tolist()) == [3, 7]
    parts = tail_breakdown(spans, np.array([7]))
    assert parts["detect"]["wait_ms"] == pytest.approx(30.0)
    assert parts["detect"]["work_ms"] == pytest.approx(6.0)
    assert parts["estimate"]["work_ms"] == pytest.approx(2.0)
    assert parts["capture"]["wait_ms"] == 0.0  # no inbox: NaN ready is left out
    assert tail_breakdown(spans, np.array([3]))["estimate"]["work_ms"] == pytest.approx(17.0)
    with pytest.raises(ValueError, match="percentile"):
        tail_frames(spans, q=101)


class Sink:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def write(self, packet: Packet) -> None:
        self.seen.append(packet.frame.index)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("live", [False, True])
def test_a_real_pipeline_records_one_ordered_span_per_frame_and_stage(live):
    n = 40
    sink, render = Sink(), Sink()
    pipeline = Pipeline(BlankFrames(n), [("detect", lambda p: p), ("estimate", lambda p: p)],
                        [sink], PipelineConfig(live=live, pace=live, queue_size=4),
                        fps=240.0, render_sinks=[render])
    result = pipeline.run()
    assert result.error is None
    spans = pipeline.timeline.spans()
    assert set(spans.names) == {"capture", "detect", "estimate", "sinks", "render"}
    assert spans.frame[spans.of("capture")].tolist() == list(range(n))
    assert spans.frame[spans.of("sinks")].tolist() == sink.seen  # published, in order
    assert spans.frame[spans.of("render")].tolist() == render.seen
    inboxed = ~spans.of("capture")
    assert (spans.ready[inboxed] <= spans.start[inboxed]).all()
    assert (spans.start <= spans.end).all()
    frames, seconds = frame_latency(spans)
    assert frames.tolist() == sink.seen and (seconds >= 0).all()
    # the recorder saw the same waits: a count per stage, and the wait_* fields
    stages = result.stats["stages"]
    for name in ("detect", "estimate", "sinks", "render"):
        assert stages[name]["count"] == int(spans.of(name).sum())
        assert stages[name]["wait_p99_ms"] >= stages[name]["wait_p50_ms"] >= 0.0
    assert "wait_p50_ms" not in stages["capture"]


def test_the_timeline_plot_draws_the_numbers_it_returns(tmp_path):
    from benchmarks.timeline_plot import plot_timeline

    spans = _known_run().spans()
    path = tmp_path / "timeline.png"
    drawn = plot_timeline(spans, path, "known run", q=90)
    assert path.stat().st_size > 0
    assert drawn["frames"] == 10 and drawn["tail_frames"] == 1
    assert drawn["tail"]["detect"]["wait_ms"] == pytest.approx(30.0)
    assert drawn["all"]["detect"]["wait_ms"] == pytest.approx(3.0)
