"""CPU software rasterizer for hand meshes (Numba).

Why our own rasterizer: the AR overlay must draw two ~1.5k-vertex hands over every webcam
frame on a 2-core laptop CPU, with correct mutual occlusion, smooth per-pixel shading and
alpha blending, without an OpenGL context (headless machines, CI, Xvfb-less containers).
OpenCV's ``fillConvexPoly`` with a painter's sort is flat-shaded, has no depth test and
costs one Python call per triangle; this module does the same work in two Numba passes:

1. *visibility*: every triangle is scanned over its clipped bounding box with edge
   functions; a depth test against a (possibly shared) z-buffer keeps the nearest
   triangle id and its perspective-correct barycentrics per pixel;
2. *deferred shading*: each covered pixel is shaded once (interpolated normal, Lambert
   with wrap for skin, Blinn-Phong specular, rim light, hemispherical ambient) and
   alpha-blended once, so shared edges and self-occluded layers are never blended twice.

Conventions: camera frame is OpenCV's (x right, y down, z forward), meters; pixel centres
are at integer coordinates (as in ``cv2.projectPoints``/``cv2.fillPoly``); images are
BGR ``uint8``; colours passed in are RGB floats in [0, 1]; the z-buffer holds camera depth
``z`` in meters as ``float32`` with ``inf`` meaning empty.

All kernels are pure, ``nogil`` and cached, so a render thread overlaps with the
detector and the regressor. Call :func:`warmup` once at start-up to pay JIT compilation
(or cache loading) before the first frame.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit

__all__ = [
    "Lighting",
    "DEFAULT_LIGHTING",
    "vertex_normals",
    "new_zbuffer",
    "render_mesh",
    "render_depth",
    "draw_skeleton",
    "warmup",
]

_MIN_DEPTH_M = 1e-4  # vertices at or behind this depth are not projected
_DEGENERATE_AREA_PX2 = 1e-10  # twice the screen area below which a triangle is skipped
_COORD_CLAMP_PX = 1e7  # screen coordinates are clamped to this before int conversion

Vec3 = tuple[float, float, float]


def _check_vec3(name: str, value: Sequence[float], *, unit_range: bool, nonzero: bool) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is a finite 3-vector as required."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"Lighting.{name} must be 3 numbers, got {value!r}") from None
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"Lighting.{name} must be 3 finite numbers, got {value!r}")
    if unit_range and (np.any(arr < 0.0) or np.any(arr > 1.0)):
        raise ValueError(f"Lighting.{name} must be an RGB colour in [0, 1], got {value!r}")
    if nonzero and float(np.linalg.norm(arr)) < 1e-9:
        raise ValueError(f"Lighting.{name} must be a non-zero direction, got {value!r}")


@dataclass(frozen=True)
class Lighting:
    """Three-point studio lighting plus sky/ground ambient, tuned for skin.

    Directions are in the camera frame (OpenCV axes: x right, y down, z forward) and point
    from the surface *toward* the light, so ``(0, 0, -1)`` is a light at the camera and
    ``z > 0`` is a back light. They need not be unit length. Colours are linear RGB in
    [0, 1]; intensities scale them.

    The defaults give a soft look: a warm key from the upper left in front, a cool dim
    fill from the right, a rim light from behind and above that outlines the silhouette
    against dark backgrounds, wrapped diffuse (a cheap stand-in for subsurface scattering)
    and a weak, broad specular so skin looks moist rather than plastic.
    """

    key_direction: Vec3 = (-0.45, -0.6, -0.75)
    key_color: Vec3 = (1.0, 0.96, 0.90)
    key_intensity: float = 0.62
    fill_direction: Vec3 = (0.8, -0.05, -0.6)
    fill_color: Vec3 = (0.80, 0.88, 1.0)
    fill_intensity: float = 0.25
    rim_direction: Vec3 = (0.25, -0.55, 0.8)
    rim_color: Vec3 = (1.0, 0.98, 0.95)
    rim_intensity: float = 0.55
    rim_power: float = 2.5
    sky_color: Vec3 = (0.40, 0.41, 0.44)
    ground_color: Vec3 = (0.20, 0.18, 0.17)
    wrap: float = 0.35
    specular_strength: float = 0.12
    shininess: float = 24.0

    def __post_init__(self) -> None:
        for name in ("key_direction", "fill_direction", "rim_direction"):
            _check_vec3(name, getattr(self, name), unit_range=False, nonzero=True)
        for name in ("key_color", "fill_color", "rim_color", "sky_color", "ground_color"):
            _check_vec3(name, getattr(self, name), unit_range=True, nonzero=False)
        for name in ("key_intensity", "fill_intensity", "rim_intensity", "specular_strength"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
                raise ValueError(f"Lighting.{name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.wrap, (int, float)) and 0.0 <= self.wrap <= 1.0):
            raise ValueError(f"Lighting.wrap must be in [0, 1], got {self.wrap!r}")
        for name in ("shininess", "rim_power"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
                raise ValueError(f"Lighting.{name} must be a finite number > 0, got {value!r}")


DEFAULT_LIGHTING = Lighting()


@functools.lru_cache(maxsize=32)
def _pack_lighting(lighting: Lighting) -> np.ndarray:
    """Flatten a Lighting into the float64 parameter vector the kernel reads (cached)."""

    def unit(v: Vec3) -> np.ndarray:
        a = np.asarray(v, dtype=np.float64)
        return a / np.linalg.norm(a)

    def scaled(c: Vec3, k: float) -> np.ndarray:
        return np.asarray(c, dtype=np.float64) * float(k)

    params = np.concatenate(
        [
            unit(lighting.key_direction),  # 0:3
            scaled(lighting.key_color, lighting.key_intensity),  # 3:6
            unit(lighting.fill_direction),  # 6:9
            scaled(lighting.fill_color, lighting.fill_intensity),  # 9:12
            unit(lighting.rim_direction),  # 12:15
            scaled(lighting.rim_color, lighting.rim_intensity),  # 15:18
            np.asarray(lighting.sky_color, dtype=np.float64),  # 18:21
            np.asarray(lighting.ground_color, dtype=np.float64),  # 21:24
            [lighting.specular_strength, lighting.shininess, lighting.wrap, lighting.rim_power],
            [1e-3 ** (1.0 / lighting.shininess)],  # 28: smallest n.h worth a pow
        ]
    )
    params.setflags(write=False)
    return params


# --------------------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _vertex_normals_kernel(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Sum un-normalised face normals (|n| = 2 * area) into vertices, then normalise."""
    n_v = vertices.shape[0]
    out = np.zeros((n_v, 3), dtype=np.float64)
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        e1x = vertices[b, 0] - vertices[a, 0]
        e1y = vertices[b, 1] - vertices[a, 1]
        e1z = vertices[b, 2] - vertices[a, 2]
        e2x = vertices[c, 0] - vertices[a, 0]
        e2y = vertices[c, 1] - vertices[a, 1]
        e2z = vertices[c, 2] - vertices[a, 2]
        nx = e1y * e2z - e1z * e2y
        ny = e1z * e2x - e1x * e2z
        nz = e1x * e2y - e1y * e2x
        if not (np.isfinite(nx) and np.isfinite(ny) and np.isfinite(nz)):
            continue
        for idx in (a, b, c):
            out[idx, 0] += nx
            out[idx, 1] += ny
            out[idx, 2] += nz
    for i in range(n_v):
        length = math.sqrt(out[i, 0] ** 2 + out[i, 1] ** 2 + out[i, 2] ** 2)
        if length > 1e-30:
            out[i, 0] /= length
            out[i, 1] /= length
            out[i, 2] /= length
    return out


@njit(cache=True, nogil=True)
def _clamp_coord(value: float) -> float:
    """Keep far off-screen coordinates representable as int before bounding boxes."""
    return min(max(value, -_COORD_CLAMP_PX), _COORD_CLAMP_PX)


@njit(cache=True, nogil=True, fastmath=True)
def _shade_pixel(
    px: float, py: float, pz: float,
    nx: float, ny: float, nz: float,
    r: float, g: float, b: float,
    params: np.ndarray,
) -> tuple[float, float, float]:
    """Shade one surface point; returns linear RGB clamped to [0, 1]."""
    # view direction: from the point toward the camera centre
    plen = math.sqrt(px * px + py * py + pz * pz)
    vx, vy, vz = -px / plen, -py / plen, -pz / plen
    nlen = math.sqrt(nx * nx + ny * ny + nz * nz)
    if nlen < 1e-12:
        nx, ny, nz = vx, vy, vz
    else:
        nx, ny, nz = nx / nlen, ny / nlen, nz / nlen
    wrap = params[26]
    # key (wrapped Lambert)
    ndk = nx * params[0] + ny * params[1] + nz * params[2]
    dk = max(0.0, (ndk + wrap) / (1.0 + wrap))
    # fill
    ndf = nx * params[6] + ny * params[7] + nz * params[8]
    df = max(0.0, (ndf + wrap) / (1.0 + wrap))
    # rim: back light gated by a Fresnel-like grazing term, so it only shows at edges
    ndr = nx * params[12] + ny * params[13] + nz * params[14]
    ndv = max(0.0, nx * vx + ny * vy + nz * vz)
    rim = 0.0
    rim_light = (ndr + wrap) / (1.0 + wrap)
    if rim_light > 0.0 and ndv < 0.95:  # pow only where the term can show
        rim = (1.0 - ndv) ** params[27] * rim_light
    # hemispherical ambient: sky from above (-y), ground from below
    t = 0.5 - 0.5 * ny
    # Blinn-Phong specular from the key light
    spec = 0.0
    if ndk > 0.0:
        hx, hy, hz = params[0] + vx, params[1] + vy, params[2] + vz
        hlen = math.sqrt(hx * hx + hy * hy + hz * hz)
        if hlen > 1e-12:
            ndh = (nx * hx + ny * hy + nz * hz) / hlen
            if ndh > params[28]:  # below it ndh ** shininess < 1e-3: skip the pow
                spec = params[24] * ndh ** params[25]
    out_r = r * (params[21] + (params[18] - params[21]) * t
                 + dk * params[3] + df * params[9] + rim * params[15]) + spec * params[3]
    out_g = g * (params[22] + (params[19] - params[22]) * t
                 + dk * params[4] + df * params[10] + rim * params[16]) + spec * params[4]
    out_b = b * (params[23] + (params[20] - params[23]) * t
                 + dk * params[5] + df * params[11] + rim * params[17]) + spec * params[5]
    return min(max(out_r, 0.0), 1.0), min(max(out_g, 0.0), 1.0), min(max(out_b, 0.0), 1.0)


@njit(cache=True, nogil=True, fastmath=True)
def _shade_vertices_kernel(vertices: np.ndarray, normals: np.ndarray, colors: np.ndarray,
                           params: np.ndarray) -> np.ndarray:
    """The lighting evaluated once per vertex (V,3) -> lit RGB (V,3), for Gouraud shading."""
    out = np.empty_like(colors)
    for i in range(vertices.shape[0]):
        r, g, b = _shade_pixel(vertices[i, 0], vertices[i, 1], vertices[i, 2],
                               normals[i, 0], normals[i, 1], normals[i, 2],
                               colors[i, 0], colors[i, 1], colors[i, 2], params)
        out[i, 0], out[i, 1], out[i, 2] = r, g, b
    return out


@njit(cache=True, nogil=True)
def _raster_kernel(
    image: np.ndarray,
    zbuffer: np.ndarray,
    mask: np.ndarray,
    vertices: np.ndarray,
    normals: np.ndarray,
    colors: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    params: np.ndarray,
    alpha: float,
    cull_backfaces: bool,
    shade: bool,
    lit: bool = False,
) -> None:
    """Depth-test every triangle, then shade and blend each covered pixel once.

    ``lit``: the colours are already shaded per vertex (Gouraud): pass 2 only
    interpolates and blends them.

    image (H,W,3) uint8 BGR, zbuffer (H,W) float32, mask (H,W) bool: written in place.
    vertices/normals/colors (V,3) float64, faces (F,3) int64 (indices already checked).
    """
    height, width = zbuffer.shape
    n_v = vertices.shape[0]
    # ---- project vertices -----------------------------------------------------------
    su = np.empty(n_v, dtype=np.float64)
    sv = np.empty(n_v, dtype=np.float64)
    inv_z = np.empty(n_v, dtype=np.float64)
    valid = np.zeros(n_v, dtype=np.bool_)
    umin, umax, vmin, vmax = np.inf, -np.inf, np.inf, -np.inf
    for i in range(n_v):
        x, y, z = vertices[i, 0], vertices[i, 1], vertices[i, 2]
        if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(z)) or z <= _MIN_DEPTH_M:
            continue
        w = K[2, 0] * x + K[2, 1] * y + K[2, 2] * z
        if not (np.isfinite(w) and w > 0.0):
            continue
        u = _clamp_coord((K[0, 0] * x + K[0, 1] * y + K[0, 2] * z) / w)
        v = _clamp_coord((K[1, 0] * x + K[1, 1] * y + K[1, 2] * z) / w)
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        su[i], sv[i], inv_z[i] = u, v, 1.0 / z
        valid[i] = True
        umin, umax = min(umin, u), max(umax, u)
        vmin, vmax = min(vmin, v), max(vmax, v)
    if umin > umax:
        return
    bx0 = max(0, int(math.ceil(umin)))
    bx1 = min(width - 1, int(math.floor(umax)))
    by0 = max(0, int(math.ceil(vmin)))
    by1 = min(height - 1, int(math.floor(vmax)))
    if bx0 > bx1 or by0 > by1:
        return
    bw, bh = bx1 - bx0 + 1, by1 - by0 + 1
    # ---- pass 1: visibility in the mesh's screen bounding box -----------------------
    zloc = zbuffer[by0:by1 + 1, bx0:bx1 + 1].copy()
    tri = np.full((bh, bw), -1, dtype=np.int32)
    bary1 = np.empty((bh, bw), dtype=np.float32)
    bary2 = np.empty((bh, bw), dtype=np.float32)
    n_f = faces.shape[0]
    backfacing = np.zeros(n_f, dtype=np.bool_)
    for f in range(n_f):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        if not (valid[i0] and valid[i1] and valid[i2]):
            continue
        # geometric facing in 3D (independent of the screen's handedness)
        e1x = vertices[i1, 0] - vertices[i0, 0]
        e1y = vertices[i1, 1] - vertices[i0, 1]
        e1z = vertices[i1, 2] - vertices[i0, 2]
        e2x = vertices[i2, 0] - vertices[i0, 0]
        e2y = vertices[i2, 1] - vertices[i0, 1]
        e2z = vertices[i2, 2] - vertices[i0, 2]
        facing = ((e1y * e2z - e1z * e2y) * vertices[i0, 0]
                  + (e1z * e2x - e1x * e2z) * vertices[i0, 1]
                  + (e1x * e2y - e1y * e2x) * vertices[i0, 2])
        if facing >= 0.0:
            if cull_backfaces:
                continue
            backfacing[f] = True
        x0, y0, x1, y1, x2, y2 = su[i0], sv[i0], su[i1], sv[i1], su[i2], sv[i2]
        area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        if not (abs(area) > _DEGENERATE_AREA_PX2):
            continue
        tx0 = max(bx0, int(math.ceil(min(x0, min(x1, x2)))))
        tx1 = min(bx1, int(math.floor(max(x0, max(x1, x2)))))
        ty0 = max(by0, int(math.ceil(min(y0, min(y1, y2)))))
        ty1 = min(by1, int(math.floor(max(y0, max(y1, y2)))))
        if tx0 > tx1 or ty0 > ty1:
            continue
        inv_area = 1.0 / area
        # barycentric l_k = a_k * px + b_k * py + c_k (already divided by the area)
        a0, b0 = -(y2 - y1) * inv_area, (x2 - x1) * inv_area
        c0 = ((y2 - y1) * x1 - (x2 - x1) * y1) * inv_area
        a1, b1 = -(y0 - y2) * inv_area, (x0 - x2) * inv_area
        c1 = ((y0 - y2) * x2 - (x0 - x2) * y2) * inv_area
        a2, b2 = -(y1 - y0) * inv_area, (x1 - x0) * inv_area
        c2 = ((y1 - y0) * x0 - (x1 - x0) * y0) * inv_area
        iz0, iz1, iz2 = inv_z[i0], inv_z[i1], inv_z[i2]
        for py in range(ty0, ty1 + 1):
            r0 = b0 * py + c0
            r1 = b1 * py + c1
            r2 = b2 * py + c2
            ly = py - by0
            for px in range(tx0, tx1 + 1):
                l0 = a0 * px + r0
                l1 = a1 * px + r1
                l2 = a2 * px + r2
                if l0 < 0.0 or l1 < 0.0 or l2 < 0.0:
                    continue
                iz = l0 * iz0 + l1 * iz1 + l2 * iz2  # 1/z is affine in screen space
                depth = 1.0 / iz
                lx = px - bx0
                if depth < zloc[ly, lx]:
                    zloc[ly, lx] = depth
                    tri[ly, lx] = f
                    bary1[ly, lx] = l1 * iz1 / iz
                    bary2[ly, lx] = l2 * iz2 / iz
    # ---- pass 2: shade and blend each visible pixel once -----------------------------
    keep = 1.0 - alpha
    for ly in range(bh):
        py = ly + by0
        for lx in range(bw):
            f = tri[ly, lx]
            if f < 0:
                continue
            px = lx + bx0
            mask[py, px] = True
            zbuffer[py, px] = zloc[ly, lx]
            if not shade:
                continue
            w1 = np.float64(bary1[ly, lx])
            w2 = np.float64(bary2[ly, lx])
            w0 = 1.0 - w1 - w2
            i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
            cr = w0 * colors[i0, 0] + w1 * colors[i1, 0] + w2 * colors[i2, 0]
            cg = w0 * colors[i0, 1] + w1 * colors[i1, 1] + w2 * colors[i2, 1]
            cb = w0 * colors[i0, 2] + w1 * colors[i1, 2] + w2 * colors[i2, 2]
            if lit:
                r, g, b = cr, cg, cb
            else:
                sign = -1.0 if backfacing[f] else 1.0  # light the side we see
                qx = w0 * vertices[i0, 0] + w1 * vertices[i1, 0] + w2 * vertices[i2, 0]
                qy = w0 * vertices[i0, 1] + w1 * vertices[i1, 1] + w2 * vertices[i2, 1]
                qz = w0 * vertices[i0, 2] + w1 * vertices[i1, 2] + w2 * vertices[i2, 2]
                nx = sign * (w0 * normals[i0, 0] + w1 * normals[i1, 0] + w2 * normals[i2, 0])
                ny = sign * (w0 * normals[i0, 1] + w1 * normals[i1, 1] + w2 * normals[i2, 1])
                nz = sign * (w0 * normals[i0, 2] + w1 * normals[i1, 2] + w2 * normals[i2, 2])
                r, g, b = _shade_pixel(qx, qy, qz, nx, ny, nz, cr, cg, cb, params)
            # BGR output
            image[py, px, 0] = np.uint8(min(255.0, alpha * 255.0 * b + keep * image[py, px, 0]
                                            + 0.5))
            image[py, px, 1] = np.uint8(min(255.0, alpha * 255.0 * g + keep * image[py, px, 1]
                                            + 0.5))
            image[py, px, 2] = np.uint8(min(255.0, alpha * 255.0 * r + keep * image[py, px, 2]
                                            + 0.5))


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _as_vertices(vertices: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(vertices, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {arr.shape}")
    return arr


def _as_faces(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """Faces as contiguous int64; indices are checked because the kernels do no bounds checks."""
    arr = np.ascontiguousarray(faces, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= n_vertices):
        raise ValueError(
            f"faces index vertices in [0, {n_vertices}), got range "
            f"[{int(arr.min())}, {int(arr.max())}]"
        )
    return arr


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, (V,3) float64.

    Weighting by face area keeps normals stable where the template has slivers. Faces
    touching a NaN vertex are ignored; vertices without any valid face get a zero normal
    (the shader then falls back to facing the camera).

    Args:
        vertices: (V, 3) positions, any unit.
        faces: (F, 3) vertex indices, counter-clockwise seen from outside.
    """
    verts = _as_vertices(vertices)
    return _vertex_normals_kernel(verts, _as_faces(faces, verts.shape[0]))


def new_zbuffer(height: int, width: int) -> np.ndarray:
    """An empty depth buffer (H,W) float32 of +inf, to share between several render calls."""
    return np.full((height, width), np.inf, dtype=np.float32)


def _check_image_zbuffer(
    height: int, width: int, zbuffer: np.ndarray | None
) -> np.ndarray:
    if zbuffer is None:
        return new_zbuffer(height, width)
    if not (isinstance(zbuffer, np.ndarray) and zbuffer.dtype == np.float32
            and zbuffer.shape == (height, width)):
        shape = getattr(zbuffer, "shape", None)
        raise ValueError(
            f"zbuffer must be a float32 array of shape {(height, width)}, got "
            f"{getattr(zbuffer, 'dtype', type(zbuffer))} {shape}; make one with new_zbuffer()"
        )
    return zbuffer


def _as_K(K: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(K, dtype=np.float64)
    if arr.shape != (3, 3) or not np.all(np.isfinite(arr)):
        raise ValueError(f"K must be a finite 3x3 intrinsics matrix, got shape {arr.shape}")
    return arr


def render_mesh(
    image: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    colors: np.ndarray | Sequence[float],
    *,
    alpha: float = 1.0,
    lighting: Lighting = DEFAULT_LIGHTING,
    zbuffer: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    cull_backfaces: bool = False,
    vertex_lighting: bool = False,
) -> np.ndarray:
    """Draw a shaded, depth-tested mesh into ``image`` in place; returns its coverage mask.

    Pass the same ``zbuffer`` (see :func:`new_zbuffer`) to several calls so that two hands
    occlude each other correctly whatever the draw order. Triangles with a vertex that is
    NaN/inf or at ``z <= 1e-4`` m are skipped (no near-plane clipping: hands are in front
    of the camera); degenerate triangles are skipped.

    Args:
        image: (H, W, 3) uint8 BGR frame, modified in place.
        vertices: (V, 3) camera-frame positions in meters (OpenCV axes).
        faces: (F, 3) vertex indices.
        K: (3, 3) pinhole intrinsics in pixels.
        colors: (V, 3) per-vertex or (3,) uniform albedo, RGB in [0, 1].
        alpha: opacity in [0, 1] of the drawn surface over the existing pixels.
        lighting: the light rig.
        zbuffer: (H, W) float32 depth in meters (inf = empty), read and updated; created
            when None.
        normals: (V, 3) unit vertex normals; computed with :func:`vertex_normals` when None.
        cull_backfaces: skip triangles whose counter-clockwise normal faces away from the
            camera (off by default: closed meshes are resolved by the z-buffer).
        vertex_lighting: light each vertex once and interpolate the colours (Gouraud)
            instead of lighting every pixel: about half the cost for a hand-sized mesh
            whose triangles span a few pixels, where the two look alike (the live overlay).

    Returns:
        (H, W) bool mask of the pixels this call drew (won the depth test).
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise ValueError(
            f"image must be an (H, W, 3) uint8 BGR array, got "
            f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', None)}"
        )
    if not (isinstance(alpha, (int, float)) and 0.0 <= float(alpha) <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if not isinstance(lighting, Lighting):
        raise ValueError(f"lighting must be a Lighting, got {type(lighting).__name__}")
    height, width = image.shape[:2]
    verts = _as_vertices(vertices)
    n_v = verts.shape[0]
    tris = _as_faces(faces, n_v)
    K64 = _as_K(K)
    zbuf = _check_image_zbuffer(height, width, zbuffer)
    cols = np.asarray(colors, dtype=np.float64)
    if cols.shape == (3,):
        cols = np.broadcast_to(cols, (n_v, 3))
    if cols.shape != (n_v, 3):
        raise ValueError(f"colors must have shape (3,) or ({n_v}, 3), got {cols.shape}")
    cols = np.ascontiguousarray(cols)
    if normals is None:
        nrms = _vertex_normals_kernel(verts, tris)
    else:
        nrms = np.ascontiguousarray(normals, dtype=np.float64)
        if nrms.shape != (n_v, 3):
            raise ValueError(f"normals must have shape ({n_v}, 3), got {nrms.shape}")
    mask = np.zeros((height, width), dtype=np.bool_)
    params = _pack_lighting(lighting)
    if vertex_lighting:
        cols = _shade_vertices_kernel(verts, nrms, cols, params)
    _raster_kernel(image, zbuf, mask, verts, nrms, cols, tris, K64, params,
                   float(alpha), bool(cull_backfaces), True, bool(vertex_lighting))
    return mask


def render_depth(
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    height: int,
    width: int,
    *,
    zbuffer: np.ndarray | None = None,
    cull_backfaces: bool = False,
) -> np.ndarray:
    """Rasterize depth only: (H, W) float32 camera z in meters, +inf where nothing is drawn.

    Same visibility rules as :func:`render_mesh`; useful for occlusion tests, depth-aware
    compositing and for tests. When ``zbuffer`` is given it is updated and returned.
    """
    verts = _as_vertices(vertices)
    n_v = verts.shape[0]
    tris = _as_faces(faces, n_v)
    zbuf = _check_image_zbuffer(int(height), int(width), zbuffer)
    dummy_image = np.zeros((1, 1, 3), dtype=np.uint8)  # never written when shade=False
    dummy_attr = np.zeros((n_v, 3), dtype=np.float64)
    mask = np.zeros(zbuf.shape, dtype=np.bool_)
    _raster_kernel(dummy_image, zbuf, mask, verts, dummy_attr, dummy_attr, tris, _as_K(K),
                   _pack_lighting(DEFAULT_LIGHTING), 1.0, bool(cull_backfaces), False, False)
    return zbuf


def draw_skeleton(
    image: np.ndarray,
    points_2d: np.ndarray,
    edges: Sequence[tuple[int, int]],
    color: tuple[int, int, int] = (255, 255, 255),
    thickness: int = 2,
    *,
    joint_radius: int | None = None,
) -> None:
    """Draw bones and joints anti-aliased, in place, at sub-pixel precision.

    Points with NaN coordinates (e.g. undetected keypoints) and the bones touching them are
    skipped.

    Args:
        image: (H, W, 3) uint8 BGR frame.
        points_2d: (N, 2) pixel coordinates (21 MediaPipe keypoints for a hand).
        edges: (i, j) index pairs into ``points_2d``.
        color: BGR colour.
        thickness: line width in pixels (>= 1).
        joint_radius: radius of the joint dots; ``thickness + 1`` when None, 0 for none.
    """
    pts = np.asarray(points_2d, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points_2d must have shape (N, 2), got {pts.shape}")
    if int(thickness) < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness!r}")
    shift = 4  # cv2 fixed-point fractional bits: 1/16 px precision
    ok = np.all(np.isfinite(pts), axis=1) & np.all(np.abs(pts) < 1e6, axis=1)
    fixed = np.zeros(pts.shape, dtype=np.int64)
    fixed[ok] = np.round(pts[ok] * (1 << shift)).astype(np.int64)
    col = tuple(int(c) for c in color)
    pairs = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    bad = (pairs < 0) | (pairs >= len(pts))
    if bad.any():
        i, j = pairs[np.flatnonzero(bad.any(axis=1))[0]]
        raise ValueError(f"edge ({i}, {j}) indexes outside points_2d of length {len(pts)}")
    pairs = pairs[ok[pairs[:, 0]] & ok[pairs[:, 1]]]
    if len(pairs):  # all bones in one call: a call per line costs ~3x as much
        segments = np.ascontiguousarray(fixed[pairs].astype(np.int32))  # (E,2,2)
        cv2.polylines(image, list(segments), False, col, int(thickness), cv2.LINE_AA, shift)
    radius = int(thickness) + 1 if joint_radius is None else int(joint_radius)
    if radius > 0:
        for k in np.flatnonzero(ok):
            cv2.circle(image, (int(fixed[k, 0]), int(fixed[k, 1])), radius << shift, col, -1,
                       cv2.LINE_AA, shift)


def warmup() -> None:
    """Compile (or load from cache) every kernel on a tiny mesh, off the first frame's path."""
    verts = np.array(
        [[0.0, 0.0, 0.3], [0.02, 0.0, 0.3], [0.0, 0.02, 0.3], [0.0, 0.0, 0.32]], dtype=np.float64
    )
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int64)
    K = np.array([[50.0, 0.0, 8.0], [0.0, 50.0, 8.0], [0.0, 0.0, 1.0]])
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    zbuf = new_zbuffer(16, 16)
    render_mesh(image, verts, faces, K, (0.8, 0.6, 0.5), zbuffer=zbuf)
    render_mesh(image, verts, faces, K, np.full((4, 3), 0.5), alpha=0.5, cull_backfaces=True)
    render_mesh(image, verts, faces, K, np.full((4, 3), 0.5), alpha=0.5, zbuffer=zbuf,
                vertex_lighting=True)
    render_depth(verts, faces, K, 16, 16)
