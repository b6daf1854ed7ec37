"""A hands file as a source: the recorded hands stream again, without a camera or MediaPipe.

For developing the consumers of the stream (a Unity scene, a robot controller) at a desk:
``handmesh --source demo_output/hands.jsonl`` publishes the recorded hands at the recorded
rate, drawn over a neutral canvas the size of the recorded camera image.
:class:`HandsFileSource` is a :class:`~realtime.io.sources.Source` like a camera or a video
(``open_source`` picks it for a ``.jsonl`` file); its frames carry their hands
(``Frame.hands``) and their recorded camera (``Frame.camera``), so the pipeline needs no
detector and no estimator for them.

The file has one record per hand per frame (``realtime.io.hands_file``), so frames without hands
are not in it: between two recorded frames the replay yields an empty frame for every
missing index (timestamps interpolated), so a hand that was lost is lost in the replay too;
frames before the first and after the last hand are unknown and not replayed.

Damage is reported, never skipped silently: a missing file, a file that is not a hands file
or a malformed line in the middle raise :class:`SourceError` naming the line. A truncated
*last* line (its writer was killed mid-line: the line has no newline and is not JSON) is the
one exception: the complete records before it replay, and the broken line is logged as a
warning and counted in ``truncated_line``, because that is what a crash leaves behind and
everything before it is sound.

Nothing in the file decides how much is allocated or how long the replay waits (limits in
``realtime.validate`` and below; docs/inputs.md): a line longer than
:data:`MAX_LINE_BYTES`, a camera larger than 4K or of implausible intrinsics, a non-finite or
out-of-range frame index or timestamp refuse the file naming the line; a hand that fails
:func:`~realtime.validate.hand_problem` (NaN or far-away coordinates, a wrong vertex count, an
unknown side) or is one too many in its frame is skipped with a warning naming the line and
counted in ``skipped_hands``. A pause longer than ``max_gap_s`` or an index jump of more than
:data:`MAX_FILLER_FRAMES` is skipped (noted with its line, counted in ``skipped_gaps``).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from calibration.camera import Camera
from calibration.errors import CalibrationError
from calibration.intrinsics import CameraIntrinsics, guess_intrinsics
from realtime.errors import SourceError
from realtime.io.hands_file import READABLE_SCHEMAS, REQUIRED_FIELDS, record_camera, record_to_hand
from realtime.io.sources import Source, SourceConfig
from realtime.types import Frame, HandMesh
from realtime.validate import MAX_FRAME_INDEX, MAX_HANDS_PER_FRAME, camera_problem, hand_problem

log = logging.getLogger(__name__)

DEFAULT_SIZE: tuple[int, int] = (640, 480)
"""Canvas (width, height) in pixels for schema 1 files, whose records have no camera."""
DEFAULT_FPS: float = 30.0
"""Rate assumed when the timestamps do not tell (a single frame, equal timestamps)."""
FPS_PROBE_FRAMES: int = 120
"""Frames read at ``open()`` to estimate the rate and find the camera."""
MAX_LINE_BYTES: int = 2 << 20
"""A record of a 1302-vertex hand is about 52 kB; a longer line than 2 MiB is refused unread."""
MAX_GAP_S: float = 5.0
"""Pauses between recorded frames longer than this are skipped (the next frame follows)."""
MAX_FILLER_FRAMES: int = 1000
"""Empty frames replayed at most for the indices missing between two recorded frames."""
FPS_RANGE: tuple[float, float] = (0.1, 1000.0)
"""The estimated rate is clamped to this (the video writer and the pacing need a sane one)."""
MAX_WARNINGS: int = 10
"""Skipped hands and gaps reported one by one, per file; the rest are counted."""
_CACHED_SIZES = 2  # canvases and cameras kept for frames of a few sizes, not one per record


@dataclass
class _Group:
    index: int
    timestamp: float  # as replayed: skipped gaps removed
    camera: CameraIntrinsics | None
    hands: list[HandMesh]
    shift: float = 0.0  # replayed minus recorded timestamp


def canvas(width: int, height: int) -> np.ndarray:
    """A dark grey vertical gradient, ``(H,W,3)`` uint8 BGR: hands stand out, no camera."""
    column = np.linspace(56, 22, height, dtype=np.float64).astype(np.uint8)
    image = np.repeat(np.repeat(column[:, None, None], width, axis=1), 3, axis=2)
    image.setflags(write=False)  # shared by every frame of this size; sinks draw on copies
    return image


class HandsFileSource(Source):
    """The frames of a hands file: ``open()``, ``read()`` until None, ``close()``.

    ``read()`` returns a :class:`Frame`: a neutral canvas the size of the recorded camera
    image, with the recorded frame index and timestamp (so pacing by timestamp plays at the
    recorded rate), the recorded camera and the recorded hands of that frame (``hands``).
    ``config.loop`` starts again at the end, forever: frame indices, frame timestamps and
    the hands' ``frame_index``/``timestamp`` continue (shifted by one file length per pass).
    """

    def __init__(self, config: SourceConfig, default_size: tuple[int, int] = DEFAULT_SIZE,
                 max_gap_s: float = MAX_GAP_S) -> None:
        super().__init__(config)
        if not (math.isfinite(max_gap_s) and max_gap_s > 0):
            raise ValueError(f"max_gap_s must be a positive number of seconds, got {max_gap_s}")
        self.path = Path(config.spec).expanduser()
        self.loop = config.loop
        self.default_size = default_size
        self.max_gap_s = max_gap_s
        self.truncated_line: int | None = None
        self.skipped_hands = 0  # invalid hands left out (first pass)
        self.skipped_gaps = 0  # pauses and index jumps left out (first pass)
        self._warnings = 0
        self._first_bad: str | None = None  # the first skipped hand of the last read
        self.passes = 0
        self.frames_read = 0
        self.vertex_count = 0  # vertices per hand in the file; 0 for a joints-only file
        self._fps = DEFAULT_FPS  # estimated from the recorded timestamps at open()
        self._camera: CameraIntrinsics | None = None
        self._camera_cache: dict[CameraIntrinsics, Camera] = {}
        self._groups: Generator[_Group, None, None] | None = None
        self._canvases: dict[tuple[int, int], np.ndarray] = {}
        self._first: _Group | None = None
        self._last: _Group | None = None
        self._index_offset = 0
        self._time_offset = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def _open(self) -> None:
        """Check the file and read its start (rate, camera); raises SourceError if unusable."""
        if self.config.mirror:
            log.info("mirroring does not apply to a hands file: the hands replay as recorded")
        if self.path.is_dir():
            raise SourceError(f"{self.path} is a folder: pass the hands.jsonl file in it")
        if not self.path.is_file():
            raise SourceError(f"no such hands file: {self.path}")
        # the probe keeps no hands: a file of huge hands costs one group at a time
        probe: list[_Group] = []
        counts: Counter[int] = Counter()
        self.vertex_count = None  # any count while probing; the commonest one after
        self.skipped_hands = self.skipped_gaps = self._warnings = 0
        groups = self._read_groups(warn=False)
        first_bad: str | None = None
        try:
            for group in groups:
                counts.update(len(h.vertices) for h in group.hands)
                probe.append(replace(group, hands=[]))
                if len(probe) >= FPS_PROBE_FRAMES:
                    break
            else:
                first_bad = self._first_bad
        finally:
            groups.close()
        if not counts and first_bad is not None:
            raise SourceError(f"{self.path} has no valid hand to replay (first: {first_bad}); "
                              "re-record it")
        if not probe:
            raise SourceError(f"{self.path} has no complete hand records to replay")
        self._fps = _estimate_fps(probe)
        self._camera = next((g.camera for g in probe if g.camera is not None), None)
        self.vertex_count = counts.most_common(1)[0][0] if counts else 0
        self.skipped_hands = self.skipped_gaps = self._warnings = 0
        if self._camera is None:
            self._camera = guess_intrinsics(*self.default_size)
            log.warning("%s: records have no camera (schema 1): drawing on a %dx%d canvas "
                        "with a guessed camera", self.name, *self.default_size)
        self.truncated_line = None
        self.passes = 0
        self.frames_read = 0
        self._index_offset, self._time_offset = 0, 0.0
        self._first = self._last = None
        self._groups = self._read_groups(warn=True)
        self._size = (self._camera.width, self._camera.height)

    def _read_frame(self) -> Frame | None:
        """The next frame with its hands, or None at the end (never when looping)."""
        if self._groups is None:
            raise SourceError(f"{self.name} is not open: call open() or use `with source:`")
        group = next(self._groups, None)
        if group is None:
            if not self.loop or self._first is None or self._last is None:
                return None
            self._next_pass()
            group = next(self._groups, None)
            if group is None:
                return None
        if self._first is None:
            self._first = group
        self._last = group
        camera = group.camera or self.recorded_camera
        size = (camera.width, camera.height)
        if size not in self._canvases:
            if len(self._canvases) >= _CACHED_SIZES:
                self._canvases.clear()
            self._canvases[size] = canvas(*size)
        hands = group.hands
        if self.passes:
            hands = [replace(h, frame_index=h.frame_index + self._index_offset,
                             timestamp=h.timestamp + self._time_offset) for h in hands]
        frame = Frame(image=self._canvases[size], index=group.index + self._index_offset,
                      timestamp=group.timestamp + self._time_offset, source=self.name,
                      camera=self._as_camera(camera), hands=tuple(hands))
        self.frames_read += 1
        return frame

    def _close(self) -> None:
        if self._groups is not None:
            self._groups.close()
            self._groups = None
        if self.skipped_hands or self.skipped_gaps:
            log.warning("%s: skipped %d invalid hands, %d gaps (see the warnings above)",
                        self.path, self.skipped_hands, self.skipped_gaps)

    # -- properties ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def provides_hands(self) -> bool:
        return True

    @property
    def recorded_camera(self) -> CameraIntrinsics:
        """The camera of the first record that has one (a guess for schema 1 files)."""
        if self._camera is None:
            raise SourceError(f"{self.name}: the camera is known only after open()")
        return self._camera

    @property
    def camera(self) -> Camera:
        """The recorded camera (of the first record that has one; a guess for schema 1)."""
        return self.camera_for(self.size)

    def camera_for(self, size: tuple[int, int]) -> Camera:
        """The recorded camera at ``size`` (scaled when a canvas of another size asks)."""
        recorded = self.recorded_camera
        if size == (recorded.width, recorded.height):
            return self._as_camera(recorded)
        return self._as_camera(recorded.scaled_to(*size))

    def _as_camera(self, intrinsics: CameraIntrinsics) -> Camera:
        camera = self._camera_cache.get(intrinsics)
        if camera is None:
            if len(self._camera_cache) >= _CACHED_SIZES:
                self._camera_cache.clear()
            camera = self._camera_cache[intrinsics] = Camera.pinhole(intrinsics, "recorded camera")
        return camera


    # -- reading ---------------------------------------------------------------------------
    def _next_pass(self) -> None:
        """Start the file again, indices and timestamps continuing after the last frame."""
        if self._first is None or self._last is None:
            return
        self._index_offset += self._last.index - self._first.index + 1
        self._time_offset += self._last.timestamp - self._first.timestamp + 1.0 / self._fps
        self.passes += 1
        self._first = self._last = None
        self._groups = self._read_groups(warn=False)  # warned on the first pass

    def _read_groups(self, warn: bool) -> Generator[_Group, None, None]:
        """Records grouped by frame, with an empty frame for each index the file skips
        (at most :data:`MAX_FILLER_FRAMES`) and long pauses skipped."""
        pending: _Group | None = None
        shift = 0.0  # how much earlier than recorded the current frame is replayed
        for number, hand, camera in self._read_records(warn):
            if pending is not None and hand.frame_index == pending.index:
                if len(pending.hands) >= MAX_HANDS_PER_FRAME:
                    self._skip(warn, number, f"more than {MAX_HANDS_PER_FRAME} hands in frame "
                                             f"{pending.index}")
                elif any(h.track_id == hand.track_id for h in pending.hands):
                    self._skip(warn, number, f"a second hand of track {hand.track_id} in frame "
                                             f"{pending.index}")
                else:
                    pending.hands.append(_shifted(hand, pending.shift))
                continue
            fill = True
            if pending is not None:
                if hand.frame_index < pending.index:
                    raise SourceError(
                        f"{self.path}:{number}: frame_index {hand.frame_index} after "
                        f"{pending.index}: records must be in frame order (two recordings "
                        f"appended into one file?)")
                yield pending
                pause = hand.timestamp + shift - pending.timestamp
                if not 0.0 <= pause <= self.max_gap_s:
                    shift = pending.timestamp + 1.0 / self._fps - hand.timestamp
                    fill = False
                    self._note_gap(warn, number, f"skipped a {pause:.3g} s gap in the timestamps"
                                   f" (longer than {self.max_gap_s:g} s, or backwards)")
                missing = hand.frame_index - pending.index - 1
                if missing > MAX_FILLER_FRAMES:
                    fill = False
                    self._note_gap(warn, number, f"skipped a jump over {missing} frame indices "
                                   "(no empty frames replayed for them)")
            group = _Group(hand.frame_index, hand.timestamp + shift, camera,
                           [_shifted(hand, shift)], shift)
            if pending is not None and fill:
                yield from _gap(pending, group)
            pending = group
        if pending is not None:
            yield pending

    def _read_records(
        self, warn: bool
    ) -> Iterator[tuple[int, HandMesh, CameraIntrinsics | None]]:
        """``(line number, hand, camera or None)`` for every sound record; a damaged file
        raises naming the line, an unsound hand is skipped (:meth:`_skip`)."""
        first = True
        expected = self.vertex_count
        self._first_bad = None
        with self.path.open("rb") as f:
            number = 0
            while True:
                raw = f.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                number += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise self._bad_line(number, first, f"longer than {MAX_LINE_BYTES:,} "
                                         "bytes: not a hands record")
                line = raw.decode("utf-8", errors="replace")
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many digits
                    if not line.endswith("\n") and not first:
                        # The last line, cut short by a killed writer: keep what is complete.
                        self.truncated_line = number
                        if warn:
                            log.warning("%s:%d: the last line is truncated (the recording was "
                                        "cut off mid-line); replaying the %d complete lines "
                                        "before it", self.path, number, number - 1)
                        return
                    why = exc.msg if isinstance(exc, json.JSONDecodeError) else (
                        "nested too deep" if isinstance(exc, RecursionError) else str(exc))
                    raise self._bad_line(number, first, f"not JSON: {why}") from None
                hand, camera = self._check(record, number, first)
                first = False
                problem = hand_problem(hand, expected)
                if problem is not None:
                    self._skip(warn, number, problem)
                    continue
                yield number, hand, camera

    def _check(self, record: object, number: int,
               first: bool) -> tuple[HandMesh, CameraIntrinsics | None]:
        """The hand and camera of a record; raises if the record's structure is wrong."""
        if not isinstance(record, dict):
            raise self._bad_line(number, first, f"a JSON {type(record).__name__}, not a record")
        missing = [k for k in REQUIRED_FIELDS if k not in record]
        if missing:
            raise self._bad_line(number, first, f"missing {', '.join(missing)}")
        schema = record.get("schema", 1)
        if schema not in READABLE_SCHEMAS:
            raise self._bad_line(number, first, f"schema {repr(schema)[:20]} (this version "
                                 f"reads {', '.join(map(str, READABLE_SCHEMAS))}: update "
                                 "handmesh)")
        try:
            hand = record_to_hand(record)
            camera = record_camera(record)
        except (KeyError, TypeError, ValueError, OverflowError, CalibrationError) as exc:
            raise self._bad_line(number, first, f"bad field ({str(exc)[:200]})") from None
        if not math.isfinite(hand.timestamp):
            raise self._bad_line(number, first, f"timestamp {hand.timestamp}")
        if not 0 <= hand.frame_index <= MAX_FRAME_INDEX:
            raise self._bad_line(number, first, f"frame_index {hand.frame_index} (expected "
                                 f"0-{MAX_FRAME_INDEX})")
        problem = camera_problem(camera) if camera is not None else None
        if problem is not None:
            raise SourceError(f"{self.path}:{number}: refusing to replay this camera: {problem}: "
                              "not a camera handmesh records; fix that line's camera or re-record")
        return hand, camera

    def _skip(self, warn: bool, number: int, why: str) -> None:
        """Leave out one hand: counted, warned with its line (the first few), kept first."""
        if self._first_bad is None:
            self._first_bad = f"line {number}: {why}"
        if not warn:
            return
        self.skipped_hands += 1
        self._warn(f"{self.path}:{number}: hand skipped ({why})")

    def _note_gap(self, warn: bool, number: int, what: str) -> None:
        if warn:
            self.skipped_gaps += 1
            self._warn(f"{self.path}:{number}: {what}")

    def _warn(self, text: str) -> None:
        self._warnings += 1
        if self._warnings <= MAX_WARNINGS:
            log.warning("%s", text)
        elif self._warnings == MAX_WARNINGS + 1:
            log.warning("%s: more skipped hands or gaps; counted, not reported one by one",
                        self.path)

    def _bad_line(self, number: int, first: bool, why: str) -> SourceError:
        if first:
            return SourceError(f"{self.path} is not a hands file (line {number}: {why}); "
                               "expected the hands.jsonl written by handmesh")
        return SourceError(f"{self.path}:{number}: not a hands record ({why}); fix or delete "
                           "that line to replay the rest")


def _shifted(hand: HandMesh, shift: float) -> HandMesh:
    return replace(hand, timestamp=hand.timestamp + shift) if shift else hand


def _gap(before: _Group, after: _Group) -> Iterator[_Group]:
    """Empty frames for the indices between two recorded frames, timestamps interpolated."""
    steps = after.index - before.index
    for k in range(1, steps):
        t = before.timestamp + (after.timestamp - before.timestamp) * k / steps
        yield _Group(before.index + k, t, before.camera, [])


def _estimate_fps(groups: list[_Group]) -> float:
    """Median recorded frame rate: seconds per index step between consecutive frames,
    clamped to :data:`FPS_RANGE`."""
    index = np.array([g.index for g in groups], dtype=np.float64)
    stamp = np.array([g.timestamp for g in groups], dtype=np.float64)
    d_index, d_time = np.diff(index), np.diff(stamp)
    ok = (d_index > 0) & (d_time > 0)
    if not ok.any():
        return DEFAULT_FPS
    period = float(np.median(d_time[ok] / d_index[ok]))
    fps = 1.0 / period if period > 0 else DEFAULT_FPS
    return min(max(fps, FPS_RANGE[0]), FPS_RANGE[1])
