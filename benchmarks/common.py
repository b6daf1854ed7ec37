"""Shared helpers for the benchmarks: error metrics and the real-data location."""

from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np

from models.geometry import kabsch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "realhands"


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align ``pred (N,3)`` to ``gt (N,3)`` (rotation, scale, translation)."""
    mp, mg = pred.mean(0), gt.mean(0)
    a, b = pred - mp, gt - mg
    rot, _ = kabsch(pred, gt)
    # Umeyama's scale: trace(R A^T B) / |A|^2 (the sum of the signed singular values).
    scale = float(np.sum((a @ rot.T) * b) / max((a**2).sum(), 1e-12))
    return scale * a @ rot.T + mg


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean distance per point, after subtracting the root (point 0) from both."""
    return float(np.linalg.norm((pred - pred[0]) - (gt - gt[0]), axis=-1).mean())


def pa_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean distance per point after Procrustes alignment (PA-MPJPE / PA-MPVPE)."""
    return float(np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean())


def pa_error_per_point(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1)


# -- data walkers shared by the accuracy benchmarks ---------------------------------------
HGCNN = SHARED_DATA / "hgcnn_realworld"
REPORT_FROM = 300  # hgcnn images 00300-00582 are the report split; 00000-00299 for tuning
CLIP_MATCH_PX = 40.0  # a detection farther than this (mean px) from a clip hand is a miss


def nearest_detection(dets, gt2d: np.ndarray, max_px: float):
    """The detection whose 21 landmarks lie closest (mean px) to ``gt2d``, or None."""
    best = min(dets, default=None,
               key=lambda d: np.linalg.norm(d.landmarks_px - gt2d, axis=1).mean())
    if best is None or np.linalg.norm(best.landmarks_px - gt2d, axis=1).mean() > max_px:
        return None
    return best


def clip_hands(max_frames: int | None, passes: int = 1):
    """Walk the built-in clip through MediaPipe (tracking mode).

    Yields ``(frame_index, present_slots, matches)`` per frame, where ``matches`` maps a
    present hand slot to its matched detection (missing slots are misses). The ground
    truth is ``np.load(SAMPLE_GT)``. ``passes`` > 1: each matched detection carries its
    ``alternates`` from a static-mode pass on each of the frame's photo variants
    (:mod:`realtime.mesh.photo_passes`, an offline accuracy option for a video file).
    """
    from tqdm import tqdm

    from realtime.detect.detector import DetectorConfig
    from realtime.detect.mediapipe_legacy import MediaPipeDetector
    from realtime.io.sample import SAMPLE_GT, SAMPLE_VIDEO
    from realtime.io.sources import SourceConfig, open_source
    from realtime.mesh.photo_passes import attach_alternates, variant_detections

    gt = np.load(SAMPLE_GT)
    src = open_source(SourceConfig(spec=str(SAMPLE_VIDEO)))
    frames = 0
    still = (MediaPipeDetector(DetectorConfig(kind="mediapipe", static_image_mode=True))
             if passes > 1 else contextlib.nullcontext())
    with src, MediaPipeDetector(DetectorConfig(kind="mediapipe")) as det, still:
        total = min(src.frame_count or 0, max_frames or 10**9)
        for frame in tqdm(src, total=total, desc="sample clip", unit="frame"):
            if max_frames is not None and frames >= max_frames:
                break
            frames += 1
            dets = det.process(frame)
            present = np.where(gt["present"][frame.index])[0]
            matches = {}
            for slot in present:
                d = nearest_detection(dets, gt["keypoints_2d"][frame.index, slot], CLIP_MATCH_PX)
                if d is not None:
                    matches[int(slot)] = d
            if passes > 1 and matches:
                slots = list(matches)
                with_alts = attach_alternates([matches[k] for k in slots],
                                              variant_detections(still, frame, passes))
                matches = dict(zip(slots, with_alts))
            yield frame.index, present, matches


def hgcnn_images(max_images: int | None, tune: bool = False) -> list[dict] | None:
    """The report split (or, with ``tune``, the tuning split) of hgcnn_realworld; None with a
    printed reason when the shared data is absent."""
    import json

    ann_path = HGCNN / "annotations.json"
    if not ann_path.is_file():
        print(f"skipping hgcnn_realworld: {ann_path} not found (shared data absent)")
        return None
    images = [im for im in json.loads(ann_path.read_text())["images"]
              if (int(Path(im["file"]).stem) < REPORT_FROM) == tune]
    return images[:max_images] if max_images else images


def hgcnn_hands(images: list[dict], passes: int = 1, seconds: list | None = None):
    """MediaPipe (static mode) on each photo. Yields ``(gt3 m, gt2 px, intrinsics,
    detection)`` for every photo whose hand was found (within half the hand's size).
    ``passes`` > 1: the detection carries its ``alternates`` from the photo's variants
    (:mod:`realtime.mesh.photo_passes`); the hand itself is the single pass's. ``seconds``:
    a list to append each yielded photo's detector seconds to (first pass, other passes)."""
    import cv2
    from tqdm import tqdm

    from calibration.intrinsics import CameraIntrinsics
    from realtime.detect.detector import DetectorConfig
    from realtime.detect.mediapipe_legacy import MediaPipeDetector
    from realtime.mesh.photo_passes import PhotoPassesDetector
    from realtime.types import Frame

    inner = MediaPipeDetector(DetectorConfig(kind="mediapipe", static_image_mode=True))
    with PhotoPassesDetector(inner, passes) as det:
        for n, im in enumerate(tqdm(images, desc="hgcnn_realworld", unit="image")):
            hand = im["hands"][0]
            gt3 = np.array(hand["joints_3d_mm"]) / 1000.0
            gt2 = np.array(hand["keypoints_2d"])
            dets = det.process(Frame(cv2.imread(str(HGCNN / im["file"])), n, float(n)))
            d = nearest_detection(dets, gt2, 0.5 * np.ptp(gt2, 0).max())
            if d is None:
                continue
            intr = CameraIntrinsics.from_matrix(np.array(hand["K"]), im["width"], im["height"])
            if seconds is not None:
                seconds.append(det.last_seconds)
            yield gt3, gt2, intr, d


def random_hand_mesh(model, side: str = "right", seed: int = 1, pose_std: float = 0.2,
                     **fields):
    """A full-mesh ``HandMesh`` of ``model`` in a random pose and shape, 45 cm in front of
    the camera (mirrored for a left hand), with random vertex_std and 2D keypoints; the
    other fields (track_id, score, timestamp, ...) from ``fields``. The stream benchmark and
    the stream tests publish these."""
    from models.hand_model import mirror_x
    from realtime.types import HandMesh

    rng = np.random.default_rng(seed)
    pose = rng.normal(0, pose_std, (model.num_joints, 3))
    shape = rng.normal(0, 0.5, model.num_shape)
    out = model.forward(pose[None], shape[None], trans=np.array([[0.02, -0.01, 0.45]]))
    verts, joints = out.vertices[0], out.keypoints[0]
    if side == "left":
        verts, joints = mirror_x(verts), mirror_x(joints)
    return HandMesh(vertices=verts, joints=joints,
                    vertex_std=rng.uniform(0.001, 0.01, model.num_vertices), pose=pose,
                    shape=shape, keypoints_2d=rng.uniform(0, 640, (21, 2)), handedness=side,
                    **fields)


def read_frames(path: Path, max_frames: int | None = None) -> list[np.ndarray]:
    """Every frame of a video (BGR), or the first ``max_frames``."""
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    while max_frames is None or len(frames) < max_frames:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure (creating the folder) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
