"""MediaPipe Hands (legacy ``solutions`` API) as the reference hand detector.

Returns :class:`realtime.types.Detection` records: pixel landmarks, MediaPipe's metric world
landmarks, and the anatomical side. MediaPipe labels handedness as if the image were a
mirrored selfie; for the raw, non-mirrored frames a webcam or a video gives, its "Left"
is the person's right hand, so the label is swapped unless ``mirrored=True``.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from realtime.detect.detector import DetectorConfig
from realtime.errors import DetectorError
from realtime.types import Detection, Frame

log = logging.getLogger(__name__)


class MediaPipeDetector:
    """One ``process()`` per frame, like MediaPipe's own class; close it when done."""

    def __init__(self, config: DetectorConfig = DetectorConfig(kind="mediapipe")) -> None:
        self.config = config
        try:
            import mediapipe as mp

            self._hands = mp.solutions.hands.Hands(
                static_image_mode=config.static_image_mode,
                max_num_hands=config.max_num_hands,
                model_complexity=config.model_complexity,
                min_detection_confidence=config.min_detection_confidence,
                min_tracking_confidence=config.min_tracking_confidence,
            )
        except Exception as exc:  # noqa: BLE001 - any failure here means no detector
            raise DetectorError(
                f"MediaPipe Hands could not start ({exc}). Install mediapipe==0.10.21, whose "
                "wheel carries the hand models (newer wheels download them at run time)."
            ) from exc

    def process(self, frame: Frame) -> list[Detection]:
        """Detect up to ``max_num_hands`` hands in a BGR frame."""
        h, w = frame.image.shape[:2]
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        result = self._hands.process(rgb)
        if not result.multi_hand_landmarks:
            return []
        out = []
        for lms, world, hand in zip(
            result.multi_hand_landmarks,
            result.multi_hand_world_landmarks,
            result.multi_handedness,
        ):
            norm = np.array([[p.x, p.y, p.z] for p in lms.landmark], dtype=np.float64)
            wl = np.array([[p.x, p.y, p.z] for p in world.landmark], dtype=np.float64)
            label = hand.classification[0].label.lower()
            if not self.config.mirrored:
                label = "right" if label == "left" else "left"
            out.append(Detection(
                landmarks_px=norm[:, :2] * np.array([w, h]),
                landmarks_z=norm[:, 2],
                world=wl,
                handedness=label,
                score=float(hand.classification[0].score),
                frame_index=frame.index,
                timestamp=frame.timestamp,
            ))
        return out

    def close(self) -> None:
        self._hands.close()

    def __enter__(self) -> "MediaPipeDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
