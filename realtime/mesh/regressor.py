"""Runs the learned mesh regressor (ONNX) on MediaPipe detections, both hands in one batch.

One onnxruntime session; execution providers tried in the order TensorRT, CUDA, CPU (the
choice is logged); thread counts set for a real-time loop. The manifest beside the model
says what the model expects; a model whose manifest, file hash or hand model does not match
is refused with a message saying what to do. Any ONNX mesh regressor with the same
manifest layout plugs in through ``--regressor path/to/manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration import placement
from calibration.camera import Camera
from calibration.placement import refine_pose_pnp, solve_translation
from models import WEIGHTS_DIR
from models.geometry import matrix_to_axis_angle, rot6d_to_matrix
from models.hand_model import HandModel, mirror_x
from realtime.errors import RealtimeError
from realtime.mesh import regressor_kernels
from realtime.mesh.regressor_kernels import (
    INPUT_FAR,
    INPUT_NOT_FINITE,
    INPUT_SPREAD,
    network_inputs,
    place_hand,
)
from realtime.types import Detection, HandMesh

log = logging.getLogger(__name__)

DEFAULT_MANIFEST = WEIGHTS_DIR / "regressor.json"
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_INPUTS = ("world", "image", "handedness")
_OUTPUTS = ("vertices", "vertex_std", "joints", "pose6d", "shape")
MAX_WORLD_M = 0.5  # a MediaPipe world landmark farther than this from the hand is garbage
MAX_MANIFEST_BYTES = 4 << 20  # a manifest is a few kB of JSON; anything larger is not one
_IDENTITY = np.eye(3)


class RegressorError(RealtimeError):
    """The regressor model or its manifest is missing, corrupt or does not fit."""


@dataclass(frozen=True)
class RunnerConfig:
    """Which model to run and how."""

    manifest: Path = DEFAULT_MANIFEST
    # One thread: both hands are one batched call of ~3 ms; a second intra-op thread gained
    # nothing on the loaded two-core machine (3.0 ms with 1, 3.7-4.8 with 2) and competes
    # with the detector's LiteRT threads.
    threads: int = 1
    # onnxruntime's intra-op workers busy-wait after each call by default; on two cores that
    # spinning takes the core the detector needs next (measured: it doubled detect's time at
    # 60 FPS). False: they sleep between calls.
    spin: bool = False
    providers: tuple[str, ...] = PROVIDER_ORDER
    verify_hash: bool = True
    refine_rotation: bool = True  # PnP: turn the predicted hand to match the 2D landmarks
    follow_2d: float = 1.0  # 0..1: pull keypoints (and nearby vertices) onto the 2D rays
    follow_2d_radius_m: float = 0.015

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")


def load_manifest(path: Path) -> dict:
    """Read and check a regressor manifest; errors name the field."""
    path = Path(path)
    if not path.is_file():
        raise RegressorError(f"regressor manifest not found: {path}. Train and export one with "
                             "`python -m models.training.train`, or pass --regressor MANIFEST.json")
    if path.suffix.lower() == ".onnx":
        raise RegressorError(f"{path} is the ONNX model itself: pass its manifest, the .json "
                             f"beside it (e.g. --regressor {path.with_suffix('.json')}), which "
                             "says what the model expects")
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise RegressorError(f"{path} is {path.stat().st_size} bytes, too large for a "
                                 "regressor manifest (a few kB of JSON): wrong file?")
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RegressorError(f"{path} is not a JSON manifest (binary data): pass the "
                             "manifest .json of a regressor") from exc
    except (OSError, json.JSONDecodeError, RecursionError) as exc:
        raise RegressorError(f"{path} is not a JSON manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise RegressorError(f"{path}: a manifest must be a JSON object")
    for field in ("kind", "model_file", "inputs", "outputs", "vertex_count", "hand_model"):
        if field not in manifest:
            raise RegressorError(f"{path}: manifest field {field!r} is missing")
    if manifest["kind"] != "handmesh.mesh_regressor":
        raise RegressorError(f"{path}: manifest kind is {manifest['kind']!r}, expected "
                             "'handmesh.mesh_regressor'")
    for field, kind in (("inputs", dict), ("outputs", dict), ("hand_model", dict),
                        ("vertex_count", int), ("model_file", str)):
        if not isinstance(manifest[field], kind):
            raise RegressorError(f"{path}: manifest field {field!r} must be a "
                                 f"{kind.__name__}, got {type(manifest[field]).__name__}")
    for name in _INPUTS:
        if name not in manifest["inputs"]:
            raise RegressorError(f"{path}: manifest inputs lack {name!r}")
    for name in _OUTPUTS:
        if name not in manifest["outputs"]:
            raise RegressorError(f"{path}: manifest outputs lack {name!r}")
    for group, names in (("inputs", _INPUTS), ("outputs", _OUTPUTS)):
        for name in names:
            _declared_shape(manifest, group, name, path)
    if isinstance(manifest["vertex_count"], bool) or manifest["vertex_count"] < 1:
        raise RegressorError(f"{path}: manifest field 'vertex_count' must be a positive "
                             f"integer, got {manifest['vertex_count']!r}")
    return manifest


def _declared_shape(manifest: dict, group: str, name: str, path: Path) -> tuple:
    """``manifest[group][name]["shape"]``: ``["batch", positive ints...]``, float32."""
    entry = manifest[group][name]
    shape = entry.get("shape") if isinstance(entry, dict) else None
    if (not isinstance(shape, list) or len(shape) < 2 or not isinstance(shape[0], str)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                       for d in shape[1:])):
        raise RegressorError(f"{path}: manifest {group} {name!r} needs a shape [\"batch\", "
                             f"sizes...] of positive integers, got {shape!r}")
    if entry.get("dtype", "float32") != "float32":
        raise RegressorError(f"{path}: manifest {group} {name!r} has dtype "
                             f"{entry.get('dtype')!r}; the runtime feeds and reads float32")
    return tuple(shape[1:])


def expected_shapes(model: HandModel) -> dict[str, tuple[int, ...]]:
    """Each input's and output's shape after the batch dimension, for ``model``."""
    v = model.num_vertices
    return {"world": (21, 3), "image": (21, 3), "handedness": (1,),
            "vertices": (v, 3), "vertex_std": (v,), "joints": (21, 3),
            "pose6d": (model.num_joints, 6), "shape": (model.num_shape,)}


class RegressorRunner:
    """ONNX session + manifest for one hand model; ``run`` takes network-ready arrays."""

    def __init__(self, model: HandModel, config: RunnerConfig = RunnerConfig()) -> None:
        import onnxruntime as ort

        self.config = config
        self.model = model
        manifest = load_manifest(config.manifest)
        self.manifest = manifest
        model_path = Path(config.manifest).parent / manifest["model_file"]
        if not model_path.is_file():
            raise RegressorError(f"model file {model_path} named by {config.manifest} is missing")
        if int(manifest["vertex_count"]) != model.num_vertices:
            raise RegressorError(
                f"{config.manifest}: the model outputs {manifest['vertex_count']} vertices but "
                f"the hand model {model.data.name!r} has {model.num_vertices}; use the "
                "regressor trained for this hand model")
        want_hash = manifest["hand_model"].get("sha256")
        if want_hash and model.data.sha256 and want_hash != model.data.sha256:
            raise RegressorError(
                f"{config.manifest} was trained for hand model {manifest['hand_model']['name']}"
                f" ({want_hash[:12]}…), not for the loaded {model.data.name} "
                f"({model.data.sha256[:12]}…); retrain with `python -m models.training.train`")
        if config.verify_hash and "model_sha256" in manifest:
            got = hashlib.sha256(model_path.read_bytes()).hexdigest()
            if got != manifest["model_sha256"]:
                raise RegressorError(f"{model_path} does not match the hash in its manifest "
                                     "(corrupt or replaced file); re-export it")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = config.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        spin = "1" if config.spin else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
        available = ort.get_available_providers()
        providers = [p for p in config.providers if p in available] or ["CPUExecutionProvider"]
        try:
            # NchwcTransformer: onnxruntime >= 1.23 crashes on some FP16 transformer graphs.
            self.session = ort.InferenceSession(
                str(model_path), opts, providers=providers,
                disabled_optimizers=["NchwcTransformer"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many kinds
            raise RegressorError(f"{model_path} is not a loadable ONNX model ({exc})") from exc
        names_in = [i.name for i in self.session.get_inputs()]
        names_out = [o.name for o in self.session.get_outputs()]
        if set(names_in) != set(_INPUTS) or not set(_OUTPUTS) <= set(names_out):
            raise RegressorError(f"{model_path} has inputs {names_in} and outputs {names_out}; "
                                 f"expected inputs {list(_INPUTS)} and outputs {list(_OUTPUTS)}")
        self._check_shapes(model, manifest, model_path)
        self.provider = self.session.get_providers()[0]
        log.info("regressor %s on %s", model_path.name, self.provider)

    def _check_shapes(self, model: HandModel, manifest: dict, model_path: Path) -> None:
        """The manifest's shapes are the hand model's, the session's declared shapes agree
        with them, and one probe batch comes out in them: a model whose outputs do not fit
        is refused here instead of failing on every hand (0 hands, no error)."""
        where = self.config.manifest
        want = expected_shapes(model)
        for group, names in (("inputs", _INPUTS), ("outputs", _OUTPUTS)):
            for name in names:
                declared = _declared_shape(manifest, group, name, where)
                if declared != want[name]:
                    raise RegressorError(
                        f"{where}: manifest {group} {name!r} has shape [batch, "
                        f"{', '.join(map(str, declared))}] but the hand model "
                        f"{model.data.name!r} needs [batch, {', '.join(map(str, want[name]))}]"
                        "; use the regressor trained for this hand model")
        nodes = {n.name: n for n in [*self.session.get_inputs(), *self.session.get_outputs()]}
        for name, shape in want.items():
            node = nodes[name]
            dims = list(node.shape or [])  # ints where fixed, names or None where not;
            # [] when the model does not say (then only the probe below can tell)
            if node.type != "tensor(float)" or (dims and len(dims) != 1 + len(shape)) or any(
                    isinstance(d, int) and d != w for d, w in zip(dims[1:], shape)):
                raise RegressorError(
                    f"{model_path}: {name!r} is {node.type} {dims} in the model but its "
                    f"manifest {where} says float32 [batch, {', '.join(map(str, shape))}]; "
                    "the model and the manifest do not belong together: re-export them")
        probe = {"world": np.zeros((1, 21, 3), np.float32),
                 "image": np.zeros((1, 21, 3), np.float32),
                 "handedness": np.ones((1, 1), np.float32)}
        try:
            outs = self.session.run(list(_OUTPUTS), probe)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many kinds
            raise RegressorError(f"{model_path} fails on a probe batch of one hand "
                                 f"({' '.join(str(exc).split())[:200]})") from exc
        for name, out in zip(_OUTPUTS, outs):
            if tuple(np.shape(out)) != (1, *want[name]):
                raise RegressorError(
                    f"{model_path}: output {name!r} comes out as {list(np.shape(out))} for one "
                    f"hand, not [1, {', '.join(map(str, want[name]))}] as its manifest "
                    f"{where} says; the model and the manifest do not belong together")

    def run(self, world: np.ndarray, image: np.ndarray, handedness: np.ndarray) -> dict:
        """Network-ready ``(B,21,3)``, ``(B,21,3)``, ``(B,1)`` float32 -> output arrays."""
        feed = {"world": world.astype(np.float32), "image": image.astype(np.float32),
                "handedness": handedness.astype(np.float32).reshape(-1, 1)}
        outs = self.session.run(list(_OUTPUTS), feed)
        return dict(zip(_OUTPUTS, outs))


def detection_inputs(
    dets: Sequence[Detection], image_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror left hands and normalise: network inputs for a list of detections.

    Raises ValueError for NaN or out-of-range landmarks (never fed to the network): the
    first bad detection's first problem. The checks and the inputs are one compiled call
    for all detections (:func:`~realtime.mesh.regressor_kernels.network_inputs`).
    """
    w, h = image_size
    bad_shape = next((i for i, det in enumerate(dets) if det.world.shape != (21, 3)
                      or det.landmarks_px.shape != (21, 2)), len(dets))
    good = dets[:bad_shape]
    world = np.array([det.world for det in good], dtype=np.float64).reshape(-1, 21, 3)
    uv = np.array([det.landmarks_px for det in good], dtype=np.float64).reshape(-1, 21, 2)
    z = np.array([det.landmarks_z for det in good], dtype=np.float64).reshape(len(good), 21)
    left = np.array([det.handedness == "left" for det in good], dtype=np.bool_)
    world_in = np.empty((len(good), 21, 3), np.float32)
    image_in = np.empty((len(good), 21, 3), np.float32)
    verdicts = np.empty(len(good), np.int64)
    network_inputs(world, uv, z, left, float(w), float(h), MAX_WORLD_M, world_in, image_in,
                   verdicts)
    for verdict in verdicts:
        if verdict == INPUT_NOT_FINITE:
            raise ValueError("landmarks contain NaN or inf")
        if verdict == INPUT_SPREAD:
            raise ValueError(f"world landmarks spread over more than {MAX_WORLD_M} m")
        if verdict == INPUT_FAR:
            raise ValueError("image landmarks far outside the image")
    if bad_shape < len(dets):
        det = dets[bad_shape]
        raise ValueError(f"expected 21 landmarks, got world {det.world.shape} and image "
                         f"{det.landmarks_px.shape}")
    return world_in, image_in, np.where(left, 0.0, 1.0).astype(np.float32)[:, None]


def follow_weights(model: HandModel, radius_m: float) -> np.ndarray:
    """``(V,21)``: how much each vertex follows each keypoint (Gaussian of rest distance).

    Computed once on the rest mesh: posing moves a neighbourhood rigidly, so who is near
    whom barely changes, and the per-frame cost becomes one small matrix product.
    """
    v = model.data.template
    k = model.data.keypoints
    d2 = ((v[:, None, :] - k[None]) ** 2).sum(-1)
    w = np.exp(-(d2 - d2.min(axis=1, keepdims=True)) / (2.0 * radius_m**2))
    return w / w.sum(axis=1, keepdims=True)


class RegressorEstimator:
    """The learned path (a ``HandEstimator``): detections -> :class:`HandMesh` in the camera
    frame, every hand of a frame in one batched network call."""

    def __init__(self, model: HandModel, config: RunnerConfig = RunnerConfig()) -> None:
        self.model = model
        self.runner = RegressorRunner(model, config)
        self.follow = follow_weights(model, config.follow_2d_radius_m)
        placement.warmup()  # numba: compiled or loaded from disk now, not on the first hand
        regressor_kernels.warmup()

    def estimate(self, dets: Sequence[Detection], camera: Camera,
                 track_ids: Sequence[int]) -> list[HandMesh]:
        if not dets:
            return []
        if len(track_ids) != len(dets):
            raise ValueError(f"{len(dets)} detections but {len(track_ids)} track ids")
        world, image, handed = detection_inputs(dets, camera.size)
        out = self.runner.run(world, image, handed)
        K = camera.K  # noqa: N806
        fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
        config = self.runner.config
        poses = matrix_to_axis_angle(rot6d_to_matrix(out["pose6d"].astype(np.float64)))
        hands = []
        for i, det in enumerate(dets):
            left = det.handedness == "left"
            joints = out["joints"][i].astype(np.float64)
            if left:
                joints = mirror_x(joints)
            uv_det = np.ascontiguousarray(det.landmarks_px, dtype=np.float64)
            t = solve_translation(joints, uv_det, K)
            rot = _IDENTITY
            if config.refine_rotation:
                rot, t = refine_pose_pnp(joints, uv_det, K, t)
            verts = np.empty((len(out["vertices"][i]), 3))
            joints_cam = np.empty((len(joints), 3))
            uv = np.empty((len(joints), 2))
            error = place_hand(out["vertices"][i], left, joints, config.refine_rotation,
                               np.ascontiguousarray(rot, dtype=np.float64),
                               np.ascontiguousarray(t, dtype=np.float64), uv_det,
                               fx, fy, cx, cy, float(config.follow_2d), self.follow,
                               verts, joints_cam, uv)
            hands.append(HandMesh(
                vertices=verts,
                joints=joints_cam,
                vertex_std=out["vertex_std"][i].astype(np.float64),
                pose=poses[i],
                shape=out["shape"][i].astype(np.float64),
                keypoints_2d=uv,
                handedness=det.handedness,
                score=det.score,
                track_id=track_ids[i],
                timestamp=det.timestamp,
                frame_index=det.frame_index,
                reprojection_error_px=float(error),
            ))
        return hands
