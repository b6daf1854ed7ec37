"""Reading the project's own ``.npz`` assets (the hand model, the interaction prior, the UV
layout, the pinch head): one place that turns a missing or unreadable file into the asset's
own clear error, saying how to make the file. Pickles are never loaded."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from models.errors import AssetError


def read_npz(path: str | Path, kind: str, make: str,
             error: type[Exception] = AssetError) -> dict[str, np.ndarray]:
    """Every array of ``path``, read now (an ``NpzFile`` re-inflates an array on each access).

    ``kind`` names the asset ("hand model"), ``make`` says how to get one ("Build it with …");
    a missing file is ``error("<kind> not found: <path>. <make>")``, one that is not a readable
    ``.npz`` ``error("<path> is not a readable <kind> .npz (<why>)")``. Checking which arrays
    it holds is the caller's: only it knows what its asset needs."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{kind} not found: {path}. {make}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise error(f"{path} is not a readable {kind} .npz ({exc})") from exc
