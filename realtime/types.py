"""Typed, frozen records passed between the stages of the loop.

Every record carries the capture timestamp of its frame (seconds, ``time.monotonic``
for live sources, ``frame_index / fps`` for files), so every stage can report latency.
Units: meters and seconds; camera frame: OpenCV axes (x right, y down, z forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from calibration.camera import Camera

Side = Literal["right", "left"]
"""Which hand: the person's anatomical side (not MediaPipe's mirrored label)."""
SIDES: tuple[str, ...] = get_args(Side)


@dataclass(frozen=True)
class Frame:
    """One image from a source. ``image`` is ``(H,W,3)`` uint8 BGR, as OpenCV reads it.

    ``camera`` is the camera the image was captured with, resolved once at capture; a frame
    made without one gets a camera guessed from its size (60 deg field of view).
    ``hands``: hands already known for this frame (a replayed hands file), else None.
    """

    image: np.ndarray
    index: int
    timestamp: float
    source: str = ""
    camera: Camera | None = None
    hands: tuple[HandMesh, ...] | None = None

    def __post_init__(self) -> None:
        if self.camera is None:
            from realtime.io.camera import guessed_camera

            object.__setattr__(self, "camera", guessed_camera(self.size))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class Detection:
    """One hand found by the detector.

    ``landmarks_px`` ``(21,2)`` pixels of the frame; ``landmarks_z`` ``(21,)`` MediaPipe's
    relative depth (same scale as x in normalised units); ``world`` ``(21,3)`` MediaPipe's
    metric, hand-centred world landmarks (meters, camera-aligned axes). ``handedness`` is
    the anatomical side after correcting MediaPipe's mirrored convention.
    ``alternates``: the same hand found again in test-time variants of a photo (flipped,
    bordered), mapped back to this image (``realtime.mesh.photo_passes``); the estimator
    then combines their meshes. Empty for a single pass.
    ``flow_tracked``: ``landmarks_px`` were carried from the previous frame by optical flow,
    not inferred by the landmark model on this frame (``landmark_refresh="alternate"``,
    ``realtime.detect.flow_tracking``); ``landmarks_z``, ``world``, ``handedness`` and
    ``score`` are then those of the hand's last model run (one or a few frames old).
    """

    landmarks_px: np.ndarray
    landmarks_z: np.ndarray
    world: np.ndarray
    handedness: Side
    score: float
    frame_index: int
    timestamp: float
    alternates: tuple[Detection, ...] = ()
    flow_tracked: bool = False


@dataclass(frozen=True)
class Pinch:
    """Thumb-index pinch of one hand in one frame (``realtime.mesh.pinch``).

    ``distance_m``: 3D distance between the thumb and index tips, meters (NaN if unknown);
    ``engaged``: the debounced hysteresis state; ``changed``: True on the frame the state
    flipped (an engage or release event).
    """

    distance_m: float
    engaged: bool
    changed: bool


@dataclass(frozen=True)
class HandMesh:
    """A hand in the camera frame (``docs/design.md``, "Conventions").

    vertices ``(V,3)`` and joints ``(21,3)`` in meters, OpenCV camera axes; vertex_std
    ``(V,)`` meters; pose ``(J,3)`` anatomical axis-angle of a right hand (left hands are
    mirrored before the model); shape ``(S,)``; keypoints_2d ``(21,2)`` the joints
    reprojected into the frame, pixels. ``vertex_colors``: the fused texture
    (``realtime.mesh.texture``), RGB in [0,1], ``(V,3)``; None when texturing is off.
    ``pinch``: thumb-index pinch state (:class:`Pinch`); None when not computed.
    """

    vertices: np.ndarray
    joints: np.ndarray
    vertex_std: np.ndarray
    pose: np.ndarray
    shape: np.ndarray
    keypoints_2d: np.ndarray
    handedness: Side
    score: float
    track_id: int
    timestamp: float
    frame_index: int
    reprojection_error_px: float = float("nan")
    vertex_colors: np.ndarray | None = None
    pinch: Pinch | None = None


@dataclass(frozen=True)
class Packet:
    """What travels down the pipeline: a frame and what was found in it.

    ``t_capture`` is ``time.monotonic()`` when the frame was captured (or, for paced files,
    when it was due), the start of every latency measurement.
    """

    frame: Frame
    t_capture: float
    detections: tuple[Detection, ...] = ()
    hands: tuple[HandMesh, ...] = ()
