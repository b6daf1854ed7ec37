"""Is a thread starved of CPU? Its scheduler statistics over a window say.

Why: the render branch of a live source runs under ``SCHED_IDLE`` so that it never takes a
core a stage of the published path wants. When another program keeps both cores busy, an
idle thread gets almost nothing: the overlay window and video freeze. A thread cannot leave
``SCHED_IDLE`` without privileges, so the pipeline watches the render thread and, once it is
starved, hands drawing to a new thread at plain nice 10 (``Pipeline``).

Linux keeps per thread the time it ran and the time it waited runnable for a core
(``/proc/self/task/<tid>/schedstat``, nanoseconds). A starved thread waits almost all the time
it has work and runs almost none of it. Measured on two cores at 60 FPS: render ran 0.27-0.36
of the wall time (waiting 0.21-0.53) on a quiet VM and 0.14-0.15 (drawing ~15 FPS, waiting
0.6-0.7) in a phase where the VM itself was slow: slow, not frozen, and the published path
needs the cores more; with two busy programs beside it, 0.00-0.02 (waiting 0.6-1.0): frozen.
So "starved" is an absolute floor (``max_ran``), not a share of what the thread wanted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class StarvationConfig:
    """``window_s``: how long the evidence is gathered; starved when the thread waited for a
    core at least ``min_wait`` of the window and ran less than ``max_ran`` of it (0.05: at
    ~9 ms a drawn frame, under ~5 frames a second)."""

    window_s: float = 1.0
    min_wait: float = 0.5
    max_ran: float = 0.05

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s}")
        if not 0 < self.min_wait <= 1:
            raise ValueError(f"min_wait must be in (0, 1], got {self.min_wait}")
        if not 0 < self.max_ran < 1:
            raise ValueError(f"max_ran must be in (0, 1), got {self.max_ran}")


def is_starved(ran_s: float, waited_s: float, window_s: float,
               config: StarvationConfig = StarvationConfig()) -> bool:
    """Over ``window_s`` of wall time the thread ran ``ran_s`` and waited runnable
    ``waited_s``: starved?"""
    if window_s <= 0:
        return False
    return waited_s >= config.min_wait * window_s and ran_s < config.max_ran * window_s


def read_schedstat(tid: int) -> tuple[float, float] | None:
    """Seconds the thread ``tid`` of this process has run and waited runnable; None where
    the kernel does not say (not Linux, no schedstats) or the thread is gone."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            ran_ns, waited_ns = f.read().split()[:2]
        return int(ran_ns) / 1e9, int(waited_ns) / 1e9
    except (OSError, ValueError):
        return None


class StarvationWatch:
    """Samples one thread's schedstat whenever :meth:`poll` is called (the pipeline's main
    thread, every 50 ms) and says, once per full window, whether it was starved."""

    def __init__(self, tid: int, config: StarvationConfig = StarvationConfig(),
                 clock=time.monotonic) -> None:
        self.tid, self.config, self._clock = tid, config, clock
        self._start: tuple[float, float, float] | None = None

    def poll(self) -> bool:
        now = self._clock()
        if self._start is not None and now - self._start[0] < self.config.window_s:
            return False  # the file is read once per window, not on every poll
        stat = read_schedstat(self.tid)
        if stat is None:
            self._start = None
            return False
        if self._start is None:
            self._start = (now, *stat)
            return False
        t0, ran0, waited0 = self._start
        self._start = (now, *stat)
        return is_starved(stat[0] - ran0, stat[1] - waited0, now - t0, self.config)
