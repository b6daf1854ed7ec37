"""Speed of the Numba rasterizer against an OpenCV painter's-algorithm baseline.

Why: the AR overlay has a ~3 ms budget per hand on a laptop CPU. The baseline is what one
would write with OpenCV alone: project, sort triangles far-to-near, flat-shade each with
Lambert and draw it with ``cv2.fillConvexPoly`` (no z-buffer, no per-pixel normals).

Usage: ``python -m benchmarks.raster_speed [--frames 200] [--save /tmp/blob.png]``. The last
line printed is one JSON object with the numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from realtime.render import raster

WIDTH, HEIGHT = 640, 480
K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])
SKIN_RGB = (0.87, 0.66, 0.54)


def blob_mesh(
    length_m: float = 0.08, rings: int = 38, segments: int = 41, depth_m: float = 0.40
) -> tuple[np.ndarray, np.ndarray]:
    """A closed, lumpy, hand-sized ellipsoid (~1.5k vertices, ~3k triangles), camera frame.

    Returns vertices (V,3) in meters placed ``depth_m`` in front of the camera and faces
    (F,3) counter-clockwise seen from outside.
    """
    theta = np.linspace(0.0, np.pi, rings + 1)[1:-1]  # polar angle, poles added separately
    phi = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)], axis=-1)
    dirs = np.concatenate([[[0.0, 1.0, 0.0]], dirs.reshape(-1, 3), [[0.0, -1.0, 0.0]]])
    bumps = 1.0 + 0.06 * np.sin(5.0 * dirs[:, 0] + 2.0) * np.cos(4.0 * dirs[:, 1])
    semi = np.array([0.38, 0.5, 0.16]) * length_m  # width, length, thickness
    verts = dirs * semi * bumps[:, None]
    faces = []
    top, bottom = 0, len(dirs) - 1

    def idx(r: int, s: int) -> int:
        return 1 + r * segments + (s % segments)

    for s in range(segments):
        faces.append((top, idx(0, s + 1), idx(0, s)))
        faces.append((bottom, idx(rings - 2, s), idx(rings - 2, s + 1)))
        for r in range(rings - 2):
            a, b, c, d = idx(r, s), idx(r, s + 1), idx(r + 1, s), idx(r + 1, s + 1)
            faces.append((a, b, c))
            faces.append((b, d, c))
    faces_arr = np.asarray(faces, dtype=np.int64)
    # orient faces outward (the winding above depends on the axis order chosen)
    tri = verts[faces_arr]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    if np.sum(np.einsum("ij,ij->i", normals, tri.mean(axis=1))) < 0:
        faces_arr = faces_arr[:, ::-1].copy()
    rot, _ = cv2.Rodrigues(np.array([0.35, -0.5, 0.25]))
    verts = verts @ rot.T + np.array([0.0, 0.0, depth_m])
    return verts, faces_arr


def opencv_painter(image: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> None:
    """Baseline: far-to-near sorted triangles, flat Lambert, one fillConvexPoly each."""
    uv = verts[:, :2] / verts[:, 2:3] * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    light = np.array([-0.45, -0.6, -0.75])
    light /= np.linalg.norm(light)
    shade = 0.3 + 0.7 * np.clip(n @ light, 0.0, 1.0)
    bgr = np.array(SKIN_RGB[::-1]) * 255.0
    order = np.argsort(-tri[:, :, 2].mean(axis=1))
    pts = np.round(uv[faces] * 16.0).astype(np.int32)
    for f in order:
        color = (bgr * shade[f]).tolist()
        cv2.fillConvexPoly(image, pts[f], color, cv2.LINE_8, 4)


def time_ms(fn, frames: int) -> np.ndarray:
    """Per-call wall time in ms of ``fn(image)`` on a fresh copy of a grey frame."""
    base = np.full((HEIGHT, WIDTH, 3), 60, dtype=np.uint8)
    out = np.empty(frames)
    for i in range(frames):
        image = base.copy()
        t0 = time.perf_counter()
        fn(image)
        out[i] = (time.perf_counter() - t0) * 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--save", type=Path, default=None, help="write one rendered PNG here")
    args = parser.parse_args()

    t0 = time.perf_counter()
    raster.warmup()
    warmup_s = time.perf_counter() - t0

    cases = {
        "blob_8cm": blob_mesh(0.08),
        "blob_15cm": blob_mesh(0.15),  # ~200x200 px, the size of an open hand
    }
    results = {}
    print(f"{'case':<12} {'method':<18} {'bbox px':>9} {'mean':>7} {'p50':>7} {'p95':>7}  (ms)")
    for name, (verts, faces) in cases.items():
        mask = raster.render_mesh(np.zeros((HEIGHT, WIDTH, 3), np.uint8), verts, faces, K,
                                  SKIN_RGB)
        ys, xs = np.nonzero(mask)
        bbox = f"{np.ptp(xs) + 1}x{np.ptp(ys) + 1}"
        ours = time_ms(lambda im, v=verts, f=faces: raster.render_mesh(im, v, f, K, SKIN_RGB),
                       args.frames)
        base = time_ms(lambda im, v=verts, f=faces: opencv_painter(im, v, f), args.frames)
        for method, t in (("numba_zbuffer", ours), ("cv2_fillConvexPoly", base)):
            print(f"{name:<12} {method:<18} {bbox:>9} {t.mean():7.2f} {np.percentile(t, 50):7.2f}"
                  f" {np.percentile(t, 95):7.2f}")
        results[name] = (ours, base)
    print(f"vertices={len(cases['blob_8cm'][0])} triangles={len(cases['blob_8cm'][1])} "
          f"frame={WIDTH}x{HEIGHT} frames={args.frames} warmup_s={warmup_s:.2f}")

    if args.save is not None:
        image = np.full((HEIGHT, WIDTH, 3), 60, dtype=np.uint8)
        raster.render_mesh(image, *cases["blob_15cm"], K, SKIN_RGB)
        cv2.imwrite(str(args.save), image)

    ours, base = results["blob_8cm"]
    ours_l, base_l = results["blob_15cm"]
    summary = {
        "raster_ms_p50": round(float(np.percentile(ours, 50)), 3),
        "raster_ms_p95": round(float(np.percentile(ours, 95)), 3),
        "opencv_fillpoly_ms_p50": round(float(np.percentile(base, 50)), 3),
        "speedup_vs_opencv": round(float(np.percentile(base, 50) / np.percentile(ours, 50)), 2),
        "raster_ms_p50_200px": round(float(np.percentile(ours_l, 50)), 3),
        "raster_ms_p95_200px": round(float(np.percentile(ours_l, 95)), 3),
        "opencv_fillpoly_ms_p50_200px": round(float(np.percentile(base_l, 50)), 3),
        "vertices": int(len(cases["blob_8cm"][0])),
        "triangles": int(len(cases["blob_8cm"][1])),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
