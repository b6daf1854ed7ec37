"""Latency, throughput and drop counters for the real-time loop, shared by all stage threads.

Every stage records how long it took per item and the sink records end-to-end latency (capture
timestamp to published); ``--stats`` prints ``format_line`` once a second, ``--stats-json``
writes ``snapshot()`` at exit, and the HUD draws the same numbers. Recording is one lock and
two deque appends, so it is cheap enough to call per frame from every thread.

A stage may also record its item's queue wait (``record(name, service_s, wait_s=...)``: the time
from being handed on by the previous stage to being taken): the stats then carry ``wait_*_ms``
beside the service time, so a tail frame's delay shows up where it was spent, busy or waiting.

Units: durations are recorded in seconds and reported in milliseconds (``*_ms``); rates in
events per second. Percentiles and the mean cover the last ``capacity`` samples per name (the
recent behaviour is what matters for a live system); ``count`` and ``max_ms`` cover the whole run.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = 10_000
DEFAULT_WINDOW_S = 5.0


class _Series:
    """Samples and event times for one name (guarded by the recorder's lock)."""

    __slots__ = (
        "count",
        "durations",
        "events",
        "first_t",
        "max_s",
        "times",
        "wait_max_s",
        "waits",
    )

    def __init__(self, capacity: int) -> None:
        self.durations: collections.deque[float] = collections.deque(maxlen=capacity)
        self.waits: collections.deque[float] = collections.deque(maxlen=capacity)
        self.wait_max_s = -math.inf
        self.times: collections.deque[float] = collections.deque(maxlen=capacity)
        self.count = 0  # duration samples over the whole run
        self.events = 0  # duration samples plus bare events (``mark``)
        self.max_s = -math.inf
        self.first_t: float | None = None


class LatencyRecorder:
    """Thread-safe per-name durations (ring buffer + totals), event rates and drop counters.

    ``clock`` is the monotonic time source used for rates; tests inject a fake one.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}
        self._dropped: dict[str, int] = {}
        self._skipped: dict[str, int] = {}
        self._start = clock()

    def _get(self, name: str) -> _Series:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = _Series(self.capacity)
        return series

    def record(self, name: str, seconds: float, wait_s: float | None = None) -> None:
        """Add one duration (seconds) for ``name``; also counts as an event for ``rate``.

        ``wait_s``: how long this item waited in the stage's inbox before the stage took it
        (seconds, >= 0 in practice; a negative clock step is clamped to 0)."""
        seconds = float(seconds)
        if not math.isfinite(seconds):
            raise ValueError(f"duration for {name!r} must be finite seconds, got {seconds!r}")
        if wait_s is not None:
            wait_s = float(wait_s)
            if not math.isfinite(wait_s):
                raise ValueError(f"wait for {name!r} must be finite seconds, got {wait_s!r}")
            wait_s = max(0.0, wait_s)
        now = self._clock()
        with self._lock:
            series = self._get(name)
            if wait_s is not None:
                series.waits.append(wait_s)
                series.wait_max_s = max(series.wait_max_s, wait_s)
            series.durations.append(seconds)
            series.times.append(now)
            series.count += 1
            series.events += 1
            series.max_s = max(series.max_s, seconds)
            if series.first_t is None:
                series.first_t = now

    def mark(self, name: str) -> None:
        """Count one event with no duration (e.g. a captured frame) for ``rate``."""
        now = self._clock()
        with self._lock:
            series = self._get(name)
            series.times.append(now)
            series.events += 1
            if series.first_t is None:
                series.first_t = now

    def drop(self, name: str, n: int = 1) -> None:
        """Count ``n`` items dropped at ``name`` (e.g. stale frames overwritten in a mailbox)."""
        if n < 0:
            raise ValueError(f"dropped count must be >= 0, got {n!r}")
        with self._lock:
            self._dropped[name] = self._dropped.get(name, 0) + int(n)

    def skip(self, name: str, n: int = 1) -> None:
        """Count ``n`` items a side branch left out on purpose (e.g. the overlay drawn at a
        capped rate): kept apart from drops, which are frames lost on the published path."""
        if n < 0:
            raise ValueError(f"skipped count must be >= 0, got {n!r}")
        with self._lock:
            self._skipped[name] = self._skipped.get(name, 0) + int(n)

    def skipped(self, name: str | None = None) -> int:
        """Skips counted at ``name``, or in total when ``name`` is None."""
        with self._lock:
            if name is None:
                return sum(self._skipped.values())
            return self._skipped.get(name, 0)

    def count(self, name: str) -> int:
        """Durations recorded for ``name`` over the whole run (0 for an unknown name)."""
        with self._lock:
            series = self._series.get(name)
            return 0 if series is None else series.count

    def dropped(self, name: str | None = None) -> int:
        """Drops counted at ``name``, or in total when ``name`` is None."""
        with self._lock:
            if name is None:
                return sum(self._dropped.values())
            return self._dropped.get(name, 0)

    def names(self) -> list[str]:
        """Names in the order they were first recorded (pipeline order, in practice)."""
        with self._lock:
            return list(self._series)

    def rate(self, name: str, window_s: float = DEFAULT_WINDOW_S) -> float:
        """Events per second for ``name`` over the last ``window_s`` seconds.

        Before a full window has passed since the first event, the rate is measured from that
        first event (so it is right from the start instead of ramping up); 0.0 with < 2 events.
        """
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0 seconds, got {window_s!r}")
        now = self._clock()
        with self._lock:
            series = self._series.get(name)
            if series is None:
                return 0.0
            return _rate(series, now, window_s)

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Per name: p50_ms, p95_ms, p99_ms, max_ms, mean_ms (None without durations) and
        count; with recorded waits also wait_p50_ms, wait_p95_ms, wait_p99_ms, wait_max_ms,
        wait_mean_ms."""
        with self._lock:
            items = [(n, list(s.durations), s.count, s.max_s, list(s.waits), s.wait_max_s)
                     for n, s in self._series.items()]
        return {name: _summarise(d, c, m, w, wm) for name, d, c, m, w, wm in items}

    def snapshot(self, window_s: float = DEFAULT_WINDOW_S) -> dict[str, Any]:
        """Everything in one JSON-serialisable dict: per-name stats with ``rate_hz``, drops,
        and ``skipped`` (what a side branch left out on purpose, see ``skip``)."""
        now = self._clock()
        with self._lock:
            items = [
                (n, list(s.durations), s.count, s.max_s, list(s.waits), s.wait_max_s,
                 s.events, _rate(s, now, window_s))
                for n, s in self._series.items()
            ]
            dropped = dict(self._dropped)
            skipped = dict(self._skipped)
        stages: dict[str, dict[str, Any]] = {}
        for name, durations, count, max_s, waits, wait_max_s, events, rate_hz in items:
            entry: dict[str, Any] = _summarise(durations, count, max_s, waits, wait_max_s)
            entry["events"] = events
            entry["rate_hz"] = rate_hz
            stages[name] = entry
        return {
            "uptime_s": now - self._start,
            "window_s": window_s,
            "stages": stages,
            "dropped": dropped,
            "dropped_total": sum(dropped.values()),
            "skipped": skipped,
        }

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write ``snapshot()`` to ``path`` atomically: a crash leaves the old file or none.

        Writes a temporary file in the same folder, fsyncs it, then ``os.replace``s it over the
        target (atomic on one filesystem); the temporary file is removed on any failure.
        """
        path = Path(path)
        text = json.dumps(self.snapshot(), indent=2, allow_nan=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        logger.info("wrote stats to %s", path)
        return path


def _rate(series: _Series, now: float, window_s: float) -> float:
    """Events per second in the window ending at ``now`` (see ``LatencyRecorder.rate``)."""
    start = now - window_s
    n = 0
    for t in reversed(series.times):
        if t < start:
            break
        n += 1
    if series.first_t is not None and series.first_t < start:
        return n / window_s
    # The run is younger than the window: measure from the first event.
    if n < 2 or series.first_t is None or now <= series.first_t:
        return 0.0
    return (n - 1) / (now - series.first_t)


def _percentiles(seconds: list[float], max_s: float, prefix: str = "") -> dict[str, Any]:
    """``{prefix}p50_ms, p95_ms, p99_ms, max_ms, mean_ms`` of ``seconds`` (None when empty)."""
    keys = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")
    if not seconds:
        return {prefix + k: None for k in keys}
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    p50, p95, p99 = np.percentile(ms, [50.0, 95.0, 99.0])
    values = (p50, p95, p99, max_s * 1e3, ms.mean())
    return {prefix + k: float(v) for k, v in zip(keys, values)}


def _summarise(durations: list[float], count: int, max_s: float,
               waits: list[float] | None = None, wait_max_s: float = -math.inf
               ) -> dict[str, Any]:
    """Service-time percentiles and ``count``; the ``wait_*`` ones only for a stage that
    recorded queue waits (so capture/output/end_to_end entries stay as they were)."""
    entry = _percentiles(durations, max_s)
    entry["count"] = count
    if waits:
        entry.update(_percentiles(waits, wait_max_s, "wait_"))
    return entry


@contextlib.contextmanager
def stage(recorder: LatencyRecorder, name: str) -> Iterator[None]:
    """Time the ``with`` block with ``perf_counter`` and record it under ``name``.

    Only blocks that finish normally are recorded: a failing stage ends the run anyway, and its
    partial duration would only skew the latency numbers.
    """
    t0 = time.perf_counter()
    yield
    recorder.record(name, time.perf_counter() - t0)


def _ms(value: float) -> str:
    """Milliseconds to a short string: one decimal below 10 ms, whole numbers above."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def format_line(snapshot: dict[str, Any]) -> str:
    """One compact human line from ``snapshot()``, for printing once a second.

    Names with durations show ``p50``/``p95`` in ms (just the p50 when both are under 1 ms);
    names with only events (e.g. ``capture``) show their rate in fps. Example:
    ``capture 30.0 fps | detect p50 25 p95 31 ms | regress 0.9 ms | e2e p50 41 p95 55 ms |
    dropped 3``.
    """
    parts = []
    for name, s in snapshot.get("stages", {}).items():
        p50, p95 = s.get("p50_ms"), s.get("p95_ms")
        if p50 is None or p95 is None:
            parts.append(f"{name} {s.get('rate_hz', 0.0):.1f} fps")
        elif p95 < 1.0:
            parts.append(f"{name} {_ms(p50)} ms")
        else:
            parts.append(f"{name} p50 {_ms(p50)} p95 {_ms(p95)} ms")
    parts.append(f"dropped {snapshot.get('dropped_total', 0)}")
    for name, n in snapshot.get("skipped", {}).items():
        parts.append(f"{name} {n}")
    return " | ".join(parts)


class StatsPrinter(threading.Thread):
    """Prints ``format_line`` every ``interval_s`` seconds to ``stream`` until ``stop()``.

    A daemon thread so a forgotten printer never keeps the process alive; ``stop()`` wakes it
    at once (an Event, not a sleep) so shutdown stays within a second.
    """

    def __init__(
        self,
        recorder: LatencyRecorder,
        stream: TextIO | None = None,
        interval_s: float = 1.0,
        window_s: float = DEFAULT_WINDOW_S,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0 seconds, got {interval_s!r}")
        super().__init__(name="stats-printer", daemon=True)
        self.recorder = recorder
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.window_s = window_s
        self._halt = threading.Event()  # not ``_stop``: Thread uses that name internally
        self.lines_printed = 0

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                line = format_line(self.recorder.snapshot(self.window_s))
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # closed stream or pipe: stats are not worth a crash
                logger.warning("stats printer stopped: cannot write to its stream", exc_info=True)
                return
            self.lines_printed += 1

    def stop(self, timeout_s: float = 1.0) -> None:
        """Ask the thread to end and wait up to ``timeout_s`` for it."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout_s)
