"""Recall mode for photos: MediaPipe on test-time variants of an image, merged.

One pass of the palm detector misses hands a horizontally flipped copy, or a copy with a
border around it, finds (measured on real photos: a hand at the image edge, a large hand,
a hand beside a face). For a photo, where time matters less than recall, the detector runs
on each variant; every detection is mapped back to the original image (flip: ``x -> W-x``,
the side swapped and the world landmarks mirrored ``x -> -x``; scale and border undone),
and detections of the same hand are merged by a non-maximum suppression on the mean
keypoint distance relative to the hand's size. The original image's detections win their
clusters (so a hand one pass finds keeps exactly its one-pass landmarks), then the other
variants' in order, each by score.

The mapping and the merge are pure functions (:func:`variants_for`, :func:`make_variant`,
:func:`map_back`, :func:`merge_detections`); :class:`RecallDetector` wraps any
:class:`~realtime.detect.detector.Detector` that runs in static image mode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from realtime.types import Detection, Frame


@dataclass(frozen=True)
class RecallConfig:
    """Which variants to run, and when two detections are one hand.

    ``flip``: a horizontally flipped pass. ``pad_fraction``: a pass with a black border of
    this fraction of the image's width/height on each side (0: none); it shrinks the image
    in the palm detector's input, which helps with hands at the edge and large hands.
    ``upscale_below_px``: an extra pass at twice the size for images whose longer side is
    below this (0: never). ``same_hand_fraction``: two detections are one hand when their
    21 landmarks lie on average closer than this fraction of the larger hand's size (the
    longer side of its landmark box).
    """

    flip: bool = True
    pad_fraction: float = 0.25
    upscale_below_px: int = 0
    same_hand_fraction: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.pad_fraction <= 2.0:
            raise ValueError(f"pad_fraction must be in [0, 2], got {self.pad_fraction}")
        if not 0 <= self.upscale_below_px <= 8192:
            raise ValueError(f"upscale_below_px must be 0-8192, got {self.upscale_below_px}")
        if not 0.0 < self.same_hand_fraction <= 1.0:
            raise ValueError(f"same_hand_fraction must be in (0, 1], got "
                             f"{self.same_hand_fraction}")


@dataclass(frozen=True)
class Variant:
    """How a variant image is made from the original: flipped first, then scaled by
    ``scale``, then given a border of ``pad_x``/``pad_y`` pixels on each side."""

    flip: bool = False
    scale: float = 1.0
    pad_x: int = 0
    pad_y: int = 0

    @property
    def is_original(self) -> bool:
        return not self.flip and self.scale == 1.0 and not self.pad_x and not self.pad_y


def variants_for(width: int, height: int, config: RecallConfig) -> list[Variant]:
    """The passes for a ``width`` x ``height`` image, the original first."""
    out = [Variant()]
    if config.flip:
        out.append(Variant(flip=True))
    if config.pad_fraction > 0:
        out.append(Variant(pad_x=round(config.pad_fraction * width),
                           pad_y=round(config.pad_fraction * height)))
    if max(width, height) < config.upscale_below_px:
        out.append(Variant(scale=2.0))
    return out


def make_variant(image: np.ndarray, variant: Variant) -> np.ndarray:
    """The variant's image (BGR), from the original."""
    out = cv2.flip(image, 1) if variant.flip else image
    if variant.scale != 1.0:
        h, w = out.shape[:2]
        out = cv2.resize(out, (round(w * variant.scale), round(h * variant.scale)),
                         interpolation=cv2.INTER_CUBIC)
    if variant.pad_x or variant.pad_y:
        out = cv2.copyMakeBorder(out, variant.pad_y, variant.pad_y, variant.pad_x,
                                 variant.pad_x, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return np.ascontiguousarray(out)


def points_to_original(px: np.ndarray, variant: Variant, width: int) -> np.ndarray:
    """``(N,2)`` pixels of the variant image -> pixels of the ``width``-wide original."""
    out = (np.asarray(px, dtype=np.float64) - (variant.pad_x, variant.pad_y)) / variant.scale
    if variant.flip:
        out[:, 0] = width - out[:, 0]
    return out


def points_to_variant(px: np.ndarray, variant: Variant, width: int) -> np.ndarray:
    """The inverse of :func:`points_to_original` (for tests and drawing)."""
    out = np.array(px, dtype=np.float64)
    if variant.flip:
        out[:, 0] = width - out[:, 0]
    return out * variant.scale + (variant.pad_x, variant.pad_y)


def map_back(det: Detection, variant: Variant, width: int) -> Detection:
    """A detection in the variant image as one in the original image.

    ``landmarks_z`` is in units of the image's width (MediaPipe's), so it is rescaled to
    the original's width; a flip mirrors the hand: the side swaps and the world landmarks
    mirror back (``x -> -x``).
    """
    if variant.is_original:
        return det
    variant_width = width * variant.scale + 2 * variant.pad_x
    world = np.array(det.world, dtype=np.float64)
    side = det.handedness
    if variant.flip:
        world[:, 0] = -world[:, 0]
        side = {"left": "right", "right": "left"}.get(side, side)
    return replace(det, landmarks_px=points_to_original(det.landmarks_px, variant, width),
                   landmarks_z=np.asarray(det.landmarks_z, dtype=np.float64)
                   * variant_width / (width * variant.scale),
                   world=world, handedness=side)


def hand_size(px: np.ndarray) -> float:
    """The longer side of the landmarks' box, pixels (the benchmarks' hand size)."""
    return float(np.ptp(np.asarray(px), axis=0).max())


def same_hand(a: np.ndarray, b: np.ndarray, fraction: float) -> bool:
    """Whether two ``(21,2)`` landmark sets are one hand: mean distance below ``fraction``
    of the larger hand's size."""
    scale = max(hand_size(a), hand_size(b), 1e-6)
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=1).mean()) < fraction * scale


def merge_detections(per_variant: list[list[Detection]], max_hands: int,
                     fraction: float) -> list[Detection]:
    """Non-maximum suppression over the variants' detections (already in original
    coordinates): earlier variants first, within one by score; a detection that is the
    same hand as one kept is dropped. At most ``max_hands``, in the order kept."""
    kept: list[Detection] = []
    for dets in per_variant:
        for det in sorted(dets, key=lambda d: -d.score):
            if len(kept) >= max_hands:
                return kept
            if not any(same_hand(det.landmarks_px, k.landmarks_px, fraction) for k in kept):
                kept.append(det)
    return kept


class RecallDetector:
    """A :class:`~realtime.detect.detector.Detector` that runs ``inner`` (static image
    mode) on every variant of each image and merges the hands; closes ``inner``."""

    def __init__(self, inner, config: RecallConfig, max_hands: int) -> None:
        self.inner = inner
        self.config = config
        self.max_hands = max_hands
        self.passes = 0  # detector passes run (a counter for benchmarks)

    def process(self, frame: Frame) -> list[Detection]:
        h, w = frame.image.shape[:2]
        per_variant = []
        for variant in variants_for(w, h, self.config):
            image = frame.image if variant.is_original else make_variant(frame.image, variant)
            dets = self.inner.process(replace(frame, image=image, camera=None))
            self.passes += 1
            per_variant.append([map_back(d, variant, w) for d in dets])
        return merge_detections(per_variant, self.max_hands, self.config.same_hand_fraction)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> RecallDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
