"""A file of recorded stream messages (``.hmstream``): append-safe, readable past damage.

Layout (all little-endian), version 2::

    file header, 16 bytes: b"HMSTREAM" | uint32 version (2) | uint32 reserved (0)
    record, repeated:      b"\\x89HMR" (sync marker) | uint32 length N
                           | float64 t_receive (time.time(), s) | uint32 crc32 of the message
                           | uint32 crc32 of the 20 header bytes before it
                           | N bytes: the message, as received

The message is the raw ZeroMQ frame (``docs/protocol.md``), never re-encoded, so a replay
sends exactly what was published. Each record is written with one ``write`` and flushed.
A record is valid when its marker, both CRCs and its length (at most
:data:`MAX_RECORD_BYTES`, inside the file) agree. Damage anywhere (a flipped byte, a torn
write, garbage) costs only the records it touches: the reader scans forward to the next
marker whose record is valid and goes on, counting what it skipped. A writer re-opening the
file cuts off only a torn tail after the last valid record in which the scan found no valid
record; it never cuts a record that validates.

Version 1 files (no marker, no header CRC) are still read, up to their first damaged record
(they cannot be resynchronised); appending to them is refused.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from realtime.errors import RealtimeError
from realtime.stream.protocol import DEFAULT_MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

MAGIC = b"HMSTREAM"
VERSION = 2
READABLE_VERSIONS = (1, 2)
MARK = b"\x89HMR"
_FILE_HEADER = struct.Struct("<8sII")
_RECORD = struct.Struct("<4sIdII")  # marker, length, t_receive, message crc, header crc
_RECORD_V1 = struct.Struct("<IdI")  # length, t_receive, message crc
MAX_RECORD_BYTES = DEFAULT_MAX_MESSAGE_BYTES
"""A longer record is damage: no subscriber accepts a bigger message (64 MB)."""
_CHUNK = 1 << 20  # bytes read at a time while checking a CRC or looking for a marker
_VERIFY_BUDGET = 4  # times the file size a scan may hash in candidates that turn out bad


class StreamFileError(RealtimeError):
    """Not a stream recording, one of another version, or one with nothing to replay."""


@dataclass(frozen=True)
class Record:
    t_receive: float  # seconds, time.time() of the recorder
    message: bytes


@dataclass
class ScanResult:
    """What :func:`scan` found in a stream file."""

    version: int
    records: list[tuple[int, float, int]] = field(default_factory=list)
    """``(offset of the message, t_receive, length)`` of every valid record, in file order."""
    damaged: list[tuple[int, int, int]] = field(default_factory=list)
    """``(offset, bytes, records)`` of each damaged stretch skipped between valid records."""
    end: int = _FILE_HEADER.size
    """Where the last valid record ends."""
    torn: int = 0
    """Bytes after the last valid record (a torn write, or damage the scan stopped in)."""
    complete: bool = True
    """False when the scan stopped before the end (version 1 damage, or a forged file)."""

    @property
    def damaged_records(self) -> int:
        return sum(n for _, _, n in self.damaged)

    @property
    def damaged_bytes(self) -> int:
        return sum(b for _, b, _ in self.damaged)

    def summary(self) -> str:
        """One phrase for the user: what was skipped, or '' when nothing was."""
        parts = []
        if self.damaged:
            parts.append(f"skipped {self.damaged_records} damaged records "
                         f"({self.damaged_bytes} bytes)")
        if self.torn:
            parts.append(f"{self.torn} bytes after the last valid record ignored"
                         + ("" if self.complete else " (not checked further)"))
        return "; ".join(parts)


def _check_header(head: bytes, path: Path) -> int:
    if len(head) < _FILE_HEADER.size or head[:8] != MAGIC:
        raise StreamFileError(f"{path} is not a stream recording (no {MAGIC!r} header); "
                              "record one with handmesh-stream record")
    _, version, _ = _FILE_HEADER.unpack(head[:_FILE_HEADER.size])
    if version not in READABLE_VERSIONS:
        raise StreamFileError(f"{path}: stream file version {version}, this handmesh reads "
                              f"versions {', '.join(map(str, READABLE_VERSIONS))}: update it")
    return version


def _crc(f, offset: int, n: int) -> int:
    """CRC32 of ``n`` bytes at ``offset``, read a chunk at a time (bounded memory)."""
    f.seek(offset)
    crc = 0
    while n > 0:
        chunk = f.read(min(n, _CHUNK))
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        n -= len(chunk)
    return crc


class _Scanner:
    def __init__(self, f, size: int) -> None:
        self.f, self.size = f, size
        self.budget = _VERIFY_BUDGET * size + MAX_RECORD_BYTES

    def header_at(self, pos: int) -> tuple[int, float, int] | None:
        """``(length, t_receive, message crc)`` of a record header that checks out, or None."""
        self.f.seek(pos)
        head = self.f.read(_RECORD.size)
        if len(head) < _RECORD.size:
            return None
        mark, n, t, crc, head_crc = _RECORD.unpack(head)
        if mark != MARK or zlib.crc32(head[:-4]) != head_crc:
            return None
        if n > MAX_RECORD_BYTES or pos + _RECORD.size + n > self.size:
            return None
        return n, t, crc

    def valid_at(self, pos: int) -> tuple[int, float] | None:
        head = self.header_at(pos)
        if head is None:
            return None
        n, t, crc = head
        if _crc(self.f, pos + _RECORD.size, n) != crc:
            self.budget -= n
            return None
        return n, t

    def next_valid(self, start: int) -> tuple[int | None, int]:
        """The next valid record at or after ``start`` and how many markers were passed."""
        passed = 0
        pos = start
        while pos < self.size and self.budget > 0:
            self.f.seek(pos)
            chunk = self.f.read(_CHUNK + len(MARK) - 1)
            at = chunk.find(MARK)
            while 0 <= at < _CHUNK and self.budget > 0:  # later ones: the next chunk
                if self.valid_at(pos + at) is not None:
                    return pos + at, passed
                passed += 1
                at = chunk.find(MARK, at + 1)
            if len(chunk) < len(MARK):
                break
            pos += _CHUNK
        return None, passed


def scan(path: str | Path) -> ScanResult:
    """Every valid record of a stream file, the damaged stretches between them and the torn
    tail after them (see :class:`ScanResult`); raises StreamFileError for a foreign file."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        version = _check_header(f.read(_FILE_HEADER.size), path)
        if version == 1:
            return _scan_v1(f, size)
        out = ScanResult(version)
        scanner = _Scanner(f, size)
        pos = _FILE_HEADER.size
        while pos < size:
            got = scanner.valid_at(pos)
            if got is not None:
                n, t = got
                out.records.append((pos + _RECORD.size, t, n))
                pos += _RECORD.size + n
                continue
            f.seek(pos)
            here = f.read(len(MARK)) == MARK
            nxt, passed = scanner.next_valid(pos + 1)
            if nxt is None:
                out.complete = scanner.budget > 0
                break
            out.damaged.append((pos, nxt - pos, max(1, here + passed)))
            pos = nxt
        out.end = pos
        out.torn = size - pos
    return out


def _scan_v1(f, size: int) -> ScanResult:
    """Version 1: records until the first one that does not check out (no way past it)."""
    out = ScanResult(1)
    pos = _FILE_HEADER.size
    while pos < size:
        head = f.read(_RECORD_V1.size)
        if len(head) < _RECORD_V1.size:
            break
        n, t, crc = _RECORD_V1.unpack(head)
        if n > MAX_RECORD_BYTES or pos + _RECORD_V1.size + n > size:
            break
        if _crc(f, pos + _RECORD_V1.size, n) != crc:
            break
        out.records.append((pos + _RECORD_V1.size, t, n))
        pos += _RECORD_V1.size + n
        f.seek(pos)
    out.end, out.torn = pos, size - pos
    out.complete = out.torn == 0
    return out


def read_records(path: str | Path, scanned: ScanResult) -> Iterator[Record]:
    """The records of a scan, read one at a time."""
    with open(path, "rb") as f:
        for offset, t, n in scanned.records:
            f.seek(offset)
            yield Record(t, f.read(n))


def read_stream(path: str | Path) -> Iterator[Record]:
    """Every valid record in order; damage and a torn tail are logged and skipped."""
    path = Path(path)
    scanned = scan(path)
    if scanned.summary():
        log.warning("%s: %s", path, scanned.summary())
    yield from read_records(path, scanned)


class StreamWriter:
    """Appends records to a stream file, one flushed ``write`` each (``with`` closes it).

    An existing file is appended to, after cutting off a torn tail in which the scan found no
    valid record (never anything that validates; damage between valid records stays, the
    readers skip it). Refused: a version 1 file, and a file whose end could not be checked
    (a record appended after it might never be found). ``fsync=True`` also forces each
    record to disk (survives a power cut, costs a disk round trip).
    """

    def __init__(self, path: str | Path, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.records = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            scanned = scan(self.path)
            if scanned.version != VERSION:
                raise StreamFileError(
                    f"{self.path} is a version {scanned.version} stream file; this handmesh "
                    f"appends only to version {VERSION} files: record into a new file")
            if scanned.damaged:
                log.warning("%s: %s (kept: replays skip them)", self.path, scanned.summary())
            if not scanned.complete:  # a record appended there might never be found
                raise StreamFileError(
                    f"{self.path}: the {scanned.torn} bytes after its last valid record could "
                    "not be checked (too many forged record headers): not appending to it; "
                    "record into a new file")
            if scanned.torn:
                log.warning("%s: cutting off a torn tail of %d bytes (no valid record in it) "
                            "before appending", self.path, scanned.torn)
                os.truncate(self.path, scanned.end)
            self._f = open(self.path, "ab")
        else:
            self._f = open(self.path, "wb")
            self._f.write(_FILE_HEADER.pack(MAGIC, VERSION, 0))
            self._f.flush()

    def write(self, message: bytes, t_receive: float | None = None) -> None:
        msg = bytes(message)
        if len(msg) > MAX_RECORD_BYTES:
            raise ValueError(f"a message of {len(msg)} bytes is over the stream file's "
                             f"{MAX_RECORD_BYTES}-byte record limit")
        t = time.time() if t_receive is None else float(t_receive)
        self._f.write(pack_record(msg, t))
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


def pack_record(message: bytes, t_receive: float) -> bytes:
    """One version-2 record: marker, length, time, both CRCs and the message."""
    head = struct.pack("<4sIdI", MARK, len(message), t_receive, zlib.crc32(message))
    return head + struct.pack("<I", zlib.crc32(head)) + message
