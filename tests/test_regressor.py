"""The learned mesh regressor: export, FP16 weights, manifest, runner, refusals, mirroring.

Two kinds of model are tested:

- a freshly initialised network (fixed seed, with its zero-initialised output heads given
  small random weights so that the outputs depend on the inputs), exported once per session
  with ``models.training.export.export_all`` into a temporary folder: round trip, manifest errors,
  runner behaviour;
- the SHIPPED files in ``models/weights/`` (``regressor.json`` and what it names, plus
  ``regressor.pt``): they must exist, load in a fresh process, agree with torch, keep FP16
  and FP32 within 0.5 mm and place hands on their landmarks. These tests never skip.

Threads are kept to one (torch and onnxruntime): the suite may share a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from calibration.camera import Camera
from calibration.intrinsics import CameraIntrinsics
from models.hand_model import HandModel, mirror_x
from models.training.export import OUTPUTS, export_all
from models.training.regressor import (
    MeshRegressor,
    RegressorConfig,
    prepare_inputs_np,
    prepare_inputs_torch,
)
from models.training.synthetic import SyntheticConfig, SyntheticHands
from realtime.mesh.regressor import (
    PROVIDER_ORDER,
    RegressorError,
    RegressorEstimator,
    RegressorRunner,
    RunnerConfig,
    detection_inputs,
    load_manifest,
)
from realtime.types import Detection, HandMesh

REPO = Path(__file__).resolve().parent.parent
SHIPPED_DIR = REPO / "models" / "weights"
SHIPPED_MANIFEST = SHIPPED_DIR / "regressor.json"

# Tolerances (meters unless named otherwise).
ONNX_TORCH_TOL_M = 1e-4  # FP32 ONNX vs torch, every output (pose6d, shape: same number)
FP16_FP32_TOL_M = 5e-4  # FP16-weight vs FP32 ONNX vertices, max abs (target: 0.5 mm)
FRESH_PROCESS_TOL_M = 1e-3  # shipped files run by the runner in a new process vs torch
# the same for unitless outputs (6D rotation entries, shape coefficients): FP16 weights move
# them by ~1e-3 (0.06 degrees), far below anything visible
FRESH_PROCESS_TOL_UNITLESS = 5e-3
UNITLESS_OUTPUTS = ("pose6d", "shape")
MIRROR_TOL_M = 1e-4  # left (mirrored) detection vs mirrored right-hand mesh
SHIPPED_REPROJ_MEAN_PX = 15.0  # trained model: mean |keypoints_2d - landmarks| per hand
DET_CONSISTENCY_TOL = 1e-6  # detection_inputs vs prepare_inputs_np, float32 inputs

SEED = 0
HEAD_INIT_STD = 0.02  # small random weights for the zero-initialised heads of the fresh net
IMAGE_W, IMAGE_H, HFOV_DEG = 640, 480, 60.0
N_FP16_HANDS = 64
N_SHIPPED_HANDS = 8
THREADS = 1

# Run in a fresh interpreter: build the runner from a manifest, run it on inputs from an
# .npz, print the provider and the outputs as one JSON object.
_FRESH_PROCESS_SCRIPT = r"""
import json, sys
import numpy as np
from models.hand_model import HandModel
from realtime.mesh.regressor import RegressorRunner, RunnerConfig
manifest, inputs = sys.argv[1], sys.argv[2]
runner = RegressorRunner(HandModel.open_hand(), RunnerConfig(manifest=manifest, threads=1))
x = np.load(inputs)
out = runner.run(x["world"], x["image"], x["handedness"])
print(json.dumps({"provider": runner.provider,
                  "outputs": {k: np.asarray(v).tolist() for k, v in out.items()}}))
"""


# ---------------------------------------------------------------------------------------
# Helpers and fixtures.


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def hand_model() -> HandModel:
    return HandModel.open_hand()


def _ort_session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    # As the runner: onnxruntime >= 1.23 can crash on FP16 graphs in this pass.
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=["NchwcTransformer"])


def _run_ort(session, world, image, handedness) -> dict[str, np.ndarray]:
    feed = {"world": np.asarray(world, np.float32), "image": np.asarray(image, np.float32),
            "handedness": np.asarray(handedness, np.float32).reshape(-1, 1)}
    return dict(zip(OUTPUTS, session.run(list(OUTPUTS), feed)))


def _run_torch(net: MeshRegressor, world, image, handedness) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = net.eval()(torch.as_tensor(world), torch.as_tensor(image),
                         torch.as_tensor(handedness).reshape(-1, 1))
    return {k: out[k].numpy() for k in OUTPUTS}


def _synthetic(data, n: int, seed: int, **config) -> dict[str, torch.Tensor]:
    gen = SyntheticHands(data, SyntheticConfig(**config))
    return gen.sample(n, torch.Generator().manual_seed(seed))


def _net_inputs(data, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Realistic network inputs (MediaPipe-like noise), prepared as in training."""
    s = _synthetic(data, n, seed)
    w, im, h = prepare_inputs_torch(s["world"], s["image"], s["image_size"], s["handedness"])
    return w.numpy(), im.numpy(), h.numpy()


def _camera_config() -> dict:
    """One camera for every hand (estimate takes the frame's camera), cx = W/2."""
    return dict(image_sizes=((IMAGE_W, IMAGE_H),), hfov_deg=(HFOV_DEG, HFOV_DEG),
                principal_point_std=0.0, p_right=1.0, p_mirror_error=0.0)


@pytest.fixture(scope="module")
def intrinsics(hand_model) -> Camera:
    s = _synthetic(hand_model.data, 1, SEED, **_camera_config())
    k = s["K"][0].double().numpy()
    intr = CameraIntrinsics(k[0, 0], k[1, 1], IMAGE_W / 2.0, IMAGE_H / 2.0, IMAGE_W, IMAGE_H)
    assert np.allclose(k, intr.K)
    return Camera.pinhole(intr)


def _mirror_detection(det: Detection) -> Detection:
    """The same hand seen as its mirror image: world x -> -x, u -> W - u, other side."""
    uv = det.landmarks_px.copy()
    uv[:, 0] = IMAGE_W - uv[:, 0]
    side = "left" if det.handedness == "right" else "right"
    return dataclasses.replace(det, landmarks_px=uv, world=mirror_x(det.world), handedness=side)


@pytest.fixture(scope="module")
def detections(hand_model) -> list[Detection]:
    """Right-hand detections from synthetic hands (MediaPipe-like noise), in pixels."""
    s = _synthetic(hand_model.data, 4, SEED + 1, **_camera_config())
    size = np.array([IMAGE_W, IMAGE_H], dtype=np.float64)
    dets = []
    for i in range(4):
        image = s["image"][i].double().numpy()
        dets.append(Detection(
            landmarks_px=image[:, :2] * size, landmarks_z=image[:, 2].copy(),
            world=s["world"][i].double().numpy(), handedness="right", score=0.9,
            frame_index=7, timestamp=0.25))
    return dets


def _fresh_net(data, handedness_blind: bool = False) -> MeshRegressor:
    torch.manual_seed(SEED)
    net = MeshRegressor(data, RegressorConfig())
    with torch.no_grad():
        # A freshly initialised net outputs the template whatever the input (zero heads);
        # small random heads make the round trip and the mirroring tests mean something.
        for head in (net.pose_head, net.shape_head, net.vertex_out, net.prior_logvar_head):
            head.weight.normal_(0.0, HEAD_INIT_STD)
        if handedness_blind:  # the last input column of both embeddings is the flag
            net.prior_mlp[0].weight[:, -1] = 0.0
            net.joint_embed.weight[:, -1] = 0.0
    return net.eval()


@pytest.fixture(scope="module")
def fresh(hand_model, tmp_path_factory) -> tuple[MeshRegressor, Path]:
    """A seeded network and its export (regressor.onnx/_fp32.onnx/.pt/.json)."""
    net = _fresh_net(hand_model.data)
    manifest = export_all(net, {"note": "test export"}, tmp_path_factory.mktemp("fresh"))
    return net, manifest


@pytest.fixture(scope="module")
def fresh_fitter(hand_model, fresh) -> RegressorEstimator:
    return RegressorEstimator(hand_model, RunnerConfig(manifest=fresh[1], threads=THREADS))


@pytest.fixture(scope="module")
def raw_fitter(hand_model, fresh) -> RegressorEstimator:
    """Placement only: no PnP turn and no pull onto the 2D rays, so that the mesh is the
    network's own output, translated."""
    return RegressorEstimator(hand_model, RunnerConfig(manifest=fresh[1], threads=THREADS,
                                                    refine_rotation=False, follow_2d=0.0))


@pytest.fixture(scope="module")
def shipped() -> dict:
    """The shipped manifest, its files and the torch network from regressor.pt."""
    if not SHIPPED_MANIFEST.is_file():
        pytest.fail(f"shipped regressor manifest {SHIPPED_MANIFEST} is missing: train and "
                    "export with `python -m models.training.train` (these tests never skip)")
    manifest = json.loads(SHIPPED_MANIFEST.read_text())
    pt = SHIPPED_DIR / manifest.get("torch_state_file", "regressor.pt")
    fp16 = SHIPPED_DIR / manifest["model_file"]
    fp32 = SHIPPED_DIR / manifest["fp32_model_file"]
    for path in (pt, fp16, fp32):
        assert path.is_file(), f"shipped file {path} named by {SHIPPED_MANIFEST} is missing"
    ck = torch.load(pt, map_location="cpu", weights_only=False)
    config = RegressorConfig(**ck["config"])
    net = MeshRegressor(HandModel.open_hand().data, config)
    net.load_state_dict(ck["state_dict"])
    return {"manifest": manifest, "net": net.eval(), "fp16": fp16, "fp32": fp32, "pt": pt,
            "config": config}


@pytest.fixture(scope="module")
def shipped_fitter(hand_model, shipped) -> RegressorEstimator:
    return RegressorEstimator(hand_model, RunnerConfig(manifest=SHIPPED_MANIFEST, threads=THREADS))


def _max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# ---------------------------------------------------------------------------------------
# 1. Export round trip.


@pytest.mark.parametrize("batch", [2, 5])
def test_fp32_onnx_equals_torch_dynamic_batch(hand_model, fresh, batch):
    net, manifest = fresh
    inputs = _net_inputs(hand_model.data, batch, SEED + 10 + batch)
    ref = _run_torch(net, *inputs)
    got = _run_ort(_ort_session(manifest.parent / "regressor_fp32.onnx"), *inputs)
    assert ref["vertices"].std(axis=0).max() > 1e-4, "outputs must depend on the inputs"
    for name in OUTPUTS:
        assert got[name].shape == ref[name].shape, name
        assert got[name].shape[0] == batch
        err = _max_abs(got[name], ref[name])
        assert err < ONNX_TORCH_TOL_M, f"{name}: ONNX vs torch max abs {err:.3g}"


def test_exported_files_match_manifest(hand_model, fresh):
    net, manifest_path = fresh
    m = load_manifest(manifest_path)
    d = manifest_path.parent
    assert m["vertex_count"] == hand_model.num_vertices
    assert m["hand_model"]["sha256"] == hand_model.data.sha256
    assert m["model_sha256"] == hashlib.sha256((d / m["model_file"]).read_bytes()).hexdigest()
    assert m["fp32_model_sha256"] == hashlib.sha256(
        (d / m["fp32_model_file"]).read_bytes()).hexdigest()
    assert m["network"] == net.config.to_dict()
    assert m["outputs"]["vertices"]["shape"] == ["batch", hand_model.num_vertices, 3]
    assert (d / m["model_file"]).stat().st_size < (d / m["fp32_model_file"]).stat().st_size


# ---------------------------------------------------------------------------------------
# 2. FP16 weights vs FP32.


def _fp16_vs_fp32(data, fp16: Path, fp32: Path) -> float:
    inputs = _net_inputs(data, N_FP16_HANDS, SEED + 20)
    a = _run_ort(_ort_session(fp16), *inputs)["vertices"]
    b = _run_ort(_ort_session(fp32), *inputs)["vertices"]
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    return _max_abs(a, b)


def test_fp16_weights_agree_with_fp32_fresh(hand_model, fresh):
    d = fresh[1].parent
    err = _fp16_vs_fp32(hand_model.data, d / "regressor.onnx", d / "regressor_fp32.onnx")
    assert err < FP16_FP32_TOL_M, f"FP16 vs FP32 vertices max abs {err * 1e3:.3f} mm"


def test_fp16_weights_agree_with_fp32_shipped(hand_model, shipped):
    err = _fp16_vs_fp32(hand_model.data, shipped["fp16"], shipped["fp32"])
    assert err < FP16_FP32_TOL_M, f"FP16 vs FP32 vertices max abs {err * 1e3:.3f} mm"


# ---------------------------------------------------------------------------------------
# 3. Shipped files: they load in a fresh process and agree with torch.


def test_shipped_manifest_is_consistent(hand_model, shipped):
    m = load_manifest(SHIPPED_MANIFEST)
    assert m["kind"] == "handmesh.mesh_regressor"
    assert m["vertex_count"] == hand_model.num_vertices
    assert m["hand_model"]["sha256"] == hand_model.data.sha256, "retrain for this hand model"
    for key, path in (("model_sha256", shipped["fp16"]), ("fp32_model_sha256", shipped["fp32"])):
        assert m[key] == hashlib.sha256(path.read_bytes()).hexdigest(), f"{path} vs {key}"
    assert m["network"] == shipped["config"].to_dict(), "manifest vs regressor.pt config"
    size_mb = sum(p.stat().st_size for p in SHIPPED_DIR.iterdir() if p.is_file()) / 2**20
    assert size_mb < 20, f"shipped weights take {size_mb:.1f} MB"


def _fresh_process(manifest: Path, inputs: tuple, tmp_path: Path) -> dict:
    npz = tmp_path / "inputs.npz"
    np.savez(npz, world=inputs[0], image=inputs[1], handedness=inputs[2])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _FRESH_PROCESS_SCRIPT, str(manifest), str(npz)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"fresh process failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("which", ["model_file", "fp32_model_file"])
def test_shipped_files_load_in_fresh_process_and_agree_with_torch(
        hand_model, shipped, tmp_path, which):
    manifest = SHIPPED_MANIFEST
    if which == "fp32_model_file":  # the FP32 twin through a manifest of its own
        m = dict(shipped["manifest"])
        m["model_file"], m["model_sha256"] = shipped["fp32"].name, m["fp32_model_sha256"]
        shutil.copy(shipped["fp32"], tmp_path / shipped["fp32"].name)
        manifest = tmp_path / "regressor.json"
        manifest.write_text(json.dumps(m))
    inputs = _net_inputs(hand_model.data, N_SHIPPED_HANDS, SEED + 30)
    result = _fresh_process(manifest, inputs, tmp_path)
    ref = _run_torch(shipped["net"], *inputs)
    assert result["provider"] in PROVIDER_ORDER
    for name in OUTPUTS:
        got = np.asarray(result["outputs"][name])
        assert got.shape == ref[name].shape, name
        err = _max_abs(got, ref[name])
        tol = FRESH_PROCESS_TOL_UNITLESS if name in UNITLESS_OUTPUTS else FRESH_PROCESS_TOL_M
        assert err < tol, f"{which} {name}: runner vs torch max abs {err:.3g}"


# ---------------------------------------------------------------------------------------
# 4. Manifest validation.


@pytest.fixture
def fresh_copy(fresh, tmp_path) -> Path:
    """A writable copy of the fresh export; returns its manifest path."""
    src = fresh[1].parent
    for name in ("regressor.json", "regressor.onnx", "regressor_fp32.onnx"):
        shutil.copy(src / name, tmp_path / name)
    return tmp_path / "regressor.json"


def _edit(manifest: Path, **changes) -> Path:
    m = json.loads(manifest.read_text())
    m.update(changes)
    manifest.write_text(json.dumps(m))
    return manifest


def _runner(model: HandModel, manifest: Path) -> RegressorRunner:
    return RegressorRunner(model, RunnerConfig(manifest=manifest, threads=THREADS))


def test_copy_of_export_loads(hand_model, fresh_copy):
    assert _runner(hand_model, fresh_copy).manifest["kind"] == "handmesh.mesh_regressor"


def test_missing_manifest_refused(hand_model, tmp_path):
    with pytest.raises(RegressorError, match="not found"):
        _runner(hand_model, tmp_path / "nope.json")


def test_non_json_manifest_refused(hand_model, fresh_copy):
    fresh_copy.write_text("{ this is not json")
    with pytest.raises(RegressorError, match="not a JSON manifest"):
        _runner(hand_model, fresh_copy)


def test_non_object_manifest_refused(hand_model, fresh_copy):
    fresh_copy.write_text("[1, 2, 3]")
    with pytest.raises(RegressorError, match="JSON object"):
        _runner(hand_model, fresh_copy)


@pytest.mark.parametrize(
    "field", ["kind", "model_file", "inputs", "outputs", "vertex_count", "hand_model"])
def test_missing_field_refused_and_named(hand_model, fresh_copy, field):
    m = json.loads(fresh_copy.read_text())
    del m[field]
    fresh_copy.write_text(json.dumps(m))
    with pytest.raises(RegressorError, match=f"'{field}' is missing"):
        _runner(hand_model, fresh_copy)


def test_wrong_kind_refused(hand_model, fresh_copy):
    _edit(fresh_copy, kind="someone.else")
    with pytest.raises(RegressorError, match="kind is 'someone.else'"):
        _runner(hand_model, fresh_copy)


def test_missing_input_entry_refused(hand_model, fresh_copy):
    m = json.loads(fresh_copy.read_text())
    del m["inputs"]["handedness"]
    fresh_copy.write_text(json.dumps(m))
    with pytest.raises(RegressorError, match="inputs lack 'handedness'"):
        _runner(hand_model, fresh_copy)


def test_wrong_vertex_count_refused(hand_model, fresh_copy):
    v = hand_model.num_vertices
    _edit(fresh_copy, vertex_count=v + 1)
    with pytest.raises(RegressorError, match=rf"{v + 1} vertices .* has {v}"):
        _runner(hand_model, fresh_copy)


def test_hand_model_hash_mismatch_refused(hand_model, fresh_copy):
    other = HandModel(dataclasses.replace(hand_model.data, sha256="0" * 64))
    with pytest.raises(RegressorError, match="trained for hand model"):
        _runner(other, fresh_copy)


def test_missing_model_file_refused(hand_model, fresh_copy):
    (fresh_copy.parent / "regressor.onnx").unlink()
    with pytest.raises(RegressorError, match="is missing"):
        _runner(hand_model, fresh_copy)


def test_model_file_hash_mismatch_refused(hand_model, fresh_copy):
    onnx_path = fresh_copy.parent / "regressor.onnx"
    raw = bytearray(onnx_path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    onnx_path.write_bytes(bytes(raw))
    with pytest.raises(RegressorError, match="does not match the hash"):
        _runner(hand_model, fresh_copy)


def test_corrupt_onnx_refused(hand_model, fresh_copy):
    onnx_path = fresh_copy.parent / "regressor.onnx"
    onnx_path.write_bytes(np.random.default_rng(SEED).bytes(4096))
    _edit(fresh_copy, model_sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest())
    with pytest.raises(RegressorError, match="not a loadable ONNX model"):
        _runner(hand_model, fresh_copy)


# ---------------------------------------------------------------------------------------
# 5. The runner on 0, 1 and 2 hands.


def _check_meshes(hands, dets, track_ids, num_vertices) -> None:
    assert len(hands) == len(dets)
    for hand, det, tid in zip(hands, dets, track_ids):
        assert isinstance(hand, HandMesh)
        assert hand.vertices.shape == (num_vertices, 3)
        assert np.all(np.isfinite(hand.vertices))
        assert hand.vertex_std.shape == (num_vertices,)
        assert np.all(np.isfinite(hand.vertex_std)) and np.all(hand.vertex_std > 0)
        assert hand.joints.shape == (21, 3) and np.all(np.isfinite(hand.joints))
        assert np.all(hand.joints[:, 2] > 0), "joints behind the camera"
        assert hand.keypoints_2d.shape == (21, 2) and np.all(np.isfinite(hand.keypoints_2d))
        assert np.isfinite(hand.reprojection_error_px)
        mean_px = np.linalg.norm(hand.keypoints_2d - det.landmarks_px, axis=1).mean()
        assert hand.reprojection_error_px == pytest.approx(mean_px)
        assert (hand.handedness, hand.track_id, hand.frame_index, hand.timestamp) == (
            det.handedness, tid, det.frame_index, det.timestamp)


def _one_and_two(detections) -> list[list[Detection]]:
    return [[detections[0]], [detections[1], _mirror_detection(detections[2])]]


def test_estimate_no_hands(fresh_fitter, intrinsics):
    assert fresh_fitter.estimate([], intrinsics, []) == []


def test_estimate_one_and_two_hands_fresh(hand_model, fresh_fitter, intrinsics, detections):
    for dets in _one_and_two(detections):
        ids = list(range(3, 3 + len(dets)))
        hands = fresh_fitter.estimate(dets, intrinsics, ids)
        _check_meshes(hands, dets, ids, hand_model.num_vertices)


def test_estimate_one_and_two_hands_shipped(hand_model, shipped_fitter, intrinsics, detections):
    assert shipped_fitter.estimate([], intrinsics, []) == []
    for dets in _one_and_two(detections):
        ids = list(range(len(dets)))
        hands = shipped_fitter.estimate(dets, intrinsics, ids)
        _check_meshes(hands, dets, ids, hand_model.num_vertices)
        for hand in hands:
            assert hand.reprojection_error_px < SHIPPED_REPROJ_MEAN_PX, (
                f"{hand.handedness} hand: mean reprojection {hand.reprojection_error_px:.1f} px")


def test_two_hands_one_batch_same_as_one_by_one(fresh_fitter, intrinsics, detections):
    dets = _one_and_two(detections)[1]
    both = fresh_fitter.estimate(dets, intrinsics, [0, 1])
    for i, det in enumerate(dets):
        alone = fresh_fitter.estimate([det], intrinsics, [i])[0]
        assert _max_abs(alone.vertices, both[i].vertices) < ONNX_TORCH_TOL_M


def test_detection_inputs_match_training_preparation(detections):
    """The runner's preparation equals prepare_inputs_np for right hands."""
    dets = detections[:3]
    world, image, handed = detection_inputs(dets, (IMAGE_W, IMAGE_H))
    size = np.array([[IMAGE_W, IMAGE_H]] * len(dets), dtype=np.float64)
    norm = np.stack([np.column_stack([d.landmarks_px / size[0], d.landmarks_z]) for d in dets])
    w2, im2, h2 = prepare_inputs_np(np.stack([d.world for d in dets]), norm, size,
                                    np.ones(len(dets)))
    assert _max_abs(world, w2) < DET_CONSISTENCY_TOL
    assert _max_abs(image, im2) < DET_CONSISTENCY_TOL
    assert np.array_equal(handed, h2)


# ---------------------------------------------------------------------------------------
# 6. NaN and out-of-range landmarks refused.


BAD_CASES = ("nan world", "inf world", "nan pixels", "inf pixels", "nan z", "inf z",
             "world spread > 0.5 m", "u far right", "u far left", "v far below", "v far above")


def _bad_detections(det: Detection) -> dict[str, Detection]:
    def with_(field, index, value):
        arr = getattr(det, field).copy()
        arr[index] = value
        return dataclasses.replace(det, **{field: arr})

    cases = {
        "nan world": with_("world", (4, 1), np.nan),
        "inf world": with_("world", (8, 0), np.inf),
        "nan pixels": with_("landmarks_px", (3, 0), np.nan),
        "inf pixels": with_("landmarks_px", (3, 1), -np.inf),
        "nan z": with_("landmarks_z", 5, np.nan),
        "inf z": with_("landmarks_z", 5, np.inf),
        "world spread > 0.5 m": with_("world", (8, 2), 1.0),
        "u far right": with_("landmarks_px", (12, 0), 3.0 * IMAGE_W),
        "u far left": with_("landmarks_px", (12, 0), -2.0 * IMAGE_W),
        "v far below": with_("landmarks_px", (12, 1), 3.0 * IMAGE_H),
        "v far above": with_("landmarks_px", (12, 1), -2.0 * IMAGE_W),
    }
    assert tuple(cases) == BAD_CASES
    return cases


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_landmarks_refused(fresh_fitter, intrinsics, detections, case):
    bad = _bad_detections(detections[0])[case]
    with pytest.raises(ValueError):
        detection_inputs([bad], (IMAGE_W, IMAGE_H))
    with pytest.raises(ValueError):
        fresh_fitter.estimate([bad], intrinsics, [0])
    with pytest.raises(ValueError):  # one bad hand in a batch of two is refused too
        fresh_fitter.estimate([detections[1], bad], intrinsics, [0, 1])
    with pytest.raises(ValueError):  # and as a left hand
        detection_inputs([_mirror_detection(bad)], (IMAGE_W, IMAGE_H))


# ---------------------------------------------------------------------------------------
# 7. Left hands mirrored correctly.


def _mirror_pair(fitter: RegressorEstimator, intrinsics, det: Detection):
    right, left = fitter.estimate([det, _mirror_detection(det)], intrinsics, [0, 1])
    t_right = right.joints.mean(0)  # the hand centre: mean of the 21 keypoints
    t_left = left.joints.mean(0)
    return right, left, t_right, t_left


def test_left_detection_runs_mirrored_network_output(raw_fitter, intrinsics, detections):
    """The runner feeds the mirrored-to-right inputs with handedness 0, mirrors back."""
    det = detections[0]
    right, left, t_right, t_left = _mirror_pair(raw_fitter, intrinsics, det)
    assert (right.handedness, left.handedness) == ("right", "left")
    world, image, _ = detection_inputs([det], (IMAGE_W, IMAGE_H))
    net = raw_fitter.runner.run(world, image, np.zeros((1, 1), np.float32))
    centred = net["vertices"][0] - net["joints"][0].mean(0)
    err = _max_abs(left.vertices - t_left, mirror_x(centred))
    assert err < MIRROR_TOL_M, f"left mesh vs mirrored network output: {err:.3g} m"


@pytest.fixture(scope="module")
def blind_fitter(hand_model, tmp_path_factory) -> RegressorEstimator:
    """A fresh net that ignores the handedness flag: mirroring must then be exact."""
    manifest = export_all(_fresh_net(hand_model.data, handedness_blind=True), {},
                          tmp_path_factory.mktemp("blind"))
    return RegressorEstimator(hand_model, RunnerConfig(manifest=manifest, threads=THREADS))


def _assert_mirrored(fitter, intrinsics, det, tol) -> None:
    right, left, t_right, t_left = _mirror_pair(fitter, intrinsics, det)
    err_v = _max_abs(left.vertices - t_left, mirror_x(right.vertices - t_right))
    err_t = abs(t_left[0] + t_right[0])
    err_yz = _max_abs(t_left[1:], t_right[1:])
    assert err_v < tol, f"left vs mirrored right vertices (hand-centred): {err_v:.3g} m"
    assert err_t < tol and err_yz < tol, (
        f"translations not mirrored: left {t_left}, right {t_right}")
    assert _max_abs(left.vertex_std, right.vertex_std) < tol


def test_mirrored_detection_gives_mirrored_mesh(blind_fitter, intrinsics, detections):
    for det in detections[:2]:
        _assert_mirrored(blind_fitter, intrinsics, det, MIRROR_TOL_M)


def test_mirrored_detection_gives_mirrored_mesh_shipped(shipped_fitter, intrinsics, detections):
    for det in detections[:2]:
        _assert_mirrored(shipped_fitter, intrinsics, det, MIRROR_TOL_M)


# ---------------------------------------------------------------------------------------
# 8. Execution provider.


def test_runner_exposes_and_logs_provider(hand_model, fresh, caplog):
    import onnxruntime as ort

    with caplog.at_level(logging.INFO, logger="realtime.mesh.regressor"):
        runner = _runner(hand_model, fresh[1])
    available = ort.get_available_providers()
    expected = next(p for p in PROVIDER_ORDER if p in available)
    assert runner.provider == expected
    if not {"TensorrtExecutionProvider", "CUDAExecutionProvider"} & set(available):
        assert runner.provider == "CPUExecutionProvider"
    assert any(runner.provider in r.getMessage() for r in caplog.records), "provider not logged"


def test_unavailable_provider_falls_back_to_cpu(hand_model, fresh):
    config = RunnerConfig(manifest=fresh[1], threads=THREADS, providers=("NoSuchProvider",))
    assert RegressorRunner(hand_model, config).provider == "CPUExecutionProvider"


def test_follow_2d_puts_keypoints_on_mediapipe_rays(fresh_fitter, raw_fitter, intrinsics,
                                                      detections):
    """With follow_2d=1 the 21 keypoints reproject onto MediaPipe's 2D landmarks; the mesh
    moves with them and the depths stay the network's."""
    det = detections[0]
    pulled = fresh_fitter.estimate([det], intrinsics, [0])[0]
    assert pulled.reprojection_error_px < 1e-6
    raw = raw_fitter.estimate([det], intrinsics, [0])[0]
    assert np.all(np.isfinite(pulled.vertices))
    assert pulled.vertices.shape == raw.vertices.shape
