"""Shared fixtures: paths to the repository, the built-in sample and the shared real data."""

from __future__ import annotations

from pathlib import Path

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
