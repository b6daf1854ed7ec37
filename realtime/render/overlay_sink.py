"""The overlay sink: draws each packet's hands over its frame, for the video file (or one
image per photo) and the window.

The sink owns its video writer and releases it on ``close()``; the pipeline calls ``write``
from its render thread and ``close`` from the caller's thread after every stage has ended.
A video has one frame size, the first frame's: OpenCV's writer silently drops frames of
any other size, so those are fitted onto that canvas (:func:`letterbox`) and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from realtime.engine.stats import LatencyRecorder
from realtime.errors import RealtimeError
from realtime.io.contact_sheet import ContactSheet
from realtime.io.letterbox import letterbox
from realtime.io.photo_overlays import PhotoOverlays
from realtime.render.overlay import OverlayConfig, draw_hands, draw_hud, hand_hud_lines
from realtime.types import Packet

log = logging.getLogger(__name__)


class OverlaySink:
    """Draws the hands over each frame; hands the image to a video file and/or a window."""

    def __init__(
        self,
        faces_for: dict[str, np.ndarray],
        config: OverlayConfig = OverlayConfig(),
        video_path: Path | None = None,
        fps: float = 30.0,
        hud: Callable[[], list[str]] | None = None,
        contact_sheet: ContactSheet | None = None,
        photos: PhotoOverlays | None = None,
    ) -> None:
        self.faces_for = faces_for
        self.config = config
        self.video_path = video_path
        self.fps = fps or 30.0
        self.hud = hud
        self.contact_sheet = contact_sheet
        self.photos = photos
        self._writer: cv2.VideoWriter | None = None
        self._video_size: tuple[int, int] | None = None
        self._latest: np.ndarray | None = None
        self._lock = threading.Lock()
        self.frames_written = 0
        self.frames_fitted = 0  # frames of another size than the first, letterboxed

    def write(self, packet: Packet) -> None:
        image = draw_hands(packet.frame.image, list(packet.hands), self.faces_for,
                           packet.frame.camera.K, self.config)
        if self.hud is not None:
            draw_hud(image, self.hud() + hand_hud_lines(list(packet.hands)))
        if self.contact_sheet is not None:
            self.contact_sheet.add(packet.frame.index, image)
        if self.photos is not None:
            self.photos.write(packet.frame.index, image)
        if self.video_path is not None:
            self._write_video(image)
        with self._lock:
            self._latest = image

    def _write_video(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self.video_path),
                                           cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise RealtimeError(f"cannot write video {self.video_path} ({w}x{h} frames):"
                                    " the encoder refused it; check the folder is writable "
                                    "and has space, or pass --no-video")
            self._video_size = (w, h)
        elif (w, h) != self._video_size:
            if not self.frames_fitted:
                vw, vh = self._video_size
                log.warning("frame size changed from %dx%d to %dx%d: later frames of another "
                            "size are letterboxed into the video", vw, vh, w, h)
            image = letterbox(image, self._video_size)
            self.frames_fitted += 1
        self._writer.write(image)
        self.frames_written += 1

    def latest(self) -> np.ndarray | None:
        """The newest drawn frame (for a window shown by the main thread)."""
        with self._lock:
            image, self._latest = self._latest, None
        return image

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


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
