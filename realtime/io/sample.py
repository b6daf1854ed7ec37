"""The built-in sample clip: a stand-in webcam for machines without one, with its true camera.

``realtime/assets/sample/sample.mp4`` (15 s, 640x480, 30 FPS) is rendered from the open
hand model by ``python -m scripts.make_sample``; ``sample_gt.npz`` holds its ground truth
(per-frame vertices, keypoints, pose, shape) and the camera it was rendered with.
``sample60.mp4`` is its two-hand part (7-15 s) rendered again at 60 FPS (the same motion,
sampled twice as densely; ``sample60_gt.npz`` without the meshes): the 60 FPS input of
``benchmarks.pipeline``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibration.intrinsics import CameraIntrinsics

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "assets" / "sample"
SAMPLE_VIDEO = SAMPLE_DIR / "sample.mp4"
SAMPLE_GT = SAMPLE_DIR / "sample_gt.npz"
SAMPLE60_VIDEO = SAMPLE_DIR / "sample60.mp4"
SAMPLE60_GT = SAMPLE_DIR / "sample60_gt.npz"


def is_sample(spec: str | Path) -> bool:
    """Whether ``spec`` names a built-in sample video (30 or 60 FPS: the same camera)."""
    try:
        path = Path(spec).expanduser().resolve()
        return path in (SAMPLE_VIDEO.resolve(), SAMPLE60_VIDEO.resolve())
    except OSError:
        return False


def sample_intrinsics() -> CameraIntrinsics | None:
    """The camera the sample was rendered with (None if its ground truth is missing)."""
    try:
        with np.load(SAMPLE_GT) as gt:
            return CameraIntrinsics.from_matrix(gt["K"], int(gt["width"]), int(gt["height"]))
    except OSError:
        return None
