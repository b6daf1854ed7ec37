"""Pinch-head training rows: the real pipeline's hands on rendered pinch clips, with truth.

Each clip (``scripts.make_pinch_clip --script random``: training and tuning clips, never
the evaluation clip) runs through :class:`~realtime.HandMesher` exactly as the pinch
benchmark runs it (MediaPipe in video mode, the ONNX regressor, One-Euro smoothing), and
every true hand is matched to the output hand with the nearest 2D keypoints. A row holds
what the pinch stage sees for that hand (the smoothed joints, the raw per-frame joints, the
regressor's pose and shape, MediaPipe's landmarks of the frame) and the truth (exact
keypoints, the thumb-index distance).

    python -m models.training.pinch_data runs/pinch/s1001 runs/pinch/s1002 --out runs/pinch/train.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from calibration.intrinsics import CameraIntrinsics
from models.geometry import project
from realtime.io.camera import CameraConfig
from realtime.mesher import HandMesher, HandMesherConfig
from scripts.make_sample import match_detections

ROW_KEYS = ("clip", "frame", "slot", "joints", "joints_raw", "pose", "shape", "right",
            "landmarks_px", "landmarks_z", "world", "K", "true_keypoints", "true_distance",
            "true_engaged")


def clip_rows(clip_dir: Path, clip_id: int = 0) -> dict[str, list]:
    """The matched hands of one clip directory (``pinch.mp4`` + ``pinch_gt.npz``)."""
    import cv2

    clip_dir = Path(clip_dir)
    with np.load(clip_dir / "pinch_gt.npz") as z:
        gt = {k: z[k] for k in z.files}
    n, K, fps = int(gt["num_frames"]), gt["K"], float(gt["fps"])
    present = gt["present"]
    kp2d = np.where(present[..., None, None], project(gt["keypoints"].astype(np.float64), K),
                    0.0)
    config = HandMesherConfig(camera=CameraConfig(intrinsics=CameraIntrinsics.from_matrix(
        K, int(gt["width"]), int(gt["height"]))), pinch=None)  # rows need no pinch state
    rows: dict[str, list] = {k: [] for k in ROW_KEYS}
    cap = cv2.VideoCapture(str(clip_dir / "pinch.mp4"))
    try:
        with HandMesher(config) as mesher:
            for f in tqdm(range(n), desc=f"pipeline {clip_dir.name}", unit="frame"):
                ok, image = cap.read()
                if not ok:
                    raise RuntimeError(f"{clip_dir}: frame {f} unreadable")
                raw, hands, dets = _process(mesher, image, f / fps)
                matched = match_detections(kp2d[f], present[f], [h.keypoints_2d for h in hands])
                for slot in matched:
                    i = min(range(len(hands)), key=lambda k: float(np.linalg.norm(
                        hands[k].keypoints_2d - kp2d[f, slot], axis=-1).mean()))
                    h = hands[i]
                    r = min(raw, key=lambda x: abs(x.track_id - h.track_id))
                    d = min(dets, key=lambda x: float(np.abs(x.landmarks_px
                                                              - r.keypoints_2d).mean()))
                    for key, value in (
                            ("clip", clip_id), ("frame", f), ("slot", slot),
                            ("joints", h.joints), ("joints_raw", r.joints), ("pose", h.pose),
                            ("shape", h.shape), ("right", h.handedness == "right"),
                            ("landmarks_px", d.landmarks_px), ("landmarks_z", d.landmarks_z),
                            ("world", d.world), ("K", K),
                            ("true_keypoints", gt["keypoints"][f, slot]),
                            ("true_distance", gt["distance_m"][f, slot]),
                            ("true_engaged", gt["engaged"][f, slot])):
                        rows[key].append(value)
    finally:
        cap.release()
    return rows


def _process(mesher: HandMesher, image: np.ndarray, timestamp: float):
    """:meth:`HandMesher.process`, keeping the estimate stage's raw hands and detections."""
    from realtime.types import Frame, Packet

    size = (image.shape[1], image.shape[0])
    frame = Frame(image=image, index=mesher._index, timestamp=timestamp, source="pinch_data",
                  camera=mesher.cameras.for_size(size))
    mesher._index += 1
    packet = Packet(frame, time.monotonic())
    raw = dets = ()
    for name, stage in mesher.stages:
        packet = stage(packet)
        if name == "estimate":
            raw, dets = packet.hands, packet.detections
    return list(raw), list(packet.hands), list(dets)


def still_rows(count: int, seed: int) -> dict[str, np.ndarray]:
    """Single rendered photos (``scripts.make_detector_pairs``' renderer: sampled, named
    and pinching poses, any view, skin tone, light, occluder) through MediaPipe in static
    mode and the regressor, as the pipeline runs on photos: the joints (no smoothing), the
    side and the true thumb-index distance. Wider poses than the clips' named gestures."""
    from benchmarks.common import nearest_detection
    from calibration.camera import Camera
    from calibration.intrinsics import CameraIntrinsics
    from models.hand_model import HandModel
    from realtime.detect.detector import DetectorConfig
    from realtime.detect.mediapipe_legacy import MediaPipeDetector
    from realtime.mesh.regressor import RegressorEstimator
    from realtime.types import Frame
    from scripts.make_detector_pairs import PairsConfig, Renderer, draw_hands

    model = HandModel.open_hand()
    cfg = PairsConfig(count=count, seed=seed, p_pinch=0.5)
    poses, shapes, _ = draw_hands(model, cfg)
    renderer = Renderer(model, cfg)
    est = RegressorEstimator(model)
    rows: dict[str, list] = {"joints": [], "right": [], "true_distance": []}
    det_cfg = DetectorConfig(kind="mediapipe", static_image_mode=True, max_num_hands=1)
    with MediaPipeDetector(det_cfg) as det:
        for i in tqdm(range(count), desc="stills", unit="image"):
            rng = np.random.default_rng([seed, 2, i])
            r = renderer.render(poses[i], shapes[i], rng)
            img, uv = r["image"], r["uv"]
            h, w = img.shape[:2]
            if rng.random() < cfg.p_flip:  # a left hand; K's centre is the image's
                img = np.ascontiguousarray(img[:, ::-1])
                uv = np.stack([w - 1 - uv[:, 0], uv[:, 1]], -1)
            d = nearest_detection(det.process(Frame(img, i, float(i))), uv,
                                  0.5 * np.ptp(uv, 0).max())
            if d is None:
                continue
            camera = Camera.pinhole(CameraIntrinsics.from_matrix(r["K"], w, h))
            try:
                hand = est.estimate([d], camera, [0])[0]
            except ValueError:
                continue
            kp = r["keypoints_cam"]
            rows["joints"].append(hand.joints)
            rows["right"].append(d.handedness == "right")
            rows["true_distance"].append(float(np.linalg.norm(kp[4] - kp[8])))
    return {k: np.asarray(v) for k, v in rows.items()}


def collect(clip_dirs: list[Path], out: Path) -> dict:
    rows: dict[str, list] = {k: [] for k in ROW_KEYS}
    for c, clip_dir in enumerate(clip_dirs):
        for k, v in clip_rows(clip_dir, c).items():
            rows[k] += v
    arrays = {k: np.asarray(v) for k, v in rows.items()}
    arrays["clips"] = np.array([str(p) for p in clip_dirs])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return arrays


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("clips", type=Path, nargs="*", help="clip directories (make_pinch_clip)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stills", type=int, default=0,
                   help="instead of clips: this many rendered photos (make_detector_pairs)")
    p.add_argument("--seed", type=int, default=0, help="the photos' seed")
    args = p.parse_args(argv)
    if args.stills:
        arrays = still_rows(args.stills, args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.out, **arrays)
        print(f"wrote {args.out}: {len(arrays['joints'])} hands from {args.stills} photos")
        return
    arrays = collect(args.clips, args.out)
    print(f"wrote {args.out}: {len(arrays['frame'])} hand-frames from {len(args.clips)} clips")


if __name__ == "__main__":
    main()
