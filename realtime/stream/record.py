"""Record a published hand stream to a file (``.hmstream``, see ``realtime.stream.stream_file``).

::

    handmesh-stream record --connect tcp://127.0.0.1:5555 --out run.hmstream
    handmesh-stream replay run.hmstream --publish tcp://127.0.0.1:5555

The recorder is a subscriber like any other (another process, or another machine with
CURVE keys): it asks the REP socket for the topology first, so the file starts with it,
then writes every message of the chosen topics as received, flushed one by one; a message
that does not decode (``protocol.decode``) is skipped and counted in ``client.rejected``. Appending
to an existing file continues it (a torn record left by a crash is cut off first).
"""

from __future__ import annotations

import logging
import threading
import time

from realtime.errors import RealtimeError
from realtime.stream.client import HandClient
from realtime.stream.stream_file import StreamWriter

log = logging.getLogger(__name__)
DEFAULT_TOPICS = ("hands", "topology", "status")  # what a stream file keeps by default


def record(client: HandClient, writer: StreamWriter, stop: threading.Event,
           count: int | None = None, duration_s: float | None = None,
           topology_timeout_ms: int = 2000) -> int:
    """Write the topology (if the publisher answers), then every message until ``stop``,
    ``count`` hands/joints messages or ``duration_s``; the number of records written."""
    try:
        writer.write(client.topology_raw(topology_timeout_ms))
    except RealtimeError as exc:
        log.warning("no topology at start (%s): recording without it", exc)
    frames = 0
    end = None if duration_s is None else time.monotonic() + duration_s
    while not stop.is_set():
        if end is not None and time.monotonic() >= end:
            break
        raw = client.recv_raw(100, validate=True)  # garbage is skipped (client.rejected)
        if raw is None:
            continue
        writer.write(raw)
        if raw.startswith((b"hands ", b"joints ")):
            frames += 1
            if count is not None and frames >= count:
                break
    return writer.records
