"""The ``Detector`` interface, its config, and the choice between the two detectors.

Both run MediaPipe's bundled hand models (palm detection, hand landmarks; full or lite):
"scheduled" (the default, :mod:`realtime.detect.scheduled`) on our own schedule with
LiteRT, "mediapipe" (:mod:`realtime.detect.mediapipe_legacy`) as
``mediapipe.solutions.hands``, the reference. Either returns the same
:class:`~realtime.types.Detection` records.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Protocol, runtime_checkable

from realtime.detect.recall import RecallConfig
from realtime.types import Detection, Frame

DETECTOR_KINDS = ("scheduled", "mediapipe")
LANDMARK_MODELS = ("full", "lite", "adaptive")
PRECISIONS = ("auto", "fp32", "fp16")  # the landmark model's arithmetic (scheduled detector)
#: How often the landmark model runs on each tracked hand (scheduled detector): "every"
#: frame (MediaPipe's), or "alternate": with two hands the model runs on one per frame, in
#: turn, and optical flow carries the other (``realtime.detect.flow_tracking``).
LANDMARK_REFRESH = ("every", "alternate")
#: Most hands per image: what a hands file may hold per frame (``realtime.validate``).
MAX_HANDS = 8
#: ``--max-hands`` when not given: a camera or video (tracked, real time), photos.
DEFAULT_MAX_HANDS, PHOTO_MAX_HANDS = 2, 4


@runtime_checkable
class Detector(Protocol):
    """``process(frame)`` once per frame, in order; ``close()`` when done."""

    def process(self, frame: Frame) -> list[Detection]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DetectorConfig:
    """Which detector, and how it finds hands.

    ``landmarks`` (scheduled only): "full", "lite" or "adaptive" (lite on two-hand frames
    when full does not fit the frame budget); None follows ``model_complexity`` (1: full,
    0: lite), so both detectors run the same models by default. ``static_image_mode``:
    every frame is an unrelated photo (no tracking). ``mirrored``: frames are flipped like
    a selfie view (MediaPipe's handedness labels then need no swap). ``num_threads``: LiteRT
    threads per model (scheduled only; the cores of a laptop). ``max_num_hands``: 1 to
    :data:`MAX_HANDS`. ``precision`` (scheduled only): the landmark model's arithmetic,
    "fp32" (MediaPipe's), "fp16" (~1.5x less compute where the CPU has native fp16,
    landmarks ~0.3 px from fp32's; docs/detector.md) or "auto" (fp16 on such a CPU for
    tracked frames, fp32 for photos and elsewhere). ``recall``: photos only (needs
    ``static_image_mode``): run on flipped and padded copies too and merge
    (:mod:`realtime.detect.recall`); None: one pass. ``landmark_refresh`` (scheduled,
    tracking only): "every" (MediaPipe's) or "alternate" (two tracked hands: the landmark
    model on one per frame in turn, optical flow moves the other's 2D landmarks; ~0.6x the
    detector's CPU; docs/detector.md); None: "every" (the demo picks by frame rate,
    ``realtime.app.detector_for_rate``).
    """

    kind: Literal["scheduled", "mediapipe"] = "scheduled"
    max_num_hands: int = 2
    model_complexity: int = 1
    landmarks: str | None = None
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    static_image_mode: bool = False
    mirrored: bool = False
    num_threads: int = 2
    recall: RecallConfig | None = None
    frame_budget_ms: float | None = None  # adaptive: full landmarks while they cost less
    precision: str = "auto"
    landmark_refresh: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in DETECTOR_KINDS:
            raise ValueError(f"detector kind must be one of {DETECTOR_KINDS}, got {self.kind!r}")
        if (isinstance(self.max_num_hands, bool) or not isinstance(self.max_num_hands, int)
                or not 1 <= self.max_num_hands <= MAX_HANDS):
            raise ValueError(f"max_num_hands must be a whole number 1-{MAX_HANDS}, got "
                             f"{self.max_num_hands!r}")
        if self.model_complexity not in (0, 1):
            raise ValueError(f"model_complexity must be 0 or 1, got {self.model_complexity}")
        if self.landmarks is not None and self.landmarks not in LANDMARK_MODELS:
            raise ValueError(f"landmarks must be one of {LANDMARK_MODELS} or None, got "
                             f"{self.landmarks!r}")
        if self.landmarks is not None and self.kind == "mediapipe":
            raise ValueError(f"landmarks={self.landmarks!r} applies to the scheduled detector; "
                             "for mediapipe pick the model with model_complexity")
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 1 <= self.num_threads <= 64:
            raise ValueError(f"num_threads must be 1-64, got {self.num_threads}")
        if self.frame_budget_ms is not None and not self.frame_budget_ms > 0:
            raise ValueError(f"frame_budget_ms must be > 0 or None, got {self.frame_budget_ms}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.precision == "fp16" and self.kind == "mediapipe":
            raise ValueError("precision applies to the scheduled detector; MediaPipe's "
                             "legacy pipeline runs fp32")
        if self.landmark_refresh is not None and self.landmark_refresh not in LANDMARK_REFRESH:
            raise ValueError(f"landmark_refresh must be one of {LANDMARK_REFRESH} or None, "
                             f"got {self.landmark_refresh!r}")
        if self.landmark_refresh == "alternate" and self.kind == "mediapipe":
            raise ValueError(f"landmark_refresh={self.landmark_refresh!r} applies to the "
                             "scheduled detector; MediaPipe's legacy pipeline runs the model "
                             "on every hand on every frame")
        if self.landmark_refresh == "alternate" and self.static_image_mode:
            raise ValueError(f"landmark_refresh={self.landmark_refresh!r} carries hands from "
                             "frame to frame: not with static_image_mode (photos)")
        if self.recall is not None and not isinstance(self.recall, RecallConfig):
            raise ValueError(f"recall must be a RecallConfig or None, got "
                             f"{type(self.recall).__name__}")


def open_detector(config: DetectorConfig = DetectorConfig()) -> Detector:
    """The detector ``config.kind`` names, ready to ``process`` frames (close it after);
    with ``config.recall``, wrapped to run on each image's variants."""
    if config.recall is not None:
        if not config.static_image_mode:
            raise ValueError("recall mode is for photos (an image file or a folder of "
                             "images, static_image_mode=True); a video or camera is tracked "
                             "frame to frame, where extra passes per frame cost real time")
        from realtime.detect.recall import RecallDetector

        return RecallDetector(open_detector(replace(config, recall=None)), config.recall,
                              config.max_num_hands)
    if config.kind == "mediapipe":
        from realtime.detect.mediapipe_legacy import MediaPipeDetector

        return MediaPipeDetector(config)
    from realtime.detect.scheduled import ScheduledDetector, ScheduledDetectorConfig

    return ScheduledDetector(ScheduledDetectorConfig(
        max_num_hands=config.max_num_hands,
        landmarks=config.landmarks or ("full" if config.model_complexity == 1 else "lite"),
        min_detection_confidence=config.min_detection_confidence,
        min_tracking_confidence=config.min_tracking_confidence,
        static_image_mode=config.static_image_mode, mirrored=config.mirrored,
        num_threads=config.num_threads, precision=config.precision,
        landmark_refresh=config.landmark_refresh or "every",
        **({} if config.frame_budget_ms is None else {"frame_budget_ms": config.frame_budget_ms})))
