"""One overlay image per input photo, each at the photo's own size.

A folder of photos is not a video: its photos differ in size (a video writer keeps only
the first size) and are unrelated, so each gets its own ``overlays/<stem>.png``. The
folder is written under its hidden partial name (``.overlays.partial``) and renamed into
place with the run's other outputs (:class:`realtime.io.outputs.OutputSet`).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import RealtimeError


def overlay_names(files: Sequence[Path]) -> dict[Path, str]:
    """A unique ``.png`` name for each input file: its stem, or its whole name where stems
    clash (``a.jpg`` and ``a.png`` give ``a.jpg.png`` and ``a.png.png``), with ``-2``,
    ``-3``... for any clash left. Compared without case (a case-blind file system)."""
    stems = Counter(Path(f).stem.lower() for f in files)
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for f in files:
        f = Path(f)
        base = f.stem if stems[f.stem.lower()] == 1 else f.name
        name, k = base, 1
        while name.lower() in taken:
            k += 1
            name = f"{base}-{k}"
        taken.add(name.lower())
        names[f] = f"{name}.png"
    return names


class PhotoOverlays:
    """Writes each drawn photo into ``folder`` as the name ``name_of(frame_index)`` gives.

    ``folder`` (a partial folder) is emptied first: a killed run's leftovers never mix in.
    """

    def __init__(self, folder: Path, name_of: Callable[[int], str]) -> None:
        self.folder = Path(folder)
        self.name_of = name_of
        self.files_written = 0
        if self.folder.is_dir():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)

    def write(self, frame_index: int, image: np.ndarray) -> Path:
        path = self.folder / self.name_of(frame_index)
        if not cv2.imwrite(str(path), image):
            raise RealtimeError(f"cannot write {path}: check the folder is writable and "
                                "has space")
        self.files_written += 1
        return path
