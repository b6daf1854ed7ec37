"""Shutdown of the real engine: end of input, a failing stage, stop(), a closed window.

Real threads and the real :class:`Pipeline` throughout; only the stages are synthetic. Every
time bound here is a hang guard (generous), never a performance threshold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.cli.demo import WINDOW
from realtime.engine.pipeline import Pipeline, PipelineConfig, PipelineResult
from realtime.io.hands_file import read_hands
from realtime.io.sample import SAMPLE_VIDEO
from realtime.types import Frame, Packet

REPO = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 1.5  # "every thread ends within a second", with room for a busy CPU
FAIL_AT = 5  # the frame on which a failing stage raises
IMAGE = np.zeros((8, 8, 3), np.uint8)


class StageError(RuntimeError):
    """The synthetic failure raised by a stage under test."""


class CountingSink:
    """Records the frame indices it saw and how often it was closed."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.indices: list[int] = []
        self.closes = 0
        self.fail_at = fail_at
        self.failed_at_s: float | None = None
        self.error: StageError | None = None

    def write(self, packet: Packet) -> None:
        if self.fail_at is not None and packet.frame.index >= self.fail_at:
            # ">=": a live run may drop the very frame FAIL_AT before it gets here
            self.failed_at_s = time.monotonic()
            self.error = StageError(f"sink failed on frame {self.fail_at}")
            raise self.error
        self.indices.append(packet.frame.index)

    def close(self) -> None:
        self.closes += 1


class Reader:
    """Synthetic frames: ``count`` of them (None: endless), optionally failing on one."""

    def __init__(self, count: int | None = None, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.next_index = 0
        self.failed_at_s: float | None = None
        self.error: StageError | None = None

    def __call__(self) -> Frame | None:
        i = self.next_index
        if self.count is not None and i >= self.count:
            return None
        if i == self.fail_at:
            self.failed_at_s = time.monotonic()
            self.error = StageError(f"read failed on frame {i}")
            raise self.error
        self.next_index += 1
        return Frame(IMAGE, i, i / 30.0, "synthetic")


class Failing:
    """A processor that passes packets on and raises from frame ``fail_at`` on."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.failed_at_s: float | None = None
        self.error: StageError | None = None

    def __call__(self, packet: Packet) -> Packet:
        if packet.frame.index >= self.fail_at:  # ">=": live runs drop frames
            self.failed_at_s = time.monotonic()
            self.error = StageError(f"processor failed on frame {self.fail_at}")
            raise self.error
        return packet


def passthrough(packet: Packet) -> Packet:
    return packet


def slow(packet: Packet) -> Packet:
    time.sleep(0.2)  # slow work in progress when stop() arrives
    return packet


class Run:
    """``pipeline.run()`` in a thread of its own, so a hang fails the test instead of pytest."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.result: PipelineResult | None = None
        self.returned_at_s: float | None = None
        self._before = set(threading.enumerate())
        self._thread = threading.Thread(target=self._run, name="test-run", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.result = self.pipeline.run()
        self.returned_at_s = time.monotonic()

    def join(self, timeout_s: float) -> PipelineResult:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"run() did not return within {timeout_s} s"
        assert self.result is not None
        return self.result

    def leftover_threads(self) -> list[str]:
        """Threads started during the run that are still alive (the stages must all end)."""
        return [t.name for t in threading.enumerate()
                if t not in self._before and t.is_alive()]


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached (pipeline stalled?)"
        time.sleep(0.01)


# ---- (a) end of input -------------------------------------------------------------------


def test_end_of_input_delivers_every_frame_and_closes_once():
    n = 60
    sink, render = CountingSink(), CountingSink()
    pipeline = Pipeline(Reader(count=n), [("a", passthrough), ("b", passthrough)], [sink],
                        PipelineConfig(live=False, queue_size=2), render_sinks=[render])
    run = Run(pipeline)
    result = run.join(timeout_s=30)
    assert result.reason == "end of input"
    assert result.error is None
    assert run.leftover_threads() == []
    assert sink.indices == list(range(n))  # lossless: every frame, in order
    assert render.indices == list(range(n))
    assert result.frames_in == result.frames_out == n
    assert (sink.closes, render.closes) == (1, 1)


# ---- (b) an exception in a stage --------------------------------------------------------


def _failing_pipeline(where: str, live: bool):
    """An endless run whose stage ``where`` raises on frame FAIL_AT; the failing object."""
    sink, render = CountingSink(), CountingSink()
    read, processors = Reader(), [("detect", passthrough), ("regress", passthrough)]
    if where == "capture":
        read = failing = Reader(fail_at=FAIL_AT)
    elif where == "regress":
        failing = Failing(FAIL_AT)
        processors[1] = ("regress", failing)
    elif where == "sinks":
        failing = sink = CountingSink(fail_at=FAIL_AT)
    else:
        failing = render = CountingSink(fail_at=FAIL_AT)
    pipeline = Pipeline(read, processors, [sink], PipelineConfig(live=live, queue_size=2),
                        render_sinks=[render])
    return pipeline, failing, [sink, render]


@pytest.mark.parametrize("live", [False, True], ids=["lossless", "live"])
@pytest.mark.parametrize("where", ["capture", "regress", "sinks", "render"])
def test_exception_in_a_stage_stops_everything(where, live):
    pipeline, failing, sinks = _failing_pipeline(where, live)
    run = Run(pipeline)
    result = run.join(timeout_s=30)
    assert failing.error is not None, "the failing stage never saw its frame"
    assert result.error is failing.error
    assert result.reason == f"error in {where}"
    assert run.returned_at_s - failing.failed_at_s < HANG_GUARD_S
    assert run.leftover_threads() == []
    assert [s.closes for s in sinks] == [1, 1]


# ---- (c) stop() from another thread ------------------------------------------------------


@pytest.mark.parametrize("live", [False, True], ids=["lossless", "live"])
def test_stop_while_a_stage_is_busy_ends_every_thread(live):
    sink, render = CountingSink(), CountingSink()
    pipeline = Pipeline(Reader(), [("detect", passthrough), ("slow", slow)], [sink],
                        PipelineConfig(live=live, queue_size=2), render_sinks=[render])
    run = Run(pipeline)
    wait_for(lambda: len(sink.indices) >= 2)
    time.sleep(0.05)  # land inside the slow stage's sleep, not between frames
    t_stop = time.monotonic()
    pipeline.stop("stopped by test")
    result = run.join(timeout_s=10)
    assert run.returned_at_s - t_stop < HANG_GUARD_S
    assert run.leftover_threads() == []
    assert result.reason == "stopped by test"
    assert result.error is None
    assert (sink.closes, render.closes) == (1, 1)
    assert sink.indices == sorted(sink.indices)


def test_stop_is_idempotent_and_keeps_the_first_reason():
    sink = CountingSink()
    pipeline = Pipeline(Reader(), [("slow", slow)], [sink], PipelineConfig(queue_size=2))
    run = Run(pipeline)
    wait_for(lambda: len(sink.indices) >= 1)
    pipeline.stop("first")
    pipeline.stop("second")
    result = run.join(timeout_s=10)
    assert result.reason == "first"
    assert sink.closes == 1


class SlowRenderSink(CountingSink):
    """A render sink slower than the frames (drawing + video encoding on a busy CPU); it
    fails the test if it is closed while a write is under way (a released VideoWriter under
    a writing thread crashes the process)."""

    def __init__(self, write_s: float) -> None:
        super().__init__()
        self.write_s = write_s
        self.writing = False
        self.closed_while_writing = False

    def write(self, packet: Packet) -> None:
        self.writing = True
        time.sleep(self.write_s)
        self.indices.append(packet.frame.index)
        self.writing = False

    def close(self) -> None:
        self.closed_while_writing = self.closed_while_writing or self.writing
        super().close()


def test_stop_bounds_the_render_backlog():
    """Lossless mode queues frames for a slow renderer; after a stop it draws for at most
    half the stop timeout and skips the rest (the whole backlog would outlive the join, and
    the sinks are closed after it)."""
    sink, render = CountingSink(), SlowRenderSink(0.1)
    pipeline = Pipeline(Reader(), [("detect", passthrough)], [sink],
                        PipelineConfig(live=False, queue_size=32), render_sinks=[render])
    run = Run(pipeline)
    wait_for(lambda: len(sink.indices) >= 20)  # the renderer is well behind by now
    t_stop = time.monotonic()
    pipeline.stop("stopped by test")
    run.join(timeout_s=10)
    assert run.returned_at_s - t_stop < HANG_GUARD_S
    assert len(render.indices) < len(sink.indices)  # the backlog was not drawn
    assert render.closes == 1 and not render.closed_while_writing


def test_a_branch_still_writing_after_the_join_is_not_closed():
    """Ctrl-C while a render write takes longer than the stop timeout: run() re-raises after
    the bounded join, and leaves that sink open instead of closing it under the writing
    thread (the others are closed)."""
    sink, render = CountingSink(), SlowRenderSink(3.0)
    pipeline = Pipeline(Reader(), [("detect", passthrough)], [sink],
                        PipelineConfig(live=False, queue_size=4, stop_timeout_s=0.3),
                        render_sinks=[render])

    def ctrl_c() -> None:  # on_poll runs in run()'s thread, where Ctrl-C would land
        if render.writing:
            raise KeyboardInterrupt

    outcome: list[BaseException] = []

    def target() -> None:
        try:
            pipeline.run(on_poll=ctrl_c, poll_s=0.02)
        except KeyboardInterrupt as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and len(outcome) == 1
    assert render.writing  # still drawing when run() gave up on it
    assert render.closes == 0 and sink.closes == 1
    wait_for(lambda: not render.writing)


# ---- (d) Ctrl-C on the command line ------------------------------------------------------
# Covered by tests/test_demo.py::test_ctrl_c_keeps_everything_written (SIGINT to run_demo.py
# once hands.jsonl has content: exit 130, every line parses, stats.json interrupted, the
# overlay video opens).


# ---- (e) closing the window ---------------------------------------------------------------


def _xdotool(*args: str, timeout_s: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True,
                          timeout=timeout_s, env=os.environ)


class _XClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessage), ("pad", ctypes.c_long * 24)]


def send_wm_delete(window: int) -> None:
    """Ask ``window`` to close as a window manager's close button does (WM_DELETE_WINDOW).

    Xvfb runs no window manager, and this xdotool's ``windowclose`` destroys the X window
    behind the toolkit's back (not what a user does), so the message is sent by hand.
    """
    x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.POINTER(_XEvent)]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(None)
    assert display, "cannot open the X display"
    try:
        event = _XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = window
        event.xclient.message_type = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
        assert x11.XSendEvent(display, window, 0, 0, ctypes.byref(event))
        x11.XFlush(display)
    finally:
        x11.XCloseDisplay(display)


def press_q(window: int) -> None:
    done = _xdotool("windowfocus", "--sync", str(window), "key", "q")
    assert done.returncode == 0, done.stderr


def close_demo_window(args: list[str], title: str, close, settle_s: float = 0.5
                      ) -> tuple[int, str]:
    """Run ``run_demo.py args``, wait for its window ``title``, ``close`` it and wait for the
    demo to end; its exit code and stderr (the demo is killed if it does not end)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "run_demo.py"), *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = _xdotool("search", "--sync", "--onlyvisible", "--name", f"^{title}$",
                         timeout_s=120)
        assert found.returncode == 0 and found.stdout.split(), found.stderr
        time.sleep(settle_s)  # a few frames shown, so the window is really up
        assert proc.poll() is None, "the demo ended before its window could be closed"
        close(int(found.stdout.split()[0]))
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


@pytest.mark.display
@pytest.mark.skipif(not os.environ.get("DISPLAY"),
                    reason="no X display (DISPLAY unset; scripts/test.sh starts Xvfb :99)")
@pytest.mark.skipif(shutil.which("xdotool") is None,
                    reason="xdotool not installed (scripts/setup_env.sh installs it)")
@pytest.mark.parametrize("close, stopped_by", [(send_wm_delete, "window closed"),
                                               (press_q, "key pressed")],
                         ids=["close-button", "key-q"])
def test_closing_the_window_ends_the_demo_cleanly(tmp_path, close, stopped_by):
    # the video window only: the 3D viewer's own close is tested in test_viewer.py
    code, err = close_demo_window(["--source", str(SAMPLE_VIDEO), "--output", str(tmp_path),
                                   "--regressor", "fit", "--realtime", "--no-viewer"],
                                  WINDOW, close)
    assert code == 0, err
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["stopped_by"] == stopped_by
    assert stats["interrupted"] is False
    records = list(read_hands(tmp_path / "hands.jsonl"))  # every line parses
    assert stats["hands"] == len(records)
    assert 0 < stats["frames"] < 450  # stopped before the end of the 450-frame clip
    cap = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    assert cap.read()[0]  # the video was finalised and opens
