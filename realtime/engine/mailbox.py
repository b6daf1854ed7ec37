"""Hand-offs between pipeline stages: a one-slot "latest" mailbox and a bounded lossless queue.

Live sources must never queue stale frames into latency, so each stage hands the next one only
the newest item and counts what it overwrote (``LatestMailbox``). File sources must process every
frame so results are deterministic, so they use a small bounded queue that blocks the producer
when full (``LosslessQueue``): back-pressure, nothing dropped. Both share one protocol
(``Channel``) so stages do not care which one they were given; ``make_channel`` picks.

Shutdown: ``close()`` wakes every blocked ``get`` and ``put``; consumers drain what is left and
then get ``Closed``, which ends ``for item in channel`` loops. Pure threading, no I/O.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from realtime.errors import RealtimeError

T = TypeVar("T")

DEFAULT_MAXSIZE = 8


class Closed(RealtimeError):
    """The channel was closed (and drained): the producer or the pipeline has shut down."""


class Channel(Protocol[T]):
    """What a stage needs from a hand-off, whichever kind it is."""

    def put(self, item: T, timeout: float | None = None) -> bool: ...

    def get(self, timeout: float | None = None) -> T: ...

    def close(self) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[T]: ...

    @property
    def closed(self) -> bool: ...

    @property
    def dropped(self) -> int: ...

    @property
    def put_count(self) -> int: ...

    @property
    def get_count(self) -> int: ...


def _deadline(timeout: float | None) -> float | None:
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be None or >= 0 seconds, got {timeout!r}")
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class _Channel(Generic[T]):
    """What both kinds share: a deque behind one Condition, ``get``, ``close``, counters."""

    _kind = "channel"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: collections.deque[T] = collections.deque()
        self._closed = False
        self._dropped = 0
        self._put_count = 0
        self._get_count = 0

    def get(self, timeout: float | None = None) -> T:
        """Take the next item, blocking until one arrives or the channel is closed.

        Items put before ``close()`` are still delivered; then ``Closed`` is raised.
        ``TimeoutError`` if ``timeout`` seconds pass.
        """
        deadline = _deadline(timeout)
        with self._cond:
            while not self._items:
                if self._closed:
                    raise Closed(f"{self._kind} closed")
                if not self._cond.wait(_remaining(deadline)) and not (
                    self._items or self._closed
                ):
                    raise TimeoutError(f"no item within {timeout} s")
            item = self._items.popleft()
            self._get_count += 1
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """Refuse further items and wake every blocked ``get`` and ``put``; unread items can
        still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __iter__(self) -> Iterator[T]:
        """Yield items until the channel is closed and drained."""
        while True:
            try:
                yield self.get()
            except Closed:
                return

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped(self) -> int:
        """Items overwritten before anyone read them (always 0 for the lossless queue)."""
        return self._dropped

    @property
    def put_count(self) -> int:
        return self._put_count

    @property
    def get_count(self) -> int:
        return self._get_count


class LatestMailbox(_Channel[T]):
    """One slot holding only the newest item; an unread item overwritten by ``put`` is dropped.

    Why: a live camera keeps producing whether or not detection keeps up; queueing its frames
    would add their wait to every later frame's latency, so the consumer always gets the
    freshest one and the overwritten ones are counted in ``dropped`` for the stats.
    """

    _kind = "mailbox"

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Store ``item``, replacing (and counting as dropped) any unread one; never blocks.

        ``timeout`` is accepted for protocol compatibility and ignored. Returns False, storing
        nothing, when the mailbox is already closed (a producer racing shutdown is not an error).
        """
        with self._cond:
            if self._closed:
                return False
            if self._items:
                self._items.clear()
                self._dropped += 1
            self._items.append(item)
            self._put_count += 1
            self._cond.notify_all()
            return True


class LosslessQueue(_Channel[T]):
    """A bounded FIFO whose ``put`` blocks when full: back-pressure instead of dropping.

    Why bounded and small: a deep queue would hide a slow stage behind growing latency and
    memory; with a few slots the producer simply runs at the pace of the slowest stage and
    every frame is processed in order, so file runs are identical run to run.
    """

    _kind = "queue"

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise ValueError(f"maxsize must be an int >= 1, got {maxsize!r}")
        super().__init__()
        self.maxsize = maxsize

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Append ``item``, blocking while the queue is full; returns True once stored.

        Raises ``Closed`` if the queue is (or becomes, while waiting) closed, so a producer
        blocked on a consumer that has died wakes up instead of hanging; ``TimeoutError`` if
        ``timeout`` seconds pass without room.
        """
        deadline = _deadline(timeout)
        with self._cond:
            while len(self._items) >= self.maxsize and not self._closed:
                if not self._cond.wait(_remaining(deadline)) and (
                    len(self._items) >= self.maxsize and not self._closed
                ):
                    raise TimeoutError(f"queue still full after {timeout} s")
            if self._closed:
                raise Closed("queue closed; the item was not stored")
            self._items.append(item)
            self._put_count += 1
            self._cond.notify_all()
            return True


def make_channel(live: bool, maxsize: int = DEFAULT_MAXSIZE) -> Channel[T]:
    """A latest-only mailbox for live sources, a lossless bounded queue for files.

    ``maxsize`` applies to the lossless queue only; a live mailbox always holds one item.
    """
    if live:
        return LatestMailbox()
    return LosslessQueue(maxsize)
