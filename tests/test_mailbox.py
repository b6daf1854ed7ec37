"""Hand-offs between stage threads: latest-only drops and counts, lossless blocks, close wakes."""

from __future__ import annotations

import threading

import pytest

from realtime.engine.mailbox import Closed, LatestMailbox, LosslessQueue, make_channel
from realtime.errors import RealtimeError

TIMEOUT_S = 2.0  # generous: only guards against hangs, never a timing threshold


def _start(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _join(thread: threading.Thread) -> None:
    thread.join(TIMEOUT_S)
    assert not thread.is_alive(), "thread did not finish"


# ---- LatestMailbox ---------------------------------------------------------------------------


def test_latest_keeps_only_newest_and_counts_drops():
    box: LatestMailbox[int] = LatestMailbox()
    for i in range(5):
        assert box.put(i)
    assert len(box) == 1
    assert box.get(timeout=TIMEOUT_S) == 4
    assert box.dropped == 4
    assert (box.put_count, box.get_count) == (5, 1)
    assert len(box) == 0


def test_latest_get_times_out_when_empty():
    box: LatestMailbox[int] = LatestMailbox()
    with pytest.raises(TimeoutError):
        box.get(timeout=0.01)


def test_latest_producer_consumer_threads():
    """A fast producer and a slow consumer: every item is either consumed or counted dropped."""
    box: LatestMailbox[int] = LatestMailbox()
    got: list[int] = []
    n = 2000

    def produce() -> None:
        for i in range(n):
            box.put(i)
        box.close()

    consumer = _start(lambda: got.extend(box))
    _join(_start(produce))
    _join(consumer)
    assert got == sorted(got) and len(set(got)) == len(got), "items out of order or repeated"
    assert got[-1] == n - 1, "the newest item must be delivered before close ends the loop"
    assert len(got) + box.dropped == n
    assert box.get_count == len(got) and box.put_count == n


def test_latest_close_wakes_blocked_get():
    box: LatestMailbox[int] = LatestMailbox()
    waiting = threading.Event()
    raised: list[BaseException] = []

    def consume() -> None:
        waiting.set()
        try:
            box.get(timeout=TIMEOUT_S)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            raised.append(exc)

    consumer = _start(consume)
    assert waiting.wait(TIMEOUT_S)
    box.close()
    _join(consumer)
    assert len(raised) == 1 and isinstance(raised[0], Closed)


def test_latest_put_after_close_ignored_and_drain_then_closed():
    box: LatestMailbox[str] = LatestMailbox()
    box.put("last")
    box.close()
    assert box.closed
    assert box.put("late") is False
    assert box.get(timeout=TIMEOUT_S) == "last"
    with pytest.raises(Closed):
        box.get(timeout=TIMEOUT_S)
    assert list(box) == []


def test_closed_is_a_realtime_error():
    assert issubclass(Closed, RealtimeError)


# ---- LosslessQueue ---------------------------------------------------------------------------


def test_lossless_never_drops_and_keeps_order():
    q: LosslessQueue[int] = LosslessQueue(maxsize=3)
    n = 500

    def produce() -> None:
        for i in range(n):
            q.put(i, timeout=TIMEOUT_S)
        q.close()

    got: list[int] = []
    consumer = _start(lambda: got.extend(q))
    _join(_start(produce))
    _join(consumer)
    assert got == list(range(n))
    assert q.dropped == 0 and q.put_count == n and q.get_count == n


def test_lossless_put_blocks_when_full_until_get():
    q: LosslessQueue[int] = LosslessQueue(maxsize=2)
    q.put(0)
    q.put(1)
    with pytest.raises(TimeoutError):
        q.put(2, timeout=0.01)
    assert len(q) == 2

    started, stored = threading.Event(), threading.Event()

    def produce() -> None:
        started.set()
        q.put(2, timeout=TIMEOUT_S)
        stored.set()

    producer = _start(produce)
    assert started.wait(TIMEOUT_S)
    assert not stored.wait(0.05), "put must block while the queue is full"
    assert q.get(timeout=TIMEOUT_S) == 0
    _join(producer)
    assert stored.is_set()
    assert [q.get(timeout=TIMEOUT_S), q.get(timeout=TIMEOUT_S)] == [1, 2]


def test_lossless_close_wakes_blocked_put():
    q: LosslessQueue[int] = LosslessQueue(maxsize=1)
    q.put(0)
    waiting = threading.Event()
    raised: list[BaseException] = []

    def produce() -> None:
        waiting.set()
        try:
            q.put(1, timeout=TIMEOUT_S)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            raised.append(exc)

    producer = _start(produce)
    assert waiting.wait(TIMEOUT_S)
    q.close()
    _join(producer)
    assert len(raised) == 1 and isinstance(raised[0], Closed)
    assert q.get(timeout=TIMEOUT_S) == 0, "items stored before close are still delivered"
    with pytest.raises(Closed):
        q.get(timeout=TIMEOUT_S)


def test_lossless_close_wakes_blocked_get():
    q: LosslessQueue[int] = LosslessQueue()
    waiting = threading.Event()
    raised: list[BaseException] = []

    def consume() -> None:
        waiting.set()
        try:
            q.get(timeout=TIMEOUT_S)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            raised.append(exc)

    consumer = _start(consume)
    assert waiting.wait(TIMEOUT_S)
    q.close()
    _join(consumer)
    assert len(raised) == 1 and isinstance(raised[0], Closed)


def test_lossless_iteration_ends_at_close_and_drain():
    q: LosslessQueue[int] = LosslessQueue(maxsize=4)
    for i in range(3):
        q.put(i)
    q.close()
    assert list(q) == [0, 1, 2]
    with pytest.raises(Closed):
        q.put(9)


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, True])
def test_lossless_rejects_bad_maxsize(maxsize):
    with pytest.raises(ValueError, match="maxsize"):
        LosslessQueue(maxsize)


def test_negative_timeout_rejected():
    with pytest.raises(ValueError, match="timeout"):
        LatestMailbox().get(timeout=-1)


# ---- make_channel ----------------------------------------------------------------------------


def test_make_channel_picks_by_source_kind():
    live = make_channel(live=True)
    assert isinstance(live, LatestMailbox)
    lossless = make_channel(live=False, maxsize=3)
    assert isinstance(lossless, LosslessQueue) and lossless.maxsize == 3
    for channel in (live, lossless):
        assert not channel.closed and len(channel) == 0
        channel.close()
        assert channel.closed
