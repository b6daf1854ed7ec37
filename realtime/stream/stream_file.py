"""A file of recorded stream messages (``.hmstream``): append-safe, readable after a crash.

Layout (all little-endian)::

    file header, 16 bytes: b"HMSTREAM" | uint32 version (1) | uint32 reserved (0)
    record, repeated:      uint32 length N | float64 t_receive (time.time(), s)
                           | uint32 crc32 of the message | N bytes: the message, as received

The message is the raw ZeroMQ frame (``docs/protocol.md``), never re-encoded, so a replay
sends exactly what was published. Each record is written with one ``write`` and flushed;
a crash can leave only the last record torn (short, or with a wrong CRC): readers stop
there and report the torn bytes, and a writer re-opening the file cuts them off before
appending, so every later record stays reachable.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from realtime.errors import RealtimeError

log = logging.getLogger(__name__)

MAGIC = b"HMSTREAM"
VERSION = 1
_FILE_HEADER = struct.Struct("<8sII")
_RECORD = struct.Struct("<IdI")
MAX_RECORD_BYTES = 256 << 20  # a length over this is a torn or foreign record


class StreamFileError(RealtimeError):
    """Not a stream recording, or one of another version."""


@dataclass(frozen=True)
class Record:
    t_receive: float  # seconds, time.time() of the recorder
    message: bytes


def _check_header(head: bytes, path: Path) -> None:
    if len(head) < _FILE_HEADER.size or head[:8] != MAGIC:
        raise StreamFileError(f"{path} is not a stream recording (no {MAGIC!r} header); "
                              "record one with handmesh-stream record")
    _, version, _ = _FILE_HEADER.unpack(head[:_FILE_HEADER.size])
    if version != VERSION:
        raise StreamFileError(f"{path}: stream file version {version}, this reader reads "
                              f"{VERSION}")


def scan(path: str | Path) -> tuple[list[tuple[int, float, int]], int, int]:
    """Record table ``[(offset of the message, t_receive, length)]``, the end of the last
    complete record, and the number of torn bytes after it."""
    path = Path(path)
    size = path.stat().st_size
    out = []
    with open(path, "rb") as f:
        _check_header(f.read(_FILE_HEADER.size), path)
        pos = _FILE_HEADER.size
        while pos < size:
            head = f.read(_RECORD.size)
            if len(head) < _RECORD.size:
                break
            n, t, crc = _RECORD.unpack(head)
            if n > MAX_RECORD_BYTES or pos + _RECORD.size + n > size:
                break
            body = f.read(n)
            if zlib.crc32(body) != crc:
                break
            out.append((pos + _RECORD.size, t, n))
            pos += _RECORD.size + n
    return out, pos, size - pos


def read_stream(path: str | Path) -> Iterator[Record]:
    """Every complete record in order; a torn tail (crash while writing) is logged and skipped."""
    path = Path(path)
    table, end, torn = scan(path)
    if torn:
        log.warning("%s: last %d bytes are a torn record (ignored)", path, torn)
    with open(path, "rb") as f:
        for offset, t, n in table:
            f.seek(offset)
            yield Record(t, f.read(n))


class StreamWriter:
    """Appends records to a stream file, one flushed ``write`` each (``with`` closes it).

    An existing file is appended to, after cutting off a torn last record; ``fsync=True``
    also forces each record to disk (survives a power cut, costs a disk round trip).
    """

    def __init__(self, path: str | Path, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.records = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            _, end, torn = scan(self.path)
            if torn:
                log.warning("%s: cutting off a torn last record of %d bytes before appending",
                            self.path, torn)
                os.truncate(self.path, end)
            self._f = open(self.path, "ab")
        else:
            self._f = open(self.path, "wb")
            self._f.write(_FILE_HEADER.pack(MAGIC, VERSION, 0))
            self._f.flush()

    def write(self, message: bytes, t_receive: float | None = None) -> None:
        msg = bytes(message)
        t = time.time() if t_receive is None else float(t_receive)
        self._f.write(_RECORD.pack(len(msg), t, zlib.crc32(msg)) + msg)
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self.records += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
