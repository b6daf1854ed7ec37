"""Small real inputs for engine tests: a reader of blank frames, as a source hands them on."""

from __future__ import annotations

import numpy as np

from realtime.types import Frame

IMAGE = np.zeros((8, 8, 3), np.uint8)


class BlankFrames:
    """``count`` 8x8 black frames at 30 FPS timestamps, then None (the end of the input)."""

    def __init__(self, count: int) -> None:
        self.count, self.i = count, 0

    def __call__(self) -> Frame | None:
        if self.i >= self.count:
            return None
        self.i += 1
        return Frame(IMAGE, self.i - 1, (self.i - 1) / 30.0, "synthetic")
