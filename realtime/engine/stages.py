"""The per-frame work of each pipeline stage, as small callables (shared by the demo and
the benchmarks, so both measure exactly the same loop)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable

import numpy as np

from calibration.intrinsics import CameraIntrinsics, guess_intrinsics
from realtime.engine.stats import LatencyRecorder
from realtime.mesh.smoothing import HandSmoother
from realtime.mesh.tracking import SimpleTracker
from realtime.types import Packet

log = logging.getLogger(__name__)


class IntrinsicsFor:
    """The camera for a frame size: a known one where it fits, else a cached guess."""

    def __init__(self, fixed: CameraIntrinsics | None, hfov_deg: float) -> None:
        self.fixed = fixed
        self.hfov_deg = hfov_deg
        self._cache: dict[tuple[int, int], CameraIntrinsics] = {}

    def __call__(self, size: tuple[int, int]) -> CameraIntrinsics:
        if self.fixed is not None and size == (self.fixed.width, self.fixed.height):
            return self.fixed
        if size not in self._cache:
            self._cache[size] = self._for_size(size)
        return self._cache[size]

    def _for_size(self, size: tuple[int, int]) -> CameraIntrinsics:
        """A known camera at another resolution of the same aspect is rescaled (webcams
        scale the whole sensor); anything else is guessed from the field of view."""
        fixed = self.fixed
        if fixed is not None and not fixed.estimated:
            sx, sy = size[0] / fixed.width, size[1] / fixed.height
            if abs(sx - sy) <= 0.01 * max(sx, sy):
                return fixed.scaled_to(*size)
            log.warning("frame size %dx%d does not match the calibrated %dx%d (another "
                        "aspect ratio): guessing its intrinsics", size[0], size[1],
                        fixed.width, fixed.height)
        return guess_intrinsics(size[0], size[1], self.hfov_deg)


class DetectStage:
    """MediaPipe on the frame."""

    def __init__(self, detector) -> None:
        self.detector = detector

    def __call__(self, p: Packet) -> Packet:
        return replace(p, detections=tuple(self.detector.process(p.frame)))


class RegressStage:
    """Track ids, then the mesh of every hand (learned regressor or fitting baseline).

    Hands take their track's settled side, not a one-frame flip of MediaPipe's label. A
    frame whose landmarks are refused (NaN, out of range) gives no hands and is counted.
    """

    def __init__(self, fitter, intrinsics_for: Callable[[tuple[int, int]], CameraIntrinsics],
                 tracker: SimpleTracker | None = None) -> None:
        self.fitter = fitter
        self.intrinsics_for = intrinsics_for
        self.tracker = tracker or SimpleTracker()
        self.failures = 0

    def __call__(self, p: Packet) -> Packet:
        dets = list(p.detections)
        ids = self.tracker.assign(dets, p.frame.size, p.frame.index)
        dets = [replace(d, handedness=self.tracker.handedness(t)) for d, t in zip(dets, ids)]
        try:
            hands = self.fitter.fit_all(dets, self.intrinsics_for(p.frame.size), ids)
        except (ValueError, np.linalg.LinAlgError) as exc:
            self.failures += 1
            log.warning("frame %d: hands not fitted (%s)", p.frame.index, exc)
            hands = []
        return replace(p, hands=tuple(hands))


class SmoothStage:
    """One-Euro smoothing per track."""

    def __init__(self, smoother: HandSmoother) -> None:
        self.smoother = smoother

    def __call__(self, p: Packet) -> Packet:
        return replace(p, hands=tuple(self.smoother.smooth(list(p.hands))))


def hud_lines(recorder: LatencyRecorder, hands_written: Callable[[], int],
              live: bool, refresh_s: float = 0.5) -> Callable[[], list[str]]:
    """The HUD's text: throughput, and end-to-end latency where it means something.

    The statistics are recomputed twice a second, not every frame: percentiles over the
    recorder's buffers cost CPU and hold its lock, which the other stages need.
    """
    cached: list = [float("-inf"), []]

    def lines() -> list[str]:
        now = time.monotonic()
        if now - cached[0] >= refresh_s:
            cached[0], cached[1] = now, compute()
        return cached[1]

    def compute() -> list[str]:
        stages = recorder.snapshot().get("stages", {})
        fps = stages.get("output", {}).get("rate_hz") or 0.0
        if not live:  # queued file processing: latency would only measure the queues
            return [f"{fps:4.1f} FPS (file, every frame)", f"hands {hands_written()}"]
        e2e = stages.get("end_to_end", {})
        return [f"{fps:4.1f} FPS  latency p50 {e2e.get('p50_ms') or 0:.0f} ms",
                f"hands {hands_written()}"]

    return lines
