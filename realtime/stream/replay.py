"""Replay a recorded stream (``.hmstream``) into a publisher at its original speed.

::

    handmesh-stream replay run.hmstream --publish tcp://127.0.0.1:5555 [--speed 1]

Every recorded message is sent as it was recorded, byte for byte (header and payload: the
recording's sequence numbers, capture and publish timestamps are kept, so a client sees
the original stream; its latency figures are then the recording's age, not a delay). The
pacing follows the recorded receive times: pauses longer than ``max_gap_s`` (between
appended sessions, or a forged time) are cut to it and noted, a time going backwards or not
finite counts as no pause, and each pass of a ``loop`` lasts at least one typical record
interval, so a replay never waits for ever nor spins. The file is scanned once (damaged
records skipped and counted, ``realtime.stream.stream_file``); a file with no valid record
is refused. The recording's first ``topology`` message is served on the REP socket from the
start (later ones as they are replayed), so a client that joins late still gets it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from realtime.stream import protocol
from realtime.stream.publisher import Publisher
from realtime.stream.stream_file import ScanResult, StreamFileError, read_records, scan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayConfig:
    """How to pace a replay."""

    speed: float = 1.0  # 2.0: twice as fast
    max_gap_s: float = 1.0  # longer pauses in the recording are cut to this
    loop: bool = False
    start_delay_s: float = 0.5  # lets subscribers connect before the first message

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed) and self.speed > 0):
            raise ValueError(f"speed must be a positive number, got {self.speed}")
        if not (math.isfinite(self.max_gap_s) and self.max_gap_s > 0) or not (
                math.isfinite(self.start_delay_s) and self.start_delay_s >= 0):
            raise ValueError("max_gap_s must be positive and start_delay_s not negative")


def first_topology(path: str | Path, scanned: ScanResult | None = None) -> bytes | None:
    """The recording's first readable topology message, or None."""
    for rec in read_records(path, scanned or scan(path)):
        if protocol.peek_topic(rec.message) == protocol.TOPIC_TOPOLOGY:
            try:
                protocol.decode(rec.message)
            except protocol.ProtocolError:
                continue
            return rec.message
    return None


def replayable(path: str | Path, scanned: ScanResult | None = None) -> ScanResult:
    """The scan of a file that has something to replay; StreamFileError if it has not
    (a header and no valid record: a ``loop`` would otherwise spin sending nothing)."""
    scanned = scanned or scan(path)
    if not scanned.records:
        raise StreamFileError(f"{path} has no valid record to replay"
                              + (f" ({scanned.summary()})" if scanned.summary() else "")
                              + ": record one with handmesh-stream record")
    return scanned


def replay(path: str | Path, publisher: Publisher, config: ReplayConfig = ReplayConfig(),
           stop: threading.Event | None = None, scanned: ScanResult | None = None) -> int:
    """Send every valid record through ``publisher.send_raw`` at the recorded pace; the
    number sent. Raises StreamFileError when the file has no valid record to replay."""
    scanned = replayable(path, scanned)
    stop = stop or threading.Event()
    if stop.wait(config.start_delay_s):
        return 0
    pause = _typical_pause(scanned, config.max_gap_s)
    sent = 0
    first_pass = True
    while True:
        t_wall = time.monotonic()
        t_rec_prev = None
        t_play = 0.0
        for number, rec in enumerate(read_records(path, scanned), 1):
            if t_rec_prev is not None:
                gap = rec.t_receive - t_rec_prev
                gap = gap if math.isfinite(gap) and gap > 0 else 0.0
                if gap > config.max_gap_s:
                    if first_pass:
                        log.info("%s: record %d: cut a %.3g s pause to %g s", path, number,
                                 gap, config.max_gap_s)
                    gap = config.max_gap_s
                t_play += gap / config.speed
            t_rec_prev = rec.t_receive
            wait = t_wall + t_play - time.monotonic()
            if wait > 0 and stop.wait(wait):
                return sent
            if stop.is_set():
                return sent
            sent += bool(publisher.send_raw(rec.message))
        if not config.loop or stop.is_set():
            return sent
        first_pass = False
        # the next pass starts one typical interval later: never a busy loop
        if stop.wait(max(0.0, t_wall + t_play + pause / config.speed - time.monotonic())):
            return sent


def _typical_pause(scanned: ScanResult, max_gap_s: float) -> float:
    """The median interval between records (1/30 s if none), between 1 ms and ``max_gap_s``."""
    times = [t for _, t, _ in scanned.records[:1000] if math.isfinite(t)]
    gaps = sorted(b - a for a, b in pairwise(times) if b > a)
    return min(max(gaps[len(gaps) // 2] if gaps else 1 / 30, 1e-3), max_gap_s)
