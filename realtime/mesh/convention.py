"""Keypoints where people who annotate photos put them (``--joint-convention FILE.npz``).

The estimators output the open hand model's joints; annotators of real photos place some
joints elsewhere on the same hand (knuckles lower in the palm, fingertips nearer the pad,
the wrist nearer the forearm). :class:`ConventionEstimator` moves each hand's 21 joints by
a learned :class:`~models.joint_convention.JointConvention` (a fixed combination of the
vectors to nearby mesh vertices, so it turns and scales with the hand) fitted on
annotated photos with ``scripts.fit_photo_convention``. The mesh is left as it is;
``keypoints_2d`` and the reprojection error follow the moved joints. A move longer than
:data:`MAX_OFFSET_M` is shortened to it.

No fit is shipped: the only real photos with 3D labels here (hgcnn_realworld) are under a
non-commercial research licence, and a fit of their labels is derived from them. Users fit
their own on photos they may use (docs/regressor.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from calibration.camera import Camera
from models.joint_convention import JointConvention
from realtime.mesh.estimator import with_joints
from realtime.types import Detection, HandMesh

# The largest move on the 295 tuning hands was 12.9 mm (4 passes); on natural synthetic poses
# the middle MCP's reaches 27 mm (its nearby vertices include the neighbouring knuckles'):
# a move is cut to this length.
MAX_OFFSET_M = 0.015


def convention_path(spec: str | Path) -> Path:
    """The ``.npz`` path ``spec`` names; a clear error if it is absent."""
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"joint convention {str(spec)!r}: no such file (a .npz made by "
                         "python -m scripts.fit_photo_convention; none is shipped, "
                         "docs/regressor.md)")
    return path


def load_convention(spec: str | Path, vertex_count: int) -> JointConvention:
    """The convention ``spec`` names, checked against the mesh's vertex count."""
    path = convention_path(spec)
    try:
        conv = JointConvention.load(path)
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"joint convention {path}: not a joint convention file ({exc})") from exc
    if conv.idx.min() < 0 or conv.idx.max() >= vertex_count or not np.isfinite(conv.coef).all():
        raise ValueError(f"joint convention {path} does not fit a mesh of {vertex_count} "
                         "vertices")
    return conv


class ConventionEstimator:
    """A ``HandEstimator``: ``inner``'s hands with their joints moved by ``convention``."""

    def __init__(self, inner, convention: JointConvention) -> None:
        self.inner = inner
        self.model = inner.model
        self.convention = convention

    def estimate(self, dets: Sequence[Detection], camera: Camera,
                 track_ids: Sequence[int]) -> list[HandMesh]:
        hands = self.inner.estimate(dets, camera, track_ids)
        return [with_joints(hand, self.convention.apply(hand.joints, hand.vertices,
                                                        max_offset=MAX_OFFSET_M),
                            camera.K, det.landmarks_px)
                for det, hand in zip(dets, hands)]
