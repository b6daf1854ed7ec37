"""Occlusion-aware hand texture: per-vertex colour sampled where visible, fused over time.

After AMVUR's texture regression (arXiv 2304.14299), without a network: a vertex takes the
frame's colour only where the camera sees it, i.e. it

* projects inside the image (``border_px`` away from its edge),
* faces the camera (its outward normal within ``acos(min_facing_cos)`` of the view ray),
* passes a z-buffer test against *both* hands: the four pixels its bilinear sample reads
  all hold its own depth within a tolerance that grows with the surface slope, so neither
  a finger in front of it (occluded) nor a surface behind it (silhouette) can colour it.

Samples are fused per track as a running weighted mean; the weight of a sample grows
with how squarely it was seen (``cos^2`` of the view angle), how near ((ref / z)^2) and
how certain the regressor is (``1 / (1 + (std / std_ref)^2)``), so the texture sharpens
as the hand turns, and a vertex that is hidden keeps its previous estimate. The total
weight is capped, so the estimate keeps following slow lighting changes.

Per-vertex colour (``(V,3)`` RGB float in [0,1]) is the primary representation (what the
renderers draw); :func:`bake_texture` paints it into the UV atlas of
``models/assets/open_hand_uv.npz`` for a PNG.

Pure kernels (Numba, ``nogil``) first; the stateful :class:`TextureFuser` and the pipeline
stage :class:`TextureStage` only keep per-track arrays and call them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from numba import njit

from models.uv_layout import UVLayout
from realtime.errors import RealtimeError
from realtime.render.raster import new_zbuffer, render_depth, vertex_normals

log = logging.getLogger(__name__)


class TextureError(RealtimeError):
    """Bad input to the texture fuser (wrong shapes, no hands model faces)."""


@dataclass(frozen=True)
class TextureConfig:
    """Visibility tests and fusion weights. Lengths in meters."""

    depth_tolerance_m: float = 0.002  # base of the z-buffer test (plus a slope term)
    slope_pixels: float = 1.5  # allowance for depth change across this many pixels of slope
    min_facing_cos: float = 0.45  # cos of the widest view angle (63 deg) that samples a vertex
    border_px: int = 2  # vertices nearer the image edge are not sampled
    reference_distance_m: float = 0.5  # distance at which the distance weight is 1
    std_reference_m: float = 0.004  # vertex_std at which the uncertainty weight halves
    max_weight: float = 40.0  # cap of the fused weight (keeps following lighting)
    forget_after_frames: int = 30  # a track unseen this long loses its texture
    # The z-buffer is drawn at this fraction of the image size: its cost is per pixel, and
    # the test only needs depth around each vertex (colours are still read at full size).
    zbuffer_scale: float = 0.5
    # Depth pixels beyond the colour footprint that must show the surface too: a margin
    # against silhouettes that fall between the (coarser) depth samples.
    guard_px: int = 0

    def __post_init__(self) -> None:
        for name in ("depth_tolerance_m", "reference_distance_m", "std_reference_m",
                     "max_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"TextureConfig.{name} must be a positive number, got {value!r}")
        if not 0.0 <= self.min_facing_cos < 1.0:
            raise ValueError(f"TextureConfig.min_facing_cos must be in [0, 1), got "
                             f"{self.min_facing_cos!r}")
        if not 0.1 <= self.zbuffer_scale <= 1.0:
            raise ValueError(f"TextureConfig.zbuffer_scale must be in [0.1, 1], got "
                             f"{self.zbuffer_scale!r}")
        if (self.slope_pixels < 0 or self.border_px < 0 or self.forget_after_frames < 1
                or self.guard_px < 0):
            raise ValueError("TextureConfig.slope_pixels, border_px and guard_px must be >= 0, "
                             f"forget_after_frames >= 1; got {self.slope_pixels!r}, "
                             f"{self.border_px!r}, {self.guard_px!r}, "
                             f"{self.forget_after_frames!r}")


# ---------------------------------------------------------------------------------------
# Pure kernels.


@njit(cache=True, nogil=True)
def _sample_kernel(image, zbuffer, vertices, normals, vertex_std, K, Kz, tol0, slope_px,
                   min_cos, border, ref_dist, std_ref, guard, colors, weights, pixels):
    """Per vertex: visibility test, bilinear colour (RGB [0,1]) and sample weight (0 = unseen).

    image (H,W,3) uint8 BGR; zbuffer (h,w) float32 of all hands, drawn with intrinsics Kz
    (possibly smaller than the image); vertices/normals (V,3) camera frame; vertex_std (V,);
    outputs colors (V,3), weights (V,), pixels (V,2).
    """
    height, width = image.shape[0], image.shape[1]
    zh, zw = zbuffer.shape
    zscale = Kz[0, 0] / K[0, 0]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    for i in range(vertices.shape[0]):
        weights[i] = 0.0
        x, y, z = vertices[i, 0], vertices[i, 1], vertices[i, 2]
        if not (z > 1e-3):
            continue
        u = fx * x / z + cx
        v = fy * y / z + cy
        pixels[i, 0] = u
        pixels[i, 1] = v
        if not (u >= border and v >= border and u <= width - 1 - border
                and v <= height - 1 - border):
            continue
        r = math.sqrt(x * x + y * y + z * z)
        cos = -(normals[i, 0] * x + normals[i, 1] * y + normals[i, 2] * z) / r
        if cos < min_cos:
            continue
        # Depth tolerance: the base plus how much a surface this oblique changes depth
        # across ``slope_px`` pixels (pixel footprint z / f times tan of the view angle).
        tan = math.sqrt(max(0.0, 1.0 - cos * cos)) / cos
        tol = tol0 + slope_px * (z / Kz[0, 0]) * tan
        x0 = int(math.floor(u))
        y0 = int(math.floor(v))
        # Every depth pixel around the colour footprint (pixels x0..x0+1, y0..y0+1) must
        # show this surface: map the footprint's corners into the depth image.
        zx0 = int(math.floor((x0 + 0.5) * zscale - 0.5)) - guard
        zx1 = int(math.ceil((x0 + 1.5) * zscale - 0.5)) + guard
        zy0 = int(math.floor((y0 + 0.5) * zscale - 0.5)) - guard
        zy1 = int(math.ceil((y0 + 1.5) * zscale - 0.5)) + guard
        if zx0 < 0 or zy0 < 0 or zx1 >= zw or zy1 >= zh:
            continue
        ok = True
        for zy in range(zy0, zy1 + 1):
            for zx in range(zx0, zx1 + 1):
                if not (abs(zbuffer[zy, zx] - z) <= tol):
                    ok = False
        if not ok:
            continue
        ax = u - x0
        ay = v - y0
        for c in range(3):
            val = ((1 - ax) * (1 - ay) * image[y0, x0, 2 - c]
                   + ax * (1 - ay) * image[y0, x0 + 1, 2 - c]
                   + (1 - ax) * ay * image[y0 + 1, x0, 2 - c]
                   + ax * ay * image[y0 + 1, x0 + 1, 2 - c])
            colors[i, c] = val / 255.0
        s = vertex_std[i] / std_ref
        weights[i] = cos * cos * (ref_dist / z) ** 2 / (1.0 + s * s)


@njit(cache=True, nogil=True)
def _fuse_kernel(mean, total, colors, weights, max_weight):
    """Running weighted mean in place; vertices with weight 0 keep their estimate."""
    for i in range(mean.shape[0]):
        w = weights[i]
        if w <= 0.0:
            continue
        t = total[i] + w
        k = w / t
        for c in range(3):
            mean[i, c] += k * (colors[i, c] - mean[i, c])
        total[i] = min(t, max_weight)


def scaled_intrinsics(K: np.ndarray, scale: float) -> np.ndarray:
    """Intrinsics of the image resized by ``scale`` (pixel centres at integers)."""
    Ks = np.array(K, dtype=np.float64, copy=True)  # noqa: N806
    Ks[0, 0] *= scale
    Ks[1, 1] *= scale
    Ks[0, 2] = (K[0, 2] + 0.5) * scale - 0.5
    Ks[1, 2] = (K[1, 2] + 0.5) * scale - 0.5
    return Ks


def zbuffer_of(hands: list[tuple[np.ndarray, np.ndarray]], K: np.ndarray, height: int,
               width: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One depth buffer of every ``(vertices, faces)`` mesh given, at ``scale`` of the
    image size: ``(h,w)`` float32 and the intrinsics it was drawn with."""
    Kz = scaled_intrinsics(K, scale) if scale != 1.0 else np.asarray(K, np.float64)  # noqa
    h, w = max(2, int(round(height * scale))), max(2, int(round(width * scale)))
    zb = new_zbuffer(h, w)
    for verts, faces in hands:
        render_depth(verts, faces, Kz, h, w, zbuffer=zb)
    return zb, Kz


def sample_vertex_colors(
    image: np.ndarray, zbuffer: tuple[np.ndarray, np.ndarray], vertices: np.ndarray,
    faces: np.ndarray, K: np.ndarray, vertex_std: np.ndarray | None = None,
    config: TextureConfig = TextureConfig(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colours of the visible vertices of one hand in one frame.

    image ``(H,W,3)`` uint8 BGR; zbuffer: the depth of *all* hands and its intrinsics, as
    :func:`zbuffer_of` returns them; vertices ``(V,3)`` camera frame, meters; faces ``(F,3)``
    outward (flipped for left hands); vertex_std ``(V,)`` meters or None.
    Returns colours ``(V,3)`` RGB in [0,1], weights ``(V,)`` (0 where not visible) and the
    vertices' pixel positions ``(V,2)``.
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise TextureError(f"image must be an (H,W,3) uint8 BGR array, got "
                           f"{getattr(image, 'dtype', None)} {getattr(image, 'shape', None)}")
    verts = np.ascontiguousarray(vertices, dtype=np.float64)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise TextureError(f"vertices must be (V,3), got {verts.shape}")
    zb, Kz = zbuffer  # noqa: N806
    if zb.ndim != 2 or zb.dtype != np.float32:
        raise TextureError(f"zbuffer must be a float32 (h,w) array, got {zb.dtype} {zb.shape}")
    n = len(verts)
    std = (np.zeros(n) if vertex_std is None
           else np.ascontiguousarray(vertex_std, dtype=np.float64).reshape(-1))
    if len(std) != n:
        raise TextureError(f"vertex_std has {len(std)} entries for {n} vertices")
    normals = vertex_normals(verts, faces)
    colors = np.zeros((n, 3))
    weights = np.zeros(n)
    pixels = np.full((n, 2), np.nan)
    _sample_kernel(image, zb, verts, normals, std, np.ascontiguousarray(K, np.float64),
                   np.ascontiguousarray(Kz, np.float64),
                   config.depth_tolerance_m, config.slope_pixels, config.min_facing_cos,
                   config.border_px, config.reference_distance_m, config.std_reference_m,
                   config.guard_px, colors, weights, pixels)
    return colors, weights, pixels


@njit(cache=True, nogil=True)
def _bake_kernel(out, seen_out, uv, uv_faces, vmapping, colors, seen):
    """Fill each UV triangle with barycentric colours (RGB float) of its mesh vertices."""
    size_h, size_w = seen_out.shape
    for f in range(uv_faces.shape[0]):
        a, b, c = uv_faces[f, 0], uv_faces[f, 1], uv_faces[f, 2]
        x0, y0 = uv[a, 0] * size_w - 0.5, uv[a, 1] * size_h - 0.5
        x1, y1 = uv[b, 0] * size_w - 0.5, uv[b, 1] * size_h - 0.5
        x2, y2 = uv[c, 0] * size_w - 0.5, uv[c, 1] * size_h - 0.5
        area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        if abs(area) < 1e-12:
            continue
        va, vb, vc = vmapping[a], vmapping[b], vmapping[c]
        tx0 = max(0, int(math.floor(min(x0, min(x1, x2)))))
        tx1 = min(size_w - 1, int(math.ceil(max(x0, max(x1, x2)))))
        ty0 = max(0, int(math.floor(min(y0, min(y1, y2)))))
        ty1 = min(size_h - 1, int(math.ceil(max(y0, max(y1, y2)))))
        for py in range(ty0, ty1 + 1):
            for px in range(tx0, tx1 + 1):
                l1 = ((px - x0) * (y2 - y0) - (py - y0) * (x2 - x0)) / area
                l2 = ((x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)) / area
                l0 = 1.0 - l1 - l2
                if l0 < -1e-6 or l1 < -1e-6 or l2 < -1e-6:
                    continue
                wsum = l0 * seen[va] + l1 * seen[vb] + l2 * seen[vc]
                if wsum <= 0.0:
                    continue
                for ch in range(3):
                    out[py, px, ch] = (l0 * seen[va] * colors[va, ch]
                                       + l1 * seen[vb] * colors[vb, ch]
                                       + l2 * seen[vc] * colors[vc, ch]) / wsum
                seen_out[py, px] = True


def bake_texture(colors: np.ndarray, seen: np.ndarray, layout: UVLayout,
                 size: int | None = None) -> np.ndarray:
    """Per-vertex colours ``(V,3)`` RGB [0,1] -> a BGRA ``(S,S,4)`` uint8 texture image.

    Texels are interpolated from the seen vertices of their triangle; alpha is 255 where
    some vertex of the triangle was seen, 0 elsewhere; charts are padded by a few texels so
    that bilinear lookups near seams do not read the background.
    """
    size = int(size or layout.resolution)
    rgb = np.zeros((size, size, 3))
    mask = np.zeros((size, size), dtype=np.bool_)
    _bake_kernel(rgb, mask, layout.uv, layout.uv_faces, layout.vmapping,
                 np.ascontiguousarray(colors, np.float64),
                 np.asarray(seen, dtype=np.float64).reshape(-1))
    bgr = np.clip(rgb[..., ::-1] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    alpha = mask.astype(np.uint8) * 255
    # Pad charts: grow the painted texels into their surroundings (colour only).
    grown = bgr.copy()
    filled = mask.copy()
    for _ in range(3):
        dil = cv2.dilate(grown, np.ones((3, 3), np.uint8))
        ring = cv2.dilate(filled.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        new = ring & ~filled
        grown[new] = dil[new]
        filled = ring
    return np.dstack([grown, alpha])


# ---------------------------------------------------------------------------------------
# State.


@dataclass
class HandTexture:
    """One track's texture: ``colors (V,3)`` RGB [0,1], fused ``weight (V,)`` (0 = never seen)."""

    colors: np.ndarray
    weight: np.ndarray
    handedness: str
    last_frame: int
    version: int = 0  # bumped whenever some vertex changed (publish on change)

    @property
    def seen(self) -> np.ndarray:
        return self.weight > 0


class TextureFuser:
    """Per-track fused textures; call :meth:`update` once per frame with all its hands."""

    def __init__(self, faces_for: Callable[[str], np.ndarray],
                 config: TextureConfig = TextureConfig(),
                 default_color: tuple[float, float, float] = (0.80, 0.62, 0.52)) -> None:
        self.faces_for = faces_for
        self.config = config
        self.default_color = np.asarray(default_color, dtype=np.float64)
        self.textures: dict[int, HandTexture] = {}
        # The last forgotten texture of each side, so that a hand that left the view before
        # the end still has its texture saved.
        self.retired: dict[str, tuple[int, HandTexture]] = {}

    def reset(self) -> None:
        self.textures.clear()
        self.retired.clear()

    def update(self, image: np.ndarray, K: np.ndarray, hands, frame_index: int
               ) -> dict[int, HandTexture]:
        """Fuse this frame's samples into each hand's track; returns the live textures.

        ``hands``: objects with ``vertices``, ``vertex_std``, ``handedness`` and
        ``track_id`` (:class:`realtime.types.HandMesh`). Every hand occludes every other.
        """
        # Hands without a mesh (a replay of joints only) have nothing to texture.
        hands = [hd for hd in hands if np.shape(hd.vertices)[0] > 0
                 and np.shape(hd.vertices)[0] > int(self.faces_for(hd.handedness).max())]
        h, w = image.shape[:2]
        meshes = [(np.asarray(hd.vertices, np.float64), self.faces_for(hd.handedness))
                  for hd in hands]
        zb = zbuffer_of(meshes, K, h, w, self.config.zbuffer_scale) if hands else None
        for hd, (verts, faces) in zip(hands, meshes):
            colors, weights, _ = sample_vertex_colors(image, zb, verts, faces, K,
                                                      hd.vertex_std, self.config)
            tex = self.textures.get(hd.track_id)
            if tex is None or tex.colors.shape[0] != len(verts):
                tex = HandTexture(np.tile(self.default_color, (len(verts), 1)),
                                  np.zeros(len(verts)), hd.handedness, frame_index)
                self.textures[hd.track_id] = tex
            _fuse_kernel(tex.colors, tex.weight, colors, weights, self.config.max_weight)
            tex.last_frame = frame_index
            tex.handedness = hd.handedness
            if np.any(weights > 0):
                tex.version += 1
        for tid in [t for t, tex in self.textures.items()
                    if frame_index - tex.last_frame > self.config.forget_after_frames]:
            log.debug("texture of track %d forgotten", tid)
            tex = self.textures.pop(tid)
            if tex.seen.any():
                self.retired[tex.handedness] = (tid, tex)
        return self.textures

    def save(self, path: str | Path, layout: UVLayout) -> list[Path]:
        """Write each live texture as a PNG atlas (or, for a side with no live hand, that
        side's last forgotten one); several hands get ``_<side>_<id>`` names."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise TextureError(f"--save-texture needs a .png file name, got {path}")
        written = []
        live_sides = {t.handedness for t in self.textures.values()}
        items = sorted(list(self.textures.items()) + [
            (tid, tex) for side, (tid, tex) in self.retired.items() if side not in live_sides])
        for tid, tex in items:
            out = path if len(items) == 1 else path.with_name(
                f"{path.stem}_{tex.handedness}_{tid}{path.suffix}")
            out.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(out), bake_texture(tex.colors, tex.seen, layout)):
                raise TextureError(f"could not write {out}")
            written.append(out)
        return written


def hand_colors(hand, default) -> np.ndarray:
    """What to draw a hand with: its fused ``vertex_colors`` where the texture is on, else
    ``default`` (an RGB triple or ``(V,3)``); for ``realtime.render.raster.render_mesh``."""
    colors = getattr(hand, "vertex_colors", None)
    return np.asarray(default, dtype=np.float64) if colors is None else colors


class TextureStage:
    """Pipeline stage: fuse the frame into each track's texture and attach the hands'
    ``vertex_colors`` (the viewer and the overlay draw them when present)."""

    def __init__(self, fuser: TextureFuser) -> None:
        self.fuser = fuser

    def __call__(self, p):
        if not p.hands:
            return p
        textures = self.fuser.update(p.frame.image, p.frame.camera.K, p.hands,
                                     p.frame.index)
        hands = tuple(replace(hd, vertex_colors=textures[hd.track_id].colors.copy())
                      if hd.track_id in textures else hd for hd in p.hands)
        return replace(p, hands=hands)
