"""The overlay under SCHED_IDLE is not frozen by other busy programs: a starved render thread
is seen (the kernel's per-thread run and wait times) and drawing moves to a nice-10 thread.
Real scheduler, real busy processes, real threads."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from realtime.engine.pipeline import Pipeline, PipelineConfig
from realtime.engine.starvation import (
    StarvationConfig,
    StarvationWatch,
    is_starved,
    read_schedstat,
)
from realtime.engine.stats import LatencyRecorder
from realtime.types import Frame, Packet

pytestmark = pytest.mark.skipif(read_schedstat(threading.get_native_id()) is None,
                                reason="no per-thread scheduler statistics (Linux only)")


def test_is_starved():
    assert is_starved(0.01, 0.95, 1.0)  # waited nearly all the window, ran nothing
    assert not is_starved(0.3, 0.4, 1.0)  # shares busy cores: runs a fair part
    assert not is_starved(0.15, 0.7, 1.0)  # a slow machine: drawing slowly, not frozen
    assert is_starved(0.04, 1.8, 2.0) and not is_starved(0.12, 1.8, 2.0)  # per window
    assert not is_starved(0.0, 0.2, 1.0)  # hardly runnable: nothing to draw, not starved
    assert not is_starved(0.01, 0.95, 0.0)
    with pytest.raises(ValueError, match="max_ran"):
        StarvationConfig(max_ran=1.0)
    with pytest.raises(ValueError, match="window_s"):
        StarvationConfig(window_s=0.0)


def test_schedstat_of_this_thread_and_of_none():
    ran, waited = read_schedstat(threading.get_native_id())
    assert ran > 0 and waited >= 0
    assert read_schedstat(2**22 + 12345) is None  # no such thread


class Busy:
    """A busy process per core at normal priority (what a compile or a game engine does):
    a bare loop, nothing that ever waits."""

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(os.cpu_count() or 2)]
        time.sleep(0.5)  # started and spinning
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait(10)


def test_an_idle_thread_among_busy_programs_is_starved_a_normal_one_is_not():
    stop = threading.Event()

    def work(idle: bool) -> None:
        if idle:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
        data = b"x" * 1_000_000
        while not stop.is_set():  # always runnable, like a drawing thread with work; native
            hashlib.sha256(data).digest()  # work without the GIL, as drawing's is

    with Busy():
        threads = {kind: threading.Thread(target=work, args=(kind == "idle",))
                   for kind in ("idle", "normal")}
        for t in threads.values():
            t.start()
        time.sleep(0.1)
        watches = {kind: StarvationWatch(t.native_id, StarvationConfig(window_s=0.5))
                   for kind, t in threads.items()}
        verdicts: dict[str, list[bool]] = {kind: [] for kind in threads}
        for _ in range(40):  # 2 s, polled as the pipeline's main thread polls
            for kind, watch in watches.items():
                verdicts[kind].append(watch.poll())
            time.sleep(0.05)
        stop.set()
    for t in threads.values():
        t.join(10)
    assert any(verdicts["idle"]), verdicts
    assert not any(verdicts["normal"]), verdicts


class DrawSink:
    """A render sink that notes each write's thread and policy and any overlap of writes."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, int]] = []  # (thread id, policy)
        self.inside = 0
        self.overlap = False
        self.closed = False

    def write(self, packet: Packet) -> None:
        self.inside += 1
        self.overlap |= self.inside > 1
        tid = threading.get_native_id()
        self.writes.append((tid, os.sched_getscheduler(tid)))
        x = np.random.default_rng(0).random((200, 200))
        for _ in range(120):  # ~ a drawn frame's work (8-10 ms: two meshes and the encoder)
            x = np.sqrt(x + 1.0)
        self.inside -= 1

    def close(self) -> None:
        self.closed = True


def _frames(count: int, fps: float):
    image = np.zeros((8, 8, 3), np.uint8)
    state = {"i": 0}

    def read() -> Frame | None:
        if state["i"] >= count:
            return None
        state["i"] += 1
        return Frame(image, state["i"] - 1, (state["i"] - 1) / fps, "synthetic")

    return read


def test_starved_overlay_moves_to_a_nice_thread_and_keeps_drawing():
    sink = DrawSink()
    fps = 60.0
    # 10 s: the hand-over itself waits for the starved thread's draw in progress (seconds)
    pipeline = Pipeline(_frames(600, fps), [("detect", lambda p: p)], [],
                        PipelineConfig(live=True, pace=True, render_max_fps=None),
                        LatencyRecorder(), fps, render_sinks=[sink])
    with Busy():
        result = pipeline.run()
    assert result.error is None and result.render_fallback and pipeline.render_fell_back
    policies = [policy for _, policy in sink.writes]
    # the idle thread drew what it could (perhaps nothing), then only the nice thread drew
    assert os.SCHED_OTHER in policies
    first_normal = policies.index(os.SCHED_OTHER)
    assert set(policies[:first_normal]) <= {os.SCHED_IDLE}
    assert set(policies[first_normal:]) == {os.SCHED_OTHER}
    assert len(policies) - first_normal >= 10  # and kept drawing
    assert not sink.overlap and sink.closed
    # drops counted once: the mailbox's overwrites, plus at most the packet the starved
    # thread took and left to its successor
    overwritten = pipeline._render_channel.dropped
    counted = result.stats["dropped"].get("dropped_before_render", 0)
    assert overwritten <= counted <= overwritten + 1


def test_an_idle_overlay_on_quiet_cores_stays_idle():
    sink = DrawSink()
    pipeline = Pipeline(_frames(90, 60.0), [("detect", lambda p: p)], [],
                        PipelineConfig(live=True, pace=True, render_max_fps=None),
                        LatencyRecorder(), 60.0, render_sinks=[sink])
    result = pipeline.run()
    assert result.error is None and not result.render_fallback
    assert not pipeline.render_fell_back
    assert sink.writes and {p for _, p in sink.writes} == {os.SCHED_IDLE}
