"""Shared fixtures: paths to the repository, the built-in sample and the shared real data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_REALHANDS = REPO.parent / "shared" / "data" / "realhands"


@pytest.fixture(scope="session")
def realhands() -> Path:
    """The shared real-hand photos (read in place, never copied into the repo)."""
    if not SHARED_REALHANDS.is_dir():
        pytest.skip(f"real hand data not found at {SHARED_REALHANDS} (it lives beside the "
                    "repository in ../shared/data; CI has it)")
    return SHARED_REALHANDS


@pytest.fixture(scope="session")
def sample_photo() -> np.ndarray:
    """Frame 120 of the built-in sample clip (two hands), as a BGR photo."""
    from realtime.io.sample import SAMPLE_VIDEO

    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    frames = [cap.read()[1] for _ in range(121)]  # read through: exact, unlike a seek
    cap.release()
    assert frames[120] is not None, f"cannot read frame 120 of {SAMPLE_VIDEO}"
    return frames[120]
