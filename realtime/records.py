"""The hands file: JSON lines, one record per hand per frame (fields as in DESIGN.md).

Written line by line and flushed every frame, so a crash or Ctrl-C never leaves a
truncated record behind; the reader skips nothing silently and says where a line is bad.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from realtime.errors import RealtimeError
from realtime.types import HandMesh

SCHEMA_VERSION = 1
_DECIMALS = 5  # 10 micrometres: far below any error we make


def _arr(a: np.ndarray, decimals: int = _DECIMALS) -> list:
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


def hand_to_record(hand: HandMesh, include_vertices: bool = True) -> dict:
    """A JSON-ready dict of one hand."""
    rec = {
        "schema": SCHEMA_VERSION,
        "frame_index": hand.frame_index,
        "timestamp": round(hand.timestamp, 6),
        "track_id": hand.track_id,
        "handedness": hand.handedness,
        "score": round(hand.score, 4),
        "joints": _arr(hand.joints),
        "keypoints_2d": _arr(hand.keypoints_2d, 2),
        "pose": _arr(hand.pose),
        "shape": _arr(hand.shape),
        "reprojection_error_px": round(float(hand.reprojection_error_px), 3),
    }
    if include_vertices:
        rec["vertices"] = _arr(hand.vertices)
        rec["vertex_std"] = _arr(hand.vertex_std)
    return rec


class HandsWriter:
    """Appends hand records to a ``.jsonl`` file; one ``write_frame`` call per frame."""

    def __init__(self, path: str | Path, include_vertices: bool = True) -> None:
        self.path = Path(path)
        self.include_vertices = include_vertices
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self.records = 0

    def write_frame(self, hands: list[HandMesh]) -> None:
        for hand in hands:
            self._file.write(json.dumps(hand_to_record(hand, self.include_vertices)) + "\n")
            self.records += 1
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "HandsWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_hands(path: str | Path) -> Iterator[dict]:
    """Yield the records of a hands file; a malformed line raises with its line number."""
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise RealtimeError(f"{path}:{number}: not a hands record ({exc.msg})") from exc
