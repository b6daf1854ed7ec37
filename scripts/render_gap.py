"""How far our renders are from photos, to MediaPipe: the same hands, photographed and rendered.

Each hand of hgcnn_realworld's tuning split (00000-00299) is fitted by the open hand model
(inverse kinematics on its annotated 3D joints, shape coefficients clipped to +-1: beyond
that the model's fingers thin out), rendered as ``scripts.make_detector_pairs`` renders
(skin tone, room, lighting, camera finish) in the photo's own camera, and MediaPipe Hands
(static mode) runs on both. Same poses, same views, same cameras: what differs is only how
the image looks. Reported: hands found, MediaPipe's world-landmark PA-MPJPE (photo: against
the annotation and against the fitted model's keypoints; render: against its exact
keypoints) and 2D error, on the hands found in both. ``--thicken-mm``: the rendered surface
moved out along its normals (``PairsConfig.thicken_mm``).

A measurement only: nothing is trained on it (hgcnn's labels are non-commercial).

    python -m scripts.render_gap [--max-images N] [--thicken-mm MM] [--examples DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.common import HGCNN, hgcnn_images, nearest_detection, pa_error
from models.geometry import project
from models.hand_model import HandModel
from models.ik import fit_pose, fit_shape
from realtime.detect.detector import DetectorConfig
from realtime.detect.mediapipe_legacy import MediaPipeDetector
from realtime.types import Frame
from scripts.make_detector_pairs import PairsConfig, Renderer
from scripts.make_sample import SampleConfig, camera_finish

SHAPE_CLIP = 1.0
MIRROR = np.array([-1.0, 1.0, 1.0])


def fit_hand(model: HandModel, joints: np.ndarray) -> tuple[object, bool]:
    """The right-hand fit of ``joints (21,3)`` m, or of their mirror image for a left hand
    (whichever fits closer); shape clipped to ``SHAPE_CLIP``."""
    fits = []
    for mirror in (False, True):
        target = joints * MIRROR if mirror else joints
        fit = fit_pose(model, target, np.clip(fit_shape(model, target), -SHAPE_CLIP,
                                              SHAPE_CLIP))
        fits.append((float(fit.residuals.mean()), mirror, fit))
    _, mirror, fit = min(fits, key=lambda f: f[0])
    return fit, mirror


def render_fit(renderer: Renderer, fit, mirror: bool, K: np.ndarray, w: int, h: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The fitted hand rendered in the photo's camera; returns the image and the rendered
    hand's exact keypoints in the photo's camera frame (m)."""
    out = renderer.model.forward(fit.pose[None], fit.shape[None])
    kps = out.keypoints[0] + fit.translation
    k_render = K.copy()
    if mirror:  # render the mirrored right hand, then flip the image: the left hand in K
        k_render[0, 2] = w - 1 - K[0, 2]
    img = renderer.draw(out, fit.translation, k_render, w, h, rng)
    img = camera_finish(img, rng, SampleConfig(noise_std=2.0, jpeg_quality=85), 1.0)
    if mirror:
        img = np.ascontiguousarray(img[:, ::-1])
    return img, kps * MIRROR if mirror else kps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--thicken-mm", type=float, default=0.0,
                   help="move the rendered surface out along its normals by this much")
    p.add_argument("--examples", type=Path, default=None,
                   help="write the first 8 photo | render pairs here (not committed)")
    args = p.parse_args(argv)
    images = hgcnn_images(args.max_images, tune=True)
    if images is None:
        return 0
    model = HandModel.open_hand()
    renderer = Renderer(model, PairsConfig(thicken_mm=(args.thicken_mm, args.thicken_mm)))
    rows = []
    det_cfg = DetectorConfig(kind="mediapipe", static_image_mode=True, max_num_hands=1)
    with MediaPipeDetector(det_cfg) as det:
        for n, im in enumerate(tqdm(images, desc="photo + render", unit="hand")):
            hand = im["hands"][0]
            gt3 = np.array(hand["joints_3d_mm"]) / 1000.0
            gt2 = np.array(hand["keypoints_2d"])
            K = np.array(hand["K"], dtype=np.float64)
            fit, mirror = fit_hand(model, gt3)
            img, kps = render_fit(renderer, fit, mirror, K, im["width"], im["height"],
                                  np.random.default_rng([7, n]))
            photo = cv2.imread(str(HGCNN / im["file"]))
            row = {"fit_mm": 1000 * float(fit.residuals.mean())}
            for name, image, t3, t2 in (("photo", photo, gt3, gt2),
                                        ("render", img, kps, project(kps, K))):
                d = nearest_detection(det.process(Frame(image, n, float(n))), t2,
                                      0.5 * np.ptp(t2, 0).max())
                row[name] = None if d is None else {
                    "pa": 1000 * pa_error(d.world, t3),
                    "pa_model": 1000 * pa_error(d.world, kps),
                    "px": float(np.linalg.norm(d.landmarks_px - t2, axis=1).mean())}
            rows.append(row)
            if args.examples is not None and n < 8:
                args.examples.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(args.examples / f"{Path(im['file']).stem}.jpg"),
                            np.hstack([photo, img]))
    both = [r for r in rows if r["photo"] and r["render"]]
    out = {"hands": len(rows), "fit_residual_mm": round(np.mean([r["fit_mm"] for r in rows]), 2),
           "both_found": len(both)}
    print(f"\n{len(rows)} hands of the tuning split; fit residual "
          f"{out['fit_residual_mm']} mm; found in both: {len(both)}")
    print(f"{'':10s} {'found':>6s} {'PA-MPJPE':>9s} {'vs model':>9s} {'2D px':>7s}")
    for name in ("photo", "render"):
        found = sum(r[name] is not None for r in rows)
        pa = np.mean([r[name]["pa"] for r in both])
        pa_m = np.mean([r[name]["pa_model"] for r in both])
        px = np.mean([r[name]["px"] for r in both])
        print(f"{name:10s} {found:6d} {pa:9.2f} {pa_m:9.2f} {px:7.2f}")
        out.update({f"{name}_found": found, f"{name}_pa_mpjpe_mm": round(pa, 2),
                    f"{name}_pa_vs_model_mm": round(pa_m, 2), f"{name}_2d_px": round(px, 2)})
    out["render_ratio_vs_photo"] = round(out["render_pa_vs_model_mm"]
                                         / out["photo_pa_vs_model_mm"], 3)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
