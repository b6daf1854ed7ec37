"""The real-time engine: capture, detect, regress, smooth and sink stages as threads.

Short stages share the thread of the stage before them (``PipelineConfig.inline_stages``,
``inline_sinks``: smoothing and publishing run in estimate's thread), so a frame crosses
three threads, not five. A live source faster than ``render_max_fps`` is drawn every k-th
frame (``PipelineConfig.render_stride``); every frame is still published and recorded.

Stages hand items on through one-slot "latest" mailboxes for live sources (a stale frame
is dropped and counted, never queued into latency) and through bounded lossless queues for
files (every frame processed, output identical run to run). Native work (MediaPipe,
onnxruntime, OpenCV, Numba ``nogil``) releases the GIL, so stages overlap on two cores.

Shutdown: the end of the input closes the first channel and the closing runs down the
chain; ``stop()`` (Ctrl-C, a closed window) or an exception in any stage closes every
channel at once, so every thread ends within a second; the sinks are then flushed and
closed in the caller's thread, so nothing written so far is lost or truncated.

Timing: each stage records its service time and its item's queue wait (handed on by the
previous stage -> taken) in the recorder, and one span per frame in ``Pipeline.timeline``
(``realtime.engine.timeline``); the channels carry ``(packet, t_ready)`` pairs for that.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from realtime.engine import interrupts
from realtime.engine.gc_freeze import frozen_heap
from realtime.engine.gil import RUN_SWITCH_INTERVAL_S, switch_interval
from realtime.engine.mailbox import Closed, make_channel
from realtime.engine.starvation import StarvationWatch
from realtime.engine.stats import LatencyRecorder
from realtime.engine.timeline import Timeline
from realtime.types import Frame, Packet

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Receives every packet that reaches the end of the pipeline."""

    def write(self, packet: Packet) -> None: ...

    def close(self) -> None: ...


BACKGROUND_POLICIES = ("idle", "nice")


@dataclass(frozen=True)
class PipelineConfig:
    """How the stages are connected."""

    live: bool = False  # latest-only mailboxes (cameras, paced files) vs lossless queues
    pace: bool = False  # play a file at its own frame rate, as if it were a live camera
    queue_size: int = 8
    stop_timeout_s: float = 1.0
    freeze_gc: bool = True  # run() freezes the startup heap: no long full GC pause mid-run
    # run() shortens the GIL switch interval (None: leave it): woken stages wait less
    switch_interval_s: float | None = RUN_SWITCH_INTERVAL_S
    # live runs whose input is faster than this draw (overlay, window, viewer feed) every
    # k-th frame only, k = ceil(fps / render_max_fps); every frame is still published and
    # recorded. None: draw every frame. See ``render_stride``.
    render_max_fps: float | None = 30.0
    # Stages that run in the thread of the stage before them, and whether the publish sinks
    # run in the last stage's thread: each hand-off is a wake-up, and with more runnable
    # threads than cores a woken thread waits its turn (measured at 60 FPS on the loaded
    # 2-core machine: p95 11-17 ms per hop); smoothing (~0.5 ms) and publishing (~0.01 ms)
    # are too short to gain anything from a thread of their own.
    inline_stages: tuple[str, ...] = ("smooth",)
    inline_sinks: bool = True
    # How the render branch of a live source yields the CPU to the latency path (Linux, per
    # thread): "idle" runs it under SCHED_IDLE (it gets a core only when no normal thread
    # wants one, and a woken stage takes the core at once); "nice" only lowers its niceness
    # (+10), which still lets it keep a core for a few ms against a woken stage. Measured at
    # 60 FPS on two busy cores: p95 0.63-0.93x of "nice". The record branch is only niced
    # (+4) either way: it never drops, and under SCHED_IDLE another busy program could
    # starve it and leave its backlog (memory, and the wait at Ctrl-C) growing.
    background: str = "idle"

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {self.queue_size}")
        if self.switch_interval_s is not None and not self.switch_interval_s > 0:
            raise ValueError(f"switch_interval_s must be > 0 seconds or None, got "
                             f"{self.switch_interval_s}")
        if self.render_max_fps is not None and not self.render_max_fps > 0:
            raise ValueError(f"render_max_fps must be > 0 or None, got {self.render_max_fps}")
        if self.background not in BACKGROUND_POLICIES:
            raise ValueError(f"background must be one of {', '.join(BACKGROUND_POLICIES)}, got "
                             f"{self.background!r}")

    def render_stride(self, fps: float) -> int:
        """Draw one frame in this many (by frame index) for a source of ``fps``.

        Why: at 60 FPS on two cores the overlay (drawing two meshes, encoding the video)
        costs as much CPU per frame as the regressor and smoothing together, and takes it
        from the detector: the latency path then drops frames. A display or an overlay
        video at 30 FPS loses little. Files processed every frame (not live) draw every
        frame, so their overlay video has them all."""
        if not self.live or self.render_max_fps is None or not fps or fps <= self.render_max_fps:
            return 1
        return math.ceil(fps / self.render_max_fps - 1e-9)


@dataclass
class PipelineResult:
    """Why the run ended; ``error`` is the first exception raised by a stage, if any."""

    reason: str = "end of input"
    error: BaseException | None = None
    frames_in: int = 0
    frames_out: int = 0
    stats: dict = field(default_factory=dict)
    # drawing left SCHED_IDLE for nice 10 during the run: starved by another busy program
    render_fallback: bool = False


Processor = Callable[[Packet], Packet]


class Pipeline:
    """Threads for ``read`` -> processors... -> sinks. ``run()`` blocks until the end.

    ``read`` returns the next :class:`Frame` or None at the end; each processor maps a
    packet to a new packet (detect, regress, smooth); sinks see the final packets.
    """

    def __init__(
        self,
        read: Callable[[], Frame | None],
        processors: list[tuple[str, Processor]],
        sinks: list[Sink],
        config: PipelineConfig = PipelineConfig(),
        recorder: LatencyRecorder | None = None,
        fps: float = 30.0,
        render_sinks: list[Sink] | None = None,
        record_sinks: list[Sink] | None = None,
        timeline: Timeline | None = None,
    ) -> None:
        self.read = read
        self.processors = processors
        self.sinks = sinks
        # Drawing and video encoding run in their own thread behind their own channel, so
        # they never delay what is published (display decoupled from inference).
        self.render_sinks = render_sinks or []
        # Recording (the hands file) likewise: off the latency path, but never dropping.
        self.record_sinks = record_sinks or []
        self.config = config
        self.recorder = recorder or LatencyRecorder()
        self.timeline = timeline if timeline is not None else Timeline()
        self.fps = fps
        self.render_stride = config.render_stride(fps)
        self._last_drawn = -math.inf  # frame index of the last packet given to render
        self._stop = threading.Event()
        self._stopped_at = 0.0  # time.monotonic() of the first stop()
        self._lock = threading.Lock()
        self._result = PipelineResult()
        # one thread per group of stages: a stage in ``inline_stages`` joins the group of
        # the stage before it; with ``inline_sinks`` the last group publishes too
        self._groups: list[list[tuple[str, Processor]]] = []
        for name, fn in processors:
            if self._groups and name in config.inline_stages:
                self._groups[-1].append((name, fn))
            else:
                self._groups.append([(name, fn)])
        self._inline_sinks = config.inline_sinks and bool(self._groups)
        n = len(self._groups) + (0 if self._inline_sinks else 1)
        self._channels = [make_channel(config.live, config.queue_size) for _ in range(n)]
        self._render_channel = make_channel(config.live, config.queue_size)
        self._record_channel = make_channel(False, max(64, config.queue_size))
        self._threads: list[threading.Thread] = []
        # one thread writes a branch's sinks at a time (render may be handed to a new thread)
        self._branch_locks = {"render": threading.Lock(), "record": threading.Lock()}
        self._render_watch: StarvationWatch | None = None  # set by an idle render thread
        self._render_fallback = threading.Event()

    # -- control -------------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Ask every stage to end now (idempotent, callable from any thread)."""
        with self._lock:
            if not self._stop.is_set():
                self._result.reason = reason
                self._stopped_at = time.monotonic()
                self._stop.set()
        for ch in self._channels:
            ch.close()
        self._render_channel.close()
        self._record_channel.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def render_fell_back(self) -> bool:
        """Drawing left SCHED_IDLE for a nice-10 thread (starved by other programs); also
        known after a Ctrl-C, when ``run()`` returns no result."""
        return self._render_fallback.is_set()

    def _fail(self, stage: str, exc: BaseException) -> None:
        with self._lock:
            if self._result.error is None:
                self._result.error = exc
                log.error("stage %s failed: %s", stage, exc)
        self.stop(f"error in {stage}")

    # -- stages --------------------------------------------------------------------------
    def _capture(self) -> None:
        out = self._channels[0]
        start = time.monotonic()
        first_ts: float | None = None
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                frame = self.read()
                if frame is None:
                    break
                now = t_read = time.monotonic()
                self.recorder.record("capture", t_read - t0)
                if self.config.pace:
                    # Wait until the frame is due, as a camera would deliver it.
                    if first_ts is None:
                        first_ts = frame.timestamp
                    due = start + (frame.timestamp - first_ts)
                    if due > now and self._stop.wait(due - now):
                        break
                    now = max(due, now)
                self._result.frames_in += 1
                # capture's span: reading the frame (not the paced wait until it is due)
                self.timeline.add("capture", frame.index, math.nan, t0, t_read)
                # a replayed hands file brings its hands; every other frame starts with none
                packet = Packet(frame, now, hands=frame.hands or ())
                if not out.put((packet, time.monotonic())):
                    break
        except Closed:
            pass
        except Exception as exc:  # noqa: BLE001 - any failure ends the run with its error
            self._fail("capture", exc)
        finally:
            out.close()

    def _process(self, index: int, group: list[tuple[str, Processor]]) -> None:
        """One thread's stages: the first takes packets from its inbox, the others
        (``inline_stages``) run right after it in this thread; the last group also
        publishes (``inline_sinks``). Each stage still records its own service time and
        wait (for an inline stage: the time since the stage before it ended, ~0)."""
        inbox = self._channels[index]
        out = self._channels[index + 1] if index + 1 < len(self._channels) else None
        name = group[0][0]
        try:
            while True:
                packet, ready = inbox.get()
                for name, fn in group:
                    t0 = time.monotonic()
                    packet = fn(packet)
                    t1 = time.monotonic()
                    self.recorder.record(name, t1 - t0, wait_s=t0 - ready)
                    self.timeline.add(name, packet.frame.index, ready, t0, t1)
                    ready = t1
                if out is None:
                    name = "sinks"
                    if not self._publish(packet, ready):
                        break
                elif not out.put((packet, time.monotonic())):
                    break
        except Closed:
            pass
        except Exception as exc:  # noqa: BLE001
            self._fail(name, exc)
        finally:
            if out is not None:
                out.close()
            else:
                self._render_channel.close()
                self._record_channel.close()
            self._record_drops(index)

    def _sink(self) -> None:
        inbox = self._channels[-1]
        try:
            while True:
                packet, ready = inbox.get()
                if not self._publish(packet, ready):
                    break
        except Closed:
            pass
        except Exception as exc:  # noqa: BLE001
            self._fail("sinks", exc)
        finally:
            self._render_channel.close()
            self._record_channel.close()
            self._record_drops(len(self._channels) - 1)

    def _publish(self, packet: Packet, ready: float) -> bool:
        """The end of the latency path: every publish sink, then the packet handed to the
        record and render branches. False when the render branch has closed (a stop)."""
        t0 = time.monotonic()
        for sink in self.sinks:
            sink.write(packet)
        done = time.monotonic()
        self.recorder.record("sinks", done - t0, wait_s=t0 - ready)
        self.recorder.record("end_to_end", done - packet.t_capture)
        self.recorder.mark("output")
        self.timeline.add("sinks", packet.frame.index, ready, t0, done)
        self._result.frames_out += 1
        if self.record_sinks:
            self._record_channel.put((packet, done))
        return not (self.render_sinks and self._to_render(packet)
                    and not self._render_channel.put((packet, done)))

    def _to_render(self, packet: Packet) -> bool:
        """Whether this published packet is drawn (``render_stride``); a packet left out is
        counted in the stats' ``skipped["render"]``, never in the drops. Decided here, in
        the sinks thread, so a skipped packet does not even wake the render thread."""
        index = packet.frame.index
        if index - self._last_drawn >= self.render_stride or index < self._last_drawn:
            self._last_drawn = index
            return True
        self.recorder.skip("render")
        return False

    def _branch(self, name: str, sinks: list[Sink], channel, niceness: int,
                backlog_on_stop: bool, may_idle: bool = True) -> None:
        """A side branch (render, record) in its own lower-priority thread.

        ``backlog_on_stop=False`` (render): once stopped (Ctrl-C, a closed window) it draws
        queued packets for at most half of ``stop_timeout_s`` and then skips the rest:
        drawing a long queue could outlive the join, and the sinks are closed right after
        it, while a stop just after the start still leaves a video with its first frames.
        Recording keeps its whole backlog: that is data.

        A live source's render runs under SCHED_IDLE (``config.background``); if it starves
        (``realtime.engine.starvation``, watched from :meth:`wait`), a new render thread at
        nice 10 (``may_idle=False``) takes over and this one ends at its next packet."""
        # render of a live source only: a file's render draws every frame (lossless), so
        # starving it would only stall the publisher on its full queue
        idle = (may_idle and not backlog_on_stop and self.config.live
                and self.config.background == "idle")
        _lower_priority(niceness, idle=idle)
        if idle:
            self._render_watch = StarvationWatch(threading.get_native_id())
        lock = self._branch_locks[name]
        grace = self.config.stop_timeout_s / 2
        try:
            while True:
                packet, ready = channel.get()
                t0 = time.monotonic()
                if (not backlog_on_stop and self._stop.is_set()
                        and t0 - self._stopped_at > grace):
                    break
                with lock:
                    if idle and self._render_fallback.is_set():  # the nice thread draws now
                        self.recorder.drop(f"dropped_before_{name}")
                        break
                    for sink in sinks:
                        sink.write(packet)
                t1 = time.monotonic()
                self.recorder.record(name, t1 - t0, wait_s=t0 - ready)
                self.timeline.add(name, packet.frame.index, ready, t0, t1)
        except Closed:
            pass
        except Exception as exc:  # noqa: BLE001
            self._fail(name, exc)
        finally:
            dropped = getattr(channel, "dropped", 0)
            superseded = idle and self._render_fallback.is_set()
            if dropped and not superseded:  # counted once, by the thread that draws last
                self.recorder.drop(f"dropped_before_{name}", dropped)

    def _record_drops(self, index: int) -> None:
        dropped = getattr(self._channels[index], "dropped", 0)
        if dropped:
            self.recorder.drop(f"dropped_before_{self._stage_name(index)}", dropped)

    def _stage_name(self, index: int) -> str:
        return self._groups[index][0][0] if index < len(self._groups) else "sinks"

    # -- running -------------------------------------------------------------------------
    def _thread(self, name: str, target: Callable, *args) -> threading.Thread:
        """A stage's thread, with an Event set when its target returns (``done``).

        Why not ``Thread.is_alive()``: in CPython 3.11 a ``join()`` interrupted by Ctrl-C
        can leave a thread that is still running marked as stopped, so the join after it
        returns at once and the sinks were closed under a running render thread (which
        then reopened the video: an empty overlay.mp4). The Event only says "returned"."""
        done = threading.Event()

        def run() -> None:
            try:
                target(*args)
            finally:
                done.set()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.done = done  # type: ignore[attr-defined]
        return thread

    def start(self) -> None:
        self._threads = [self._thread("capture", self._capture)]
        for i, group in enumerate(self._groups):
            self._threads.append(self._thread(group[0][0], self._process, i, group))
        if not self._inline_sinks:
            self._threads.append(self._thread("sinks", self._sink))
        # Render may drop frames (live) and yields most; recording must keep up, so less.
        for name, sinks, channel, nice, backlog in (
            ("render", self.render_sinks, self._render_channel, 10, False),
            ("record", self.record_sinks, self._record_channel, 4, True),
        ):
            if sinks:
                self._threads.append(self._thread(name, self._branch, name, sinks, channel,
                                                  nice, backlog))
        for t in self._threads:
            t.start()

    def _running(self) -> list[threading.Thread]:
        return [t for t in self._threads if not t.done.is_set()]

    def wait(self, poll_s: float = 0.05, on_poll: Callable[[], None] | None = None) -> None:
        """Block until every stage has ended; ``on_poll`` runs in this thread (a window)."""
        try:
            while running := self._running():
                if on_poll is not None:
                    on_poll()
                self._watch_render()
                # one wake-up per poll_s, not one per thread: this thread needs the GIL and
                # a core each time, which the stages need more
                running[0].done.wait(poll_s)
        except KeyboardInterrupt:
            self.stop("interrupted")
            raise
        finally:
            self._join()

    def _watch_render(self) -> None:
        """Hand drawing to a nice-10 thread if the SCHED_IDLE one is starved of CPU."""
        watch = self._render_watch
        if watch is None or self._render_fallback.is_set() or self._stop.is_set():
            return
        if not watch.poll():
            return
        self._render_fallback.set()
        self._result.render_fallback = True
        log.warning("the overlay got almost no CPU under SCHED_IDLE (other programs keep the "
                    "cores busy): drawing at nice 10 from now on")
        thread = self._thread("render", self._branch, "render", self.render_sinks,
                              self._render_channel, 10, False, False)
        self._threads.append(thread)
        thread.start()

    def _join(self) -> None:
        deadline = time.monotonic() + self.config.stop_timeout_s
        for t in self._threads:
            if t.done.wait(max(0.0, deadline - time.monotonic())):
                t.join(max(0.0, deadline - time.monotonic()))  # its last instructions
        stuck = [t.name for t in self._running()]
        if stuck:
            log.warning("stages still running after %.1f s: %s (abandoned)",
                        self.config.stop_timeout_s, ", ".join(stuck))

    def close_sinks(self) -> None:
        """Flush and close every sink; called once, in the caller's thread.

        A branch whose thread is still running (abandoned by the join) keeps its sinks
        open: closing a video writer under a thread that is writing to it crashes the
        process, and a sink left open loses less than a crash does."""
        alive = {t.name for t in self._running()}
        busy = (self.render_sinks if "render" in alive else []) + (
            self.record_sinks if "record" in alive else [])
        for sink in busy:
            log.warning("%s not closed: its thread is still writing", type(sink).__name__)
        for sink in self.sinks + self.record_sinks + self.render_sinks:
            if any(sink is b for b in busy):
                continue
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - close the others all the same
                log.error("closing %s failed: %s", type(sink).__name__, exc)

    def run(self, on_poll: Callable[[], None] | None = None,
            poll_s: float = 0.05) -> PipelineResult:
        """Start, wait for the end (or Ctrl-C, re-raised after cleanup), close the sinks.

        With ``config.freeze_gc`` the heap alive at the start is frozen for the run
        (``realtime.engine.gc_freeze``), and the GIL switch interval is
        ``config.switch_interval_s`` (``realtime.engine.gil``)."""
        with frozen_heap(self.config.freeze_gc), switch_interval(self.config.switch_interval_s):
            self.start()
            try:
                self.wait(poll_s=poll_s, on_poll=on_poll)
            finally:
                with interrupts.deferred():  # a signal now must not leave a video unfinished
                    self.close_sinks()
                self._result.stats = self.recorder.snapshot()
        return self._result


def _lower_priority(niceness: int = 10, idle: bool = False) -> None:
    """Let the detector's threads win the CPU over drawing and writing (Linux: per thread).

    ``idle``: also SCHED_IDLE (any thread may lower itself to it; threads this one starts, such
    as an encoder's, inherit it). Where the call is missing or refused the niceness stays."""
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, niceness)
    except (AttributeError, OSError, PermissionError):
        pass
    if idle:
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError, PermissionError):
            pass
