"""Hostile file inputs: crafted ``hands.jsonl`` replays and ``.hmstream`` files.

Each case writes one crafted file and hands it to a fresh process (the demo's replay,
``handmesh-stream replay``, or a :class:`StreamWriter` appending to it) with a timeout, then
checks the exit code (0: survived, 2: refused) and that the output names what was wrong
(file and line). The child measures its own peak memory after start-up (``VmHWM`` reset
through ``/proc/self/clear_refs``), so ``peak_growth_mb`` is what the file cost, not the
imports. :func:`run` gives one summary per surface; ``tests/test_hostile_files.py`` runs the
same cases.

::

    python -m benchmarks.hostile_cases.files          # prints the summaries
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120.0  # per case; generous on a loaded machine: a hang is far longer
FRAMES = 20  # frames in the good hands file
RECORDS = 155  # records in the good stream file


# -- the child process ----------------------------------------------------------------------
def _status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"^{k}:\s+(\d+)", text, re.MULTILINE).group(1))
            for k in ("VmRSS", "VmHWM")}


def _child(kind: str, result: str, argv: list[str]) -> None:
    """Start up (imports, warm-up), note the idle memory, handle the file, report peaks."""
    if kind == "demo":
        from models.hand_model import HandModel
        from realtime.cli.demo import main
        from realtime.render.raster import warmup

        warmup()
        HandModel.open_hand()

        def work() -> int:
            return main(argv)
    elif kind == "stream":
        import realtime.stream.replay  # noqa: F401 - imported before the idle point
        from realtime.cli.stream import main
        from realtime.stream.publisher import Publisher, PublisherConfig

        ports = _free_ports(2)  # the first publisher costs ~60 MB (models, zmq): warm-up
        Publisher(PublisherConfig(f"tcp://127.0.0.1:{ports[0]}",
                                  f"tcp://127.0.0.1:{ports[1]}")).close()

        def work() -> int:
            return main(argv)
    else:  # append one record, as `handmesh-stream record` would
        from realtime.stream.stream_file import StreamFileError, StreamWriter

        def work() -> int:
            try:
                with StreamWriter(argv[0]) as w:
                    w.write(b"status appended", time.time())
            except StreamFileError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print("appended 1 record")
            return 0
    idle = _status()["VmRSS"]
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    code = work()
    peak = _status()["VmHWM"]
    Path(result).write_text(json.dumps({"rc": code, "idle_kb": idle, "peak_kb": peak}))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as realtime.cli.entry: no native teardown at exit


@dataclass
class Outcome:
    """What one case did."""

    rc: int | None  # None: timed out
    output: str  # stdout + stderr
    growth_mb: float
    hang: bool

    @property
    def traceback(self) -> bool:
        return "Traceback" in self.output


def run_child(kind: str, argv: list[str], timeout_s: float = TIMEOUT_S) -> Outcome:
    """Run ``kind`` (demo, stream, append) on ``argv`` in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "benchmarks.hostile_cases.files", "--child", kind,
               str(result), *argv]
        try:
            p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"") + (exc.stderr or b"")
            return Outcome(None, out.decode(errors="replace") if isinstance(out, bytes)
                           else str(out), 0.0, True)
        growth = 0.0
        if result.exists():
            r = json.loads(result.read_text())
            growth = max(0.0, (r["peak_kb"] - r["idle_kb"]) / 1024)
        return Outcome(p.returncode, p.stdout + p.stderr, round(growth, 1), False)


# -- crafted hands files --------------------------------------------------------------------
_GOOD_LINES: list[dict] = []


def good_records() -> list[dict]:
    """Records of a sound recording: one right hand in each of :data:`FRAMES` frames."""
    if not _GOOD_LINES:
        from benchmarks.common import random_hand_mesh
        from calibration.intrinsics import CameraIntrinsics
        from models.hand_model import HandModel
        from realtime.io.hands_file import hand_to_record

        model = HandModel.open_hand()
        camera = CameraIntrinsics(500.0, 500.0, 320.0, 240.0, 640, 480)
        for i in range(FRAMES):
            hand = random_hand_mesh(model, "right", seed=i, track_id=1, score=0.9,
                                    timestamp=10 + i / 30, frame_index=i)
            _GOOD_LINES.append(hand_to_record(hand, camera=camera))
    return json.loads(json.dumps(_GOOD_LINES))  # a deep copy to spoil


def _lines(path: Path, records: list, tail: str = "") -> Path:
    with path.open("w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
        f.write(tail)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _spoil(where: int, **fields) -> Callable[[Path], Path]:
    """A good file whose record ``where`` (0-based; line ``where + 1``) has ``fields``."""
    def build(path: Path) -> Path:
        recs = good_records()
        for key, value in fields.items():
            if key.startswith("camera."):
                recs[where]["camera"][key[7:]] = value
            else:
                recs[where][key] = value(recs[where][key]) if callable(value) else value
        return _lines(path, recs)
    return build


def _each(fn: Callable[[int, dict], None]) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        recs = good_records()
        for i, r in enumerate(recs):
            fn(i, r)
        return _lines(path, recs)
    return build


def _nan_all(i: int, r: dict) -> None:
    for key in ("joints", "vertices", "vertex_std", "keypoints_2d", "pose", "shape"):
        r[key] = _nans(r[key])


def _nans(value):
    return [_nans(v) for v in value] if isinstance(value, list) else float("nan")


def _shift(after: int, key: str, by: float) -> Callable[[int, dict], None]:
    def fn(i: int, r: dict) -> None:
        if i >= after:
            r[key] += by
    return fn


def _many_hands(path: Path) -> Path:
    recs = good_records()
    extra = [dict(recs[3], track_id=100 + k) for k in range(40)]
    return _lines(path, recs[:4] + extra + recs[4:])


def _mixed_sizes(i: int, r: dict) -> None:
    w, h = [(640, 480), (1920, 1200), (1920, 1080), (1280, 720), (320, 240)][i % 5]
    r["camera"] = {"fx": w * 0.8, "fy": w * 0.8, "cx": w / 2, "cy": h / 2, "width": w,
                   "height": h}


def _garbage_line(path: Path) -> Path:
    recs = good_records()
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in recs[:5])
                     + os.urandom(3000).replace(b"\n", b"x") + b"\n"
                     + b"".join(json.dumps(r).encode() + b"\n" for r in recs[5:]))
    return path


@dataclass(frozen=True)
class Case:
    """One hostile input: how to build it, what the process must do and say."""

    name: str
    build: Callable[[Path], Path]
    rc: int  # 0: survives (and replays the rest), 2: refused
    says: str  # the output contains this ({file}: the crafted file's path)
    quick: bool = True
    fast: bool = True  # --fast (unpaced); False for the pacing cases
    argv: tuple[str, ...] = field(default=())


HANDS_CASES: list[Case] = [
    Case("huge_camera", _spoil(0, **{"camera.width": 100000, "camera.height": 100000}), 2,
         "{file}:1: refusing to replay this camera: image 100000x100000"),
    Case("huge_camera_mid_file", _spoil(7, **{"camera.width": 100000, "camera.height": 1}), 2,
         "{file}:8: refusing to replay this camera: image 100000x1", quick=False),
    Case("fx_1e300", _spoil(0, **{"camera.fx": 1e300}), 2, "{file}:1: refusing to replay "
         "this camera: implausible focal length fx=1e+300"),
    Case("fx_1e-300", _spoil(2, **{"camera.fx": 1e-300}), 2, "{file}:3: refusing to replay "
         "this camera: implausible focal length fx=1e-300", quick=False),
    Case("width_inf", _spoil(0, **{"camera.width": 1e400}), 2, "{file} is not a hands file "
         "(line 1: bad field", quick=False),
    Case("line_6mb", lambda p: _lines(p, good_records()[:3], "[" + "0," * (3 << 20) + "0]\n"),
         2, "{file}:4: not a hands record (longer than 2,097,152 bytes"),
    Case("nested_1m_deep", lambda p: _lines(p, good_records()[:3], "[" * 1_000_000 + "\n"), 2,
         "{file}:4: not a hands record (not JSON: nested too deep"),
    Case("digits_10k", lambda p: _lines(p, good_records()[:3], "1" * 10_000 + "\n"), 2,
         "{file}:4: not a hands record (not JSON", quick=False),
    Case("nan_joints", _spoil(5, joints=lambda j: [[float("nan")] * 3] + j[1:]), 0,
         "{file}:6: hand skipped (joints not finite"),
    Case("inf_vertices", _spoil(5, vertices=lambda v: [[1e400, 0, 0]] + v[1:]), 0,
         "{file}:6: hand skipped (vertices not finite"),
    Case("joints_1e30", _spoil(6, joints=lambda j: [[x * 1e30 for x in p] for p in j]), 0,
         "{file}:7: hand skipped (joints out of range", quick=False),
    Case("vertex_count_mid_file", _spoil(9, vertices=lambda v: v[:100]), 0,
         "{file}:10: hand skipped (100 vertices, expected 1302)"),
    Case("vertices_60000", _spoil(9, vertices=[[0, 0, 0.5]] * 60000), 0,
         "{file}:10: hand skipped (60000 vertices, expected 1302)", quick=False),
    Case("short_vertex_std", _spoil(4, vertex_std=lambda s: s[:10]), 0,
         "{file}:5: hand skipped (vertex_std of shape (10,)"),
    Case("unknown_handedness", _spoil(2, handedness="middle"), 0,
         "{file}:3: hand skipped (handedness 'middle'"),
    Case("score_nan", _spoil(2, score=float("nan")), 0, "{file}:3: hand skipped (score nan",
         quick=False),
    Case("all_nan", _each(_nan_all), 2, "{file} has no valid hand to replay (first: line 1:"),
    Case("unknown_handedness_everywhere", _each(lambda i, r: r.update(handedness="middle")),
         2, "{file} has no valid hand to replay (first: line 1: handedness 'middle'",
         quick=False),
    Case("40_extra_hands_in_a_frame", _many_hands, 0, "hand skipped (more than 8 hands in "
         "frame 3)", quick=False),
    Case("mixed_camera_sizes", _each(_mixed_sizes), 0, "frames, hands in",
         quick=False),
    Case("camera_1920x1200_the_largest", _each(lambda i, r: r.update(camera={
        "fx": 1500.0, "fy": 1500.0, "cx": 960.0, "cy": 600.0, "width": 1920,
        "height": 1200})), 0, "frames, hands in", quick=False),
    Case("camera_4k_refused", _spoil(0, **{"camera.width": 3840, "camera.height": 2160}), 2,
         "{file}:1: refusing to replay this camera: image 3840x2160", quick=False),
    Case("timestamp_gap_1e6_s", _each(_shift(10, "timestamp", 1e6)), 0,
         "{file}:11: skipped a 1e+06 s gap in the timestamps", fast=False),
    Case("timestamps_backwards", _each(_shift(10, "timestamp", -1e6)), 0,
         "{file}:11: skipped a -1e+06 s gap", fast=False, quick=False),
    Case("frame_index_jump_1e12", _each(_shift(10, "frame_index", 10**12)), 0,
         "{file}:11: skipped a jump over 1000000000000 frame indices", fast=False),
    Case("frame_index_1e400", _spoil(4, frame_index=1e400), 2,
         "{file}:5: not a hands record (bad field"),
    Case("frame_index_negative", _spoil(0, frame_index=-5), 2,
         "(line 1: frame_index -5", quick=False),
    Case("timestamp_nan", _spoil(4, timestamp=float("nan")), 2,
         "{file}:5: not a hands record (timestamp nan)"),
    Case("garbage_line", _garbage_line, 2, "{file}:6: not a hands record (not JSON"),
    Case("schema_99", _spoil(0, schema=99), 2, "schema 99", quick=False),
    Case("truncated_last_line", lambda p: _lines(p, good_records()[:-1],
                                                 json.dumps(good_records()[-1])[:500]), 0,
         "{file}:20: the last line is truncated"),
    Case("empty", lambda p: _bytes(p, b""), 2, "no complete hand records",
         quick=False),
]


def hands_argv(path: Path, out: Path, case: Case) -> list[str]:
    return ["--replay", str(path), "--output", str(out), "--headless", "--no-video",
            *(["--fast"] if case.fast else []), *case.argv]


# -- crafted stream files -------------------------------------------------------------------
def good_stream(path: Path, records: int = RECORDS, dt: float = 0.001) -> list[bytes]:
    """A version-2 stream file of ``hands`` messages (~15 kB each); their bytes."""
    import numpy as np

    from realtime.stream import protocol
    from realtime.stream.stream_file import StreamWriter

    rng = np.random.default_rng(0)
    msgs = []
    with StreamWriter(path) as w:
        for i in range(records):
            verts = rng.normal(0, 0.05, (1302, 3)).astype("<f4")
            msg = protocol.encode(b"hands", {"seq": i + 1, "hands": []},
                                  [({"track_id": 1}, {"vertices": verts})])
            w.write(msg, 1000.0 + i * dt)
            msgs.append(msg)
    return msgs


def _record_offsets(path: Path) -> list[int]:
    from realtime.stream.stream_file import scan

    return [offset - 24 for offset, _, _ in scan(path).records]  # the record headers


def _flip(record: int, at: int) -> Callable[[Path], Path]:
    """Flip one byte ``at`` bytes into record ``record`` (0: its marker)."""
    def build(path: Path) -> Path:
        good_stream(path)
        data = bytearray(path.read_bytes())
        data[_record_offsets(path)[record] + at] ^= 0xFF
        path.write_bytes(bytes(data))
        return path
    return build


def _huge_length(path: Path) -> Path:
    """Record 51's header claims 4 GB (and carries a matching header CRC)."""
    good_stream(path)
    off = _record_offsets(path)[50]
    data = bytearray(path.read_bytes())
    mark, _, t, crc, _ = struct.unpack_from("<4sIdII", data, off)
    head = struct.pack("<4sIdI", mark, 0xFFFFFFFF, t, crc)
    data[off:off + 24] = head + struct.pack("<I", zlib.crc32(head))
    path.write_bytes(bytes(data))
    return path


def _cut(fraction: float) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        good_stream(path)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])
        return path
    return build


def _header_only(path: Path) -> Path:
    path.write_bytes(b"HMSTREAM" + struct.pack("<II", 2, 0))
    return path


def _garbage_after_header(path: Path) -> Path:
    path.write_bytes(b"HMSTREAM" + struct.pack("<II", 2, 0) + os.urandom(1 << 20))
    return path


def _garbage_in_middle(path: Path) -> Path:
    good_stream(path)
    off = _record_offsets(path)[60]
    data = path.read_bytes()
    path.write_bytes(data[:off] + os.urandom(300_000) + data[off:])
    return path


def _forged_headers(path: Path) -> Path:
    """Records, then thousands of headers with valid header CRCs whose bodies are wrong,
    each claiming a large body: resynchronising must not hash for ever."""
    from realtime.stream.stream_file import MARK

    good_stream(path, 20)
    forged = b""
    for _ in range(3000):
        head = struct.pack("<4sIdI", MARK, 1 << 20, 1.0, 0)
        forged += head + struct.pack("<I", zlib.crc32(head)) + b"\0" * 1000
    with path.open("ab") as f:
        f.write(forged)
    return path


def _version_1(path: Path) -> Path:
    """The previous format: no marker, no header CRC."""
    out = b"HMSTREAM" + struct.pack("<II", 1, 0)
    for i in range(10):
        msg = b"status " + b"x" * 100
        out += struct.pack("<IdI", len(msg), 1000.0 + i * 0.001, zlib.crc32(msg)) + msg
    path.write_bytes(out)
    return path


def _times(values: Callable[[int], float]) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        from realtime.stream.stream_file import StreamWriter

        with StreamWriter(path) as w:
            for i in range(30):
                w.write(b"status {}", values(i))
        return path
    return build


STREAM_CASES: list[Case] = [
    Case("flipped_byte_in_record_51_of_155", _flip(50, 5000), 0,
         "sent 154 messages; skipped 1 damaged records"),
    Case("flipped_marker", _flip(50, 0), 0, "sent 154 messages; skipped 1 damaged records"),
    Case("flipped_length", _flip(50, 5), 0, "skipped 1 damaged records", quick=False),
    Case("claimed_4gb_record", _huge_length, 0, "sent 154 messages; skipped 1 damaged"),
    Case("torn_tail", _cut(0.7), 0, "bytes after the last valid record ignored"),
    Case("garbage_in_middle", _garbage_in_middle, 0, "skipped 1 damaged records (300000 "
         "bytes)", quick=False),
    Case("forged_headers", _forged_headers, 0, "sent 20 messages", quick=False),
    Case("header_only_loop", _header_only, 2, "{file} has no valid record to replay",
         argv=("--loop",)),
    Case("header_only", _header_only, 2, "{file} has no valid record to replay", quick=False),
    Case("garbage_only_loop", _garbage_after_header, 2, "{file} has no valid record to "
         "replay (", argv=("--loop",)),
    Case("not_a_stream", lambda p: _bytes(p, os.urandom(5000)), 2,
         "{file} is not a stream recording"),
    Case("empty_file", lambda p: _bytes(p, b""), 2,
         "{file} is not a stream recording", quick=False),
    Case("version_99", lambda p: _bytes(p, b"HMSTREAM" + struct.pack("<II", 99, 0)),
         2, "stream file version 99", quick=False),
    Case("version_1_still_read", _version_1, 0, "sent 10 messages", quick=False),
    Case("gap_1e6_s", _times(lambda i: 1000.0 + i * 0.001 + (1e6 if i >= 15 else 0)), 0,
         "cut a 1e+06 s pause to 1 s"),
    Case("time_nan_and_backwards", _times(
        lambda i: [float("nan"), -1e300, 1e300, float("inf")][i % 4]), 0, "sent 30 messages",
         quick=False),
]


def stream_argv(path: Path, case: Case) -> list[str]:
    ports = _free_ports(2)
    return ["replay", str(path), "--publish", f"tcp://127.0.0.1:{ports[0]}",
            "--topology-endpoint", f"tcp://127.0.0.1:{ports[1]}", *case.argv]


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


#: Damage before an append: the stream cases that leave valid records behind.
APPEND_CASES: list[Case] = [
    Case("flipped_byte_then_append", _flip(50, 5000), 0, "appended 1 record"),
    Case("flipped_marker_then_append", _flip(50, 0), 0, "appended 1 record"),
    Case("claimed_4gb_then_append", _huge_length, 0, "appended 1 record"),
    Case("torn_tail_then_append", _cut(0.7), 0, "cutting off a torn tail"),
    Case("garbage_in_middle_then_append", _garbage_in_middle, 0, "appended 1 record",
         quick=False),
    Case("forged_headers_then_append", _forged_headers, 2, "could not be checked",
         quick=False),
    Case("version_1_refused", _version_1, 2, "is a version 1 stream file"),
]


# -- running ------------------------------------------------------------------------------
def _said(case: Case, path: Path, outcome: Outcome) -> bool:
    return case.says.format(file=path) in outcome.output


def run_case(surface: str, case: Case, folder: Path) -> dict:
    """Build and run one case; what happened, as a dict (``ok``: all as expected)."""
    suffix = ".jsonl" if surface == "hands_jsonl_replay" else ".hmstream"
    path = case.build(folder / f"{case.name}{suffix}")
    lost = 0
    if surface == "hands_jsonl_replay":
        outcome = run_child("demo", hands_argv(path, folder / f"{case.name}_out", case))
    elif surface == "hmstream_replay":
        outcome = run_child("stream", stream_argv(path, case))
    else:
        from realtime.stream.stream_file import read_records, scan

        before_bytes = path.read_bytes()
        before = [r.message for r in read_records(path, scan(path))]
        outcome = run_child("append", [str(path)])
        after = [r.message for r in read_records(path, scan(path))]
        kept = after[:len(before)]
        lost = sum(1 for m in before if m not in kept)
        if outcome.rc != 0 and path.read_bytes() != before_bytes:
            lost = max(lost, 1)  # a refused append must leave the file as it was
        if outcome.rc == 0 and after[len(before):] != [b"status appended"]:
            lost = max(lost, 1)
    crash = (not outcome.hang and (outcome.traceback or outcome.rc != case.rc))
    return {"case": case.name, "rc": outcome.rc, "hang": outcome.hang, "crash": crash,
            "clear": _said(case, path, outcome), "growth_mb": outcome.growth_mb,
            "records_lost": lost, "output": outcome.output[-2000:]}


SURFACES = {"hands_jsonl_replay": HANDS_CASES, "hmstream_replay": STREAM_CASES,
            "hmstream_append": APPEND_CASES}


def run(quick: bool = False) -> list[dict]:
    """One summary per file surface: cases tried, crashes, hangs, unclear messages, the
    largest peak memory growth over the idle process (and records lost, for appends)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for surface, cases in SURFACES.items():
            results = []
            for case in cases:
                if quick and not case.quick:
                    continue
                folder = Path(tmp) / surface
                folder.mkdir(exist_ok=True)
                results.append(run_case(surface, case, folder))
            summary = {"surface": surface, "cases": len(results),
                       "crashes": sum(r["crash"] for r in results),
                       "hangs": sum(r["hang"] for r in results),
                       "unclear": sum(not r["clear"] for r in results),
                       "peak_growth_mb": max((r["growth_mb"] for r in results), default=0.0)}
            if surface == "hmstream_append":
                summary["records_lost"] = sum(r["records_lost"] for r in results)
            bad = [r["case"] for r in results if r["crash"] or r["hang"] or not r["clear"]]
            if bad:
                summary["failed_cases"] = bad
            out.append(summary)
    return out


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4:])
    print(run(quick="--quick" in sys.argv))
