"""The per-frame work of each pipeline stage, as small callables.

:class:`~realtime.HandMesher` owns them and runs them one after another on a photo;
:func:`~realtime.build_pipeline` runs each in a thread of its own. So the library, the demo,
the benchmarks and the tests all run exactly the same loop.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from realtime import validate
from realtime.detect.detector import Detector
from realtime.mesh.estimator import HandEstimator
from realtime.mesh.pinch import PinchTracker, distance_measure
from realtime.mesh.smoothing import HandSmoother
from realtime.mesh.tracking import HandTracker
from realtime.types import Packet
from realtime.validate import hand_problem

log = logging.getLogger(__name__)


class DetectStage:
    """Hands found in the frame (MediaPipe's models)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    def __call__(self, p: Packet) -> Packet:
        return replace(p, detections=tuple(self.detector.process(p.frame)))


class EstimateStage:
    """Track ids, then the mesh of every hand (learned regressor or fitting baseline).

    Hands take their track's settled side, not a one-frame flip of MediaPipe's label. With a
    lens-distorting camera the landmarks are undistorted first, so that the pinhole model
    every estimator assumes holds. A frame whose landmarks are refused (NaN, out of range)
    gives no hands and is counted in ``failures``; a hand the estimator returns that fails
    :func:`~realtime.validate.hand_problem` (the check a replayed hand passes too) is dropped
    and counted in ``invalid_hands``, so no NaN reaches a drawing or a subscriber.
    ``stills``: every frame is an unrelated photo; the tracker starts afresh on each, so a
    photo's hands never depend on the photos before it.
    """

    def __init__(self, estimator: HandEstimator, tracker: HandTracker | None = None,
                 stills: bool = False) -> None:
        self.estimator = estimator
        self.tracker = tracker or HandTracker()
        self.stills = stills
        self.failures = 0
        self.invalid_hands = 0
        validate.warmup()  # numba: compiled or loaded from disk now, not on the first hand

    def __call__(self, p: Packet) -> Packet:
        if self.stills:
            self.tracker.reset()
        dets = list(p.detections)
        ids = self.tracker.assign(dets, p.frame.size, p.frame.index)
        dets = [replace(d, handedness=self.tracker.handedness(t)) for d, t in zip(dets, ids)]
        camera = p.frame.camera
        if dets and camera.has_distortion:
            dets = [replace(d, landmarks_px=camera.undistort_points(d.landmarks_px),
                            alternates=tuple(replace(
                                a, landmarks_px=camera.undistort_points(a.landmarks_px))
                                for a in d.alternates))
                    for d in dets]
        try:
            hands = self.estimator.estimate(dets, camera, ids)
        except (ValueError, np.linalg.LinAlgError) as exc:
            self.failures += 1
            log.warning("frame %d: hands not estimated (%s)", p.frame.index, exc)
            hands = []
        vertex_count = self.estimator.model.num_vertices
        sound = []
        for hand in hands:
            problem = hand_problem(hand, vertex_count)
            if problem is None:
                sound.append(hand)
            else:
                self.invalid_hands += 1
                log.warning("frame %d: hand dropped (%s)", p.frame.index, problem)
        return replace(p, hands=tuple(sound))


class SmoothStage:
    """One-Euro smoothing per track; then the pinch state of the smoothed joints when given
    ``pinch`` (in this stage's thread: no extra hop on the latency path)."""

    def __init__(self, smoother: HandSmoother, pinch: PinchStage | None = None) -> None:
        self.smoother = smoother
        self.pinch = pinch

    def __call__(self, p: Packet) -> Packet:
        p = replace(p, hands=tuple(self.smoother.smooth(list(p.hands))))
        return p if self.pinch is None else self.pinch(p)


class PinchStage:
    """Thumb-index pinch per track (``realtime.mesh.pinch``), right after smoothing so every
    output sees it. Run on every frame, hands or not: a track missing from a frame is
    forgotten (no stale pinch). ``keep_recorded``: hands that already carry a pinch (a
    replayed hands file) keep it; the others get one computed. ``stills``: unrelated
    photos, each judged afresh (no hysteresis carried from the photo before). The distance
    is measured as the tracker's config says (``PinchConfig.distance``: the learned head by
    default), every hand of the frame in one call."""

    def __init__(self, tracker: PinchTracker, keep_recorded: bool = False,
                 stills: bool = False) -> None:
        self.tracker = tracker
        self.keep_recorded = keep_recorded
        self.stills = stills
        self.measure = distance_measure(tracker.config)

    def __call__(self, p: Packet) -> Packet:
        if self.stills:
            self.tracker.reset()
        todo = [not (self.keep_recorded and h.pinch is not None) for h in p.hands]
        if not any(todo) and not self.tracker.track_ids:
            return p
        ids = [h.track_id for h, t in zip(p.hands, todo) if t]
        distances = self.measure([h for h, t in zip(p.hands, todo) if t])
        pinches = self.tracker.update(dict(zip(ids, distances.tolist())))
        for tid in {i for i in ids if ids.count(i) > 1}:  # one id twice: no pinch for either
            pinches.pop(tid, None)
        return replace(p, hands=tuple(replace(h, pinch=pinches.get(h.track_id)) if t else h
                                      for h, t in zip(p.hands, todo)))
