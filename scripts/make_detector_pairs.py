"""Training pairs whose inputs are what MediaPipe really outputs on rendered hands.

The regressor is trained on synthetic landmarks with a modelled MediaPipe noise
(``models.training.synthetic``); on the project's own rendered clip that noise model
proved too kind (synthetic PA-MPVPE 3.3 mm, rendered clip 10.7 mm). Here every input comes
from the real detector: the open hand model is rendered (``scripts.make_sample``'s
rasterizer, skin, forearm and camera finish; ``scripts.backgrounds``' rooms) in varied
poses (sampled, named, pinches, fists), shapes, views, skin tones and lighting, with
occluders and motion blur, then MediaPipe Hands in static-image mode (as the pipeline runs
on photos) finds it. Half the images are flipped, which makes a left hand; its landmarks
are mirrored back exactly as the runtime does (``realtime.mesh.regressor.detection_inputs``).

    python -m scripts.make_detector_pairs --count 2000 --out runs/pairs.npz
    python -m scripts.make_detector_pairs --set yaw_deg=50 --set 'fill=[0.6,0.85]'  # any field
    python -m scripts.make_detector_pairs --set 'pose_file="runs/clip_poses.npz"'  # real poses

``pose_file`` (from ``scripts.clip_poses``): the sampled poses' fingers, and with
``p_file_view`` their views, come from real footage instead (MediaPipe errs 14.8 instead of
22.9 mm on those renders; ``docs/regressor.md``, third attempt); ``thicken_mm`` moves the
rendered surface out along its normals (the model's fingers are thinner than real ones: 13.8 mm).

Stored (``.npz``, one row per detected hand; regenerable from the seed, not committed):
inputs ``world (N,21,3)``, ``image (N,21,3)`` (x/W, y/H, z as MediaPipe normalises, after
the runtime's mirroring), ``image_size (N,2)``, ``handedness (N,1)`` (1 right, 0 a
mirrored left); ground truth ``pose (N,J,3)`` (root = camera-axes rotation), ``shape
(N,S)``, ``trans (N,3)``, ``keypoints_cam (N,21,3)`` and ``K (N,3,3)`` of the unflipped
render; bookkeeping ``flipped``, ``kind`` (-1 sampled pose, -2 from ``pose_file``, else index into
``models.poses.NAMED_POSES``), ``landmarks_px`` / ``keypoints_2d`` (detected / true, in
the image as rendered), ``score``; ``recipe`` (JSON) with the config and the counts.
Targets for training: ``pairs_targets`` skins ``pose, shape`` and centres on the keypoints.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from benchmarks.common import nearest_detection
from models.geometry import project
from models.hand_model import HandModel
from models.limits import clamp_pose
from models.npz_files import read_npz
from models.poses import NAMED_POSES, named_pose
from models.training.synthetic import sample_poses_torch, sample_rotations
from models.training.train import build_config, parse_overrides
from realtime.detect.detector import DetectorConfig
from realtime.detect.mediapipe_legacy import MediaPipeDetector
from realtime.mesh.regressor import detection_inputs
from realtime.render.raster import Lighting
from realtime.types import Frame
from scripts.backgrounds import list_kinds, make_background
from scripts.make_sample import (
    SKIN_RGB,
    SLEEVE_RGB,
    WRIST_BLEND_LENGTH_M,
    WRIST_BLEND_START_M,
    SampleConfig,
    camera_finish,
    forearm_mesh,
    render_hands,
    skin_colors,
    wrist_normals,
)

# Skin albedos from very light to very dark (linear RGB in [0, 1], the rasterizer's).
SKIN_TONES = np.array([
    [0.95, 0.80, 0.72], [0.90, 0.72, 0.62], [0.84, 0.62, 0.51], [0.74, 0.53, 0.40],
    [0.62, 0.42, 0.30], [0.48, 0.32, 0.22], [0.34, 0.22, 0.15],
])


DRAW_BLOCK = 5000  # hands drawn at once (see draw_hands)


@dataclass(frozen=True)
class PairsConfig:
    """What to render. Pixel sizes, meters, probabilities per image."""

    count: int = 6000
    seed: int = 0
    side_px: tuple[int, int] = (256, 480)   # width and height drawn independently
    fill: tuple[float, float] = (0.3, 0.8)  # hand's larger 2D extent / smaller image side
    hfov_deg: tuple[float, float] = (45.0, 75.0)
    p_named: float = 0.35        # a named gesture (jittered) instead of a sampled pose
    p_pinch: float = 0.35        # of the sampled poses: thumb brought onto the index
    p_uniform_rotation: float = 0.25  # else fingers within cone_deg of image-up ...
    cone_deg: float = 70.0
    yaw_deg: float = 180.0       # ... turned about them by any angle, or within this of a palm
                                 # or a back view
    shape_std: float = 0.8       # as SyntheticConfig
    shape_clip: float = 2.5
    named_jitter_deg: float = 5.0
    pose_file: str | None = None  # .npz with ``pose (N,J,3)`` (and ``shape``): hand poses
    p_pose_file: float = 1.0     # of the sampled poses: fingers from that file ...
    p_file_view: float = 0.0     # ... and of those, the view (root rotation) too
    thicken_mm: tuple[float, float] = (0.0, 0.0)  # hand surface moved out along its normals
    p_flip: float = 0.5          # mirror the image: a left hand
    p_occluder: float = 0.2
    p_motion_blur: float = 0.2
    noise_std: tuple[float, float] = (0.5, 4.0)
    jpeg_quality: tuple[int, int] = (55, 95)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be positive, got {self.count}")
        lo, hi = self.side_px
        if not 64 <= lo <= hi:
            raise ValueError(f"side_px must be (low, high) with 64 <= low <= high, got {self.side_px}")
        if not 0.0 <= self.thicken_mm[0] <= self.thicken_mm[1] <= 10.0:
            raise ValueError(f"thicken_mm must be (low, high) within [0, 10], got {self.thicken_mm}")
        if not 0.05 <= self.fill[0] <= self.fill[1] <= 1.0:
            raise ValueError(f"fill must be within [0.05, 1], got {self.fill}")
        for name in ("p_named", "p_pinch", "p_uniform_rotation", "p_flip", "p_occluder",
                     "p_motion_blur"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def draw_hands(model: HandModel, cfg: PairsConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poses ``(N,J,3)`` (root = camera-axes rotation), shapes ``(N,S)`` and kinds ``(N,)``.

    Drawn in blocks of ``DRAW_BLOCK`` hands, so a smaller ``count`` gives the first hands of
    a larger one (same seed): ``--count 2000`` is the start of ``--count 5000``.
    """
    names = model.data.joint_names
    n = DRAW_BLOCK * -(-cfg.count // DRAW_BLOCK)
    g = torch.Generator().manual_seed(cfg.seed)
    pose = sample_poses_torch(names, model.data.limits, n, g, p_pinch=cfg.p_pinch).double().numpy()
    root = sample_rotations(g, n, cfg.p_uniform_rotation, cfg.cone_deg, cfg.yaw_deg).double().numpy()
    rng = np.random.default_rng([cfg.seed, 1])
    kind = np.where(rng.random(n) < cfg.p_named, rng.integers(len(NAMED_POSES), size=n), -1)
    for i in np.flatnonzero(kind >= 0):
        p = named_pose(names, NAMED_POSES[kind[i]])[0]
        p = p + np.deg2rad(cfg.named_jitter_deg) * rng.standard_normal(p.shape)
        pose[i] = clamp_pose(p[None], model.data.limits)[0]
    if cfg.pose_file is not None:
        bank = read_npz(cfg.pose_file, "pose file", "Make it with `python -m "
                        "scripts.clip_poses`.", ValueError).get("pose", np.empty(0))
        if bank.ndim != 3 or bank.shape[1:] != pose.shape[1:]:
            raise ValueError(f"{cfg.pose_file}: pose must be (N,{pose.shape[1]},3), "
                             f"got {bank.shape}")
        take = np.flatnonzero((kind < 0) & (rng.random(n) < cfg.p_pose_file))
        p = bank[rng.integers(len(bank), size=len(take))]
        p = p + np.deg2rad(cfg.named_jitter_deg) * rng.standard_normal(p.shape)
        pose[take] = clamp_pose(p, model.data.limits)
        kind[take] = -2
        view = take[rng.random(len(take)) < cfg.p_file_view]
        root[view] = pose[view, 0]
    pose[:, 0] = root
    shape = np.clip(cfg.shape_std * rng.standard_normal((n, model.num_shape)),
                    -cfg.shape_clip, cfg.shape_clip)
    return pose[:cfg.count], shape[:cfg.count], kind[:cfg.count]


def random_lighting(rng: np.random.Generator) -> Lighting:
    warm = rng.uniform(-0.08, 0.08)
    return Lighting(
        key_direction=(rng.uniform(-0.9, 0.9), rng.uniform(-0.9, 0.3), -rng.uniform(0.3, 1.0)),
        key_color=(1.0, float(np.clip(0.95 - warm, 0, 1)), float(np.clip(0.88 - 2 * warm, 0, 1))),
        key_intensity=rng.uniform(0.35, 0.85),
        fill_direction=(rng.uniform(-0.9, 0.9), rng.uniform(-0.5, 0.3), -0.6),
        fill_intensity=rng.uniform(0.05, 0.4),
        rim_intensity=rng.uniform(0.0, 0.7),
        sky_color=tuple(float(c) for c in np.clip(rng.uniform(0.25, 0.5) + rng.uniform(-0.03, 0.03, 3), 0, 1)),
    )


class Renderer:
    """One image per hand: placement, appearance, occluders, blur and camera finish."""

    def __init__(self, model: HandModel, cfg: PairsConfig) -> None:
        self.model, self.cfg = model, cfg
        self.base_colors = skin_colors(model, np.random.default_rng(cfg.seed))
        self.arm_rest, self.arm_faces, self.arm_colors = forearm_mesh(model)
        self.sleeve = np.all(np.isclose(self.arm_colors, SLEEVE_RGB), axis=1)
        rest_y = model.forward().vertices[0, :, 1]
        self.wrist_weight = np.clip((rest_y + WRIST_BLEND_START_M) / WRIST_BLEND_LENGTH_M, 0, 1)
        self.kinds = list_kinds()

    def place(self, verts: np.ndarray, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Intrinsics, translation and image size so the hand fills ``cfg.fill`` and fits."""
        cfg = self.cfg
        w, h = (int(rng.integers(cfg.side_px[0], cfg.side_px[1] + 1)) for _ in range(2))
        f = 0.5 * w / math.tan(0.5 * math.radians(rng.uniform(*cfg.hfov_deg)))
        K = np.array([[f, 0, (w - 1) / 2.0], [0, f, (h - 1) / 2.0], [0, 0, 1.0]])
        lo, hi = verts.min(0), verts.max(0)
        centre = 0.5 * (lo + hi)
        extent_m = max(hi[0] - lo[0], hi[1] - lo[1])
        fill = rng.uniform(*cfg.fill)
        for _ in range(8):
            z = max(f * extent_m / (fill * min(w, h)), 0.12 - (lo[2] - centre[2]))
            half = 0.5 * fill * min(w, h)
            u = rng.uniform(half, max(half, w - half))
            v = rng.uniform(half, max(half, h - half))
            trans = z * np.linalg.solve(K, np.array([u, v, 1.0])) - centre
            uv = project(verts + trans, K)
            if (uv.min(0) >= 2).all() and uv[:, 0].max() <= w - 3 and uv[:, 1].max() <= h - 3:
                return K, trans, w, h
            fill *= 0.85
        return K, trans, w, h  # the last try; a hand cut by the border is still a sample

    def draw(self, out, trans: np.ndarray, K: np.ndarray, w: int, h: int,
             rng: np.random.Generator) -> np.ndarray:
        """The skinned hand ``out`` (a ``HandOutput`` of one hand) moved by ``trans``, with
        its forearm, a skin tone, a room and lighting: float BGR, before the camera finish.
        ``cfg.thicken_mm``: the surface is moved out along its normals by that much (the
        keypoints, the ground truth, stay): MediaPipe errs less on thicker fingers."""
        verts = out.vertices[0] + trans
        root = out.transforms[0, 0]
        arm = self.arm_rest @ root[:3, :3].T + root[:3, 3] + trans
        tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.93, 1.07, 3)
        colors = np.clip(self.base_colors * (tone / SKIN_RGB), 0, 1)
        arm_colors = np.clip(self.arm_colors * (tone / SKIN_RGB), 0, 1)
        arm_colors[self.sleeve] = rng.uniform(0.05, 0.8, 3)
        normals = wrist_normals(verts, self.model.faces, arm, self.wrist_weight)
        if self.cfg.thicken_mm[1] > 0:  # the model's fingers are thinner than real ones
            verts = verts + 1e-3 * rng.uniform(*self.cfg.thicken_mm) * normals
        bg = make_background(self.kinds[rng.integers(len(self.kinds))], w, h,
                             int(rng.integers(2**31)))
        meshes = [(arm, self.arm_faces, arm_colors, None), (verts, self.model.faces, colors,
                                                             normals)]
        return render_hands(bg, meshes, K, random_lighting(rng))

    def render(self, pose: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> dict:
        out = self.model.forward(pose[None], shape[None])
        K, trans, w, h = self.place(out.vertices[0], rng)
        kps = out.keypoints[0] + trans
        img = self.draw(out, trans, K, w, h, rng)
        uv = project(kps, K)
        if rng.random() < self.cfg.p_occluder:
            occlude(img, uv, rng)
        if rng.random() < self.cfg.p_motion_blur:
            img = motion_blur(img, rng)
        finish = SampleConfig(noise_std=float(rng.uniform(*self.cfg.noise_std)),
                              jpeg_quality=int(rng.integers(*self.cfg.jpeg_quality)))
        img = camera_finish(img, rng, finish, float(rng.uniform(0.8, 1.2)))
        return {"image": img, "K": K, "trans": trans, "keypoints_cam": kps, "uv": uv}


def occlude(img: np.ndarray, uv: np.ndarray, rng: np.random.Generator) -> None:
    """An object in front of part of the hand: a flat-coloured ellipse or bar, in place."""
    lo, hi = uv.min(0), uv.max(0)
    size = float((hi - lo).max())
    centre = uv[rng.integers(21)] + rng.normal(0, 0.1 * size, 2)
    colour = tuple(float(c) for c in rng.uniform(20, 235, 3))
    axes = (int(rng.uniform(0.08, 0.25) * size) + 2, int(rng.uniform(0.08, 0.4) * size) + 2)
    cv2.ellipse(img, (int(centre[0]), int(centre[1])), axes, float(rng.uniform(0, 180)), 0, 360,
                colour, -1, cv2.LINE_AA)


def motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A linear blur of 3-11 px at a random angle (a moving hand or camera)."""
    n = int(rng.integers(3, 12))
    kernel = np.zeros((n, n), np.float32)
    kernel[n // 2] = 1.0
    rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (n, n))
    return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))


def _arrays(rows: dict, recipe: dict) -> dict:
    dtypes = {"flipped": bool, "kind": np.int16, "image_size": np.float32}
    arrays = {k: np.asarray(v, dtype=dtypes.get(k, np.float32)) for k, v in rows.items()}
    arrays["recipe"] = np.array(json.dumps(recipe))
    return arrays


def _save(out: Path, arrays: dict) -> None:
    """Write through a temporary file, so a reader never sees half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".partial.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out)


def make_pairs(cfg: PairsConfig, out: Path | None = None, save_every: int = 0) -> dict:
    """Render, detect and collect; writes ``out`` (npz) when given, and every ``save_every``
    images on the way (a partial file is a valid one: ``recipe["rendered"]`` says how far).
    Returns the arrays."""
    model = HandModel.open_hand()
    poses, shapes, kinds = draw_hands(model, cfg)
    renderer = Renderer(model, cfg)
    rows: dict[str, list] = {k: [] for k in (
        "world", "image", "image_size", "handedness", "pose", "shape", "trans", "keypoints_cam",
        "K", "flipped", "kind", "landmarks_px", "keypoints_2d", "score")}
    missed = wrong_side = 0
    t0 = time.perf_counter()

    def recipe(rendered: int) -> dict:
        seconds = time.perf_counter() - t0
        return {"config": asdict(cfg), "rendered": rendered, "pairs": len(rows["world"]),
                "missed": missed, "wrong_handedness": wrong_side, "seconds": round(seconds, 1),
                "images_per_s": round(rendered / seconds, 2), "model": model.data.name,
                "model_sha256": model.data.sha256}

    det_cfg = DetectorConfig(kind="mediapipe", static_image_mode=True, max_num_hands=1)
    with MediaPipeDetector(det_cfg) as det:
        for i in tqdm(range(cfg.count), desc="render + MediaPipe", unit="image"):
            if out is not None and save_every and i and i % save_every == 0:
                _save(out, _arrays(rows, recipe(i)))
            rng = np.random.default_rng([cfg.seed, 2, i])
            r = renderer.render(poses[i], shapes[i], rng)
            img, uv = r["image"], r["uv"]
            h, w = img.shape[:2]
            flipped = bool(rng.random() < cfg.p_flip)
            if flipped:
                img = np.ascontiguousarray(img[:, ::-1])
                uv = np.stack([w - 1 - uv[:, 0], uv[:, 1]], -1)
            d = nearest_detection(det.process(Frame(img, i, float(i))), uv,
                                  0.5 * np.ptp(uv, 0).max())
            if d is None:
                missed += 1
                continue
            if (d.handedness == "left") != flipped:
                wrong_side += 1  # the runtime would mirror the wrong way: no right-hand target
                continue
            world, image, handed = detection_inputs([d], (w, h))
            image[0, :, 1] *= w / h  # back to MediaPipe's y/H (prepare_inputs redoes it)
            for key, value in (
                    ("world", world[0]), ("image", image[0]), ("image_size", (w, h)),
                    ("handedness", handed[0]), ("pose", poses[i]), ("shape", shapes[i]),
                    ("trans", r["trans"]), ("keypoints_cam", r["keypoints_cam"]),
                    ("K", r["K"]), ("flipped", flipped), ("kind", kinds[i]),
                    ("landmarks_px", d.landmarks_px), ("keypoints_2d", uv),
                    ("score", d.score)):
                rows[key].append(value)
    arrays = _arrays(rows, recipe(cfg.count))
    if out is not None:
        _save(out, arrays)
    return arrays


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=PairsConfig.count)
    p.add_argument("--seed", type=int, default=PairsConfig.seed)
    p.add_argument("--out", type=Path, default=Path("runs/pairs.npz"))
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="a PairsConfig field, e.g. --set yaw_deg=50 --set 'fill=[0.4,0.8]'")
    p.add_argument("--save-every", type=int, default=250,
                   help="also write the file every N images (a partial file is usable)")
    args = p.parse_args(argv)
    try:
        overrides = parse_overrides(args.set, "--set")
    except ValueError as exc:
        p.error(str(exc))
    try:
        cfg = build_config(PairsConfig, overrides, count=args.count, seed=args.seed)
    except ValueError as exc:
        p.error(f"--set: {exc}")
    arrays = make_pairs(cfg, args.out, args.save_every)
    recipe = json.loads(str(arrays["recipe"]))
    print(f"wrote {args.out}: {recipe['pairs']} pairs from {recipe['rendered']} images "
          f"({recipe['missed']} missed, {recipe['wrong_handedness']} wrong handedness) in "
          f"{recipe['seconds']} s, {recipe['images_per_s']} images/s")
    print(json.dumps({k: v for k, v in recipe.items() if k != "config"}))


if __name__ == "__main__":
    main()
