"""Photo passes: a more accurate 3D hand for a photo from test-time variants of it.

For a photo, where time matters less than accuracy, the detector also runs on a
horizontally flipped copy, a copy with a black border, and a flipped bordered copy
(:mod:`realtime.detect.recall`'s variants). Each variant's MediaPipe landmarks are a
separate guess at the same hand (the flipped one is, to the landmark model, another hand
seen in a mirror); they are mapped back to the photo (flip: ``x -> W-x``, world landmarks
``x -> -x``, the side swapped), each is turned into a mesh by the estimator in one batch,
and the meshes are combined per vertex by the median. On hgcnn_realworld's tuning split
(images 00000-00299) this took PA-MPJPE from 7.56 to 7.36 mm with 4 passes and to 7.46 mm
with 2, and the 2D error below MediaPipe's own (6.25 against 6.62 px); averaging the
landmarks before the regressor instead did a little worse (docs/regressor.md).

The hands are those of the first pass (the original photo, or recall mode's merge), so the
option never adds or drops a hand; a variant that misses a hand just leaves it fewer
alternates. :func:`photo_variants`, :func:`attach_alternates`, :func:`vote_side` and
:func:`combine_hands` are pure; :class:`PhotoPassesDetector` and
:class:`PhotoPassesEstimator` wrap a detector (static image mode) and an estimator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from calibration.camera import Camera
from realtime.detect.recall import RecallDetector, Variant, make_variant, map_back, same_hand
from realtime.mesh.estimator import with_joints
from realtime.types import Detection, Frame, HandMesh

PHOTO_PASSES = (1, 2, 4)
PHOTO_DEFAULT_PASSES = 4  # the demo's default for photos (an image file or folder)
PAD_FRACTION = 0.25  # the bordered variants: a border of a quarter of the width/height
SAME_HAND_FRACTION = 0.25  # as recall mode: landmarks within a quarter of the hand's size


def check_passes(passes: int) -> int:
    """``passes`` if it is one of :data:`PHOTO_PASSES`, else a clear error."""
    if isinstance(passes, bool) or passes not in PHOTO_PASSES:
        raise ValueError(f"photo passes must be one of {PHOTO_PASSES} (1: the photo only, "
                         f"2: and flipped, 4: and bordered, flipped bordered), got {passes!r}")
    return int(passes)


def photo_variants(width: int, height: int, passes: int) -> list[Variant]:
    """The variants of a ``width`` x ``height`` photo for ``passes`` passes, the original
    first: 2 adds the flipped copy, 4 also the bordered one and the flipped bordered one."""
    check_passes(passes)
    pad = {"pad_x": round(PAD_FRACTION * width), "pad_y": round(PAD_FRACTION * height)}
    out = [Variant(), Variant(flip=True), Variant(**pad), Variant(flip=True, **pad)]
    return out[:passes]


def attach_alternates(primary: Sequence[Detection], others: Sequence[Sequence[Detection]],
                      fraction: float = SAME_HAND_FRACTION) -> list[Detection]:
    """Each first-pass hand with, as ``alternates``, the nearest detection of the same hand
    (recall's :func:`same_hand`) from each other pass (already in the photo's pixels); a
    detection is given to one hand at most."""
    out = []
    used: set[tuple[int, int]] = set()
    for det in primary:
        alts = []
        for v, dets in enumerate(others):
            best, best_d = None, np.inf
            for k, cand in enumerate(dets):
                if (v, k) in used or not same_hand(det.landmarks_px, cand.landmarks_px,
                                                   fraction):
                    continue
                dist = float(np.linalg.norm(cand.landmarks_px - det.landmarks_px, axis=1).mean())
                if dist < best_d:
                    best, best_d = k, dist
            if best is not None:
                used.add((v, best))
                alts.append(replace(dets[best], alternates=()))
        out.append(replace(det, alternates=tuple(alts)))
    return out


def combine_hands(hands: Sequence[HandMesh], K: np.ndarray,
                  landmarks_px: np.ndarray) -> HandMesh:
    """One hand from the meshes of its passes (the first the photo's own): the per-coordinate
    median of the vertices and joints (camera frame) and of the shape, the root mean square
    of the predicted vertex std; pose, side, score and ids of the first. ``keypoints_2d``
    are the combined joints projected with ``K``, and the reprojection error is measured
    against the first pass's 2D landmarks ``landmarks_px``."""
    if not hands:
        raise ValueError("combine_hands needs at least one hand")
    first = hands[0]
    if len(hands) == 1:
        return first
    return replace(
        with_joints(first, np.median([h.joints for h in hands], axis=0), K, landmarks_px),
        vertices=np.median([h.vertices for h in hands], axis=0),
        vertex_std=np.sqrt(np.mean([h.vertex_std ** 2 for h in hands], axis=0)),
        shape=np.median([h.shape for h in hands], axis=0),
    )


def variant_detections(detector, frame: Frame, passes: int) -> list[list[Detection]]:
    """``detector`` (static image mode) on each variant of ``frame`` but the original, its
    hands mapped back to the frame's pixels: one list per variant."""
    h, w = frame.image.shape[:2]
    out = []
    for variant in photo_variants(w, h, passes)[1:]:
        dets = detector.process(replace(frame, image=make_variant(frame.image, variant),
                                        camera=None))
        out.append([map_back(d, variant, w) for d in dets])
    return out


class PhotoPassesDetector:
    """A :class:`~realtime.detect.detector.Detector` (static image mode) whose hands carry
    their ``alternates`` from the photo's variants. ``inner``'s hands are the hands; the
    variants run on the plain detector (recall mode's inner one when ``inner`` is a
    :class:`~realtime.detect.recall.RecallDetector`). Closes ``inner``."""

    def __init__(self, inner, passes: int) -> None:
        self.inner = inner
        self.plain = inner.inner if isinstance(inner, RecallDetector) else inner
        self.passes = check_passes(passes)
        self.last_seconds = (0.0, 0.0)  # the last photo's first pass, other passes

    def process(self, frame: Frame) -> list[Detection]:
        start = time.perf_counter()
        primary = self.inner.process(frame)
        self.last_seconds = (time.perf_counter() - start, 0.0)
        if not primary or self.passes == 1:
            return primary
        start = time.perf_counter()
        out = attach_alternates(primary, variant_detections(self.plain, frame, self.passes))
        self.last_seconds = (self.last_seconds[0], time.perf_counter() - start)
        return out

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> PhotoPassesDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def vote_side(sides: Sequence[str]) -> str:
    """The side most passes give a hand; on a tie, the first pass's."""
    counts = {side: sides.count(side) for side in sides}
    best = max(counts.values())
    return next(side for side in sides if counts[side] == best)


class PhotoPassesEstimator:
    """A ``HandEstimator``: every hand and its alternates through ``inner`` in one call,
    then :func:`combine_hands` per hand (hands without alternates pass through).

    Each pass's side is its own detector pass's label; the hand takes the side most passes
    give it (:func:`vote_side`) and only the passes that agree are combined (the meshes of
    one side; a pass of the other side is a mirror image, not a guess of the same shape).
    On the tuning split MediaPipe's passes disagreed for 2 of 295 hands; forcing the
    first pass's side on every pass gave 7.40 mm, the vote 7.36 mm."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model = inner.model

    def estimate(self, dets: Sequence[Detection], camera: Camera,
                 track_ids: Sequence[int]) -> list[HandMesh]:
        if not any(d.alternates for d in dets):
            return self.inner.estimate(dets, camera, track_ids)
        if len(track_ids) != len(dets):
            raise ValueError(f"{len(dets)} detections but {len(track_ids)} track ids")
        flat, owner = [], []
        for i, det in enumerate(dets):
            passes = (det, *det.alternates)
            side = vote_side([d.handedness for d in passes])
            for d in passes:
                if d.handedness == side:
                    flat.append(replace(d, alternates=()))
                    owner.append(i)
        meshes = self.inner.estimate(flat, camera, [track_ids[i] for i in owner])
        if len(meshes) != len(flat):
            raise ValueError(f"the estimator returned {len(meshes)} hands for {len(flat)} "
                             "detections")
        return [combine_hands([m for m, o in zip(meshes, owner) if o == i], camera.K,
                              det.landmarks_px) for i, det in enumerate(dets)]
