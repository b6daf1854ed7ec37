"""Measure test-time variants for photos on hgcnn_realworld (tune split unless --report).

Step 1 (``--cache``): MediaPipe (static mode, the benchmark's legacy detector) on each
photo's variants (original, flipped, bordered, scaled, rotated, and flipped combinations);
every variant's detection of the benchmark's hand (the original pass's, matched to the
ground truth as ``benchmarks.regressor`` does) is mapped back to the original image and
stored under ``runs/photo_passes/``.
Step 2 (default): every way of combining them, with the regressor, scored by PA-MPJPE,
2D error and whether the combined uncertainty still ranks the hands' errors.

    python -m scripts.photo_passes --cache [--report]
    python -m scripts.photo_passes [--report]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import spearmanr
from tqdm import tqdm

from benchmarks.common import HGCNN, REPO, hgcnn_images, mpjpe, nearest_detection, pa_error
from calibration.camera import Camera
from calibration.intrinsics import CameraIntrinsics
from realtime.detect.recall import Variant, make_variant, map_back, same_hand
from realtime.types import Detection, Frame

OUT = REPO / "runs" / "photo_passes"
VARIANTS = {
    "orig": (Variant(), 0.0),
    "flip": (Variant(flip=True), 0.0),
    "pad": (Variant(pad_x=64, pad_y=64), 0.0),
    "flip_pad": (Variant(flip=True, pad_x=64, pad_y=64), 0.0),
    "x2": (Variant(scale=2.0), 0.0),
    "flip_x2": (Variant(flip=True, scale=2.0), 0.0),
    "rot+15": (Variant(), 15.0),
    "rot-15": (Variant(), -15.0),
    "flip_rot+15": (Variant(flip=True), 15.0),
    "flip_rot-15": (Variant(flip=True), -15.0),
}
EXTRA = {  # second cache: passes in tracking mode (the same image again) and more angles
    "track2": (Variant(), 0.0),
    "flip_track2": (Variant(flip=True), 0.0),
    "rot+30": (Variant(), 30.0),
    "rot-30": (Variant(), -30.0),
    "rot+8": (Variant(), 8.0),
    "rot-8": (Variant(), -8.0),
    "flip_rot+30": (Variant(flip=True), 30.0),
    "flip_rot-30": (Variant(flip=True), -30.0),
}


def rotate_image(image: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), deg, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT), m


def unrotate(det: Detection, m: np.ndarray, deg: float) -> Detection:
    """Image rotated by ``m`` (deg counter-clockwise on screen) -> original image."""
    inv = cv2.invertAffineTransform(m)
    px = det.landmarks_px @ inv[:, :2].T + inv[:, 2]
    a = np.deg2rad(deg)  # screen ccw with y down: undo by rotating the world xy back
    c, s = np.cos(a), np.sin(a)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return replace(det, landmarks_px=px, world=det.world @ rot.T)


def cache(report: bool, max_images: int | None, extra: bool = False) -> Path:
    from realtime.detect.detector import DetectorConfig
    from realtime.detect.mediapipe_legacy import MediaPipeDetector

    images = hgcnn_images(max_images, tune=not report)
    rows = []
    variants = {"orig": VARIANTS["orig"], **EXTRA} if extra else VARIANTS
    times = {k: [] for k in variants}
    blank = None
    tracker = MediaPipeDetector(DetectorConfig(kind="mediapipe", static_image_mode=False))
    with MediaPipeDetector(DetectorConfig(kind="mediapipe", static_image_mode=True)) as det:
        for n, im in enumerate(tqdm(images, desc="variants", unit="image")):
            hand = im["hands"][0]
            gt3 = np.array(hand["joints_3d_mm"]) / 1000.0
            gt2 = np.array(hand["keypoints_2d"])
            image = cv2.imread(str(HGCNN / im["file"]))
            w = image.shape[1]
            found = {}
            for name, (variant, deg) in variants.items():
                t = time.perf_counter()
                img = image if variant.is_original else make_variant(image, variant)
                m = None
                if deg:
                    img, m = rotate_image(img, deg)
                if name.endswith("track2"):  # lose the last hand, then the same image twice
                    blank = np.zeros_like(img)
                    tracker.process(Frame(blank, n, float(n)))
                    tracker.process(Frame(img, n, float(n)))
                    dets = tracker.process(Frame(img, n, float(n)))
                else:
                    dets = det.process(Frame(img, n, float(n)))
                times[name].append(time.perf_counter() - t)
                mapped = []
                for d in dets:
                    if deg:
                        d = unrotate(d, m, deg)
                    mapped.append(map_back(d, variant, w))
                found[name] = mapped
            ref = nearest_detection(found["orig"], gt2, 0.5 * np.ptp(gt2, 0).max())
            if ref is None:
                continue
            row = {"file": im["file"], "gt3": gt3, "gt2": gt2, "K": np.array(hand["K"]),
                   "size": (im["width"], im["height"])}
            for name, dets in found.items():
                same = [d for d in dets if same_hand(d.landmarks_px, ref.landmarks_px, 0.25)]
                best = min(same, default=None, key=lambda d: np.linalg.norm(
                    d.landmarks_px - ref.landmarks_px, axis=1).mean())
                row[name] = best
            rows.append(row)
    tracker.close()
    path = OUT / (("report" if report else "tune") + ("_extra" if extra else "") + ".npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.array(rows, dtype=object), allow_pickle=True)
    print({k: f"{1000 * np.median(v):.1f} ms" for k, v in times.items()})
    print(f"{len(rows)} hands of {len(images)} images -> {path}")
    return path


def average_inputs(dets: list[Detection], world: bool = True, image: bool = True) -> Detection:
    ref = dets[0]
    out = ref
    if image:
        out = replace(out, landmarks_px=np.mean([d.landmarks_px for d in dets], 0),
                      landmarks_z=np.mean([d.landmarks_z for d in dets], 0))
    if world:
        out = replace(out, world=np.mean([d.world - d.world.mean(0) for d in dets], 0))
    return out


def kabsch_to(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rigidly move ``a`` onto ``b`` (rotation about the centroids, then translation)."""
    from models.geometry import kabsch

    rot, _ = kabsch(a, b)
    return (a - a.mean(0)) @ rot.T + b.mean(0)


def evaluate(report: bool) -> None:
    from models.hand_model import HandModel
    from realtime.mesh.regressor import RegressorEstimator

    split = "report" if report else "tune"
    rows = list(np.load(OUT / f"{split}.npy", allow_pickle=True))
    extra_path = OUT / f"{split}_extra.npy"
    if extra_path.is_file():
        extra = {r["file"]: r for r in np.load(extra_path, allow_pickle=True)}
        for r in rows:
            for k in EXTRA:
                r[k] = extra[r["file"]][k] if r["file"] in extra else None
    names_all = [k for k in {**VARIANTS, **EXTRA} if k in rows[0]]
    model = HandModel.open_hand()
    est = RegressorEstimator(model)
    # sanity: how far each variant's landmarks lie from the original's
    for name in names_all:
        got = [r for r in rows if r[name] is not None]
        px = [np.linalg.norm(r[name].landmarks_px - r["orig"].landmarks_px, axis=1).mean()
              for r in got]
        wd = [np.linalg.norm((r[name].world - r[name].world.mean(0))
                             - (r["orig"].world - r["orig"].world.mean(0)), axis=1).mean()
              for r in got]
        sides = np.mean([r[name].handedness == r["orig"].handedness for r in got])
        mp_pa = np.mean([pa_error(r[name].world, r["gt3"]) for r in got])
        mp_px = np.mean([np.linalg.norm(r[name].landmarks_px - r["gt2"], axis=1).mean()
                         for r in got])
        print(f"{name:12s} found {len(got):3d}/{len(rows)}  vs orig {np.mean(px):5.2f} px "
              f"{1000 * np.mean(wd):5.2f} mm  same side {sides:.2f}  MP PA {1000 * mp_pa:5.2f} "
              f"mm 2D {mp_px:5.2f} px")

    def camera(r):
        return Camera.pinhole(CameraIntrinsics.from_matrix(r["K"], *r["size"]))

    single = {}
    for i, r in enumerate(rows):
        cam = camera(r)
        single[i] = {name: est.estimate([r[name]], cam, [0])[0]
                     for name in names_all if r[name] is not None}

    def score(label, fn):
        pa, rr, px, std = [], [], [], []
        for i, r in enumerate(rows):
            joints, s = fn(i, r)
            pa.append(pa_error(joints, r["gt3"]))
            rr.append(mpjpe(joints, r["gt3"]))
            uv = joints[:, :2] / joints[:, 2:3] * [r["K"][0, 0], r["K"][1, 1]] + r["K"][:2, 2]
            px.append(np.linalg.norm(uv - r["gt2"], axis=1).mean())
            std.append(s)
        rho = spearmanr(std, pa).statistic
        print(f"{label:44s} PA {1000 * np.mean(pa):6.3f} mm  RR {1000 * np.mean(rr):6.2f} mm  "
              f"2D {np.mean(px):5.2f} px  rho(std,PA) {rho:5.3f}  std {1000 * np.mean(std):5.2f}")

    def hands(i, names):
        return [single[i][n] for n in names if n in single[i]]

    def dets(r, names):
        return [r[n] for n in names if r[n] is not None]

    rot = ["rot+8", "rot-8", "rot+15", "rot-15", "rot+30", "rot-30"]
    sets = {
        "orig": ["orig"],
        "track2": ["track2"],
        "orig+track2": ["orig", "track2"],
        "orig+flip": ["orig", "flip"],
        "track2+flip_track2": ["track2", "flip_track2"],
        "orig+flip+track2+flip_track2": ["orig", "flip", "track2", "flip_track2"],
        "orig+rot8": ["orig", "rot+8", "rot-8"],
        "orig+rot30": ["orig", "rot+30", "rot-30"],
        "orig+6 rot": ["orig", *rot],
        "orig+flip+pad+flip_pad": ["orig", "flip", "pad", "flip_pad"],
        "orig+flip+6 rot+flip rot": ["orig", "flip", *rot, "flip_rot+15", "flip_rot-15",
                                     "flip_rot+30", "flip_rot-30"],
        "all": names_all,
    }
    mp_alone = np.mean([pa_error(r["orig"].world, r["gt3"]) for r in rows])
    print(f"MediaPipe alone: PA {1000 * mp_alone:.3f} mm")

    def evaluate_set(sname: str, names: list[str]) -> None:
        score(f"{sname}: out mean", lambda i, r: (
            np.mean([h.joints for h in hands(i, names)], 0),
            np.mean([h.vertex_std.mean() for h in hands(i, names)])))
        if len(names) == 1:
            return
        score(f"{sname}: out median", lambda i, r: (
            np.median([h.joints for h in hands(i, names)], 0),
            np.mean([h.vertex_std.mean() for h in hands(i, names)])))
        score(f"{sname}: out aligned mean", lambda i, r: (
            np.mean([kabsch_to(h.joints, hands(i, names)[0].joints)
                     for h in hands(i, names)], 0),
            np.mean([h.vertex_std.mean() for h in hands(i, names)])))
        score(f"{sname}: out mean, spread std", lambda i, r: (
            np.mean([h.joints for h in hands(i, names)], 0),
            np.sqrt(np.mean([h.vertex_std.mean() ** 2 for h in hands(i, names)])
                    + np.mean(np.var([h.vertices for h in hands(i, names)], 0).sum(-1) / 3))))
        score(f"{sname}: in mean", lambda i, r: (
            (h := est.estimate([average_inputs(dets(r, names))], camera(r), [0])[0]).joints,
            h.vertex_std.mean()))
        score(f"{sname}: in mean world only", lambda i, r: (
            (h := est.estimate([average_inputs(dets(r, names), image=False)], camera(r),
                               [0])[0]).joints, h.vertex_std.mean()))
        score(f"{sname}: in mean image only", lambda i, r: (
            (h := est.estimate([average_inputs(dets(r, names), world=False)], camera(r),
                               [0])[0]).joints, h.vertex_std.mean()))


    for sname, names in sets.items():
        evaluate_set(sname, names)

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cache", action="store_true")
    p.add_argument("--report", action="store_true")
    p.add_argument("--extra", action="store_true", help="the second set of variants")
    p.add_argument("--max-images", type=int, default=None)
    a = p.parse_args(argv)
    if a.cache:
        cache(a.report, a.max_images, a.extra)
    else:
        evaluate(a.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
