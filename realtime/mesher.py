"""The library's front door: BGR images in, metric 3D hand meshes out.

::

    from realtime import HandMesher, HandMesherConfig

    with HandMesher(HandMesherConfig()) as mesher:
        hands = mesher.process(bgr)  # list[HandMesh]: tracked, smoothed, camera frame, meters

:class:`HandMesher` owns one of each stage (detector, tracker and estimator, optional
two-hand correction, smoother, optional texture) and runs them one after another on each
image. The threaded pipeline behind the ``handmesh`` command (:func:`realtime.build_pipeline`)
runs the very same stage objects, each in its own thread, so what a script gets from
``process`` is what the demo publishes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from calibration.camera import Camera
from models.hand_model import HandModel
from realtime.detect.detector import DetectorConfig, open_detector
from realtime.engine.stages import DetectStage, EstimateStage, PinchStage, SmoothStage
from realtime.io.camera import CameraConfig, CameraResolver
from realtime.io.sources import to_bgr
from realtime.mesh.estimator import EstimatorConfig, open_estimator
from realtime.mesh.photo_passes import PhotoPassesDetector, PhotoPassesEstimator, check_passes
from realtime.mesh.pinch import PinchConfig, PinchTracker
from realtime.mesh.smoothing import HandSmoother, SmootherConfig
from realtime.mesh.texture import TextureConfig
from realtime.mesh.tracking import HandTracker, TrackerConfig
from realtime.mesh.two_hands import TwoHandConfig
from realtime.types import Frame, HandMesh, Packet

Stage = tuple[str, Callable[[Packet], Packet]]
MIN_IMAGE_SIDE_PX = 32


@dataclass(frozen=True)
class HandMesherConfig:
    """Everything :class:`HandMesher` needs, one nested config per component.

    ``detector``: which hand detector and how (:class:`DetectorConfig`). ``estimator``: how
    detections become meshes (the learned regressor by default, :class:`EstimatorConfig`).
    ``smoothing``: One-Euro smoothing per track (None: raw per-frame hands). ``camera``: the
    camera of the images (a calibration file, known intrinsics, or a field-of-view guess).
    ``tracking``: track ids and settled handedness. ``two_hands``: remove interpenetration
    between two hands (None: off). ``texture``: fuse an occlusion-aware per-vertex colour per
    track (None: off). ``pinch``: thumb-index pinch state per hand, ``HandMesh.pinch``
    (None: off). ``stills``: every call is an unrelated photo (no tracking across calls,
    palm detection on every image, no smoothing, no pinch debouncing). ``photo_passes``
    (stills only): 1, or 2/4 detector passes per photo (also flipped; and bordered, flipped
    bordered) whose meshes are combined per hand, for a more accurate 3D hand at 2-4x the
    detector's time (:mod:`realtime.mesh.photo_passes`).
    """

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    smoothing: SmootherConfig | None = field(default_factory=SmootherConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    tracking: TrackerConfig = field(default_factory=TrackerConfig)
    two_hands: TwoHandConfig | None = None
    texture: TextureConfig | None = None
    stills: bool = False
    pinch: PinchConfig | None = field(default_factory=PinchConfig)
    photo_passes: int = 1

    def __post_init__(self) -> None:
        check_passes(self.photo_passes)
        for name, kind in (("detector", DetectorConfig), ("estimator", EstimatorConfig),
                           ("camera", CameraConfig), ("tracking", TrackerConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"HandMesherConfig.{name} must be a {kind.__name__}, got "
                                 f"{type(getattr(self, name)).__name__}")
        for name, kind in (("smoothing", SmootherConfig), ("two_hands", TwoHandConfig),
                           ("texture", TextureConfig), ("pinch", PinchConfig)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"HandMesherConfig.{name} must be a {kind.__name__} or None, "
                                 f"got {type(value).__name__}")


class HandMesher:
    """``process(bgr) -> list[HandMesh]``, one image after another; close it when done.

    ``model``: the hand model (default: the shipped open hand; pass one to share it).
    ``profile_recorder``: a :class:`calibration.profile.ProfileRecorder` that collects the
    estimated open hands (the demo's ``--calibrate-hand``).
    """

    def __init__(self, config: HandMesherConfig = HandMesherConfig(), *,
                 model: HandModel | None = None, profile_recorder=None) -> None:
        if not isinstance(config, HandMesherConfig):
            raise ValueError(f"config must be a HandMesherConfig, got {type(config).__name__}")
        self.config = config
        self.model = model or HandModel.open_hand()
        self.cameras = CameraResolver(config.camera)
        self.estimator = open_estimator(config.estimator, self.model, profile_recorder)
        self.tracker = HandTracker(config.tracking)
        if config.photo_passes > 1 and not config.stills:
            raise ValueError(f"photo_passes={config.photo_passes} is for photos: use "
                             "HandMesherConfig(stills=True) (a video is tracked frame to "
                             "frame, where extra passes per frame cost real time)")
        estimator = (PhotoPassesEstimator(self.estimator) if config.photo_passes > 1
                     else self.estimator)
        if config.estimator.joint_convention is not None:  # after the passes are combined
            from realtime.mesh.convention import ConventionEstimator, load_convention

            estimator = ConventionEstimator(estimator, load_convention(
                config.estimator.joint_convention, self.model))
        self.estimate_stage = EstimateStage(estimator, self.tracker, stills=config.stills)
        later: list[Stage] = []
        if config.two_hands is not None:
            from realtime.mesh.two_hands import TwoHandCorrector, TwoHandStage

            later.append(("two_hands", TwoHandStage(
                TwoHandCorrector(self.model, config.two_hands))))
        self.pinch_tracker: PinchTracker | None = None
        pinch = None
        if config.pinch is not None:  # a photo has no history to debounce against
            self.pinch_tracker = PinchTracker(replace(config.pinch, debounce_frames=1)
                                              if config.stills else config.pinch)
            pinch = PinchStage(self.pinch_tracker, stills=config.stills)
        self.smoother: HandSmoother | None = None
        if config.smoothing is not None and not config.stills:
            self.smoother = HandSmoother(config.smoothing, self.model)
            self.smoother.warmup()  # compile (or load from Numba's cache) before a frame
            later.append(("smooth", SmoothStage(self.smoother, pinch)))
        elif pinch is not None:
            later.append(("pinch", pinch))
        self.texture_fuser = None
        if config.texture is not None:
            from realtime.mesh.texture import TextureFuser, TextureStage

            self.texture_fuser = TextureFuser(self.model.faces_for, config.texture)
            later.append(("texture", TextureStage(self.texture_fuser)))
        detector_config = config.detector
        if config.stills:
            detector_config = replace(detector_config, static_image_mode=True)
        self.detector = open_detector(detector_config)  # last: the one thing to close
        if config.photo_passes > 1:
            self.detector = PhotoPassesDetector(self.detector, config.photo_passes)
        self.stages: list[Stage] = [("detect", DetectStage(self.detector)),
                                    ("estimate", self.estimate_stage), *later]
        self._index = 0
        self._last_timestamp = -math.inf

    def process(self, image: np.ndarray, timestamp: float | None = None,
                camera: Camera | None = None) -> list[HandMesh]:
        """The hands in one image: ``(H,W,3)`` uint8 BGR (gray and BGRA are converted).

        ``timestamp``: seconds, non-decreasing between calls (default: now,
        ``time.monotonic()``); smoothing and tracking follow it. ``camera``: this image's
        camera (default: from ``config.camera`` for the image's size). Returns the hands in
        the camera frame, meters, with track ids that persist across calls.
        """
        bgr = _check_image(image)
        stamp = time.monotonic() if timestamp is None else _check_timestamp(timestamp)
        if not self.config.stills and stamp < self._last_timestamp:
            raise ValueError(f"timestamp {stamp} is earlier than the previous one "
                             f"({self._last_timestamp}); pass non-decreasing seconds, or "
                             "use HandMesherConfig(stills=True) for unrelated photos")
        self._last_timestamp = stamp  # stills: the stages start each photo afresh
        size = (bgr.shape[1], bgr.shape[0])
        if camera is not None and not isinstance(camera, Camera):
            raise ValueError(f"camera must be a calibration.camera.Camera, got "
                             f"{type(camera).__name__}")
        if camera is not None and camera.size != size:
            raise ValueError(f"camera is for {camera.size[0]}x{camera.size[1]} images, the "
                             f"image is {size[0]}x{size[1]}")
        frame = Frame(image=bgr, index=self._index, timestamp=stamp, source="HandMesher",
                      camera=camera or self.cameras.for_size(size))
        self._index += 1
        packet = Packet(frame, time.monotonic())
        for _, stage in self.stages:
            packet = stage(packet)
        return list(packet.hands)

    def faces(self, side: str) -> np.ndarray:
        """``(F,3)`` triangles to draw a hand of ``side`` ("right"/"left") with."""
        return self.model.faces_for(side)

    def close(self) -> None:
        """Release the detector's models; safe to call twice."""
        detector, self.detector = getattr(self, "detector", None), None
        if detector is not None:
            detector.close()

    def __enter__(self) -> HandMesher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_image(image: object) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a NumPy array (H,W,3) uint8 BGR, got "
                         f"{type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must be (H,W,3) BGR (or gray, or BGRA), got shape "
                         f"{image.shape}")
    if min(image.shape[:2]) < MIN_IMAGE_SIDE_PX:
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} pixels; at least "
                         f"{MIN_IMAGE_SIDE_PX} on each side are needed")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image must be uint8 (0-255) BGR, got dtype {image.dtype}")
    return np.ascontiguousarray(to_bgr(image))


def _check_timestamp(timestamp: object) -> float:
    try:
        stamp = float(timestamp)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"timestamp must be a number of seconds, got {timestamp!r}") from None
    if not math.isfinite(stamp):
        raise ValueError(f"timestamp must be finite, got {timestamp!r}")
    return stamp
