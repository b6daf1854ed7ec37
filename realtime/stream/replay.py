"""Replay a recorded stream (``.hmstream``) into a publisher at its original speed.

::

    handmesh-stream replay run.hmstream --publish tcp://127.0.0.1:5555 [--speed 1]

Every recorded message is sent as it was recorded, byte for byte (header and payload: the
recording's sequence numbers, capture and publish timestamps are kept, so a client sees
the original stream; its latency figures are then the recording's age, not a delay). The
pacing follows the recorded receive times (gaps longer than ``max_gap_s``, e.g. between
appended sessions, are shortened). The recording's first ``topology`` message is served
on the REP socket from the start (later ones as they are replayed), so a client that
joins late still gets it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from realtime.stream import protocol
from realtime.stream.publisher import Publisher
from realtime.stream.stream_file import read_stream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayConfig:
    """How to pace a replay."""

    speed: float = 1.0  # 2.0: twice as fast
    max_gap_s: float = 1.0  # longer pauses in the recording are cut to this
    loop: bool = False
    start_delay_s: float = 0.5  # lets subscribers connect before the first message

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")
        if self.max_gap_s <= 0 or self.start_delay_s < 0:
            raise ValueError("max_gap_s must be positive and start_delay_s not negative")


def first_topology(path: str | Path) -> bytes | None:
    """The recording's first readable topology message, or None."""
    for rec in read_stream(path):
        if protocol.peek_topic(rec.message) == protocol.TOPIC_TOPOLOGY:
            try:
                protocol.decode(rec.message)
            except protocol.ProtocolError:
                continue
            return rec.message
    return None


def replay(path: str | Path, publisher: Publisher, config: ReplayConfig = ReplayConfig(),
           stop: threading.Event | None = None) -> int:
    """Send every record through ``publisher.send_raw`` at the recorded pace; count sent."""
    stop = stop or threading.Event()
    if stop.wait(config.start_delay_s):
        return 0
    sent = 0
    while True:
        t_wall = time.monotonic()
        t_rec_prev = None
        t_play = 0.0
        for rec in read_stream(path):
            if t_rec_prev is not None:
                t_play += min(max(rec.t_receive - t_rec_prev, 0.0), config.max_gap_s) / config.speed
            t_rec_prev = rec.t_receive
            wait = t_wall + t_play - time.monotonic()
            if wait > 0 and stop.wait(wait):
                return sent
            if stop.is_set():
                return sent
            sent += bool(publisher.send_raw(rec.message))
        if not config.loop or stop.is_set():
            return sent
