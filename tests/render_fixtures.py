"""Known synthetic hands for the rendering tests: the open hand model, posed and placed."""

from __future__ import annotations

import cv2
import numpy as np

from models.hand_model import HandModel, flip_faces, mirror_x
from models.poses import named_pose
from realtime.types import HandMesh

WIDTH, HEIGHT = 640, 480
K = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])


def synthetic_hand(side: str = "right", pose: str = "spread",
                   centre_m: tuple[float, float, float] = (0.02, -0.01, 0.40),
                   track_id: int = 0) -> HandMesh:
    """The open hand in a named pose, palm toward the camera, centred at ``centre_m``."""
    model = HandModel.open_hand()
    out = model.forward(named_pose(model.data.joint_names, pose))
    verts, joints = out.vertices[0], out.keypoints[0]
    if side == "left":
        verts, joints = mirror_x(verts), mirror_x(joints)
    rot, _ = cv2.Rodrigues(np.array([0.25, 0.35, 0.1]))
    centre = verts.mean(axis=0)
    verts = (verts - centre) @ rot.T + np.asarray(centre_m)
    joints = (joints - centre) @ rot.T + np.asarray(centre_m)
    uv = joints @ K.T
    return HandMesh(vertices=verts, joints=joints,
                    vertex_std=np.linspace(0.001, 0.012, len(verts)),
                    pose=np.zeros((20, 3)), shape=np.zeros(10),
                    keypoints_2d=uv[:, :2] / uv[:, 2:3], handedness=side, score=0.93,
                    track_id=track_id, timestamp=0.0, frame_index=0)


def faces_for() -> dict[str, np.ndarray]:
    faces = HandModel.open_hand().faces
    return {"right": faces, "left": flip_faces(faces)}


def projected_silhouette(vertices: np.ndarray, faces: np.ndarray,
                         size: tuple[int, int] = (WIDTH, HEIGHT),
                         camera: np.ndarray = K) -> np.ndarray:
    """Independent reference: cv2.projectPoints, then every triangle filled with fillPoly."""
    uv, _ = cv2.projectPoints(vertices, np.zeros(3), np.zeros(3), camera, None)
    shift = 4
    polys = np.round(uv.reshape(-1, 2)[faces] * (1 << shift)).astype(np.int32)
    ref = np.zeros((size[1], size[0]), dtype=np.uint8)
    for poly in polys:  # one call per triangle: a single call would fill even-odd
        cv2.fillPoly(ref, [poly], 1, cv2.LINE_8, shift)
    return ref.astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


def write_gt_hands_file(path, first: int = 330, count: int = 60) -> None:
    """A hands.jsonl of the built-in clip's ground truth (two hands from frame 330), to
    replay without MediaPipe."""
    from calibration.intrinsics import CameraIntrinsics
    from realtime.io.hands_file import HandsWriter
    from realtime.io.sample import SAMPLE_GT

    with np.load(SAMPLE_GT) as npz:
        gt = {k: npz[k] for k in ("K", "present", "vertices", "keypoints", "keypoints_2d",
                                  "pose", "shape", "handedness", "fps")}
    camera = CameraIntrinsics.from_matrix(gt["K"], WIDTH, HEIGHT)
    with HandsWriter(path, camera=camera) as writer:
        for f in range(first, first + count):
            hands = [HandMesh(vertices=gt["vertices"][f, s].astype(np.float64),
                              joints=gt["keypoints"][f, s].astype(np.float64),
                              vertex_std=np.full(gt["vertices"].shape[2], 0.004),
                              pose=gt["pose"][f, s].astype(np.float64),
                              shape=gt["shape"][f, s].astype(np.float64),
                              keypoints_2d=gt["keypoints_2d"][f, s].astype(np.float64),
                              handedness=str(gt["handedness"][s]), score=1.0, track_id=s,
                              timestamp=f / float(gt["fps"]), frame_index=f)
                     for s in range(2) if gt["present"][f, s]]
            writer.write_frame(hands)
