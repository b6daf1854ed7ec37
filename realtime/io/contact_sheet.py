"""A contact sheet: a grid of evenly spaced overlay frames, one PNG that shows a whole run.

Headless runs leave a video that needs a player; the sheet shows at a glance what was
found. Frames are kept with a stride that doubles whenever twice the wanted number is
held, so memory stays bounded (``2 * count`` thumbnails) for a run of any length and the
kept frames stay evenly spaced without knowing the length in advance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import RealtimeError
from realtime.io.letterbox import letterbox


@dataclass(frozen=True)
class ContactSheetConfig:
    """``count`` frames in ``columns`` columns, each ``thumb_width`` pixels wide."""

    count: int = 12
    columns: int = 4
    thumb_width: int = 240

    def __post_init__(self) -> None:
        for name in ("count", "columns", "thumb_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def pick_evenly(n: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(n)``, first and last included."""
    if n <= count:
        return list(range(n))
    if count == 1:
        return [0]
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})


class ContactSheet:
    """Collects thumbnails of frames as they come; ``image()`` lays out the grid."""

    def __init__(self, config: ContactSheetConfig = ContactSheetConfig()) -> None:
        self.config = config
        self._stride = 1
        self._seen = 0
        self._kept: list[tuple[int, np.ndarray]] = []  # (frame index, thumbnail)

    def add(self, frame_index: int, image: np.ndarray) -> None:
        """Offer a frame (BGR); only every ``stride``-th one is shrunk and kept."""
        seen, self._seen = self._seen, self._seen + 1
        if seen % self._stride:
            return
        h, w = image.shape[:2]
        tw = self.config.thumb_width
        th = max(1, round(h * tw / w))
        self._kept.append((frame_index, cv2.resize(image, (tw, th),
                                                   interpolation=cv2.INTER_AREA)))
        if len(self._kept) >= 2 * self.config.count:
            self._kept = self._kept[::2]
            self._stride *= 2

    def __len__(self) -> int:
        return len(self._kept)

    def image(self) -> np.ndarray | None:
        """The grid (BGR), each tile labelled with its frame index; None when empty."""
        if not self._kept:
            return None
        picks = [self._kept[i] for i in pick_evenly(len(self._kept), self.config.count)]
        th, tw = picks[0][1].shape[:2]
        cols = min(self.config.columns, len(picks))
        rows = -(-len(picks) // cols)
        sheet = np.full((rows * th + (rows + 1) * 4, cols * tw + (cols + 1) * 4, 3), 24,
                        dtype=np.uint8)
        for k, (index, thumb) in enumerate(picks):
            r, c = divmod(k, cols)
            y, x = 4 + r * (th + 4), 4 + c * (tw + 4)
            # photos of another aspect than the first: fitted into the tile, not stretched
            sheet[y:y + th, x:x + tw] = (thumb if thumb.shape[:2] == (th, tw)
                                         else letterbox(thumb, (tw, th)))
            cv2.putText(sheet, f"#{index}", (x + 6, y + th - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 255, 255), 1, cv2.LINE_AA)
        return sheet

    def save(self, path: Path) -> bool:
        """Write the grid as PNG; False (nothing written) when no frame was added."""
        sheet = self.image()
        if sheet is None:
            return False
        if not cv2.imwrite(str(path), sheet):
            raise RealtimeError(f"cannot write {path}: check the folder is writable")
        return True
