"""Where each frame spent its time: per-frame, per-stage spans of one run, kept in a ring.

The stats give percentiles per stage, but a tail frame (a p95/p99 latency) is one frame: to see
whether it lost its time waiting for a busy detector, in a slow regression, behind the render
thread or in a late thread wake-up, one needs that frame's own spans. Every stage thread adds
one span per item (``ready``: handed on by the previous stage, ``start``/``end``: its own
work), in ``time.monotonic()`` seconds like ``Packet.t_capture``. The ring is preallocated
(NumPy arrays, one lock, no allocation per span), so it is always on: about a microsecond per
span, a few per frame. ``spans()`` copies the last ``capacity`` spans out, oldest first.

Pure NumPy helpers below read a run's spans: each frame's end-to-end latency, its tail frames,
and how much of their time each stage took as wait and as work (``tail_breakdown``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

DEFAULT_CAPACITY = 32_768  # spans: 10 stages x 60 FPS x ~55 s; ~1 MB


@dataclass(frozen=True)
class Spans:
    """A run's spans, oldest first: ``stage`` indexes ``names``; times in monotonic seconds;
    ``ready`` is NaN where the stage has no inbox (capture)."""

    names: tuple[str, ...]
    frame: np.ndarray  # (n,) int64: Frame.index
    stage: np.ndarray  # (n,) int16
    ready: np.ndarray  # (n,) float64
    start: np.ndarray  # (n,) float64
    end: np.ndarray  # (n,) float64

    def __len__(self) -> int:
        return len(self.frame)

    def of(self, name: str) -> np.ndarray:
        """Boolean mask of the spans of stage ``name`` (all False for an unknown one)."""
        if name not in self.names:
            return np.zeros(len(self), dtype=bool)
        return self.stage == self.names.index(name)


class Timeline:
    """A thread-safe, preallocated ring of ``(frame, stage, ready, start, end)`` spans."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self.capacity = capacity
        self._frame = np.zeros(capacity, dtype=np.int64)
        self._stage = np.zeros(capacity, dtype=np.int16)
        self._times = np.zeros((capacity, 3), dtype=np.float64)  # ready, start, end
        self._names: list[str] = []
        self._ids: dict[str, int] = {}
        self._added = 0
        self._lock = threading.Lock()

    @property
    def added(self) -> int:
        """Spans added over the whole run (the ring keeps the last ``capacity``)."""
        return self._added

    def add(self, stage: str, frame: int, ready: float, start: float, end: float) -> None:
        """One stage's work on one frame; ``ready`` NaN when it had no inbox."""
        with self._lock:
            sid = self._ids.get(stage)
            if sid is None:
                sid = self._ids[stage] = len(self._names)
                self._names.append(stage)
            i = self._added % self.capacity
            self._frame[i] = frame
            self._stage[i] = sid
            self._times[i] = (ready, start, end)
            self._added += 1

    def spans(self) -> Spans:
        """A copy of the kept spans, oldest first."""
        with self._lock:
            n = min(self._added, self.capacity)
            order = np.arange(self._added - n, self._added) % self.capacity
            times = self._times[order]
            return Spans(tuple(self._names), self._frame[order], self._stage[order],
                         times[:, 0], times[:, 1], times[:, 2])


def frame_latency(spans: Spans, last: str = "sinks") -> tuple[np.ndarray, np.ndarray]:
    """``(frames, seconds)``: for every frame with a ``last`` span, from its release by
    capture (the earliest ``ready`` among its spans: when it was handed to the first stage)
    to the end of that span (published)."""
    ready = np.isfinite(spans.ready)
    released: dict[int, float] = {}
    for f, t in zip(spans.frame[ready].tolist(), spans.ready[ready].tolist()):
        if t < released.get(f, np.inf):
            released[f] = t
    b = spans.of(last)
    frames, seconds = [], []
    for f, t1 in zip(spans.frame[b].tolist(), spans.end[b].tolist()):
        if f in released:
            frames.append(f)
            seconds.append(t1 - released[f])
    return np.asarray(frames, dtype=np.int64), np.asarray(seconds, dtype=np.float64)


def tail_frames(spans: Spans, q: float = 95.0, last: str = "sinks") -> np.ndarray:
    """Frame indices whose ``frame_latency`` is at or above its ``q``-th percentile."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be a percentile in [0, 100], got {q!r}")
    frames, seconds = frame_latency(spans, last)
    if len(frames) == 0:
        return frames
    return frames[seconds >= np.percentile(seconds, q)]


def tail_breakdown(spans: Spans, frames: np.ndarray) -> dict[str, dict[str, float]]:
    """Per stage, the mean wait (ready -> start) and work (start -> end) in ms over the
    spans of ``frames`` (and how many spans that is): where those frames lost their time."""
    chosen = np.isin(spans.frame, np.asarray(frames))
    out: dict[str, dict[str, float]] = {}
    for sid, name in enumerate(spans.names):
        sel = chosen & (spans.stage == sid)
        if not sel.any():
            continue
        wait = spans.start[sel] - spans.ready[sel]
        wait = wait[np.isfinite(wait)]
        out[name] = {
            "wait_ms": float(wait.mean() * 1e3) if len(wait) else 0.0,
            "work_ms": float((spans.end[sel] - spans.start[sel]).mean() * 1e3),
            "spans": int(sel.sum()),
        }
    return out
