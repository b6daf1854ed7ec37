"""Frame sources: webcam, video file, image folder, hands file, behind one small interface.

Why one interface: the loop (detector, estimator, renderer) must not care whether frames come
from a live camera or a file, and tests must drive it with real files. After lerobot's
cameras, every source has a lifecycle: ``open()`` / ``read()`` / ``close()``, usable as a
context manager and as an iterator::

    with open_source(SourceConfig("clip.mp4")) as source:
        for frame in source:
            ...

Frames are :class:`~realtime.types.Frame` records: ``(H,W,3)`` uint8 BGR images, a running
``index`` from 0, a timestamp in seconds (``time.monotonic()`` at grab for cameras,
``index / fps`` for files and folders: deterministic, so recorded runs replay exactly) and
the camera they were captured with (``config.camera``: a calibration, a known camera, or a
guess from the field of view), resolved here once per image size.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from calibration.camera import Camera
from calibration.intrinsics import CameraIntrinsics
from realtime.errors import SourceError
from realtime.io.camera import CameraConfig, CameraResolver
from realtime.io.sample import is_sample, sample_intrinsics
from realtime.types import Frame

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff",
)
HANDS_FILE_SUFFIX = ".jsonl"
"""A source spec ending so is a hands file (``hands.jsonl``), replayed."""
DEFAULT_FOLDER_FPS: float = 30.0
"""Timestamp rate of image folders (and of videos whose header says 0 fps)."""
CAMERA_FIRST_FRAME_TIMEOUT_S: float = 2.0
"""A camera that delivers no first frame within this time is reported as unusable."""
CAMERA_MAX_FAILED_READS: int = 5
"""Consecutive failed grabs after which a running camera counts as lost (unplugged)."""
MAX_CAMERA_INDEX: int = 9999
"""Largest camera index tried (OpenCV's indices are small; 200+ pick a backend, e.g. 200+n
V4L2); a larger one is a typo, refused before OpenCV sees it."""
MIN_IMAGE_SIDE: int = 32
"""Images narrower or lower than this (pixels) hold no detectable hand: refused."""
MAX_IMAGE_SIDE: int = 4096
"""Images are scaled down so that their longer side is at most this (pixels); keypoints
and intrinsics are then those of the scaled image."""
MAX_IMAGE_PIXELS: int = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
"""Largest image (width x height) decoded at full size, checked on the file's header
before decoding (16.8 MP, 50 MB decoded); larger ones are refused, except JPEGs."""
MAX_JPEG_SIDE: int = 8 * MAX_IMAGE_SIDE
"""JPEGs are decoded at 1/2, 1/4 or 1/8 scale straight from the file, never at full size,
so they may be up to 8 x :data:`MAX_IMAGE_SIDE` on a side."""
MAX_IMAGE_FILE_BYTES: int = 64 * 1024 * 1024
"""Image files larger than this are refused unread."""

_CAMERA_HINT = (
    "Check the cable/permissions, try another index with --source 1, "
    "or pass a video file with --source clip.mp4"
)


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from and what to ask a camera for.

    ``spec``: a camera index ("0"), a device path ("/dev/video0"), a video file, an image
    file, a folder of images, or a hands file (``.jsonl``, replayed). ``width``/``height``
    (pixels) and ``fps`` are requests to a camera, which may grant other values (the granted
    ones are logged); files ignore ``width``/``height``; an image folder uses ``fps`` for
    its timestamps (default 30). ``mirror`` flips frames horizontally (selfie view).
    ``camera``: which camera the frames carry. ``loop``: a hands file starts again at its
    end (other sources ignore it).
    """

    spec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    mirror: bool = False
    camera: CameraConfig = field(default_factory=CameraConfig)
    loop: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.spec, str) or not self.spec.strip():
            raise ValueError(f"spec must be a non-empty string, got {self.spec!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if self.fps is not None:
            fps = self.fps
            if (isinstance(fps, bool) or not isinstance(fps, (int, float))
                    or not math.isfinite(fps) or fps <= 0):
                raise ValueError(f"fps must be a positive finite number or None, got {fps!r}")


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Any image OpenCV hands us -> ``(H,W,3)`` uint8 BGR, what every later stage expects."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise SourceError(f"unsupported image shape {image.shape}: expected gray, BGR or BGRA")


def _natural_key(path: Path) -> list[int | str]:
    """Sort key so that img2 comes before img10 (and case does not matter)."""
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r"(\d+)", path.name)]


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log while probing cameras: we report failures ourselves, in one
    clear line, instead of a wall of backend warnings (V4L2, obsensor, ...)."""
    set_level = getattr(cv2, "setLogLevel", None)
    get_level = getattr(cv2, "getLogLevel", None)
    if set_level is None or get_level is None:
        utils_logging = getattr(getattr(cv2, "utils", None), "logging", None)
        if utils_logging is None:
            yield
            return
        set_level, get_level = utils_logging.setLogLevel, utils_logging.getLogLevel
    previous = get_level()
    set_level(0)  # LOG_LEVEL_SILENT: even "ERROR: camera index out of range" is noise here
    try:
        yield
    finally:
        set_level(previous)


class Source(ABC):
    """A stream of frames with a lifecycle: ``open()``, ``read()`` until None, ``close()``.

    Subclasses implement ``_open``/``_read_image``/``_close``; this base class owns the
    state checks (double open, read before open), the running frame index, mirroring and the
    conversion to BGR, so every backend behaves the same.
    """

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self._is_open = False
        # read() and close() never overlap: releasing a VideoCapture while the capture thread
        # is inside cap.read() deadlocks (seen on SIGTERM mid-run); close waits for the frame
        self._io_lock = threading.RLock()
        self._next_index = 0
        self._fps: float | None = None
        self._size: tuple[int, int] | None = None
        self._cameras: CameraResolver | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Acquire the device or file; raises SourceError with what to do if it can't."""
        if self._is_open:
            raise SourceError(f"{self.name} is already open; close() it before opening again")
        self._next_index = 0
        # The camera first: a calibration file that cannot be read is reported before a
        # device is taken or a file decoded.
        self._cameras = CameraResolver(self.config.camera, self._default_camera())
        self._open()
        self._is_open = True
        if self._size is not None and min(self._size) < MIN_IMAGE_SIDE:
            self.close()  # a 1x1 video: nothing to find, and no encoder takes it
            raise SourceError(f"{self.name}: frames of {self._size[0]}x{self._size[1]} pixels "
                              f"are too small for a hand (at least {MIN_IMAGE_SIDE}x"
                              f"{MIN_IMAGE_SIDE})")

    def read(self) -> Frame | None:
        """The next frame, or None at the end of a file or folder (never for a camera)."""
        with self._io_lock:
            if not self._is_open:
                raise SourceError(f"{self.name} is not open: call open() or use `with source:`")
            return self._read_frame()

    def _read_frame(self) -> Frame | None:
        """An image from the backend as a :class:`Frame` (sources of whole frames override)."""
        item = self._read_image()
        if item is None:
            return None
        image, timestamp = item
        image = to_bgr(image)
        if self.config.mirror:
            image = cv2.flip(image, 1)
        frame = Frame(image=image, index=self._next_index, timestamp=timestamp,
                      source=self.name, camera=self.camera_for((image.shape[1],
                                                                image.shape[0])))
        self._next_index += 1
        return frame

    def camera_for(self, size: tuple[int, int]) -> Camera:
        """The camera of a frame of ``size`` (w, h) from this source (known after open())."""
        if self._cameras is None:
            raise SourceError(f"{self.name}: the camera is known only after open()")
        return self._cameras.for_size(size)

    @property
    def camera(self) -> Camera:
        """The camera of the first frame's size (known after open()). A calibration made
        for another aspect ratio (a crop) raises ``CalibrationError``: it cannot be used."""
        if self._cameras is None:
            raise SourceError(f"{self.name}: the camera is known only after open()")
        return self._cameras.for_size(self.size, strict=True)

    def _default_camera(self) -> CameraIntrinsics | None:
        """A camera this source knows without being told (the built-in sample's)."""
        return None

    def close(self) -> None:
        """Release the device or file; safe to call twice (and on a never-opened source)."""
        with self._io_lock:
            if not self._is_open:
                return
            self._is_open = False
            self._close()

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        """Frames until the end of the file (forever for a camera); the source stays open."""
        while (frame := self.read()) is not None:
            yield frame

    def __del__(self) -> None:
        # A forgotten close() must not keep a webcam busy for other programs.
        with contextlib.suppress(Exception):
            self.close()

    # -- properties ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    @abstractmethod
    def name(self) -> str:
        """Short human-readable name, used in messages and as ``Frame.source``."""

    @property
    def is_live(self) -> bool:
        """True for cameras: frames are real time, consumers should drop rather than queue."""
        return False

    @property
    def provides_hands(self) -> bool:
        """True when frames come with their hands (a hands file): nothing to detect."""
        return False

    @property
    def fps(self) -> float:
        """Frames per second: granted by the camera, from the file, or the folder's rate."""
        if self._fps is None:
            raise SourceError(f"{self.name}: fps is known only after open()")
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels of the first frame, known after open()."""
        if self._size is None:
            raise SourceError(f"{self.name}: size is known only after open()")
        return self._size

    @property
    def frame_count(self) -> int | None:
        """Number of frames in a file or folder; None for cameras (or if unknown)."""
        return None

    def _require_cap(self) -> cv2.VideoCapture:
        """The open VideoCapture of a camera/video source (typing aid; never None when open)."""
        cap = getattr(self, "_cap", None)
        if cap is None:
            raise SourceError(f"{self.name} is not open: call open() or use `with source:`")
        return cap

    # -- backend hooks ---------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Acquire resources; set ``self._fps`` and ``self._size``."""

    def _read_image(self) -> tuple[np.ndarray, float] | None:
        """(image, timestamp in seconds), or None at the end (image backends implement it)."""
        raise NotImplementedError

    @abstractmethod
    def _close(self) -> None:
        """Release resources."""


def _read_first_frame(cap: cv2.VideoCapture,
                      timeout_s: float) -> tuple[np.ndarray, float] | None:
    """First grab on a worker thread, because some drivers block forever on a dead camera.

    Returns (image, time.monotonic() at grab); on failure or timeout returns None and
    releases ``cap`` (after the stuck grab returns, if it is stuck: releasing a capture in the
    middle of a grab can crash the driver).
    """
    result: list[tuple[np.ndarray, float]] = []

    def grab() -> None:
        with contextlib.suppress(cv2.error):
            if cap.grab():
                stamp = time.monotonic()
                ok, image = cap.retrieve()
                if ok and image is not None and image.size > 0:
                    result.append((image, stamp))

    worker = threading.Thread(target=grab, name="camera-first-frame", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        threading.Thread(target=lambda: (worker.join(), cap.release()), daemon=True).start()
        return None
    if not result:
        cap.release()
        return None
    return result[0]


def _open_capture(target: int | str) -> cv2.VideoCapture:
    """VideoCapture for an index or device path (V4L2 for /dev/video* paths on Linux)."""
    if isinstance(target, str) and target.startswith("/dev/video"):
        return cv2.VideoCapture(target, cv2.CAP_V4L2)
    return cv2.VideoCapture(target)


MJPG_ABOVE_FPS = 30.0
"""Above this rate a camera is asked for MJPG first: over USB 2 most webcams offer 60 FPS at
640x480 only compressed (raw YUYV stops at 30); one that cannot keeps its format."""


def capture_requests(config: SourceConfig) -> list[tuple[int, float]]:
    """The ``cv2.VideoCapture`` properties a camera is asked for, in order: MJPG when the
    rate asked is above ``MJPG_ABOVE_FPS``, width, height, then the frame rate (V4L2 picks
    the rate among those of the granted format and size, so the rate comes last)."""
    wanted: list[tuple[int, float | None]] = []
    if config.fps is not None and config.fps > MJPG_ABOVE_FPS:
        wanted.append((cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG")))
    wanted += [(cv2.CAP_PROP_FRAME_WIDTH, config.width),
               (cv2.CAP_PROP_FRAME_HEIGHT, config.height), (cv2.CAP_PROP_FPS, config.fps)]
    return [(prop, float(value)) for prop, value in wanted if value is not None]


def fps_shortfall(requested: float | None, granted: float) -> str | None:
    """A one-line note when the camera grants a lower frame rate than asked (None if not):
    a 60 FPS request answered with 30 halves what the pipeline can show."""
    if requested is None or granted >= requested - 0.5:
        return None
    return (f"asked for {requested:g} fps, the camera gives {granted:g}: at this size it may "
            "not offer more (try a smaller --width/--height, or check `v4l2-ctl "
            "--list-formats-ext`)")


def _camera_target(spec: str) -> int | str:
    spec = spec.strip()
    if not spec.isdigit():
        return spec
    if int(spec) > MAX_CAMERA_INDEX:
        raise SourceError(f"camera index {spec} is out of range (0-{MAX_CAMERA_INDEX}): "
                          "pass a camera index such as 0, a device path such as /dev/video0, "
                          "or a video file")
    return int(spec)


class CameraSource(Source):
    """A webcam via ``cv2.VideoCapture``, by index ("0") or device path ("/dev/video0")."""

    def __init__(self, config: SourceConfig) -> None:
        super().__init__(config)
        self._target = _camera_target(config.spec)
        self._cap: cv2.VideoCapture | None = None
        self._pending: tuple[np.ndarray, float] | None = None

    @property
    def name(self) -> str:
        return f"camera {self._target}"

    @property
    def is_live(self) -> bool:
        return True

    def _open(self) -> None:
        cfg = self.config
        with _quiet_opencv():
            cap = _open_capture(self._target)
            if not cap.isOpened():
                cap.release()
                raise SourceError(
                    f"{self.name} could not be opened (no such device, or busy in another "
                    f"program). {_CAMERA_HINT}"
                )
            for prop, value in capture_requests(cfg):
                cap.set(prop, value)
            first = _read_first_frame(cap, CAMERA_FIRST_FRAME_TIMEOUT_S)
        if first is None:  # cap already released by _read_first_frame
            raise SourceError(
                f"{self.name} opened but gave no frame within "
                f"{CAMERA_FIRST_FRAME_TIMEOUT_S:g} s (busy in another program, or not a "
                f"capture device). {_CAMERA_HINT}"
            )
        self._cap = cap
        self._pending = first
        height, width = first[0].shape[:2]
        self._size = (int(width), int(height))
        granted_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(granted_fps) or granted_fps <= 0:
            granted_fps = float(cfg.fps) if cfg.fps is not None else DEFAULT_FOLDER_FPS
        self._fps = granted_fps
        logger.info("%s: %dx%d at %.1f fps (requested %sx%s at %s fps)", self.name, width,
                    height, granted_fps, cfg.width or "default", cfg.height or "default",
                    cfg.fps or "default")
        if ((cfg.width is not None and cfg.width != width)
                or (cfg.height is not None and cfg.height != height)):
            logger.info("%s: the camera did not grant the requested size", self.name)
        shortfall = fps_shortfall(cfg.fps, granted_fps)
        if shortfall is not None:
            logger.warning("%s: %s", self.name, shortfall)

    def _read_image(self) -> tuple[np.ndarray, float] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        cap = self._require_cap()
        for attempt in range(1, CAMERA_MAX_FAILED_READS + 1):
            ok = cap.grab()
            stamp = time.monotonic()
            if ok:
                ok, image = cap.retrieve()
                if ok and image is not None and image.size > 0:
                    return image, stamp
            logger.warning("%s: grab failed (%d/%d in a row)", self.name, attempt,
                           CAMERA_MAX_FAILED_READS)
        raise SourceError(
            f"{self.name} stopped delivering frames ({CAMERA_MAX_FAILED_READS} failed grabs "
            f"in a row): was it unplugged or taken by another program? {_CAMERA_HINT}"
        )

    def _close(self) -> None:
        self._pending = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoSource(Source):
    """A video file decoded by OpenCV (FFmpeg); timestamps are ``index / fps``."""

    def __init__(self, config: SourceConfig) -> None:
        super().__init__(config)
        self.path = Path(config.spec).expanduser()
        self._cap: cv2.VideoCapture | None = None
        self._pending: np.ndarray | None = None
        self._frame_count: int | None = None
        self._ended = False

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def frame_count(self) -> int | None:
        """Frame count from the container header (None if it does not say); may be off."""
        return self._frame_count

    def _default_camera(self) -> CameraIntrinsics | None:
        """The built-in sample ships the camera it was rendered with: no guess needed."""
        return sample_intrinsics() if is_sample(self.path) else None

    def _open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        first = None
        if cap.isOpened():
            with contextlib.suppress(cv2.error):
                ok, image = cap.read()
                if ok and image is not None and image.size > 0:
                    first = image
        if first is None:
            cap.release()
            raise SourceError(
                f"cannot read video {self.path}: not a video OpenCV can decode "
                f"(corrupt or unsupported codec)"
            )
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0:
            logger.warning("%s: the file gives no frame rate; timestamps assume %g fps",
                           self.name, DEFAULT_FOLDER_FPS)
            fps = DEFAULT_FOLDER_FPS
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._cap = cap
        self._pending = first
        self._fps = fps
        self._size = (int(first.shape[1]), int(first.shape[0]))
        self._frame_count = count if count > 0 else None
        self._ended = False

    def _read_image(self) -> tuple[np.ndarray, float] | None:
        if self._ended:
            return None
        index = self._next_index
        timestamp = index / self.fps
        if self._pending is not None:
            image, self._pending = self._pending, None
            return image, timestamp
        cap = self._require_cap()
        try:
            ok, image = cap.read()
        except cv2.error as exc:
            logger.warning("%s: decoding error at frame %d (%s); ending the stream, "
                           "keeping the %d frames read", self.name, index, exc, index)
            self._ended = True
            return None
        if not ok or image is None or image.size == 0:
            self._ended = True
            if self._frame_count is not None and index < self._frame_count:
                logger.warning("%s: read failed at frame %d of %d (truncated or corrupt "
                               "file?); ending the stream, keeping the %d frames read",
                               self.name, index, self._frame_count, index)
            return None
        return image, timestamp

    def _close(self) -> None:
        self._pending = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageFolderSource(Source):
    """The images of a folder in natural order (img2 before img10), or one image file.

    Timestamps are ``index / fps`` with ``fps`` from the config (default 30). ``size`` is the
    first image's; later images keep their own size.
    """

    def __init__(self, config: SourceConfig) -> None:
        super().__init__(config)
        self.path = Path(config.spec).expanduser()
        self._files: list[Path] = []
        self._position = 0
        self._pending: np.ndarray | None = None
        self._frame_files: list[Path] = []  # frame index -> its file (unreadable ones skipped)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def frame_count(self) -> int | None:
        return len(self._files) if self._is_open else None

    @property
    def files(self) -> list[Path]:
        """The image files found at open(), in the order they are read."""
        return list(self._files)

    def file_of(self, index: int) -> Path:
        """The file frame ``index`` was read from (files that could not be read are skipped,
        so the two counts can differ)."""
        return self._frame_files[index]

    def _open(self) -> None:
        if self.path.is_dir():
            try:
                files = [p for p in self.path.iterdir()
                         if p.is_file() and not p.name.startswith(".")
                         and p.suffix.lower() in IMAGE_EXTENSIONS]
            except OSError as exc:
                raise SourceError(f"cannot list the folder {self.path} ({exc.strerror}): "
                                  "check its permissions") from exc
            if not files:
                raise SourceError(f"no images in folder {self.path} "
                                  f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
            files.sort(key=_natural_key)
        elif self.path.is_file():
            files = [self.path]
        else:
            raise SourceError(f"no such file or folder: {self.path}")
        self._files = files
        self._position = 0
        self._frame_files = []
        self._fps = float(self.config.fps) if self.config.fps is not None else DEFAULT_FOLDER_FPS
        # the first readable image now, so that size is known after open; unreadable ones
        # before it are skipped like later ones, and a folder of none is refused
        first_error: SourceError | None = None
        while self._position < len(files):
            try:
                self._pending = load_image(files[self._position])
                break
            except SourceError as exc:
                if len(files) == 1:
                    raise
                first_error = first_error or exc
                logger.warning("skipping an image: %s", exc)
                self._position += 1
        else:
            raise SourceError(f"no readable image in folder {self.path} ({len(files)} "
                              f"skipped; the first: {first_error})")
        self._size = (int(self._pending.shape[1]), int(self._pending.shape[0]))

    def _read_image(self) -> tuple[np.ndarray, float] | None:
        image, self._pending = self._pending, None
        while image is None:
            if self._position >= len(self._files):
                return None
            try:
                image = load_image(self._files[self._position])
            except SourceError as exc:  # one bad file in a folder: say which, go on
                logger.warning("skipping an image: %s", exc)
                self._position += 1
        self._frame_files.append(self._files[self._position])
        self._position += 1
        return image, self._next_index / self.fps

    def _close(self) -> None:
        self._pending = None


def image_header_size(path: Path) -> tuple[str, int, int] | None:
    """``(format, width, height)`` from an image file's header, nothing decoded (Pillow
    reads headers lazily); None when Pillow does not know the file."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's decompression-bomb warning: we check
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as im:
                return str(im.format or ""), int(im.size[0]), int(im.size[1])
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def load_image(path: Path) -> np.ndarray:
    """An image file -> BGR, within the size limits; :class:`SourceError` naming the file
    and the problem otherwise.

    Checked before decoding, on the file size and the header: at most
    :data:`MAX_IMAGE_FILE_BYTES`, at least :data:`MIN_IMAGE_SIDE` a side, at most
    :data:`MAX_IMAGE_PIXELS` (JPEGs: :data:`MAX_JPEG_SIDE` a side, decoded at a reduced
    scale). Returned with its longer side at most :data:`MAX_IMAGE_SIDE`.
    """
    try:
        nbytes = path.stat().st_size
    except OSError as exc:
        raise SourceError(f"{path} cannot be read ({exc.strerror}); check its permissions"
                          ) from exc
    if nbytes > MAX_IMAGE_FILE_BYTES:
        raise SourceError(f"{path} is {nbytes / 2**20:.0f} MB, over the "
                          f"{MAX_IMAGE_FILE_BYTES // 2**20} MB limit for an image")
    flags = cv2.IMREAD_COLOR
    header = image_header_size(path)
    if header is not None:
        kind, w, h = header
        if min(w, h) < MIN_IMAGE_SIDE:
            raise SourceError(f"{path} is {w}x{h} pixels, too small for a hand (at least "
                              f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE})")
        jpeg = kind == "JPEG"
        if (max(w, h) > MAX_JPEG_SIDE) if jpeg else (w * h > MAX_IMAGE_PIXELS):
            limit = (f"{MAX_JPEG_SIDE} pixels a side for a JPEG" if jpeg else
                     f"{MAX_IMAGE_PIXELS / 1e6:.1f} megapixels (JPEGs: {MAX_JPEG_SIDE} a side)")
            raise SourceError(f"{path} is {w}x{h} pixels, over the limit of {limit}: scale "
                              f"it down to at most {MAX_IMAGE_SIDE} pixels a side")
        if jpeg and max(w, h) > MAX_IMAGE_SIDE:
            scale = next(s for s in (2, 4, 8) if max(w, h) <= s * MAX_IMAGE_SIDE or s == 8)
            flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                     8: cv2.IMREAD_REDUCED_COLOR_8}[scale]
    # imdecode(fromfile) rather than imread: imread fails on non-ASCII paths on Windows.
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        image = cv2.imdecode(data, flags) if data.size else None
    except (OSError, cv2.error, MemoryError):
        image = None
    if image is None:
        raise SourceError(f"{path} is not a readable image (corrupt, empty or not an "
                          f"image despite its extension); remove or replace it")
    h, w = image.shape[:2]
    if min(w, h) < MIN_IMAGE_SIDE:  # a format Pillow does not read
        raise SourceError(f"{path} is {w}x{h} pixels, too small for a hand (at least "
                          f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE})")
    if max(w, h) > MAX_IMAGE_SIDE:
        f = MAX_IMAGE_SIDE / max(w, h)
        image = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))),
                           interpolation=cv2.INTER_AREA)
    return image


def open_source(config: SourceConfig) -> Source:
    """The right (unopened) source for ``config.spec``; call ``open()`` or use ``with``.

    Digits or /dev/video* -> camera; a folder -> its images; a file with an image extension
    -> that single image; a ``.jsonl`` file -> a hands file, replayed; any other existing
    file -> video. A missing path raises here, so a typo is reported before any model is
    loaded.
    """
    spec = config.spec.strip()
    if spec.isdigit() or spec.startswith("/dev/video"):
        return CameraSource(config)
    path = Path(spec).expanduser()
    if path.suffix.lower() == HANDS_FILE_SUFFIX:
        from realtime.io.hands_file_source import HandsFileSource

        return HandsFileSource(config)
    if path.is_dir():
        return ImageFolderSource(config)
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageFolderSource(config)
        return VideoSource(config)
    raise SourceError(f"no such file or folder: {spec}")


def is_photo_spec(spec: str) -> bool:
    """Whether ``spec`` names photos (an image file or a folder), as :func:`open_source`
    decides; False for cameras, videos, hands files and missing paths."""
    spec = spec.strip()
    if spec.isdigit() or spec.startswith("/dev/video"):
        return False
    path = Path(spec).expanduser()
    if path.suffix.lower() == HANDS_FILE_SUFFIX:
        return False
    return path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS


def camera_available(index: int = 0) -> bool:
    """Whether camera ``index`` opens and delivers a frame; never raises, quiet, <~2 s.

    Used by the demo to fall back to a built-in sample clip on machines without a webcam.
    """
    try:
        with _quiet_opencv():
            cap = _open_capture(index)
            if not cap.isOpened():
                cap.release()
                return False
            if _read_first_frame(cap, CAMERA_FIRST_FRAME_TIMEOUT_S) is None:
                return False  # cap released by _read_first_frame
            cap.release()
        return True
    except Exception:  # noqa: BLE001 - a probe must never take the demo down
        logger.debug("camera %d probe failed", index, exc_info=True)
        return False
