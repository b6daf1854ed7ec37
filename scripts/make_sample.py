"""Render the project's sample clip (``realtime/assets/sample/``) and check it with MediaPipe.

The clip is the demo's input when there is no webcam and the first closed-loop accuracy
check: every frame's hands come from the project's own open hand model, so their meshes,
keypoints and parameters are known exactly and shipped beside the video.

    python -m scripts.make_sample            # render (about a minute), then check
    python -m scripts.make_sample --check    # only run MediaPipe over the existing clip
    python -m scripts.make_sample --fps 60 --start 7 --duration 8 --name sample60 \
        --no-gt-vertices                     # the 60 FPS two-hand clip (sample60.mp4)

15 s, 640x480, 30 FPS: one right hand for 7 s, then a cut and two hands (the left one a
mirrored right hand, docs/design.md "Conventions") until the end, with a second cut at 11 s.
The hands ease between named gestures while the wrists turn to show palm, back and side,
over procedural rooms (``scripts.backgrounds``), with a little camera realism (lens
softness, sensor noise, JPEG). Deterministic for a given ``--seed``. The tracks are functions
of time, so ``--fps``/``--start``/``--duration`` render the same motion at another rate or
only a part of it (``sample60.mp4``: the two-hand part at 60 FPS, a new rendering, not
re-timed frames).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from models.geometry import axis_angle_to_matrix, matrix_to_axis_angle, project
from models.hand_model import HandModel, HandOutput, flip_faces, mirror_x
from models.limits import clamp_pose
from models.poses import named_pose
from realtime.io.sample import SAMPLE_DIR
from realtime.render.raster import Lighting, new_zbuffer, render_mesh, vertex_normals
from scripts.backgrounds import make_background

log = logging.getLogger(__name__)

WIDTH, HEIGHT, FPS, DURATION_S = 640, 480, 30, 15.0
FOCAL_PX = 600.0
HANDEDNESS = ("right", "left")  # hand slots of the ground truth
SUPERSAMPLE = 2  # hands are rasterized at 2x and averaged down: anti-aliased silhouettes
MAX_VIDEO_MB = 5.0
MAX_GT_MB = 15.0
QUANTUM_INV = float(2**20)  # ground-truth geometry is snapped to 1/QUANTUM_INV meters

# A detection belongs to a ground-truth hand when its mean keypoint distance is below this
# fraction of the hand's 2D keypoint bounding-box diagonal (the other hand is far further).
MATCH_FRACTION_OF_DIAGONAL = 0.35
REQUIRED_ALL_FOUND = 0.90

# Skin albedo (RGB in [0, 1], as the rasterizer takes it): a light-medium skin tone.
SKIN_RGB = np.array([0.84, 0.62, 0.51])
FLUSH_RGB = np.array([0.80, 0.50, 0.44])   # knuckles and fingertips
PALM_RGB = np.array([0.90, 0.71, 0.62])    # paler palm
NAIL_RGB = np.array([0.90, 0.72, 0.68])
SLEEVE_RGB = np.array([0.16, 0.22, 0.34])  # a navy sweater cuff on the forearm
INNER_ARM_PALENESS = 0.5  # weight of PALM_RGB on the inner forearm and wrist
FOREARM_SIDES = 28  # vertices around each ring of the forearm tube
WRIST_BLEND_START_M = 0.03   # hand normals straighten from 3 cm above the wrist joint ...
WRIST_BLEND_LENGTH_M = 0.02  # ... fully at 1 cm above it, where the forearm tube emerges


class SampleError(RuntimeError):
    """The sample clip could not be built or checked."""


@dataclass(frozen=True)
class SampleConfig:
    """What to render and where. Sizes in pixels, times in seconds."""

    out_dir: Path = SAMPLE_DIR
    seed: int = 7
    width: int = WIDTH
    height: int = HEIGHT
    fps: int = FPS
    duration_s: float = DURATION_S
    noise_std: float = 2.2      # sensor noise, 8-bit levels at mid grey
    jpeg_quality: int = 82      # mild compression softness before the video codec
    name: str = "sample"        # files: <name>.mp4 and <name>_gt.npz
    start_s: float = 0.0        # first rendered time of the script (a later part of it)
    gt_vertices: bool = True    # False: the ground truth without its per-frame meshes (small)

    def __post_init__(self) -> None:
        if self.width < 64 or self.height < 64:
            raise ValueError(f"SampleConfig.width/height must be >= 64, got "
                             f"{self.width}x{self.height}")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"SampleConfig.fps must be in [1, 120], got {self.fps}")
        if not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise ValueError(f"SampleConfig.start_s must be >= 0, got {self.start_s}")
        if not 1.0 <= self.duration_s <= 120.0:
            raise ValueError(f"SampleConfig.duration_s must be in [1, 120], got {self.duration_s}")
        if self.noise_std < 0:
            raise ValueError(f"SampleConfig.noise_std must be >= 0, got {self.noise_std}")
        if not 10 <= self.jpeg_quality <= 100:
            raise ValueError(f"SampleConfig.jpeg_quality must be in [10, 100], got "
                             f"{self.jpeg_quality}")

    @property
    def num_frames(self) -> int:
        return int(round(self.duration_s * self.fps))

    @property
    def times(self) -> np.ndarray:
        """Script time (s) of every rendered frame: the tracks are functions of time, so any
        ``fps`` renders the same motion, only sampled more or less densely."""
        return self.start_s + np.arange(self.num_frames) / self.fps

    @property
    def K(self) -> np.ndarray:
        return np.array([[FOCAL_PX, 0.0, (self.width - 1) / 2.0],
                         [0.0, FOCAL_PX, (self.height - 1) / 2.0],
                         [0.0, 0.0, 1.0]])

    @property
    def video_path(self) -> Path:
        return self.out_dir / f"{self.name}.mp4"

    @property
    def gt_path(self) -> Path:
        return self.out_dir / f"{self.name}_gt.npz"


# --------------------------------------------------------------------------------------
# Motion: eased key frames plus slow sway
# --------------------------------------------------------------------------------------


def smootherstep(x: np.ndarray) -> np.ndarray:
    """Perlin's ease-in/out 6x^5 - 15x^4 + 10x^3 on [0, 1]: zero velocity and acceleration."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def eased_track(key_t: np.ndarray, key_v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Interpolate key values ``(K,...)`` at key times ``(K,)`` to times ``(N,)`` -> ``(N,...)``.

    Each span eases in and out, so the motion stops briefly at every key, like a person
    settling into a gesture; two keys with the same value make a hold.
    """
    key_t = np.asarray(key_t, dtype=np.float64)
    key_v = np.asarray(key_v, dtype=np.float64)
    i = np.clip(np.searchsorted(key_t, t, side="right") - 1, 0, len(key_t) - 2)
    span = np.maximum(key_t[i + 1] - key_t[i], 1e-9)
    w = smootherstep((t - key_t[i]) / span).reshape((-1,) + (1,) * (key_v.ndim - 1))
    return (1.0 - w) * key_v[i] + w * key_v[i + 1]


def sway(rng: np.random.Generator, t: np.ndarray, amplitude: float, period_s: float
         ) -> np.ndarray:
    """Slow continuous motion ``(N,)``: two incommensurate sines with random phases."""
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    return amplitude * (0.7 * np.sin(2 * np.pi * t / period_s + p1)
                        + 0.3 * np.sin(2 * np.pi * t / (0.43 * period_s) + p2))


def gesture_keys(model: HandModel, names: list[str], t0: float, t1: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Key times and finger poses ``(K,J,3)``: each gesture held, then eased into the next."""
    per = (t1 - t0) / len(names)
    hold = 0.45 * per
    times, poses = [], []
    for k, name in enumerate(names):
        pose = named_pose(model.data.joint_names, name)[0]
        start = t0 + k * per
        times += [start, start + hold]
        poses += [pose, pose]
    times.append(t1 + 1.0)
    poses.append(poses[-1])
    return np.array(times), np.array(poses)


@dataclass(frozen=True)
class HandPlan:
    """Key frames of one hand in one scene: gestures, wrist turns and where it goes."""

    gestures: list[str]
    yaw_keys: list[tuple[float, float]]     # (time s, degrees about the hand's long axis)
    u_range: tuple[float, float]            # image x of the palm centre, pixels
    depth_range: tuple[float, float]        # meters
    enter_from_below_s: float = 0.0         # rise into view over this long at scene start


@dataclass(frozen=True)
class Scene:
    """A shot between two cuts: a background and the plan of each hand slot (None: absent)."""

    start_s: float
    end_s: float
    background: str
    plans: tuple[HandPlan | None, HandPlan | None]
    lighting: Lighting


def default_scenes() -> list[Scene]:
    """The sample's script: 7 s one right hand, then two 4 s shots of two hands."""
    warm = Lighting(key_color=(1.0, 0.93, 0.84), sky_color=(0.38, 0.37, 0.38))
    return [
        Scene(0.0, 7.0, "office", (
            HandPlan(["open", "relaxed", "fist", "point", "pinch", "peace", "spread"],
                     [(0.0, -10), (1.7, 20), (2.8, 170), (4.2, 195), (5.3, 60), (6.3, -20),
                      (7.0, -10)],
                     (230, 410), (0.36, 0.60)),
            None), Lighting()),
        Scene(7.0, 11.0, "living_room", (
            HandPlan(["relaxed", "thumbs_up", "open", "fist"],
                     [(7.0, 10), (8.2, -35), (9.0, -40), (10.0, 160), (11.0, 185)],
                     (140, 200), (0.48, 0.64)),
            HandPlan(["open", "point", "peace", "relaxed"],
                     [(7.0, 0), (8.4, 35), (9.3, 170), (10.4, 190), (11.0, 180)],
                     (140, 200), (0.48, 0.64), enter_from_below_s=0.5)), warm),
        Scene(11.0, 15.0, "plain_wall", (
            HandPlan(["pinch", "open", "spread", "thumbs_up"],
                     [(11.0, 180), (12.0, 165), (13.0, 20), (14.0, -30), (15.0, 0)],
                     (140, 200), (0.50, 0.65)),
            HandPlan(["fist", "spread", "pinch", "open"],
                     [(11.0, -20), (12.4, 30), (13.4, 45), (14.3, 170), (15.0, 190)],
                     (140, 200), (0.48, 0.62))), Lighting(key_intensity=0.58)),
    ]


@dataclass(frozen=True)
class HandTrack:
    """One hand slot over the clip, in the right-hand model's parameters.

    For the left slot everything is in the x-mirrored camera frame: its camera-frame
    vertices are ``mirror_x(model.forward(pose, shape, trans).vertices)``.
    """

    present: np.ndarray  # (N,) bool: in the scene (may still be outside the image)
    pose: np.ndarray     # (N,J,3) anatomical axis-angle, pose[:,0] = root in camera axes
    trans: np.ndarray    # (N,3) wrist position, meters


def _rotation_xyz(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Camera-axis rotations ``(N,3,3)``: turn about the hand's length (y), tilt (x), roll (z)."""
    ry = axis_angle_to_matrix(np.stack([0 * yaw, yaw, 0 * yaw], -1))
    rx = axis_angle_to_matrix(np.stack([pitch, 0 * pitch, 0 * pitch], -1))
    rz = axis_angle_to_matrix(np.stack([0 * roll, 0 * roll, roll], -1))
    return rz @ rx @ ry


def plan_hand(model: HandModel, plan: HandPlan, scene: Scene, t: np.ndarray,
              K: np.ndarray, height: int, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray]:
    """Pose ``(n,J,3)`` and wrist position ``(n,3)`` for the times ``t`` of one scene."""
    n = len(t)
    key_t, key_pose = gesture_keys(model, plan.gestures, scene.start_s, scene.end_s)
    pose = eased_track(key_t, key_pose, t)
    # Fingers are never perfectly still: a few degrees of slow, independent drift.
    for j in range(1, pose.shape[1]):
        pose[:, j, 0] += np.deg2rad(sway(rng, t, 3.0, rng.uniform(1.5, 3.0)))
    pose = clamp_pose(pose, model.data.limits)

    yk = np.array(plan.yaw_keys, dtype=np.float64)
    yaw = np.deg2rad(eased_track(yk[:, 0], yk[:, 1], t) + sway(rng, t, 8.0, 3.1))
    pitch = np.deg2rad(-6.0 + sway(rng, t, 14.0, 4.3))
    roll = np.deg2rad(sway(rng, t, 16.0, 5.7))
    rot = _rotation_xyz(yaw, pitch, roll)
    pose[:, 0] = matrix_to_axis_angle(rot)

    # Where the palm centre goes: eased keys every ~1.3 s plus a slow sway, chosen in the
    # image so that the fingers stay in the frame at every depth.
    n_keys = max(2, int(round((scene.end_s - scene.start_s) / 1.3)) + 1)
    kt = np.linspace(scene.start_s, scene.end_s, n_keys)
    kz = rng.uniform(*plan.depth_range, n_keys)
    ku = rng.uniform(*plan.u_range, n_keys)
    reach_px = FOCAL_PX * 0.125 / kz  # palm centre to fingertips
    kv = np.minimum(18.0 + reach_px + rng.uniform(0, 45, n_keys), height - 70.0)
    z = eased_track(kt, kz, t) + sway(rng, t, 0.015, 3.7)
    u = eased_track(kt, ku, t) + sway(rng, t, 12.0, 2.9)
    v = eased_track(kt, kv, t) + sway(rng, t, 10.0, 3.3)
    if plan.enter_from_below_s > 0:
        rise = smootherstep((t - scene.start_s) / plan.enter_from_below_s)
        v = v + (1.0 - rise) * 0.75 * height
    ray = np.linalg.solve(K, np.stack([u, v, np.ones(n)]))  # (3,n), z = 1
    centre = (ray * z).T
    palm_offset = np.array([0.0, -0.075, 0.0])  # palm centre in the model frame
    trans = centre - rot @ palm_offset
    return pose, trans


def build_tracks(model: HandModel, scenes: list[Scene], cfg: SampleConfig,
                 rng: np.random.Generator) -> list[HandTrack]:
    """Both hand slots over the whole clip (left slot in the mirrored frame)."""
    n, j = cfg.num_frames, model.num_joints
    t = cfg.times
    tracks = []
    for slot in range(2):
        present = np.zeros(n, dtype=bool)
        pose = np.zeros((n, j, 3))
        trans = np.zeros((n, 3))
        for scene in scenes:
            plan = scene.plans[slot]
            sel = (t >= scene.start_s) & (t < scene.end_s)
            if plan is None:
                continue
            if not sel.any():  # a scene outside the rendered span still draws its random
                # keys, so that the later scenes move exactly as in the whole clip
                plan_hand(model, plan, scene, np.array([scene.start_s]), cfg.K, cfg.height,
                          rng)
                continue
            p, tr = plan_hand(model, plan, scene, t[sel], cfg.K, cfg.height, rng)
            present[sel], pose[sel], trans[sel] = True, p, tr
        tracks.append(HandTrack(present, pose, trans))
    return tracks


# --------------------------------------------------------------------------------------
# Appearance: skin colours and a forearm
# --------------------------------------------------------------------------------------


def _smooth_on_mesh(values: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """Average per-vertex values with their mesh neighbours (umbrella smoothing)."""
    n = values.shape[0]
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    degree = np.bincount(edges[:, 0], minlength=n).astype(np.float64)[:, None]
    for _ in range(iterations):
        acc = np.zeros_like(values)
        np.add.at(acc, edges[:, 0], values[edges[:, 1]])
        values = 0.5 * values + 0.5 * acc / np.maximum(degree, 1.0)
    return values


def skin_colors(model: HandModel, rng: np.random.Generator) -> np.ndarray:
    """Per-vertex albedo ``(V,3)``: flushed knuckles and fingertips, a paler palm, pinkish
    nails and a faint low-frequency mottle, computed once on the rest hand."""
    rest = model.forward()
    verts, kps = rest.vertices[0], rest.keypoints[0]
    normals = vertex_normals(verts, model.faces)
    back = np.clip(normals[:, 2] * 1.5, 0.0, 1.0)   # back of the hand faces +z
    palm = np.clip(-normals[:, 2] * 1.5, 0.0, 1.0)
    dist = np.linalg.norm(verts[:, None, :] - kps[None, :, :], axis=-1)  # (V,21)
    knuckles = [2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19]
    tips = [4, 8, 12, 16, 20]
    w_knuckle = back * np.exp(-(dist[:, knuckles].min(1) / 0.012) ** 2)
    d_tip = dist[:, tips].min(1)
    w_tip = np.exp(-(d_tip / 0.013) ** 2)
    # Nails: the back of the last ~9 mm of each finger.
    w_nail = np.clip((back - 0.4) * 2.0, 0, 1) * np.clip((0.011 - d_tip) / 0.003, 0, 1)
    # The palm proper (not the fingers' undersides as much): near the wrist-MCP region.
    in_palm = np.clip((verts[:, 1] + 0.105) / 0.02, 0, 1)
    # Fade to the inner forearm's tint (see forearm_mesh) across the wrist: no seam.
    at_wrist = np.clip((verts[:, 1] + 0.035) / 0.03, 0, 1)
    w_palm = palm * (0.5 + 0.5 * in_palm) * (1.0 - at_wrist) + palm * INNER_ARM_PALENESS * at_wrist

    col = np.broadcast_to(SKIN_RGB, verts.shape).copy()
    col += (FLUSH_RGB - col) * (0.55 * w_knuckle + 0.6 * w_tip)[:, None]
    col += (PALM_RGB - col) * (0.6 * w_palm)[:, None]
    col += (NAIL_RGB - col) * (0.7 * w_nail)[:, None]
    mottle = _smooth_on_mesh(rng.normal(size=(len(verts), 2)), model.faces, 6)
    mottle /= mottle.std(0) + 1e-9
    mottle *= (1.0 - at_wrist)[:, None]  # the forearm is plain: meet it plain
    col *= (1.0 + 0.025 * mottle[:, :1])  # brightness
    col[:, 0] *= 1.0 + 0.015 * mottle[:, 1]  # redness
    return np.clip(col, 0.0, 1.0)


def forearm_mesh(model: HandModel, length_m: float = 0.45, sides: int = FOREARM_SIDES
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tapered elliptic tube from inside the wrist along +y, with a sweater cuff.

    Returns rest vertices ``(M,3)`` in the model frame (moved by the root transform),
    faces ``(G,3)`` counter-clockwise from outside and albedo ``(M,3)``. Not part of the
    ground truth: it only makes the hand look attached to someone, as detectors expect.
    """
    rest = model.forward().vertices[0]
    # The wrist's cross-section just before the mesh rounds off into its cap.
    near = rest[np.abs(rest[:, 1] + 0.01) < 0.0025]
    cx = 0.5 * (near[:, 0].max() + near[:, 0].min())
    cz = 0.5 * (near[:, 2].max() + near[:, 2].min())
    ax = 0.5 * (near[:, 0].max() - near[:, 0].min()) * 1.03
    az = 0.5 * (near[:, 2].max() - near[:, 2].min()) * 1.03
    cuff_y = 0.17
    ys = np.concatenate([np.linspace(-0.02, cuff_y, 9), [cuff_y + 1e-3],
                         np.linspace(cuff_y + 0.01, length_m, 6)])
    widen = 1.0 + 0.3 * np.clip(ys / 0.2, 0, 1)
    widen[ys > cuff_y] *= 1.3  # the sleeve is bulkier than the arm
    ang = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    verts = np.stack([
        (cx + ax * widen[:, None] * np.cos(ang)[None, :]).ravel(),
        np.repeat(ys, sides),
        (cz + az * widen[:, None] * np.sin(ang)[None, :]).ravel(),
    ], axis=-1)
    faces = []
    for r in range(len(ys) - 1):
        for s in range(sides):
            a, b = r * sides + s, r * sides + (s + 1) % sides
            c, d = a + sides, b + sides
            faces += [(a, c, b), (b, c, d)]
    faces = np.array(faces, dtype=np.int64)
    # Make the winding point outward whatever the angle direction above.
    e1 = verts[faces[:, 1]] - verts[faces[:, 0]]
    e2 = verts[faces[:, 2]] - verts[faces[:, 0]]
    outward = verts[faces[:, 0]] - np.array([cx, 0, cz]) * np.array([1, 0, 1])
    outward[:, 1] = 0
    if np.mean(np.sum(np.cross(e1, e2) * outward, -1)) < 0:
        faces = faces[:, ::-1].copy()
    inner = np.clip(-np.sin(np.tile(ang, len(ys))) * 1.5, 0, 1)  # the palm side (-z)
    skin = SKIN_RGB + (PALM_RGB - SKIN_RGB) * (0.6 * INNER_ARM_PALENESS * inner)[:, None]
    colors = np.where((verts[:, 1] > cuff_y)[:, None], SLEEVE_RGB, skin)
    return verts, faces, colors


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosedHands:
    """Everything per frame and slot in the camera frame (left slot already mirrored back)."""

    vertices: np.ndarray   # (N,2,V,3)
    keypoints: np.ndarray  # (N,2,21,3)
    forearm: np.ndarray    # (N,2,M,3)


def pose_hands(model: HandModel, tracks: list[HandTrack], shape: np.ndarray,
               forearm_rest: np.ndarray) -> PosedHands:
    n = len(tracks[0].present)
    verts = np.zeros((n, 2, model.num_vertices, 3))
    kps = np.zeros((n, 2, 21, 3))
    arm = np.zeros((n, 2, len(forearm_rest), 3))
    for slot, tr in enumerate(tracks):
        sel = np.flatnonzero(tr.present)
        if len(sel) == 0:
            continue
        out: HandOutput = model.forward(tr.pose[sel], np.repeat(shape[None], len(sel), 0),
                                        tr.trans[sel])
        root = out.transforms[:, 0]  # (n,4,4) without trans
        a = forearm_rest @ np.swapaxes(root[:, :3, :3], 1, 2) + root[:, None, :3, 3]
        a = a + tr.trans[sel, None, :]
        v, k, a = _quantize(out.vertices), _quantize(out.keypoints), _quantize(a)
        if slot == 1:
            v, k, a = mirror_x(v), mirror_x(k), mirror_x(a)
        verts[sel, slot], kps[sel, slot], arm[sel, slot] = v, k, a
    return PosedHands(verts, kps, arm)


def _quantize(points: np.ndarray) -> np.ndarray:
    """Snap meters to a 2^-20 m (~1 um) grid.

    BLAS products can differ in the last bits between machines and library builds;
    snapping keeps the clip and its ground truth byte-for-byte reproducible there (for
    the same model code) at a cost far below any accuracy we measure.
    """
    return np.round(points * QUANTUM_INV) / QUANTUM_INV


def visible_in_image(vertices: np.ndarray, K: np.ndarray, width: int, height: int
                     ) -> np.ndarray:
    """``(N,)`` bool: some vertex ``(N,V,3)`` projects inside the image, in front of it."""
    uv = project(vertices, K)
    inside = ((uv[..., 0] >= 0) & (uv[..., 0] <= width - 1) & (uv[..., 1] >= 0)
              & (uv[..., 1] <= height - 1) & (vertices[..., 2] > 0.01))
    return inside.any(-1)


def wrist_normals(vertices: np.ndarray, faces: np.ndarray, forearm: np.ndarray,
                  weight: np.ndarray) -> np.ndarray:
    """Hand vertex normals ``(V,3)`` straightened near the wrist to match the forearm tube.

    The mesh rounds off into a cap at the wrist; where the tube emerges, the two surfaces
    would shade differently and draw a seam. Removing the normals' component along the
    forearm (``weight (V,)`` in [0,1]) makes them meet like one surface.
    """
    normals = vertex_normals(vertices, faces)
    # From the centre of the first ring of the tube to the centre of the last.
    axis = forearm[-FOREARM_SIDES:].mean(0) - forearm[:FOREARM_SIDES].mean(0)
    axis /= np.linalg.norm(axis)
    normals -= (weight * (normals @ axis))[:, None] * axis
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def render_hands(background: np.ndarray, meshes: list[tuple], K: np.ndarray,
                 lighting: Lighting) -> np.ndarray:
    """Composite anti-aliased hands over ``background``; returns float32 BGR in [0, 255].

    Meshes are ``(vertices_cam, faces, colors, normals or None)``; they share one z-buffer at
    ``SUPERSAMPLE`` times the resolution, then coverage and colour are box-filtered down.
    """
    h, w = background.shape[:2]
    s = SUPERSAMPLE
    k_hi = K.copy()
    k_hi[:2] *= s
    k_hi[:2, 2] += (s - 1) / 2.0  # pixel centres: hi-res i covers low-res (i + 0.5)/s - 0.5
    layer = np.zeros((h * s, w * s, 3), np.uint8)
    cover = np.zeros((h * s, w * s), np.float32)
    zbuf = new_zbuffer(h * s, w * s)
    for verts, faces, colors, normals in meshes:
        mask = render_mesh(layer, verts, faces, k_hi, colors, lighting=lighting, zbuffer=zbuf,
                           normals=normals)
        cover[mask] = 1.0
    layer_lo = cv2.resize(layer.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(cover, (w, h), interpolation=cv2.INTER_AREA)[..., None]
    # The layer is black outside the hands, so its average is premultiplied by coverage.
    return background.astype(np.float32) * (1.0 - alpha) + layer_lo


def camera_finish(img: np.ndarray, rng: np.random.Generator, cfg: SampleConfig,
                  gain: float) -> np.ndarray:
    """Lens softness, exposure gain, signal-dependent sensor noise, JPEG; -> uint8 BGR."""
    img = cv2.GaussianBlur(img, (0, 0), 0.6) * gain
    if cfg.noise_std > 0:
        sigma = cfg.noise_std * np.sqrt(np.clip(img, 4.0, 255.0) / 128.0)
        luma = rng.standard_normal(img.shape[:2], dtype=np.float32)[..., None]
        chroma = rng.standard_normal(img.shape, dtype=np.float32)
        img = img + sigma * (0.7 * luma + 0.45 * chroma)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
    if not ok:
        raise SampleError("OpenCV could not JPEG-encode a frame; check the OpenCV install")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def open_writer(path: Path, fps: int, width: int, height: int) -> tuple[cv2.VideoWriter, str]:
    """An H.264 writer where this OpenCV build has the encoder, else MPEG-4 Part 2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    level = cv2.getLogLevel()
    cv2.setLogLevel(0)  # silent: a missing H.264 encoder is expected, not an error
    try:
        for codec in ("avc1", "mp4v"):
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps,
                                     (width, height))
            if writer.isOpened():
                return writer, codec
            writer.release()
    finally:
        cv2.setLogLevel(level)
    raise SampleError(f"OpenCV cannot write {path} with avc1 or mp4v; install "
                      "opencv-python with FFmpeg support")


def build_sample(cfg: SampleConfig, scenes: list[Scene] | None = None) -> dict[str, float]:
    """Render the clip and its ground truth into ``cfg.out_dir``; returns sizes and timings.

    ``scenes``: another script than the sample's (``scripts.make_pinch_clip``).
    """
    t_start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    model = HandModel.open_hand()
    scenes = default_scenes() if scenes is None else scenes
    n, K = cfg.num_frames, cfg.K
    shape = np.zeros(model.num_shape)
    if model.data.shape_std is not None:
        shape = rng.normal(0.0, 0.6, model.num_shape) * model.data.shape_std
    tracks = build_tracks(model, scenes, cfg, rng)
    colors = skin_colors(model, rng)
    arm_rest, arm_faces, arm_colors = forearm_mesh(model)
    posed = pose_hands(model, tracks, shape, arm_rest)
    present = np.stack([tr.present for tr in tracks], 1)
    for slot in range(2):
        present[:, slot] &= visible_in_image(posed.vertices[:, slot], K, cfg.width, cfg.height)
    faces = {0: model.faces, 1: flip_faces(model.faces)}
    rest_y = model.forward().vertices[0, :, 1]
    wrist_weight = np.clip((rest_y + WRIST_BLEND_START_M) / WRIST_BLEND_LENGTH_M, 0.0, 1.0)
    arm_f = {0: arm_faces, 1: np.ascontiguousarray(arm_faces[:, ::-1])}

    t = cfg.times
    starts = np.array([s.start_s for s in scenes])
    scene_of = np.searchsorted(starts, t, side="right") - 1
    backgrounds = [make_background(s.background, cfg.width, cfg.height, cfg.seed + i)
                   for i, s in enumerate(scenes)]
    # Auto-exposure breathing: a slow +-2% gain, steadier within a shot.
    gain = 1.0 + sway(rng, t, 0.02, 6.0)
    writer, codec = open_writer(cfg.video_path, cfg.fps, cfg.width, cfg.height)
    noise_rng = np.random.default_rng([cfg.seed, 1])
    try:
        for f in tqdm(range(n), desc=f"rendering {cfg.name}", unit="frame"):
            sc = scenes[scene_of[f]]
            meshes = []
            for slot in range(2):
                if tracks[slot].present[f]:
                    arm = posed.forearm[f, slot]
                    verts = posed.vertices[f, slot]
                    normals = wrist_normals(verts, faces[slot], arm, wrist_weight)
                    meshes.append((arm, arm_f[slot], arm_colors, None))
                    meshes.append((verts, faces[slot], colors, normals))
            img = render_hands(backgrounds[scene_of[f]], meshes, K, sc.lighting)
            writer.write(camera_finish(img, noise_rng, cfg, float(gain[f])))
    finally:
        writer.release()

    vertices = np.where(present[..., None, None], posed.vertices, 0.0).astype(np.float32)
    keypoints = np.where(present[..., None, None], posed.keypoints, 0.0).astype(np.float32)
    kp2d = np.where(present[..., None, None], project(posed.keypoints, K), 0.0)
    cuts = np.array([int(round((s.start_s - cfg.start_s) * cfg.fps)) for s in scenes[1:]
                     if s.start_s > cfg.start_s], dtype=np.int32)
    meshes = {"vertices": vertices} if cfg.gt_vertices else {}
    np.savez_compressed(
        cfg.gt_path,
        K=K, fps=np.float64(cfg.fps), width=np.int32(cfg.width), height=np.int32(cfg.height),
        num_frames=np.int32(n), start_s=np.float64(cfg.start_s), present=present, **meshes,
        keypoints=keypoints,
        keypoints_2d=kp2d.astype(np.float32),
        pose=np.stack([np.where(present[:, s, None, None], tracks[s].pose, 0.0)
                       for s in range(2)], 1).astype(np.float32),
        shape=np.where(present[..., None], shape, 0.0).astype(np.float32),
        trans=np.stack([np.where(present[:, s, None], tracks[s].trans, 0.0)
                        for s in range(2)], 1).astype(np.float32),
        handedness=np.array(HANDEDNESS), faces=model.faces.astype(np.int32),
        cut_frames=cuts, model_name=np.array(model.data.name),
        model_sha256=np.array(model.data.sha256), seed=np.int64(cfg.seed),
    )
    video_mb = cfg.video_path.stat().st_size / 1e6
    gt_mb = cfg.gt_path.stat().st_size / 1e6
    stats = {"frames": n, "codec": codec, "video_mb": round(video_mb, 2),
             "gt_mb": round(gt_mb, 2), "render_s": round(time.perf_counter() - t_start, 1)}
    print(f"wrote {cfg.video_path} ({video_mb:.2f} MB, {n} frames, {codec}) and "
          f"{cfg.gt_path} ({gt_mb:.2f} MB) in {stats['render_s']} s")
    if video_mb > MAX_VIDEO_MB:
        log.warning("the video is %.1f MB, above the %.1f MB budget", video_mb, MAX_VIDEO_MB)
    if gt_mb > MAX_GT_MB:
        log.warning("the ground truth is %.1f MB, above the %.1f MB budget", gt_mb, MAX_GT_MB)
    return stats


# --------------------------------------------------------------------------------------
# Closed-loop check with MediaPipe
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectionReport:
    """How MediaPipe Hands (tracking mode) does on the clip against its ground truth."""

    frames: int
    frames_with_hands: int
    all_found: float        # fraction of frames with hands where every present hand matched
    any_found: float        # ... where at least one present hand matched
    found_per_slot: tuple[float, float]  # right, left: fraction of its present frames
    mean_error_px: float    # mean over matched hands of the mean 21-keypoint distance
    median_error_px: float
    false_positives: int    # detections that matched no present hand
    seconds: float

    def as_dict(self) -> dict[str, float | int | list[float]]:
        return {"frames": self.frames, "frames_with_hands": self.frames_with_hands,
                "all_found": round(self.all_found, 4), "any_found": round(self.any_found, 4),
                "found_right": round(self.found_per_slot[0], 4),
                "found_left": round(self.found_per_slot[1], 4),
                "mean_error_px": round(self.mean_error_px, 2),
                "median_error_px": round(self.median_error_px, 2),
                "false_positives": self.false_positives, "seconds": round(self.seconds, 1)}


def match_detections(gt_2d: np.ndarray, present: np.ndarray, detected: list[np.ndarray]
                     ) -> dict[int, float]:
    """Assign detections ``[(21,2)]`` to present GT slots ``gt_2d (2,21,2)`` by the smallest
    total mean keypoint distance; returns ``{slot: mean error px}`` for accepted pairs."""
    slots = [s for s in range(len(present)) if present[s]]
    best: dict[int, float] = {}
    best_cost = math.inf
    for k in range(min(len(slots), len(detected)), 0, -1):
        for chosen in itertools.combinations(slots, k):
            for dets in itertools.permutations(range(len(detected)), k):
                errs = {s: float(np.linalg.norm(detected[d] - gt_2d[s], axis=-1).mean())
                        for s, d in zip(chosen, dets)}
                ok = {s: e for s, e in errs.items()
                      if e < MATCH_FRACTION_OF_DIAGONAL * _diagonal(gt_2d[s])}
                cost = sum(ok.values()) - 1e6 * len(ok)  # most matches, then least error
                if cost < best_cost:
                    best, best_cost = ok, cost
    return best


def _diagonal(points: np.ndarray) -> float:
    return float(np.linalg.norm(points.max(0) - points.min(0)))


def check_sample(video_path: Path, gt_path: Path, *, model_complexity: int = 1
                 ) -> DetectionReport:
    """Run MediaPipe Hands (tracking mode, two hands) over the clip and score it."""
    import mediapipe as mp

    if not video_path.is_file() or not gt_path.is_file():
        raise SampleError(f"{video_path} or {gt_path} is missing; build them with "
                          "`python -m scripts.make_sample`")
    with np.load(gt_path) as z:
        present, kp2d = z["present"], z["keypoints_2d"]
        width, height, n = int(z["width"]), int(z["height"]), int(z["num_frames"])
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise SampleError(f"OpenCV cannot open {video_path}")
    t0 = time.perf_counter()
    found = np.zeros((n, 2), dtype=bool)
    errors: list[float] = []
    false_pos = 0
    frames_read = 0
    with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2,
                                  model_complexity=model_complexity,
                                  min_detection_confidence=0.5,
                                  min_tracking_confidence=0.5) as hands:
        for f in tqdm(range(n), desc="MediaPipe check", unit="frame"):
            ok, frame = cap.read()
            if not ok:
                break
            frames_read += 1
            res = hands.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            dets = [np.array([(p.x * width, p.y * height) for p in lm.landmark])
                    for lm in (res.multi_hand_landmarks or [])]
            matched = match_detections(kp2d[f], present[f], dets)
            for slot, err in matched.items():
                found[f, slot] = True
                errors.append(err)
            false_pos += len(dets) - len(matched)
    cap.release()
    if frames_read != n:
        raise SampleError(f"{video_path} has {frames_read} readable frames, the ground truth "
                          f"{n}; rebuild the sample")
    with_hands = present.any(1)
    all_found = np.all(found | ~present, axis=1) & with_hands
    any_found = (found & present).any(1)
    per_slot = tuple(float(found[present[:, s], s].mean()) if present[:, s].any() else math.nan
                     for s in range(2))
    return DetectionReport(
        frames=n, frames_with_hands=int(with_hands.sum()),
        all_found=float(all_found.sum() / max(1, with_hands.sum())),
        any_found=float(any_found.sum() / max(1, with_hands.sum())),
        found_per_slot=per_slot,  # type: ignore[arg-type]
        mean_error_px=float(np.mean(errors)) if errors else math.nan,
        median_error_px=float(np.median(errors)) if errors else math.nan,
        false_positives=false_pos, seconds=time.perf_counter() - t0)


def print_report(report: DetectionReport) -> None:
    print(f"MediaPipe on the sample: all present hands found in {report.all_found:.1%} of "
          f"{report.frames_with_hands} frames with hands, at least one in "
          f"{report.any_found:.1%}; right {report.found_per_slot[0]:.1%}, left "
          f"{report.found_per_slot[1]:.1%}; mean 2D keypoint error "
          f"{report.mean_error_px:.1f} px (median {report.median_error_px:.1f}); "
          f"{report.false_positives} unmatched detections")
    print("SAMPLE_CHECK " + json.dumps(report.as_dict()))
    if report.all_found < REQUIRED_ALL_FOUND:
        log.warning("MediaPipe finds every hand in only %.1f%% of frames (required %.0f%%)",
                    100 * report.all_found, 100 * REQUIRED_ALL_FOUND)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=SAMPLE_DIR)
    parser.add_argument("--seed", type=int, default=SampleConfig.seed)
    parser.add_argument("--check", action="store_true",
                        help="only run the MediaPipe check on the existing clip")
    parser.add_argument("--no-check", action="store_true", help="skip the check after building")
    parser.add_argument("--fps", type=int, default=FPS,
                        help=f"frames per second (default {FPS}); the motion is the same at "
                             "any rate")
    parser.add_argument("--start", type=float, default=0.0, metavar="S",
                        help="render the script from S seconds on (default 0)")
    parser.add_argument("--duration", type=float, default=DURATION_S, metavar="S",
                        help=f"seconds to render (default {DURATION_S:g})")
    parser.add_argument("--name", default="sample",
                        help="file names: NAME.mp4 and NAME_gt.npz (default sample)")
    parser.add_argument("--no-gt-vertices", action="store_true",
                        help="leave the per-frame meshes out of the ground truth (keypoints, "
                             "pose and shape stay): a small file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = SampleConfig(out_dir=args.out_dir, seed=args.seed, fps=args.fps,
                           start_s=args.start, duration_s=args.duration, name=args.name,
                           gt_vertices=not args.no_gt_vertices)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.check:
        build_sample(cfg)
    if args.check or not args.no_check:
        print_report(check_sample(cfg.video_path, cfg.gt_path))


if __name__ == "__main__":
    main()
