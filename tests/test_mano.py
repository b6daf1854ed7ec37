"""``models.mano`` against a synthetic pickle laid out like MANO_RIGHT.pkl.

No real MANO file is ever created or needed: the fixture writes random-but-plausible arrays
in MANO's layout (chumpy ``shapedirs``, scipy-sparse ``J_regressor``, protocol 2) and the
tests compare the loaded model with a plain reference implementation of MANO's skinning.
"""

from __future__ import annotations

import pickle
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from models.errors import AssetError
from models.hand_model import HandModel
from models.mano import ManoPCA, load_mano
from models.topology import Keypoint

VERT_TOL = 1e-8    # NumPy model vs reference MANO skinning, meters
TORCH_TOL = 1e-6   # torch float64 twin vs NumPy model, meters
ROUND_TOL = 1e-15  # float64 round-off of the skinning sums (meters), "exactly" in practice

V, J, S, P = 778, 16, 10, 135
SENTINEL = 4294967295  # MANO's kintree_table root parent (uint32 -1)
MANO_PARENTS = [SENTINEL, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
TIPS = {"thumb": 744, "index": 320, "middle": 443, "ring": 554, "pinky": 671}
MANO21_TO_MEDIAPIPE = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19,
                       7, 8, 9, 20]
TIP_ORDER = [744, 320, 443, 554, 671]  # MANO-21 points 16..20


@contextmanager
def fake_chumpy():
    """Modules ``chumpy`` and ``chumpy.ch`` with a ``Ch`` that pickles like chumpy's."""

    class Ch:
        def __init__(self, x, plain_state: bool = False) -> None:
            self.x = x
            self.plain_state = plain_state

        def __getstate__(self):
            if self.plain_state:
                return self.x
            return {"x": self.x, "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {}}

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    ch.Ch = chumpy.Ch = Ch
    chumpy.ch = ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, ch
    try:
        yield Ch
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


def synthetic_mano(seed: int = 0) -> dict:
    """Plain arrays in MANO's layout: a hand-sized cloud around a 16-joint skeleton."""
    rng = np.random.default_rng(seed)
    # Anchor points: wrist, then (index, middle, pinky, ring, thumb) x 3 joints.
    finger_x = {"index": 0.025, "middle": 0.0, "pinky": -0.04, "ring": -0.02, "thumb": 0.045}
    anchors = [np.zeros(3)]
    for finger in ("index", "middle", "pinky", "ring", "thumb"):
        for k in range(3):
            y0 = -0.03 if finger == "thumb" else -0.08
            anchors.append([finger_x[finger] + 0.005 * k * (finger == "thumb"),
                            y0 - 0.025 * k, 0.005 * k])
    anchors = np.asarray(anchors)
    owner = rng.integers(0, J, V)
    verts = anchors[owner] + rng.normal(scale=0.008, size=(V, 3))
    for finger, vid in TIPS.items():  # tips just beyond each finger's last joint
        last = {"index": 3, "middle": 6, "pinky": 9, "ring": 12, "thumb": 15}[finger]
        verts[vid] = anchors[last] + [0.0, -0.02, 0.0]
    hull = ConvexHull(verts)
    faces = hull.simplices.copy()
    a, b, c = (verts[faces[:, i]] for i in range(3))
    inward = np.einsum("fi,fi->f", np.cross(b - a, c - a), hull.equations[:, :3]) < 0
    faces[inward] = faces[inward][:, ::-1]
    weights = rng.dirichlet(np.full(J, 0.3), size=V)
    reg = np.zeros((J, V))
    for j in range(J):
        near = np.argsort(np.linalg.norm(verts - anchors[j], axis=1))[:12]
        reg[j, near] = rng.dirichlet(np.ones(12))
    return {
        "v_template": verts,
        "f": faces.astype(np.uint32),
        "weights": weights,
        "J_regressor": scipy.sparse.csc_matrix(reg),
        "kintree_table": np.array([MANO_PARENTS, list(range(J))], dtype=np.int64),
        "shapedirs": rng.normal(scale=0.002, size=(V, 3, S)),
        "posedirs": rng.normal(scale=0.002, size=(V, 3, P)),
        "hands_components": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_mean": rng.normal(scale=0.1, size=45),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def write_pickle(path: Path, arrays: dict) -> Path:
    """Write ``arrays`` like MANO does: protocol 2, shapedirs/posedirs as chumpy objects."""
    with fake_chumpy() as Ch:
        obj = dict(arrays)
        if "shapedirs" in obj:
            obj["shapedirs"] = Ch(obj["shapedirs"])  # state: a dict with 'x'
        if "posedirs" in obj:
            obj["posedirs"] = Ch(obj["posedirs"], plain_state=True)  # state: the array
        path.write_bytes(pickle.dumps(obj, protocol=2))
    assert "chumpy" not in sys.modules
    return path


@pytest.fixture(scope="module")
def raw() -> dict:
    return synthetic_mano()


@pytest.fixture(scope="module")
def pkl(tmp_path_factory, raw) -> Path:
    return write_pickle(tmp_path_factory.mktemp("mano") / "MANO_RIGHT.pkl", raw)


@pytest.fixture(scope="module")
def model(pkl) -> HandModel:
    return HandModel.from_mano(pkl)


def reference_mano(raw: dict, pose: np.ndarray, betas: np.ndarray):
    """MANO as its paper writes it, one hand at a time: returns vertices (V,3), joints (J,3)."""
    reg = raw["J_regressor"].toarray()
    v_shaped = raw["v_template"] + raw["shapedirs"].dot(betas)
    rest = reg.dot(v_shaped)
    rots = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix()
    feats = np.concatenate([(rots[j] - np.eye(3)).ravel() for j in range(1, J)])
    v_posed = v_shaped + raw["posedirs"].dot(feats)
    parents = raw["kintree_table"][0]
    world = []
    for j in range(J):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = rest[j] if j == 0 else rest[j] - rest[parents[j]]
        world.append(local if j == 0 else world[parents[j]] @ local)
    skin = []
    for j in range(J):
        g = world[j].copy()
        g[:3, 3] -= world[j][:3, :3] @ rest[j]
        skin.append(g)
    skin = np.asarray(skin)
    verts = np.empty((V, 3))
    for i in range(V):
        t = np.tensordot(raw["weights"][i], skin, axes=1)
        verts[i] = t[:3, :3] @ v_posed[i] + t[:3, 3]
    return verts, np.asarray([w[:3, 3] for w in world])


def test_loads_through_both_entry_points(pkl, model):
    data = load_mano(pkl)
    direct = HandModel(data)
    assert model.num_vertices == direct.num_vertices == V
    assert model.num_joints == J and model.num_shape == S
    assert data.name == "mano_right" and data.uv is None and len(data.sha256) == 64
    assert data.joint_names[:4] == ("wrist", "index1", "index2", "index3")
    assert data.joint_names[13:] == ("thumb1", "thumb2", "thumb3")
    assert data.parents.tolist() == [-1] + MANO_PARENTS[1:]
    np.testing.assert_array_equal(data.frames, np.broadcast_to(np.eye(3), (J, 3, 3)))
    assert data.posedirs.shape == (P, V * 3)


def test_zero_pose_zero_shape_is_the_template(model, raw):
    # Identity rotations still go through sums of weights and joint offsets: round-off only.
    for out in (model.forward(np.zeros((1, J, 3)), np.zeros((1, S))), model.forward()):
        np.testing.assert_allclose(out.vertices[0], raw["v_template"], rtol=0, atol=ROUND_TOL)
    np.testing.assert_array_equal(model.data.template, raw["v_template"])


def test_matches_reference_mano(model, raw):
    rng = np.random.default_rng(1)
    pose = rng.normal(scale=0.5, size=(3, J, 3))
    betas = rng.normal(size=(3, S))
    trans = rng.normal(scale=0.1, size=(3, 3))
    out = model.forward(pose, betas, trans)
    for b in range(3):
        verts, joints = reference_mano(raw, pose[b], betas[b])
        np.testing.assert_allclose(out.vertices[b], verts + trans[b], rtol=0, atol=VERT_TOL)
        np.testing.assert_allclose(out.joints[b], joints + trans[b], rtol=0, atol=VERT_TOL)


def test_keypoints_follow_mediapipe(model, raw):
    rng = np.random.default_rng(2)
    pose = rng.normal(scale=0.5, size=(2, J, 3))
    betas = rng.normal(size=(2, S))
    out = model.forward(pose, betas)
    for b in range(2):
        verts, joints = reference_mano(raw, pose[b], betas[b])
        mano21 = np.concatenate([joints, verts[TIP_ORDER]])
        np.testing.assert_allclose(out.keypoints[b], mano21[MANO21_TO_MEDIAPIPE],
                                   rtol=0, atol=VERT_TOL)
    tips = {Keypoint.THUMB_TIP: "thumb", Keypoint.INDEX_TIP: "index",
            Keypoint.MIDDLE_TIP: "middle", Keypoint.RING_TIP: "ring",
            Keypoint.PINKY_TIP: "pinky"}
    for kp, finger in tips.items():
        np.testing.assert_array_equal(out.keypoints[:, kp], out.vertices[:, TIPS[finger]])
    for kp, joint in ((Keypoint.WRIST, 0), (Keypoint.THUMB_CMC, 13), (Keypoint.PINKY_DIP, 9)):
        np.testing.assert_allclose(out.keypoints[:, kp], out.joints[:, joint],
                                   rtol=0, atol=ROUND_TOL)
    # Rest keypoints of a shape agree with the posed ones at zero pose.
    rest = model.rest_keypoints(betas)
    np.testing.assert_allclose(model.forward(None, betas).keypoints, rest,
                               rtol=0, atol=ROUND_TOL)


def test_torch_twin_agrees(pkl, model):
    torch = pytest.importorskip("torch")
    from models.training.torch_skinning import TorchHandModel

    tmodel = TorchHandModel(model.data, dtype=torch.float64)
    rng = np.random.default_rng(3)
    pose, betas = rng.normal(scale=0.6, size=(4, J, 3)), rng.normal(size=(4, S))
    verts, joints, kps = tmodel(torch.from_numpy(pose), torch.from_numpy(betas))
    out = model.forward(pose, betas)
    np.testing.assert_allclose(verts.numpy(), out.vertices, rtol=0, atol=TORCH_TOL)
    np.testing.assert_allclose(joints.numpy(), out.joints, rtol=0, atol=TORCH_TOL)
    np.testing.assert_allclose(kps.numpy(), out.keypoints, rtol=0, atol=TORCH_TOL)


def test_pca_pose(pkl, raw):
    pca = ManoPCA.from_pickle(pkl)
    coeffs = np.random.default_rng(4).normal(size=(2, 6))
    pose = pca.to_pose(coeffs)
    assert pose.shape == (2, J, 3)
    np.testing.assert_allclose(pose[:, 1:].reshape(2, 45),
                               coeffs @ raw["hands_components"][:6], atol=1e-12)
    np.testing.assert_array_equal(pca.to_pose(np.zeros((1, 6))), 0.0)
    np.testing.assert_allclose(pca.to_pose(np.zeros(6), flat_hand_mean=False)[0, 1:].ravel(),
                               raw["hands_mean"])


def test_missing_key(tmp_path, raw):
    bad = {k: v for k, v in raw.items() if k != "weights"}
    path = write_pickle(tmp_path / "MANO_RIGHT.pkl", bad)
    with pytest.raises(AssetError, match=r"missing key 'weights'") as err:
        load_mano(path)
    assert str(path) in str(err.value) and "(778, 16)" in str(err.value)


def test_wrong_shape(tmp_path, raw):
    bad = dict(raw, v_template=raw["v_template"][:700])
    path = write_pickle(tmp_path / "MANO_RIGHT.pkl", bad)
    with pytest.raises(AssetError, match=r"'v_template' has shape \(700, 3\), expected \(778, 3\)"):
        load_mano(path)


def test_not_a_pickle(tmp_path):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(b"this is not a pickle, it is a text file\n" * 4)
    with pytest.raises(AssetError, match="is not a MANO model pickle") as err:
        load_mano(path)
    assert "Traceback" not in str(err.value) and err.value.__cause__ is None
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(AssetError, match="expected a dict of arrays"):
        load_mano(path)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def test_refuses_code_and_left_hands(tmp_path, raw):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil()}, protocol=2))
    with pytest.raises(AssetError, match=r"refusing to load .*system"):
        load_mano(path)
    left = write_pickle(tmp_path / "MANO_LEFT.pkl", raw)
    with pytest.raises(AssetError, match="MANO_RIGHT.pkl instead"):
        load_mano(left)
    with pytest.raises(AssetError, match="not found"):
        load_mano(tmp_path / "nothing_here.pkl")
