"""Stable track ids for hands across frames: same side, nearest wrist, recently seen."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from realtime.types import Detection


@dataclass
class SimpleTracker:
    """Greedy association; a track not seen for ``max_gap_frames`` frames is forgotten."""

    max_gap_frames: int = 15
    max_jump_fraction: float = 0.3  # of the image diagonal
    _tracks: dict[int, tuple[str, np.ndarray, int]] = field(default_factory=dict)
    _next_id: int = 0

    def assign(self, detections: list[Detection], image_size: tuple[int, int]) -> list[int]:
        """Track ids for ``detections``, in their order."""
        diag = float(np.hypot(*image_size))
        frame = detections[0].frame_index if detections else -1
        self._tracks = {k: v for k, v in self._tracks.items()
                        if frame - v[2] <= self.max_gap_frames}
        free = dict(self._tracks)
        ids = []
        for det in detections:
            wrist = det.landmarks_px[0]
            best, best_d = None, self.max_jump_fraction * diag
            for tid, (side, pos, _) in free.items():
                dist = float(np.linalg.norm(pos - wrist))
                if side == det.handedness and dist < best_d:
                    best, best_d = tid, dist
            if best is None:
                best = self._next_id
                self._next_id += 1
            else:
                free.pop(best)
            self._tracks[best] = (det.handedness, wrist.copy(), det.frame_index)
            ids.append(best)
        return ids
