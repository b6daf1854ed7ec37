"""Record a published hand stream to a file (``.hmstream``, see ``realtime.stream.stream_file``).

::

    python -m realtime.stream.record --connect tcp://127.0.0.1:5555 --out run.hmstream
    python -m realtime.stream.replay run.hmstream --publish tcp://127.0.0.1:5555

The recorder is a subscriber like any other (another process, or another machine with
CURVE keys): it asks the REP socket for the topology first, so the file starts with it,
then writes every message of the chosen topics as received, flushed one by one. Appending
to an existing file continues it (a torn record left by a crash is cut off first).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

from realtime.errors import RealtimeError
from realtime.stream.client import HandClient
from realtime.stream.stream_file import StreamFileError, StreamWriter

log = logging.getLogger(__name__)
DEFAULT_TOPICS = ("hands", "topology", "status")


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
        raw = client.recv_raw(100)
        if raw is None:
            continue
        writer.write(raw)
        if raw.startswith((b"hands ", b"joints ")):
            frames += 1
            if count is not None and frames >= count:
                break
    return writer.records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m realtime.stream.record",
                                description="Record the hand stream of run_demo.py --publish")
    p.add_argument("--connect", default="tcp://127.0.0.1:5555", metavar="ENDPOINT")
    p.add_argument("--topology-endpoint", default=None,
                   help="the publisher's REP endpoint (default: the next port)")
    p.add_argument("--out", type=Path, required=True, help="the .hmstream file (appended to)")
    p.add_argument("--topics", default=",".join(DEFAULT_TOPICS),
                   help="comma-separated topics (default hands,topology,status)")
    p.add_argument("--count", type=int, default=None, help="stop after N hands messages")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--fsync", action="store_true", help="force every record to disk")
    p.add_argument("--curve-key", type=Path, default=None, metavar="CLIENT_SECRET_FILE")
    p.add_argument("--server-key", type=Path, default=None, metavar="SERVER_PUBLIC_FILE")
    a = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    from realtime.stream.protocol import topology_endpoint_for

    stop = threading.Event()
    try:
        topics = tuple(t for t in a.topics.split(",") if t)
        with HandClient(a.connect, topics, a.topology_endpoint or topology_endpoint_for(
                a.connect), curve_secret_key_file=a.curve_key,
                curve_server_public_key_file=a.server_key) as client, \
                StreamWriter(a.out, fsync=a.fsync) as writer:
            print(f"recording {', '.join(topics)} from {a.connect} to {a.out} (Ctrl-C stops)")
            try:
                n = record(client, writer, stop, a.count, a.duration)
            except KeyboardInterrupt:
                n = writer.records
        print(f"wrote {n} records to {a.out}")
    except (OSError, StreamFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
