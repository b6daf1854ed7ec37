"""Our hand detector: MediaPipe's bundled models on our own schedule.

MediaPipe's legacy pipeline runs the palm detector on *every* frame while fewer hands are
tracked than ``max_num_hands`` (so on every frame with one hand in view), and its two hands'
landmark models take turns on one core (measured: its CPU time per two-hand frame is about
its wall time). Here the palm detector runs only when a hand is missing: on the first
frame, on the frame after a track is lost, every frame while no hand is tracked, every
``palm_interval_frames`` while fewer than ``max_num_hands`` are, and on the next frames again
while a weaker untracked palm box hints at a hand coming into view. Each tracked hand's
landmarks come from the rotated crop predicted by its previous landmarks, exactly as
MediaPipe's ``HandLandmarkLandmarksToRoi`` does, and two hands' crops go through the model
in one batched call on all ``num_threads`` threads. The pre/post-processing is MediaPipe's
own (:mod:`realtime.detect.hand_rois`), so landmarks agree with MediaPipe's to a small fraction of
a pixel on the same crop.

Handedness follows :mod:`realtime.detect.mediapipe_legacy`: the model's label assumes a
mirrored selfie, so it is swapped unless ``mirrored=True``.

Landmark model choice (``landmarks``): "full" (MediaPipe's model complexity 1), "lite"
(complexity 0), or "adaptive": full while its measured per-frame cost fits
``frame_budget_ms``, lite on frames with two or more hands when it does not (a slow CPU).

Landmark refresh (``landmark_refresh``): "every" (MediaPipe's: the model on every tracked hand
on every frame) or "alternate": while two or more hands are tracked and no palm detection
runs, the model runs on half of them per frame (with two: one, in turn, each hand the frame
after its last run) and every other hand is carried to the new frame by sparse optical flow
on its 21 landmarks (:mod:`realtime.detect.flow_tracking`); its world landmarks, depth and
side stay from its last model run, and its ``Detection.flow_tracked`` is True. Where the
flow fails the model runs on that hand too; one hand, a palm-detection frame or a lost
track: the usual schedule.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from realtime.detect import flow_tracking as ft
from realtime.detect import hand_rois as hr
from realtime.detect.detector import LANDMARK_REFRESH, PRECISIONS
from realtime.detect.landmark_worker import LandmarkWorkerError
from realtime.detect.litert_models import (
    LandmarkModel,
    PalmModel,
    fp16_worker,
    mediapipe_model_dir,
    model_path,
    native_fp16,
)
from realtime.errors import ModelFileError
from realtime.types import Detection, Frame

log = logging.getLogger(__name__)

LANDMARK_MODES = ("full", "lite", "adaptive")
MAX_BATCH = 4  # landmark models built per batch size (each a LiteRT interpreter)


@dataclass(frozen=True)
class ScheduledDetectorConfig:
    """Settings of the scheduled detector; the common fields follow
    :class:`realtime.detect.detector.DetectorConfig`, which builds it."""

    max_num_hands: int = 2
    landmarks: str = "full"  # full | lite | adaptive
    palm_model: str | None = None  # full | lite; None: as MediaPipe (lite only with lite)
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5  # hand presence below it ends a track
    static_image_mode: bool = False  # True: palm detection on every image, no tracking
    mirrored: bool = False
    palm_interval_frames: int = 5  # palm detection period while some hands are tracked
    hint_score: float = 0.2  # a weaker untracked palm box makes the next frame look again
    max_hint_frames: int = 15  # at most this many palm runs in a row on such hints
    frame_budget_ms: float = 20.0  # adaptive: full landmarks while they cost less than this
    num_threads: int = 2  # LiteRT threads per model (the number of cores on a laptop)
    batch_hands: bool = True  # several hands' crops in one landmark call (else one by one)
    split_hands: bool = False  # with batch_hands: each crop on its own thread and interpreter
    # landmark arithmetic: fp32 (MediaPipe's) | fp16 (native-fp16 CPUs) | auto (fp16 where
    # the CPU has it and frames are tracked, else fp32; see :func:`resolve_precision`)
    precision: str = "fp32"
    landmark_refresh: str = "every"  # every | alternate (two hands: model on one, flow other)
    flow: ft.FlowConfig = field(default_factory=ft.FlowConfig)  # alternate: flow settings
    model_dir: Path | None = None  # default: the installed mediapipe wheel's modules/

    def __post_init__(self) -> None:
        if not 1 <= self.max_num_hands <= 8:  # detector.MAX_HANDS
            raise ValueError(f"max_num_hands must be 1-8, got {self.max_num_hands}")
        if self.landmarks not in LANDMARK_MODES:
            raise ValueError(f"landmarks must be one of {LANDMARK_MODES}, got "
                             f"{self.landmarks!r}")
        if self.palm_model not in (None, "full", "lite"):
            raise ValueError(f"palm_model must be 'full' or 'lite', got {self.palm_model!r}")
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.palm_interval_frames < 1:
            raise ValueError(f"palm_interval_frames must be >= 1, got "
                             f"{self.palm_interval_frames}")
        if not 0.0 < self.hint_score <= 1.0:
            raise ValueError(f"hint_score must be in (0, 1], got {self.hint_score}")
        if self.max_hint_frames < 0:
            raise ValueError(f"max_hint_frames must be >= 0, got {self.max_hint_frames}")
        if self.frame_budget_ms <= 0:
            raise ValueError(f"frame_budget_ms must be > 0, got {self.frame_budget_ms}")
        if not 1 <= self.num_threads <= 64:
            raise ValueError(f"num_threads must be 1-64, got {self.num_threads}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.precision == "fp16" and self.split_hands:
            raise ValueError("precision='fp16' runs the crops batched: not with split_hands")
        if self.landmark_refresh not in LANDMARK_REFRESH:
            raise ValueError(f"landmark_refresh must be one of {LANDMARK_REFRESH}, got "
                             f"{self.landmark_refresh!r}")
        if self.landmark_refresh != "every" and self.static_image_mode:
            raise ValueError(f"landmark_refresh={self.landmark_refresh!r} carries hands "
                             "from frame to frame: not with static_image_mode (photos)")


def resolve_precision(config: ScheduledDetectorConfig) -> str:
    """The landmark arithmetic ``config.precision`` means on this machine: "auto" is fp16
    for tracked frames on a CPU with native fp16 (~25% less detector CPU per frame, which
    60 FPS needs; landmarks ~0.3 px from fp32's), and fp32 (MediaPipe's own arithmetic)
    for photos, where time matters less than matching MediaPipe, with ``split_hands``, and
    on other CPUs."""
    if config.precision != "auto":
        return config.precision
    if config.static_image_mode or config.split_hands or not native_fp16():
        return "fp32"
    return "fp16"


@dataclass
class _Hand:
    """A tracked hand: the crop for the next frame and where its landmarks were."""

    rect: np.ndarray  # (5,) NormalizedRect for the next frame
    box_px: np.ndarray  # (4,) xmin, ymin, xmax, ymax of its last landmarks, pixels
    detection: Detection | None = None  # its latest (alternate: what flow carries on)
    since_model: int = 0  # frames since the landmark model last ran on it
    from_palm: bool = False  # its landmarks came from a palm crop (first frame of a track)
    crop: ft.FlowCrop | None = None  # alternate: this frame's grayscale crop around it


class ScheduledDetector:
    """``process(frame) -> list[Detection]``: a ``Detector``, like the legacy one."""

    def __init__(self, config: ScheduledDetectorConfig = ScheduledDetectorConfig()) -> None:
        self.config = config
        model_dir = Path(config.model_dir) if config.model_dir else mediapipe_model_dir()
        # MediaPipe's model complexity 0 pairs the lite palm detector with lite landmarks
        palm = config.palm_model or ("lite" if config.landmarks == "lite" else "full")
        self.palm = PalmModel(model_path(model_dir, "palm", palm), config.num_threads)
        variants = ["full", "lite"] if config.landmarks == "adaptive" else [config.landmarks]
        # per variant and batch size (1 .. max_num_hands up to MAX_BATCH, or 1 alone
        # without batching); more crops than the largest batch go one by one
        sizes = range(1, (min(config.max_num_hands, MAX_BATCH) if config.batch_hands else 1)
                      + 1)
        specs = [(v, n) for v in variants for n in sizes]
        paths = {v: model_path(model_dir, "landmark", v) for v in variants}
        self.precision = resolve_precision(config)
        self._worker = None  # the fp16 models' process: one for all variants and sizes
        if self.precision == "fp16":
            try:
                self._worker = fp16_worker([(paths[v], n) for v, n in specs],
                                           config.num_threads)
            except (ModelFileError, LandmarkWorkerError) as exc:
                if config.precision != "auto":
                    raise
                log.warning("fp16 landmarks did not start (%s): running fp32", exc)
                self.precision = "fp32"
        slots = {spec: (self._worker.slot(i) if self._worker is not None else None)
                 for i, spec in enumerate(specs)}
        self.landmark_models = {
            v: {n: LandmarkModel(paths[v], config.num_threads, n, split=config.split_hands,
                                 fp16=slots[v, n])
                for n in sizes} for v in variants}
        self._hands: list[_Hand] = []
        self._since_palm = 0
        self._force_palm = True
        self._hint_streak = 0  # palm runs in a row triggered by hints
        self._full_ms_per_hand: float | None = None  # adaptive: running cost of full
        self._frames_on_lite = 0
        self.palm_runs = 0  # counters for benchmarks and the HUD
        self.landmark_runs = 0  # hands the landmark model ran on
        self.flow_runs = 0  # alternate: hands carried by flow (tried), and failed tries
        self.flow_failures = 0

    # -- schedule --------------------------------------------------------------------------
    def _wants_palm(self) -> bool:
        cfg = self.config
        if cfg.static_image_mode or self._force_palm or not self._hands:
            return True
        return len(self._hands) < cfg.max_num_hands and \
            self._since_palm >= cfg.palm_interval_frames

    def _new_rects(self, image: np.ndarray) -> tuple[list[np.ndarray], bool]:
        """Rects of palms that are not already tracked, best first, up to the free slots;
        and whether an untracked weaker palm box hints at a hand coming into view."""
        cfg = self.config
        h, w = image.shape[:2]
        boxes, kps, _, weak = self.palm.detect(image, cfg.min_detection_confidence,
                                               cfg.hint_score)
        self.palm_runs += 1
        self._since_palm = 0
        self._force_palm = False
        free = cfg.max_num_hands - len(self._hands)
        rects: list[np.ndarray] = []
        for box, kp in zip(boxes, kps):
            if len(rects) >= free:
                break
            rect = hr.palm_to_rect(box, kp, w, h)
            centre = (box[:2] + box[2:]) / 2 * (w, h)
            if any(self._covers(hand, centre) or hr.rect_iou(hand.rect, rect) >
                   hr.ASSOCIATION_IOU for hand in self._hands):
                continue
            rects.append(rect)
        if cfg.static_image_mode:  # MediaPipe's association of the palms among themselves
            rects = hr.associate_rects(rects)
        hint = free > len(rects) and any(
            not any(self._covers(hand, c * (w, h)) for hand in self._hands) for c in weak)
        return rects, hint

    @staticmethod
    def _covers(hand: _Hand, palm_centre_px: np.ndarray) -> bool:
        """A palm whose centre lies inside a tracked hand's landmarks is that hand (besides
        MediaPipe's association rule, rect IoU > 0.5)."""
        lo, hi = hand.box_px[:2], hand.box_px[2:]
        return bool(np.all(palm_centre_px >= lo) and np.all(palm_centre_px <= hi))

    def _variant(self, num_hands: int) -> str:
        """Landmark model for this frame (adaptive: lite only when full would not fit)."""
        if self.config.landmarks != "adaptive":
            return self.config.landmarks
        cost = self._full_ms_per_hand
        if num_hands < 2 or cost is None or cost * num_hands <= self.config.frame_budget_ms:
            return "full"
        self._frames_on_lite += 1
        if self._frames_on_lite % 60 == 0:  # re-measure full now and then (load changes)
            return "full"
        return "lite"

    def _flow_plan(self, palm_ran: bool) -> list[int]:
        """Alternate refresh: which tracked hands flow carries this frame (the rest get the
        model): with two or more tracked hands and no palm run, all but the ceil(n/2) hands
        longest without a model run (ties: the first), so each is refreshed every other
        frame."""
        n = len(self._hands)
        if self.config.landmark_refresh != "alternate" or palm_ran or n < 2:
            return []
        order = sorted(range(n), key=lambda i: -self._hands[i].since_model)  # stable
        # a hand just found by the palm detector is measured again first: landmarks from a
        # palm crop are rougher than from the crop its own landmarks predict
        return sorted(i for i in order[(n + 1) // 2:] if self._hands[i].crop is not None
                      and self._hands[i].detection and not self._hands[i].from_palm)

    # -- per frame -------------------------------------------------------------------------
    def process(self, frame: Frame) -> list[Detection]:
        """Detect up to ``max_num_hands`` hands in a BGR frame."""
        cfg = self.config
        image = frame.image
        if cfg.static_image_mode:
            self._hands = []
        self._since_palm += 1
        rects = [hand.rect for hand in self._hands]
        tracked = len(rects)
        hint = False
        palm_ran = self._wants_palm()
        if palm_ran:
            new, hint = self._new_rects(image)
            rects += new
        plan = self._flow_plan(palm_ran)
        run = [n for n in range(len(rects)) if n not in plan]
        # adaptive: chosen for all the frame's hands, as without alternation (one full crop
        # would often fit the budget where two do not, and then cost more CPU than two lite)
        variant = self._variant(len(rects))
        t0 = time.perf_counter()
        # the model starts on the refreshed hands first: in fp16 it computes in its worker
        # process while the flow moves the other hands here
        finish = self._start_landmarks(variant, image, [rects[n] for n in run])
        flowed: dict[int, np.ndarray] = {}  # tracked hand -> its landmarks moved by flow
        failed = []
        for i in plan:
            hand = self._hands[i]
            moved, _ = ft.track_points(hand.crop, image, hand.detection.landmarks_px, cfg.flow)
            self.flow_runs += 1
            if moved is None:
                self.flow_failures += 1  # the model measures this hand instead
                failed.append(i)
            else:
                flowed[i] = moved
        results = finish()
        if failed:
            results += self._start_landmarks(variant, image, [rects[n] for n in failed])()
            run += failed
        if variant == "full" and run:
            ms = (time.perf_counter() - t0) * 1000.0 / len(run)
            prev = self._full_ms_per_hand
            self._full_ms_per_hand = ms if prev is None else 0.8 * prev + 0.2 * ms
        self.landmark_runs += len(run)
        by_rect = dict(zip(run, results))
        h, w = image.shape[:2]
        out: list[Detection] = []
        hands: list[_Hand] = []
        for n, rect in enumerate(rects):
            if n in flowed:
                old = self._hands[n]
                px = flowed[n]
                next_rect = hr.landmarks_to_rect(px / (w, h), w, h)
                box = np.concatenate([px.min(0), px.max(0)])
                det = replace(old.detection, landmarks_px=px, frame_index=frame.index,
                              timestamp=frame.timestamp, flow_tracked=True)
                since = old.since_model + 1
            else:
                lm, world, presence, p_left, px, next_rect, box = by_rect[n]
                if presence < cfg.min_tracking_confidence:
                    hint = hint or n >= tracked  # a palm was found, its hand not (yet)
                    continue
                det = self._detection(frame, px, lm[:, 2], world, p_left)
                since = 0
            # Two crops that converged on one hand (MediaPipe's association): keep the first
            if any(hr.rect_iou(other.rect, next_rect) > hr.ASSOCIATION_IOU for other in hands):
                continue
            hands.append(_Hand(next_rect, box, det, since, from_palm=n >= tracked))
            out.append(det)
        if len(hands) < tracked:
            self._force_palm = True  # a track was lost: look for it on the next frame
        # A palm seen but not tracked (weak box, or landmarks not confident yet): look again
        # on the next frames, as MediaPipe would, but not forever on a hand-like background.
        if hint and len(hands) < cfg.max_num_hands and self._hint_streak < cfg.max_hint_frames:
            self._hint_streak += 1
            self._force_palm = True
        elif not hint:
            self._hint_streak = 0
        if cfg.landmark_refresh == "alternate" and len(hands) >= 2:
            for hand in hands:  # what the flow starts from on the next frame
                hand.crop = ft.cut_gray(image, ft.flow_window(hand.detection.landmarks_px,
                                                              w, h, cfg.flow))
        self._hands = hands
        return out

    def _start_landmarks(self, variant: str, image: np.ndarray, rects: list[np.ndarray]):
        """Start the landmark model ``variant`` on ``rects``, batched when a model of that
        size exists (else one by one, here and now); returns the function that gives the
        per-rect results (:meth:`LandmarkModel.start`)."""
        models = self.landmark_models[variant]
        if not rects:
            return list
        if len(rects) in models:
            return models[len(rects)].start(image, rects)
        results = [r for rect in rects for r in models[1].run(image, [rect])]
        return lambda: results

    def _detection(self, frame: Frame, px: np.ndarray, z: np.ndarray, world: np.ndarray,
                   p_left: float) -> Detection:
        # MediaPipe's "Left" (p_left >= 0.5) is the anatomical right in a non-mirrored frame
        label_left = p_left >= 0.5
        if self.config.mirrored:
            side = "left" if label_left else "right"
        else:
            side = "right" if label_left else "left"
        return Detection(landmarks_px=px, landmarks_z=z, world=world, handedness=side,
                         score=max(p_left, 1.0 - p_left), frame_index=frame.index,
                         timestamp=frame.timestamp)

    def recheck(self, image: np.ndarray, landmarks_px: np.ndarray) -> tuple[np.ndarray, float]:
        """One landmark pass on the crop that ``landmarks_px`` (21, 2) predict, as tracking
        would on the next frame (MediaPipe's HandLandmarkLandmarksToRoi: their box rotated,
        enlarged 2x): the landmarks found there (pixels) and the hand presence. Recall mode
        checks a hand only a quarter of a photo found with it; not on the per-frame path."""
        h, w = image.shape[:2]
        rect = hr.landmarks_to_rect(np.asarray(landmarks_px, dtype=np.float64) / (w, h), w, h)
        variant = "full" if self.config.landmarks == "adaptive" else self.config.landmarks
        result = self.landmark_models[variant][1].run(image, [rect])[0]
        self.landmark_runs += 1
        return result[4], float(result[2])

    def reset(self) -> None:
        """Forget every tracked hand (e.g. after a scene cut or a seek)."""
        self._hands = []
        self._force_palm = True

    def close(self) -> None:
        """Stop the landmark models' workers (fp16) and drop the models; safe twice."""
        self._hands = []
        for models in self.landmark_models.values():
            for model in models.values():
                model.close()
        self.landmark_models = {}
        if self._worker is not None:
            self._worker.close()
        self.palm = None

    def __enter__(self) -> "ScheduledDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
