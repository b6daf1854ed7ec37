"""Recall mode for photos: MediaPipe on test-time variants of an image, merged.

One pass of the palm detector misses hands a horizontally flipped copy, a copy with a
border around it, or an overlapping quarter of the image finds (measured on real photos: a
hand at the image edge, a large hand, a hand beside a face, small hands in a group photo).
For a photo, where time matters less than recall, the detector runs on each variant; every detection is mapped back to the original image (flip: ``x -> W-x``,
the side swapped and the world landmarks mirrored ``x -> -x``; scale and border undone),
and detections of the same hand are merged by a non-maximum suppression on the mean
keypoint distance relative to the hand's size (and a box inside a much larger one is a
fragment of it); a hand a quarter's cut edge runs through is dropped (the whole image sees
it). A hand only a quarter finds must be found again by one more landmark pass on the crop
its own landmarks predict (as tracking would frame it on the next frame), with landmarks
that agree: at twice the size, a quarter also shows pieces of a hand and hand-like patches
at the image edge that the palm detector takes for palms. The original image's detections
win their
clusters (so a hand one pass finds keeps exactly its one-pass landmarks), then the other
variants' in order, each by score.

The mapping and the merge are pure functions (:func:`variants_for`, :func:`make_variant`,
:func:`map_back`, :func:`needs_check`, :func:`confirmed`,
:func:`merge_detections`); :class:`RecallDetector` wraps any
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
    below this (0: never). ``tiles``: passes on the 2x2 overlapping quarters of the image
    (each ``tile_fraction`` of its width and height), for small hands in large photos.
    ``same_hand_fraction``: two detections are one hand when their
    21 landmarks lie on average closer than this fraction of the larger hand's size (the
    longer side of its landmark box). ``verify``: a hand only a quarter finds (no
    whole-image pass finds it) is kept only if one more landmark pass, on the crop its own
    landmarks predict (their box enlarged 2x, the framing the landmark model expects, as
    tracking would on the next frame), finds a hand there (presence >= 0.5) whose landmarks
    lie on average within ``verify_fraction`` of its size of the quarter's (a detector
    without such a pass, MediaPipe's legacy one: a palm pass on that crop instead).
    """

    flip: bool = True
    pad_fraction: float = 0.25
    upscale_below_px: int = 0
    tiles: bool = True
    tile_fraction: float = 0.7
    same_hand_fraction: float = 0.25
    verify: bool = True
    verify_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.pad_fraction <= 2.0:
            raise ValueError(f"pad_fraction must be in [0, 2], got {self.pad_fraction}")
        if not 0 <= self.upscale_below_px <= 8192:
            raise ValueError(f"upscale_below_px must be 0-8192, got {self.upscale_below_px}")
        if not 0.5 <= self.tile_fraction < 1.0:
            raise ValueError(f"tile_fraction must be in [0.5, 1), got {self.tile_fraction}")
        if not 0.0 < self.same_hand_fraction <= 1.0:
            raise ValueError(f"same_hand_fraction must be in (0, 1], got "
                             f"{self.same_hand_fraction}")
        if not 0.0 < self.verify_fraction <= 1.0:
            raise ValueError(f"verify_fraction must be in (0, 1], got {self.verify_fraction}")


@dataclass(frozen=True)
class Variant:
    """How a variant image is made from the original: cropped to ``crop`` (x0, y0, x1, y1
    pixels; None: whole), flipped, scaled by ``scale``, then given a border of
    ``pad_x``/``pad_y`` pixels on each side."""

    flip: bool = False
    scale: float = 1.0
    pad_x: int = 0
    pad_y: int = 0
    crop: tuple[int, int, int, int] | None = None

    @property
    def is_original(self) -> bool:
        return (not self.flip and self.scale == 1.0 and not self.pad_x and not self.pad_y
                and self.crop is None)

    def source_width(self, width: int) -> int:
        """Width of the image this variant flips and scales (the crop's, or the original's)."""
        return width if self.crop is None else self.crop[2] - self.crop[0]


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
    if config.tiles:
        tw, th = round(config.tile_fraction * width), round(config.tile_fraction * height)
        for y0 in (0, height - th):
            for x0 in (0, width - tw):
                out.append(Variant(crop=(x0, y0, x0 + tw, y0 + th)))
    return out


def make_variant(image: np.ndarray, variant: Variant) -> np.ndarray:
    """The variant's image (BGR), from the original."""
    out = image
    if variant.crop is not None:
        x0, y0, x1, y1 = variant.crop
        out = out[y0:y1, x0:x1]
    out = cv2.flip(out, 1) if variant.flip else out
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
        out[:, 0] = variant.source_width(width) - out[:, 0]
    if variant.crop is not None:
        out += variant.crop[:2]
    return out


def points_to_variant(px: np.ndarray, variant: Variant, width: int) -> np.ndarray:
    """The inverse of :func:`points_to_original` (for tests and drawing)."""
    out = np.array(px, dtype=np.float64)
    if variant.crop is not None:
        out -= variant.crop[:2]
    if variant.flip:
        out[:, 0] = variant.source_width(width) - out[:, 0]
    return out * variant.scale + (variant.pad_x, variant.pad_y)


def map_back(det: Detection, variant: Variant, width: int) -> Detection:
    """A detection in the variant image as one in the original image.

    ``landmarks_z`` is in units of the image's width (MediaPipe's), so it is rescaled to
    the original's width; a flip mirrors the hand: the side swaps and the world landmarks
    mirror back (``x -> -x``).
    """
    if variant.is_original:
        return det
    variant_width = variant.source_width(width) * variant.scale + 2 * variant.pad_x
    world = np.array(det.world, dtype=np.float64)
    side = det.handedness
    if variant.flip:
        world[:, 0] = -world[:, 0]
        side = {"left": "right", "right": "left"}.get(side, side)
    return replace(det, landmarks_px=points_to_original(det.landmarks_px, variant, width),
                   landmarks_z=np.asarray(det.landmarks_z, dtype=np.float64)
                   * variant_width / (width * variant.scale),
                   world=world, handedness=side)


def cut_by_crop(px: np.ndarray, variant: Variant, width: int, height: int,
                margin: float = 0.02) -> bool:
    """Whether a hand found in a crop (``px`` in original pixels) reaches a cut edge of the
    crop, one inside the image (within ``margin`` of the crop's size): a hand the crop cut
    off, whose landmarks are guessed beyond what the crop shows; the whole image, or a
    crop it lies fully inside, sees it better."""
    if variant.crop is None:
        return False
    x0, y0, x1, y1 = variant.crop
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    lo, hi = np.min(px, axis=0), np.max(px, axis=0)
    return bool((x0 > 0 and lo[0] < x0 + mx) or (x1 < width and hi[0] > x1 - mx)
                or (y0 > 0 and lo[1] < y0 + my) or (y1 < height and hi[1] > y1 - my))


def hand_size(px: np.ndarray) -> float:
    """The longer side of the landmarks' box, pixels (the benchmarks' hand size)."""
    return float(np.ptp(np.asarray(px), axis=0).max())


def same_hand(a: np.ndarray, b: np.ndarray, fraction: float) -> bool:
    """Whether two ``(21,2)`` landmark sets are one hand: mean distance below ``fraction``
    of the larger hand's size, or one's box a fragment of the other's (at most half its
    area, at least 80% inside it: a part of a hand a crop or a flip found again)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(hand_size(a), hand_size(b), 1e-6)
    if float(np.linalg.norm(a - b, axis=1).mean()) < fraction * scale:
        return True
    (alo, ahi), (blo, bhi) = (a.min(0), a.max(0)), (b.min(0), b.max(0))
    area_a, area_b = np.prod(ahi - alo), np.prod(bhi - blo)
    inter = np.prod(np.clip(np.minimum(ahi, bhi) - np.maximum(alo, blo), 0, None))
    small, large = min(area_a, area_b), max(area_a, area_b)
    return bool(small > 0 and small <= 0.5 * large and inter >= 0.8 * small)


VERIFY_ENLARGE = 2.0  # the palm-pass check's crop: the hand box x2 (as a tracking crop)
VERIFY_PRESENCE = 0.5  # the landmark check's hand presence (MediaPipe's tracking default)


def verify_crop(px: np.ndarray, width: int, height: int,
                enlarge: float = VERIFY_ENLARGE) -> Variant:
    """The crop a quarter's hand is checked on: a square of ``enlarge`` x the hand's size
    around its landmark box's centre, clipped to the image (pixels of the original)."""
    px = np.asarray(px, dtype=np.float64)
    centre = (px.min(axis=0) + px.max(axis=0)) / 2.0
    half = max(enlarge * hand_size(px), 2.0) / 2.0
    x0, y0 = (int(np.floor(max(v - half, 0.0))) for v in centre)
    x1 = int(np.ceil(min(centre[0] + half, width)))
    y1 = int(np.ceil(min(centre[1] + half, height)))
    return Variant(crop=(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))


def needs_check(det: Detection, variant: Variant, seen: list[Detection],
                fraction: float) -> bool:
    """Whether a detection must be confirmed by a pass on a crop around it: it comes from
    a quarter (a crop) and is not a hand a whole-image pass (or a hand already confirmed),
    in ``seen``, found too. A quarter shows a part of the image at twice the size, where
    the palm detector also takes a piece of a hand or a hand-like patch at the edge for a
    palm; the whole-image passes are MediaPipe's own framing."""
    return variant.crop is not None and not any(
        same_hand(det.landmarks_px, s.landmarks_px, fraction) for s in seen)


def confirmed(px: np.ndarray, again: list[np.ndarray], fraction: float) -> bool:
    """Whether the check pass around a hand (``px`` (21, 2), original pixels) found it
    again: one of ``again`` with its 21 landmarks on average within ``fraction`` of the
    hand's size (the plain landmark distance: where a piece of a hand or a hand-like patch
    was taken for a hand, the model on a crop framed by it finds the whole hand, or another
    shape, elsewhere). On hgcnn's tuning split a hand checked this way moves 0.01 (median),
    0.10 (99th percentile) of its size."""
    a = np.asarray(px, dtype=np.float64)
    for other in again:
        b = np.asarray(other, dtype=np.float64)
        scale = max(hand_size(a), hand_size(b), 1e-6)
        if float(np.linalg.norm(a - b, axis=1).mean()) < fraction * scale:
            return True
    return False


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
        self.rejected = 0  # quarter hands the check on a crop around them did not confirm

    def _run(self, frame: Frame, variant: Variant) -> list[Detection]:
        """The inner detector on one variant, its hands in original pixels (those a
        crop's cut edge runs through dropped)."""
        h, w = frame.image.shape[:2]
        image = frame.image if variant.is_original else make_variant(frame.image, variant)
        dets = self.inner.process(replace(frame, image=image, camera=None))
        self.passes += 1
        mapped = [map_back(d, variant, w) for d in dets]
        return [d for d in mapped if not cut_by_crop(d.landmarks_px, variant, w, h)]

    def _confirm(self, frame: Frame, det: Detection) -> bool:
        """The check of a hand only a quarter found (see :class:`RecallConfig`)."""
        h, w = frame.image.shape[:2]
        self.passes += 1
        if hasattr(self.inner, "recheck"):
            px, presence = self.inner.recheck(frame.image, det.landmarks_px)
            return presence >= VERIFY_PRESENCE and confirmed(
                det.landmarks_px, [px], self.config.verify_fraction)
        self.passes -= 1  # _run counts its own pass
        again = self._run(frame, verify_crop(det.landmarks_px, w, h))
        return confirmed(det.landmarks_px, [d.landmarks_px for d in again],
                         self.config.verify_fraction)

    def process(self, frame: Frame) -> list[Detection]:
        h, w = frame.image.shape[:2]
        cfg = self.config
        variants = variants_for(w, h, cfg)
        per_variant = [self._run(frame, v) for v in variants]
        if cfg.verify:
            seen = [d for v, dets in zip(variants, per_variant) if v.crop is None
                    for d in dets]
            for i, variant in enumerate(variants):
                keep = []
                for det in per_variant[i]:
                    if needs_check(det, variant, seen, cfg.same_hand_fraction):
                        if not self._confirm(frame, det):
                            self.rejected += 1
                            continue
                        seen.append(det)
                    keep.append(det)
                per_variant[i] = keep
        return merge_detections(per_variant, self.max_hands, cfg.same_hand_fraction)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> RecallDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
