"""A user's own MANO right hand (Romero et al., "Embodied Hands", SIGGRAPH Asia 2017).

MANO is never shipped with this project: users who accepted its license pass the path of
their ``MANO_RIGHT.pkl`` to :func:`load_mano` (or ``HandModel.from_mano``). Left hands are
mirrored right hands here, so ``MANO_LEFT.pkl`` is refused.

The pickle is read without chumpy: a restricted unpickler maps every ``chumpy.*`` class to
:class:`_ChumpyStandIn`, which keeps the array that a chumpy ``Ch`` stores in its state,
and refuses any global that a MANO pickle does not need (a pickle can run code).

Pose convention: the pose is MANO's full axis-angle, ``(B,16,3)`` in MANO joint order,
``pose[:,0]`` the global orientation, every rotation in model axes (the joint frames are
identities), with ``flat_hand_mean=True``: the zero pose is MANO's flat ``v_template``, not
the mean of its pose PCA. :class:`ManoPCA` turns PCA coefficients into that pose. The
vertices are MANO's own axes and units (meters); they do not follow the wrist-origin,
fingers-along--y convention of the open hand.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import AssetError
from models.hand_model import HandModelData

logger = logging.getLogger(__name__)

NUM_VERTICES = 778
NUM_JOINTS = 16
NUM_POSE_FEATURES = (NUM_JOINTS - 1) * 9  # 135

#: MANO joint order: wrist, then index, middle, pinky, ring, thumb (three joints each).
JOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}{i}" for finger in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)
)

#: Fingertip vertices of the MANO mesh, MANO-21 indices 16..20: thumb, index, middle, ring, pinky.
TIP_VERTICES: tuple[int, ...] = (744, 320, 443, 554, 671)

#: The last MANO joint of each finger, in the order of :data:`TIP_VERTICES`.
TIP_PARENTS: tuple[int, ...] = (15, 3, 6, 12, 9)

#: MediaPipe keypoint k is MANO-21 point ``MANO21_TO_MEDIAPIPE[k]`` (16 joints, then 5 tips).
MANO21_TO_MEDIAPIPE: tuple[int, ...] = (
    0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20,
)

_HELP = "Pass the MANO_RIGHT.pkl downloaded from https://mano.is.tue.mpg.de (models/ folder)."


class _ChumpyStandIn:
    """Takes the place of any chumpy class while unpickling; keeps the stored array.

    A chumpy ``Ch`` pickles its ``__dict__``, whose ``'x'`` entry holds the value. A state
    that is itself an array is kept as is. Anything else (a chumpy expression whose value
    would have to be computed) is left as ``None`` and reported by :func:`_to_array`.
    """

    value = None  # NEWOBJ creates the instance without __init__

    def __init__(self, *args, **kwargs) -> None:  # a REDUCE may pass arguments: ignore them
        self.value = None

    def __setstate__(self, state) -> None:
        self.value = None
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]  # (dict, slots) form
        if isinstance(state, dict):
            x = state.get("x")
            self.value = x.value if isinstance(x, _ChumpyStandIn) else x
        elif isinstance(state, np.ndarray):
            self.value = state


# Globals a MANO pickle may name (old and new module paths), besides chumpy.* and the
# scipy.sparse matrix classes. Everything else is refused: unpickling can run code.
_ALLOWED = {
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("copyreg", "__newobj__"), ("_codecs", "encode"),
    ("__builtin__", "object"), ("builtins", "object"),
    ("__builtin__", "set"), ("builtins", "set"),
    ("__builtin__", "frozenset"), ("builtins", "frozenset"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}
_NUMPY_CORE = {"_reconstruct", "scalar", "_frombuffer", "ndarray", "dtype"}
_SPARSE = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}


class _ManoUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module.startswith("scipy.sparse") and name in _SPARSE:
            import scipy.sparse

            return getattr(scipy.sparse, name)
        numpy_core = module.split(".")[:2] in (["numpy", "core"], ["numpy", "_core"])
        if (module, name) in _ALLOWED or (numpy_core and name in _NUMPY_CORE):
            if module.startswith("numpy._core"):  # written by numpy 2, read by numpy 1
                module = "numpy.core" + module[len("numpy._core"):]
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(raw: bytes, path: Path) -> dict:
    try:
        obj = _ManoUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise AssetError(f"{path} is not a MANO model pickle ({exc}). {_HELP}") from None
    except Exception as exc:  # garbage bytes raise many kinds: report them all the same way
        raise AssetError(f"{path} is not a MANO model pickle (unreadable: "
                         f"{type(exc).__name__}). {_HELP}") from None
    if not isinstance(obj, dict):
        raise AssetError(f"{path} is not a MANO model pickle: it holds a "
                         f"{type(obj).__name__}, expected a dict of arrays. {_HELP}")
    return obj


def _to_array(value, key: str, path: Path) -> np.ndarray:
    """A pickled value (array, chumpy stand-in, scipy sparse matrix) -> dense ``ndarray``."""
    if isinstance(value, _ChumpyStandIn):
        value = value.value
        if value is None:
            raise AssetError(f"{path}: key {key!r} is a chumpy expression without a stored "
                             f"array; expected a plain chumpy Ch holding the values. {_HELP}")
    if hasattr(value, "toarray"):
        value = value.toarray()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssetError(f"{path}: key {key!r} is a {type(value).__name__}, "
                         "expected a numeric array") from None


def _field(raw: dict, key: str, want: tuple, path: Path) -> np.ndarray:
    """Read ``raw[key]`` as float64 and check its shape; ``None`` in ``want`` matches any size."""
    if key not in raw:
        raise AssetError(f"{path} is not a MANO model: missing key {key!r} "
                         f"(expected an array of shape {_fmt(want)}). {_HELP}")
    arr = _to_array(raw[key], key, path)
    if arr.ndim != len(want) or any(w is not None and g != w for g, w in zip(arr.shape, want)):
        raise AssetError(f"{path}: key {key!r} has shape {arr.shape}, expected {_fmt(want)}. "
                         f"{_HELP}")
    return arr


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"


def _parents(kintree: np.ndarray, path: Path) -> np.ndarray:
    """kintree_table row 0 (parent ids, the root's a sentinel) -> parents by column, root -1."""
    ids = kintree[1].astype(np.int64)
    col = {int(i): c for c, i in enumerate(ids)}
    parents = np.full(NUM_JOINTS, -1, dtype=np.int64)
    for c in range(NUM_JOINTS):
        p = int(kintree[0, c])
        if p in col and col[p] != c:
            parents[c] = col[p]
    if np.count_nonzero(parents < 0) != 1 or parents[0] != -1:
        raise AssetError(f"{path}: key 'kintree_table' must describe one tree rooted at "
                         f"joint 0, got parents {parents.tolist()}. {_HELP}")
    return parents


def read_mano_pickle(pkl_path: str | Path) -> tuple[dict, str]:
    """Unpickle a MANO file without chumpy. Returns the raw dict and the file's sha256."""
    path = Path(pkl_path)
    if "left" in path.stem.lower():
        raise AssetError(f"{path} looks like MANO_LEFT.pkl: pass MANO_RIGHT.pkl instead; "
                         "left hands are mirrored right hands (models.hand_model.mirror_x).")
    if not path.is_file():
        raise AssetError(f"MANO model file not found: {path}. {_HELP}")
    raw_bytes = path.read_bytes()
    return _unpickle(raw_bytes, path), hashlib.sha256(raw_bytes).hexdigest()


def load_mano(pkl_path: str | Path) -> HandModelData:
    """Read a user's ``MANO_RIGHT.pkl`` into :class:`HandModelData` (see the module docstring).

    Raises :class:`AssetError` naming the key, the file and the expected shape when the
    file is not a MANO right-hand pickle.
    """
    path = Path(pkl_path)
    raw, sha = read_mano_pickle(path)
    v, j = NUM_VERTICES, NUM_JOINTS
    template = _field(raw, "v_template", (v, 3), path)
    faces_f = _field(raw, "f", (None, 3), path)
    weights = _field(raw, "weights", (v, j), path)
    regressor = _field(raw, "J_regressor", (j, v), path)
    kintree = _field(raw, "kintree_table", (2, j), path)
    shapedirs = _field(raw, "shapedirs", (v, 3, None), path)
    posedirs = _field(raw, "posedirs", (v, 3, NUM_POSE_FEATURES), path)
    faces = faces_f.astype(np.int64)
    if np.any(faces != faces_f) or faces.min(initial=0) < 0 or faces.max(initial=0) >= v:
        raise AssetError(f"{path}: key 'f' must hold integer vertex ids in [0, {v}). {_HELP}")
    parents = _parents(kintree, path)

    joints = regressor @ template
    joint_shapedirs = np.einsum("jv,vds->jds", regressor, shapedirs)
    # MANO-21: the 16 joints, then the 5 fingertip vertices; reordered to MediaPipe below.
    points21 = np.concatenate([joints, template[list(TIP_VERTICES)]])
    dirs21 = np.concatenate([joint_shapedirs, shapedirs[list(TIP_VERTICES)]])
    owner21 = np.concatenate([np.arange(j), TIP_PARENTS])
    vert21 = np.concatenate([np.full(j, -1), TIP_VERTICES])
    order = list(MANO21_TO_MEDIAPIPE)
    # (V,3,P) -> (P, V*3): pose_features(rot) @ posedirs == posedirs_mano . features, (V,3).
    posedirs_flat = np.ascontiguousarray(posedirs.reshape(v * 3, -1).T)

    limits = np.empty((j, 3, 2))
    limits[..., 0], limits[..., 1] = -np.pi, np.pi  # MANO has no anatomical frames
    if _signed_volume(template, faces) < 0:
        logger.warning("%s: the mesh winds inward (negative signed volume); is this really "
                       "MANO_RIGHT.pkl?", path)
    return HandModelData(
        name="mano_right",
        template=template,
        faces=faces,
        weights=weights,
        joints=joints,
        parents=parents,
        frames=np.broadcast_to(np.eye(3), (j, 3, 3)).copy(),
        shapedirs=shapedirs,
        joint_shapedirs=joint_shapedirs,
        keypoints=points21[order],
        keypoint_parents=owner21[order].astype(np.int64),
        keypoint_shapedirs=dirs21[order],
        limits=limits,
        joint_names=JOINT_NAMES,
        keypoint_vertices=vert21[order].astype(np.int64),
        posedirs=posedirs_flat,
        # MANO's betas are whitened PCA coefficients: unit variance by construction.
        shape_std=np.ones(shapedirs.shape[-1]),
        uv=None,
        sha256=sha,
    )


def _signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return float(np.einsum("fi,fi->", a, np.cross(b, c)) / 6.0)


@dataclass(frozen=True)
class ManoPCA:
    """MANO's finger-pose PCA: ``hands_components`` (45,45) rows, ``hands_mean`` (45,)."""

    components: np.ndarray
    mean: np.ndarray

    @classmethod
    def from_pickle(cls, pkl_path: str | Path) -> "ManoPCA":
        path = Path(pkl_path)
        raw, _ = read_mano_pickle(path)
        return cls(_field(raw, "hands_components", (45, 45), path),
                   _field(raw, "hands_mean", (45,), path))

    def to_pose(
        self, coeffs: np.ndarray, global_orient: np.ndarray | None = None,
        flat_hand_mean: bool = True,
    ) -> np.ndarray:
        """PCA coefficients ``(B,K)`` (K <= 45) -> full pose ``(B,16,3)`` for :func:`load_mano`.

        ``flat_hand_mean=True`` (this project's convention) means zero coefficients give
        the flat hand; ``False`` adds ``hands_mean`` as MANO's own demo code does.
        """
        coeffs = np.atleast_2d(np.asarray(coeffs, dtype=np.float64))
        fingers = coeffs @ self.components[: coeffs.shape[-1]]
        if not flat_hand_mean:
            fingers = fingers + self.mean
        root = np.zeros((len(coeffs), 3)) if global_orient is None else np.broadcast_to(
            np.asarray(global_orient, dtype=np.float64).reshape(-1, 3), (len(coeffs), 3))
        return np.concatenate([root, fingers], axis=-1).reshape(-1, NUM_JOINTS, 3)
