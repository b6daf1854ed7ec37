"""Keypoints where people who annotate photos put them (``--joint-convention photo|FILE.npz``).

The estimators output the open hand model's joints; annotators of real photos place some
joints elsewhere on the same hand (the knuckles nearer the wrist, the wrist nearer the
fingers, the thumb's joints further out). :class:`ConventionEstimator` moves each hand's 21 joints by
a learned :class:`~models.joint_convention.JointConvention` (a fixed combination of the
vectors to nearby mesh vertices, so it turns and scales with the hand) fitted on
annotated photos with ``scripts.fit_photo_convention``, or the shipped ``photo`` placement
(:data:`PHOTO_MOVES`, below). The mesh is left as it is;
``keypoints_2d`` and the reprojection error follow the moved joints. A move longer than
:data:`MAX_OFFSET_M` is shortened to it.

Shipped: ``photo`` (:data:`PHOTO_MOVES`), ten named moves of keypoints along their own
axes (:mod:`models.joint_placement`; "the index MCP 5 mm towards the wrist"),
ten millimetre figures chosen on hgcnn_realworld's tuning photos by
``scripts.choose_photo_placement`` as hyperparameters are. No free fit is shipped: the only
real photos with 3D labels here (hgcnn_realworld) are under a non-commercial research
licence, and a fit of thousands of weights to their labels is derived from them. Users fit
their own on photos they may use (docs/regressor.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from calibration.camera import Camera
from models.hand_model import HandModel
from models.joint_convention import JointConvention
from models.joint_placement import Move, placement_convention
from realtime.mesh.estimator import with_joints
from realtime.types import Detection, HandMesh

# The largest move on the 295 tuning hands was 12.9 mm (4 passes); on natural synthetic poses
# the middle MCP's reaches 27 mm (its nearby vertices include the neighbouring knuckles'):
# a move is cut to this length.
MAX_OFFSET_M = 0.015

PHOTO = "photo"  # the shipped placement's name (--joint-convention photo)
NONE = "none"    # the hand model's own joints (--joint-convention none)
# The demo's default for photos (a camera or video keeps the model's joints: NONE).
PHOTO_DEFAULT_CONVENTION = PHOTO
# Written by python -m scripts.choose_photo_placement (hgcnn_realworld 00000-00299, 295 hands,
# 4 photo passes; greedy choice of 10 moves among single keypoints and groups on 3 axes,
# millimetres by least squares after per-hand Procrustes; docs/regressor.md).
# In-sample 7.36 -> 6.70 mm there (5-fold held out 6.78); after one pass 7.56 -> 6.91.
PHOTO_MOVES: tuple[Move, ...] = (
    Move((5, 9, 13), "along", -3.3),  # index, middle, ring MCP: 3.3 mm towards the wrist
    Move((5,), "palm", -5.4),         # index MCP: 5.4 mm towards the back of the hand
    Move((0,), "along", 11.1),        # wrist: 11.1 mm towards the fingers (the crease)
    Move((8,), "palm", -5.4),         # index tip: 5.4 mm towards the nail
    Move((3,), "along", 9.3),         # thumb IP: 9.3 mm towards the thumb tip
    Move((1,), "along", 8.3),         # thumb CMC: 8.3 mm towards the thumb MCP
    Move((1,), "side", -5.7),         # thumb CMC: 5.7 mm towards the little finger
    Move((2,), "along", 4.8),         # thumb MCP: 4.8 mm towards the thumb IP
    Move((4,), "along", 4.4),         # thumb tip: 4.4 mm outwards
    Move((8,), "side", 1.3),          # index tip: 1.3 mm towards the thumb side
)


def convention_path(spec: str | Path) -> Path | None:
    """The ``.npz`` path ``spec`` names (None for the shipped ``photo``); a clear error if it
    is absent."""
    if str(spec) == PHOTO:
        return None
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"joint convention {str(spec)!r}: no such file (a .npz made by "
                         "python -m scripts.fit_photo_convention, or 'photo' for the "
                         "shipped placement; docs/regressor.md)")
    return path


def photo_convention(model: HandModel) -> JointConvention:
    """The shipped photo placement on ``model``'s rest mesh."""
    return placement_convention(model.data.template, model.data.keypoints, PHOTO_MOVES)


def load_convention(spec: str | Path, model: HandModel) -> JointConvention:
    """The convention ``spec`` names (``photo`` or a ``.npz``), checked against the mesh."""
    path = convention_path(spec)
    if path is None:
        return photo_convention(model)
    vertex_count = model.num_vertices
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
