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
"""

from __future__ import annotations

import json
import logging
import math
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

log = logging.getLogger(__name__)

DEFAULT_SIZE: tuple[int, int] = (640, 480)
"""Canvas (width, height) in pixels for schema 1 files, whose records have no camera."""
DEFAULT_FPS: float = 30.0
"""Rate assumed when the timestamps do not tell (a single frame, equal timestamps)."""
FPS_PROBE_FRAMES: int = 120
"""Frames read at ``open()`` to estimate the rate and find the camera."""


@dataclass
class _Group:
    index: int
    timestamp: float
    camera: CameraIntrinsics | None
    hands: list[HandMesh]


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

    def __init__(self, config: SourceConfig, default_size: tuple[int, int] = DEFAULT_SIZE
                 ) -> None:
        super().__init__(config)
        self.path = Path(config.spec).expanduser()
        self.loop = config.loop
        self.default_size = default_size
        self.truncated_line: int | None = None
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
        probe: list[_Group] = []
        groups = self._read_groups(warn=False)
        try:
            for group in groups:
                probe.append(group)
                if len(probe) >= FPS_PROBE_FRAMES:
                    break
        finally:
            groups.close()
        if not probe:
            raise SourceError(f"{self.path} has no complete hand records to replay")
        self._fps = _estimate_fps(probe)
        self._camera = next((g.camera for g in probe if g.camera is not None), None)
        self.vertex_count = next((len(h.vertices) for g in probe for h in g.hands), 0)
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
        """Records grouped by frame, with an empty frame for each index the file skips."""
        pending: _Group | None = None
        for number, hand, camera in self._read_records(warn):
            if pending is not None and hand.frame_index == pending.index:
                pending.hands.append(hand)
                continue
            if pending is not None:
                if hand.frame_index < pending.index:
                    raise SourceError(
                        f"{self.path}:{number}: frame_index {hand.frame_index} after "
                        f"{pending.index}: records must be in frame order (two recordings "
                        f"appended into one file?)")
                yield pending
                yield from _gap(pending, hand)
            pending = _Group(hand.frame_index, hand.timestamp, camera, [hand])
        if pending is not None:
            yield pending

    def _read_records(
        self, warn: bool
    ) -> Iterator[tuple[int, HandMesh, CameraIntrinsics | None]]:
        """``(line number, hand, camera or None)`` for every record, checked line by line."""
        first = True
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    if not line.endswith("\n") and not first:
                        # The last line, cut short by a killed writer: keep what is complete.
                        self.truncated_line = number
                        if warn:
                            log.warning("%s:%d: the last line is truncated (the recording was "
                                        "cut off mid-line); replaying the %d complete lines "
                                        "before it", self.path, number, number - 1)
                        return
                    raise self._bad_line(number, first, f"not JSON: {exc.msg}") from exc
                yield (number, *self._check(record, number, first))
                first = False

    def _check(self, record: object, number: int,
               first: bool) -> tuple[HandMesh, CameraIntrinsics | None]:
        if not isinstance(record, dict):
            raise self._bad_line(number, first, f"a JSON {type(record).__name__}, not a record")
        missing = [k for k in REQUIRED_FIELDS if k not in record]
        if missing:
            raise self._bad_line(number, first, f"missing {', '.join(missing)}")
        schema = record.get("schema", 1)
        if schema not in READABLE_SCHEMAS:
            raise self._bad_line(number, first, f"schema {schema!r} (this version reads "
                                 f"{', '.join(map(str, READABLE_SCHEMAS))}: update handmesh)")
        try:
            hand = record_to_hand(record)
            camera = record_camera(record)
        except (KeyError, TypeError, ValueError, CalibrationError) as exc:
            raise self._bad_line(number, first, f"bad field ({exc})") from exc
        if hand.joints.shape != (21, 3):
            raise self._bad_line(number, first, f"joints of shape {hand.joints.shape}, "
                                 "expected (21, 3)")
        if not math.isfinite(hand.timestamp):
            raise self._bad_line(number, first, f"timestamp {hand.timestamp}")
        return hand, camera

    def _bad_line(self, number: int, first: bool, why: str) -> SourceError:
        if first:
            return SourceError(f"{self.path} is not a hands file (line {number}: {why}); "
                               "expected the hands.jsonl written by handmesh")
        return SourceError(f"{self.path}:{number}: not a hands record ({why}); fix or delete "
                           "that line to replay the rest")


def _gap(before: _Group, after: HandMesh) -> Iterator[_Group]:
    """Empty frames for the indices between two recorded frames, timestamps interpolated."""
    steps = after.frame_index - before.index
    for k in range(1, steps):
        t = before.timestamp + (after.timestamp - before.timestamp) * k / steps
        yield _Group(before.index + k, t, before.camera, [])


def _estimate_fps(groups: list[_Group]) -> float:
    """Median recorded frame rate: seconds per index step between consecutive frames."""
    index = np.array([g.index for g in groups], dtype=np.float64)
    stamp = np.array([g.timestamp for g in groups], dtype=np.float64)
    d_index, d_time = np.diff(index), np.diff(stamp)
    ok = (d_index > 0) & (d_time > 0)
    if not ok.any():
        return DEFAULT_FPS
    period = float(np.median(d_time[ok] / d_index[ok]))
    return 1.0 / period if period > 0 else DEFAULT_FPS
