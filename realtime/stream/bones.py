"""Rigged mode: the hand as bones (local rotations, a model-to-camera pose, shape) on the wire.

Pure math, no sockets. A game engine skins the hand itself from the rest mesh, shape
directions, skinning weights and joint tree sent once on ``topology`` (:func:`rig_topology`)
and, per frame and hand, ``rotations`` (J,4), ``model_rotation`` (3,3), ``model_translation``
(3,) and ``shape`` (S,) (:func:`rig_arrays`). :func:`skin_rigged` is the reference decoder:
float32 arithmetic in the order ``integrations/unity/HandMeshReceiver.cs`` uses, so a test of
the Python decoder is a test of the Unity script's math.

The skinned mesh is linear blend skinning of the hand model (``HandModel.forward``) with
the frame's ``pose`` and ``shape``, moved rigidly into the camera. The regressor's vertices
(mesh mode) are *not* pure skinning (its model-free refinement, the PnP turn and the 2D
follow-up move vertices by a few millimetres), so the rigid pose is the least-squares fit
(Kabsch) of the skinned mesh onto the published vertices, and the skinned mesh differs
from the mesh-mode vertices by that refinement; ``benchmarks/stream.py`` reports the gap.

Conventions (``docs/protocol.md``, "Rigged mode"):

* ``rotations[j]``: unit quaternion ``(x, y, z, w)`` of joint j's local rotation in the
  *model axes* (the anatomical-frame pose already turned into model axes, ``F R F^T``),
  about its shaped rest joint; joint 0's is the wrist's orientation in the model frame.
* Forward kinematics: ``G_0 = R_0, T_0 = J_0``; ``G_j = G_p R_j``, ``T_j = G_p (J_j - J_p)
  + T_p``; the skinning transform of joint j maps ``x -> G_j (x - J_j) + T_j``.
* ``p_cam = model_rotation @ v + model_translation`` (a proper rotation); for a **left** hand
  then ``x -> -x`` (left hands are mirrored right hands), which turns the winding: use the
  faces reversed, as in mesh mode.
* Unity: ``(x, y, z)_unity = (x, -y, z)_camera``; with the left-hand mirror, Unity's
  handedness flip and the mirror cancel for left hands (faces as sent) and right hands use
  the faces reversed (``HandMeshReceiver.UnityTriangles``).
"""

from __future__ import annotations

import numpy as np

from models.geometry import kabsch, matrix_to_quaternion
from models.hand_model import HandModel, mirror_x
from models.skinning import forward_kinematics, pose_features, shaped_rest

#: Arrays each rigged hand carries besides the light ones (``protocol.LIGHT_ARRAYS``).
RIG_ARRAYS = ("rotations", "model_rotation", "model_translation")


def quaternion_to_matrix32(q: np.ndarray) -> np.ndarray:
    """``(...,4)`` (x, y, z, w), normalised first -> ``(...,3,3)`` float32, as the C# does."""
    q = np.asarray(q, dtype=np.float32)
    n = np.sqrt((q * q).sum(-1, keepdims=True, dtype=np.float32))
    q = np.where(n > np.float32(1e-8), q / np.maximum(n, np.float32(1e-8)),
                 np.array([0, 0, 0, 1], np.float32))
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    one, two = np.float32(1), np.float32(2)
    return np.stack([
        np.stack([one - two * (y * y + z * z), two * (x * y - z * w), two * (x * z + y * w)], -1),
        np.stack([two * (x * y + z * w), one - two * (x * x + z * z), two * (y * z - x * w)], -1),
        np.stack([two * (x * z - y * w), two * (y * z + x * w), one - two * (x * x + y * y)], -1),
    ], -2).astype(np.float32)


def sparse_weights(weights: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``(V,J)`` skinning weights -> ``(V,K)`` joint indices and weights, K = most used.

    Every non-zero weight is kept (K is 8 for the open hand), so skinning is exact; unused
    slots hold joint 0 with weight 0. Rows are renormalised to sum to 1.
    """
    w = np.where(weights > eps, weights, 0.0)
    k = int(max(1, (w > 0).sum(1).max()))
    idx = np.argsort(-w, axis=1, kind="stable")[:, :k]
    val = np.take_along_axis(w, idx, 1)
    idx = np.where(val > 0, idx, 0)
    val = val / val.sum(1, keepdims=True)
    return idx.astype("<i4"), val.astype("<f4")


def rig_topology(model: HandModel) -> tuple[dict, dict[str, np.ndarray]]:
    """Header fields and arrays that the ``topology`` message carries in rigged mode."""
    d = model.data
    idx, val = sparse_weights(d.weights)
    arrays = {
        "rest_vertices": d.template.astype("<f4"),
        "shape_dirs": d.shapedirs.astype("<f4"),
        "rest_joints": d.joints.astype("<f4"),
        "joint_shape_dirs": d.joint_shapedirs.astype("<f4"),
        "skin_joints": idx,
        "skin_weights": val,
    }
    header = {
        "rig": {
            "rotations": "unit quaternions (x, y, z, w), local, model axes",
            "joints": int(model.num_joints), "weights_per_vertex": int(idx.shape[1]),
            "shape_components": int(d.shapedirs.shape[-1]),
            "model_frame": "right hand, meters: origin at the wrist joint, fingers along -y, "
                           "back of the hand +z, thumb side +x",
            "to_camera": "p = model_rotation @ v + model_translation; left hands then x -> -x",
        },
    }
    return header, arrays


#: Every FIT_STRIDE-th vertex takes part in the rigid fit (a few hundred points pin a rigid
#: pose as well as all of them, at a fraction of the cost on the latency path).
FIT_STRIDE = 6


def _skin(model: HandModel, rot: np.ndarray, shape: np.ndarray,
          sub: slice = slice(None)) -> np.ndarray:
    """``HandModel.forward(...).vertices[:, sub]`` for rotations in model axes ``(B,J,3,3)``.

    The same linear blend skinning with the per-vertex 3x4 product done by ``einsum``
    (``models.skinning.blend_skin``'s batched ``matmul`` on 3x3 blocks was several times
    slower for two hands here), on the ``sub`` vertices only.
    """
    d = model.data
    verts = shaped_rest(d.template[sub], d.shapedirs[sub], shape)
    joints = shaped_rest(d.joints, d.joint_shapedirs, shape)
    if d.posedirs is not None:
        verts = verts + (pose_features(rot) @ d.posedirs).reshape(len(rot), -1, 3)[:, sub]
    _, skin = forward_kinematics(rot, joints, d.parents)
    b, j = skin.shape[:2]
    blended = (d.weights[sub] @ skin[:, :, :3, :].reshape(b, j, 12)).reshape(b, -1, 3, 4)
    return np.einsum("bvik,bvk->bvi", blended[..., :3], verts) + blended[..., 3]


def rig_arrays(model: HandModel, hands: list) -> list[dict[str, np.ndarray] | None]:
    """Per hand: ``rotations``, ``model_rotation``, ``model_translation`` (float32), or None.

    ``hands``: :class:`realtime.types.HandMesh` with ``pose`` (J,3) anatomical axis-angle and
    ``shape``; None for a hand without a pose of the model's size (it is sent with vertices).
    One batched skinning for all hands; the rigid pose is fitted to each hand's vertices.
    """
    out: list = [None] * len(hands)
    ok = [i for i, h in enumerate(hands)
          if np.shape(h.pose) == (model.num_joints, 3) and np.size(h.shape)
          and np.shape(h.vertices) == (model.num_vertices, 3)
          and np.all(np.isfinite(h.pose)) and np.all(np.isfinite(h.vertices))]
    if not ok:
        return out
    pose = np.stack([np.asarray(hands[i].pose, np.float64) for i in ok])
    s = model.num_shape
    shape = np.zeros((len(ok), s))
    for row, i in enumerate(ok):
        sh = np.nan_to_num(np.asarray(hands[i].shape, np.float64).reshape(-1))[:s]
        shape[row, :len(sh)] = sh
    rot = model.model_rotations(pose)
    sub = slice(None, None, FIT_STRIDE)
    verts = _skin(model, rot, shape, sub)
    quats = matrix_to_quaternion(rot)
    for row, i in enumerate(ok):
        target = np.asarray(hands[i].vertices, np.float64)[sub]
        if hands[i].handedness == "left":
            target = mirror_x(target)
        r, t = kabsch(verts[row], target)
        out[i] = {"rotations": quats[row].astype("<f4"), "model_rotation": r.astype("<f4"),
                  "model_translation": t.astype("<f4")}
    return out


def rigged_reference(model: HandModel, hand, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The mesh rigged mode stands for, in float64: skinned pose/shape moved by the fit."""
    shape = np.zeros((1, model.num_shape))
    sh = np.asarray(hand.shape, np.float64).reshape(-1)[:model.num_shape]
    shape[0, :len(sh)] = sh
    v = model.forward(np.asarray(hand.pose, np.float64)[None], shape).vertices[0]
    v = v @ arrays["model_rotation"].astype(np.float64).T + arrays["model_translation"]
    return mirror_x(v) if hand.handedness == "left" else v


def skin_rigged(topology, hand: dict, unity: bool = False) -> np.ndarray:
    """Reference decoder: a rigged hand (decoded message dict) -> vertices ``(V,3)`` float32.

    ``topology``: the rigged ``topology`` :class:`~realtime.stream.protocol.Message`; ``hand``: one
    entry of ``Message.hands`` with ``rotations``, ``model_rotation``, ``model_translation``,
    ``shape`` and ``handedness``. Same steps and float32 arithmetic as the Unity script:
    shaped rest mesh and joints, quaternions to matrices, forward kinematics down the tree,
    blend of the K weighted joint transforms per vertex, the rigid move into the camera, the
    left-hand mirror, and with ``unity=True`` Unity's axes ``(x, -y, z)``; else OpenCV camera
    axes (the Unity result converted back, exactly).
    """
    f32 = np.float32
    arrays = topology.arrays
    missing = [k for k in ("rest_vertices", "rest_joints", "shape_dirs", "joint_shape_dirs",
                           "skin_joints", "skin_weights") if k not in arrays]
    if missing or "joint_parents" not in topology.header:
        raise ValueError(f"not a rigged topology: it lacks {missing or ['joint_parents']}; "
                         "start the publisher with --publish-mode rigged")
    for k in RIG_ARRAYS + ("shape",):
        if k not in hand:
            raise ValueError(f"hand {hand.get('track_id')} has no {k!r}: not a rigged hand")
    nv, nj = len(arrays["rest_vertices"]), len(arrays["rest_joints"])
    idx = arrays["skin_joints"]
    if (len(parents := topology.header["joint_parents"]) != nj
            or np.shape(hand["rotations"]) != (nj, 4) or idx.shape[0] != nv
            or arrays["skin_weights"].shape != idx.shape or idx.size and (
                idx.min() < 0 or idx.max() >= nj)
            or any(int(p) >= j for j, p in enumerate(parents))):
        raise ValueError(f"rigged topology and hand {hand.get('track_id')} do not fit: "
                         f"{nj} joints, {nv} vertices, rotations {np.shape(hand['rotations'])}, "
                         "skin indices must be < joints and parents listed first; ask the "
                         "publisher for the topology again")
    rest_v = arrays["rest_vertices"].astype(f32)
    rest_j = arrays["rest_joints"].astype(f32)
    dirs, jdirs = arrays["shape_dirs"].astype(f32), arrays["joint_shape_dirs"].astype(f32)
    shape = np.nan_to_num(np.asarray(hand["shape"], f32).reshape(-1))
    for s in range(min(len(shape), dirs.shape[-1])):  # the C# loop order
        rest_v = rest_v + dirs[..., s] * shape[s]
        rest_j = rest_j + jdirs[..., s] * shape[s]
    rot = quaternion_to_matrix32(hand["rotations"])
    num_j = len(rest_j)
    g = np.zeros((num_j, 3, 3), f32)
    t = np.zeros((num_j, 3), f32)
    for j in range(num_j):
        p = int(parents[j])
        if p < 0:
            g[j], t[j] = rot[j], rest_j[j]
        else:
            g[j] = g[p] @ rot[j]
            t[j] = g[p] @ (rest_j[j] - rest_j[p]) + t[p]
    b = t - np.einsum("jik,jk->ji", g, rest_j)  # skinning translation: T_j - G_j J_j
    w = arrays["skin_weights"].astype(f32)
    m = (w[..., None, None] * g[idx]).sum(1)  # (V,3,3)
    bb = (w[..., None] * b[idx]).sum(1)  # (V,3)
    v = np.einsum("vik,vk->vi", m, rest_v) + bb
    mr = np.asarray(hand["model_rotation"], f32)
    cam = v @ mr.T + np.asarray(hand["model_translation"], f32)
    if hand.get("handedness") == "left":
        cam[:, 0] = -cam[:, 0]
    uni = np.stack([cam[:, 0], -cam[:, 1], cam[:, 2]], 1).astype(f32)
    if unity:
        return uni
    return np.stack([uni[:, 0], -uni[:, 1], uni[:, 2]], 1)
