"""Rendering speed: the AR overlay of two hands on 640x480, and the 3D viewer's update.

- overlay (ours): what the render thread does per frame (``realtime.render.overlay``): copy the
  frame, both meshes through the Numba z-buffer rasterizer (shared depth, per-vertex
  lighting, back faces culled, 65% opacity), skeletons, labels and the HUD (FPS/latency
  plus one line per hand with score and uncertainty). Variants: per-pixel lighting without
  culling (the overlay before this benchmark), the uncertainty heat map.
- baselines, same hands, same frames, in the same run: OpenCV filled triangles (painter's
  algorithm, far-to-near, flat Lambert, one ``fillConvexPoly`` per triangle, then the same
  blend, skeleton and HUD), and, with a display, Open3D's legacy ``Visualizer`` rendering
  the two meshes from the camera and its screen buffer captured and blended over the frame.
- viewer update (with a display; under Xvfb it is Mesa's software OpenGL): the real
  ``realtime.render.viewer.HandViewer`` taking two new hands and the frame (vertices and colours
  written in place, normals, ``update_geometry``, the image plane's texture) then
  ``poll_events`` + ``update_renderer``. Without a display it is skipped (null).

Hands and frames: the built-in clip's ground-truth meshes (frames 330-449, two hands at
36-65 cm) over the clip's own frames. Every timing is after a warm-up; mean, p50 and p95
over ``--frames`` frames; the CPU methods take turns frame by frame (load from other
processes falls on all alike), and the table also gives each one's CPU time (p50), which
such load inflates less than the wall time. Writes docs/render_latency.png. The last line
is one JSON object: ``overlay_ms`` (median ms per frame, target <= 4) and
``viewer_update_ms`` (median, or null without a display).

    .venv/bin/python -m benchmarks.render [--frames 300] [--no-plot]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import cv2
import numpy as np

from benchmarks.common import REPO, save_figure
from models.hand_model import flip_faces
from models.topology import SKELETON_EDGES
from realtime.io.sample import SAMPLE_GT, SAMPLE_VIDEO
from realtime.render import raster
from realtime.render.overlay import (
    HAND_COLORS,
    SKELETON_BGR,
    OverlayConfig,
    draw_hands,
    draw_hud,
    hand_color,
    hand_hud_lines,
)
from realtime.types import HandMesh

FIRST, LAST = 330, 450  # frames of the clip with both hands
HUD = ["29.8 FPS  latency p50 41 ms", "hands 240"]
PLOT = REPO / "docs" / "render_latency.png"


def load_scenes() -> tuple[np.ndarray, list[np.ndarray], list[list[HandMesh]], dict]:
    """K, the clip's frames and its ground-truth hands for frames FIRST..LAST."""
    with np.load(SAMPLE_GT) as npz:
        gt = {k: npz[k] for k in ("K", "present", "vertices", "keypoints", "keypoints_2d",
                                  "handedness", "faces")}
    faces = gt["faces"].astype(np.int64)
    faces_for = {"right": faces, "left": flip_faces(faces)}
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, FIRST)
    frames, scenes = [], []
    rng = np.random.default_rng(0)
    for f in range(FIRST, LAST):
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
        hands = []
        for s in range(2):
            if not gt["present"][f, s]:
                continue
            n = gt["vertices"].shape[2]
            hands.append(HandMesh(
                vertices=gt["vertices"][f, s].astype(np.float64),
                joints=gt["keypoints"][f, s].astype(np.float64),
                vertex_std=0.002 + 0.008 * rng.random(n), pose=np.zeros((20, 3)),
                shape=np.zeros(10), keypoints_2d=gt["keypoints_2d"][f, s].astype(np.float64),
                handedness=str(gt["handedness"][s]), score=0.97, track_id=s, timestamp=0.0,
                frame_index=f))
        scenes.append(hands)
    cap.release()
    return gt["K"], frames, scenes, faces_for


CPU_MS: dict[int, np.ndarray] = {}  # id(wall times) -> this thread's CPU ms of the same calls


def time_frames(fn, n: int, count: int, warmup: int = 20) -> np.ndarray:
    """Per-call wall ms of ``fn(i)`` for i over the scenes, after ``warmup`` untimed calls.

    The calls' CPU time (``time.thread_time``) is kept in ``CPU_MS``: on a shared machine
    the wall time also counts the moments another process had the core.
    """
    for i in range(warmup):
        fn(i % count)
    out, cpu = np.empty(n), np.empty(n)
    for i in range(n):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn(i % count)
        out[i] = (time.perf_counter() - t0) * 1e3
        cpu[i] = (time.thread_time() - c0) * 1e3
    CPU_MS[id(out)] = cpu
    return out


def time_interleaved(fns: dict, n: int, count: int, warmup: int = 20) -> dict:
    """Like :func:`time_frames` for several methods, taking turns frame by frame, so that
    load from other processes on a shared machine falls on all of them alike."""
    for i in range(warmup):
        for fn in fns.values():
            fn(i % count)
    out = {name: np.empty(n) for name in fns}
    cpu = {name: np.empty(n) for name in fns}
    for i in range(n):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            fn(i % count)
            out[name][i] = (time.perf_counter() - t0) * 1e3
            cpu[name][i] = (time.thread_time() - c0) * 1e3
    for name in fns:
        CPU_MS[id(out[name])] = cpu[name]
    return out


def ours(frame, hands, faces_for, K, config=OverlayConfig()):  # noqa: N803
    image = draw_hands(frame, hands, faces_for, K, config)
    draw_hud(image, HUD + hand_hud_lines(hands))
    return image


def opencv_overlay(frame, hands, faces_for, K, alpha=0.65):  # noqa: N803
    """Baseline: painter's algorithm with one fillConvexPoly per triangle, flat Lambert."""
    layer = frame.copy()
    light = np.array([-0.45, -0.6, -0.75])
    light /= np.linalg.norm(light)
    tris_all, cols_all, depth_all = [], [], []
    for hand in hands:
        v, f = hand.vertices, faces_for[hand.handedness]
        uv = v @ K.T
        uv = uv[:, :2] / uv[:, 2:3]
        tri = v[f]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        shade = 0.3 + 0.7 * np.abs(n @ light)
        bgr = np.array(hand_color(hand)[::-1]) * 255.0
        tris_all.append(np.round(uv[f] * 16.0).astype(np.int32))
        cols_all.append(shade[:, None] * bgr)
        depth_all.append(tri[:, :, 2].mean(axis=1))
    tris, cols, depth = (np.concatenate(a) for a in (tris_all, cols_all, depth_all))
    for t in np.argsort(-depth):
        cv2.fillConvexPoly(layer, tris[t], cols[t].tolist(), cv2.LINE_8, 4)
    image = cv2.addWeighted(frame, 1.0 - alpha, layer, alpha, 0.0)  # outside: unchanged
    for hand in hands:
        raster.draw_skeleton(image, hand.keypoints_2d, SKELETON_EDGES,
                             SKELETON_BGR[hand.handedness], 2)
    draw_hud(image, HUD + hand_hud_lines(hands))
    return image


class Open3DCapture:
    """Baseline: Open3D's legacy Visualizer renders the meshes from the camera; the screen
    buffer is read back and blended over the frame."""

    def __init__(self, K, size, faces_for):  # noqa: N803
        import open3d as o3d

        self.o3d = o3d
        self.vis = o3d.visualization.Visualizer()
        if not self.vis.create_window("render benchmark", size[0], size[1], visible=True):
            raise RuntimeError("Open3D could not open a window")
        self.vis.get_render_option().background_color = np.zeros(3)
        self.meshes = []
        for side in ("right", "left"):
            f = faces_for[side]
            m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.zeros((f.max() + 1, 3))),
                                          o3d.utility.Vector3iVector(f.astype(np.int32)))
            m.paint_uniform_color(HAND_COLORS[side])
            self.vis.add_geometry(m)
            self.meshes.append(m)
        params = o3d.camera.PinholeCameraParameters()
        params.intrinsic = o3d.camera.PinholeCameraIntrinsic(size[0], size[1], K[0, 0],
                                                             K[1, 1], K[0, 2], K[1, 2])
        params.extrinsic = np.eye(4)
        self.vis.get_view_control().convert_from_pinhole_camera_parameters(
            params, allow_arbitrary=True)

    def __call__(self, frame, hands, alpha=0.65):
        for mesh, hand in zip(self.meshes, hands):
            np.asarray(mesh.vertices)[:] = hand.vertices
            mesh.compute_vertex_normals()
            self.vis.update_geometry(mesh)
        self.vis.poll_events()
        self.vis.update_renderer()
        buf = np.asarray(self.vis.capture_screen_float_buffer(do_render=True))
        rgb = (buf * 255.0).astype(np.uint8)[:, :, ::-1]
        mask = rgb.any(axis=2)
        image = frame.copy()
        image[mask] = (alpha * rgb[mask] + (1.0 - alpha) * frame[mask]).astype(np.uint8)
        for hand in hands:
            raster.draw_skeleton(image, hand.keypoints_2d, SKELETON_EDGES,
                                 SKELETON_BGR[hand.handedness], 2)
        draw_hud(image, HUD + hand_hud_lines(hands))
        return image

    def close(self):
        self.vis.destroy_window()


def stats(t: np.ndarray | None) -> dict:
    if t is None:
        return {"mean": None, "p50": None, "p95": None}
    return {"mean": float(t.mean()), "p50": float(np.percentile(t, 50)),
            "p95": float(np.percentile(t, 95))}


def fmt(x: float | None) -> str:
    return f"{x:7.2f}" if x is not None else "      -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()

    K, frames, scenes, faces_for = load_scenes()
    count = len(scenes)
    raster.warmup()
    display = bool(os.environ.get("DISPLAY"))
    why_no_display = "no display (DISPLAY unset): run under Xvfb or a desktop"

    results: dict[str, np.ndarray | None] = time_interleaved({
        "ours (overlay default)": lambda i: ours(frames[i], scenes[i], faces_for, K),
        "ours, per-pixel light, no cull": lambda i: ours(
            frames[i], scenes[i], faces_for, K,
            OverlayConfig(vertex_lighting=False, cull_backfaces=False)),
        "ours, uncertainty heat map": lambda i: ours(frames[i], scenes[i], faces_for, K,
                                                     OverlayConfig(uncertainty=True)),
        "OpenCV filled triangles": lambda i: opencv_overlay(frames[i], scenes[i], faces_for, K),
    }, args.frames, count)
    results["Open3D Visualizer capture"] = None
    results["viewer update (HandViewer)"] = None
    if display:
        o3d_base = Open3DCapture(K, (frames[0].shape[1], frames[0].shape[0]), faces_for)
        try:
            n = min(args.frames, 100)  # ~20-40 ms each in software GL
            results["Open3D Visualizer capture"] = time_frames(
                lambda i: o3d_base(frames[i], scenes[i]), n, count, warmup=5)
        finally:
            o3d_base.close()
        from realtime.render.viewer import HandViewer, ViewerConfig

        viewer = HandViewer(ViewerConfig(window_name="viewer benchmark"), faces_for, K,
                            (frames[0].shape[1], frames[0].shape[0])).open()
        try:
            def update(i: int) -> None:
                viewer.show(scenes[i], frames[i])
                viewer.poll()

            results["viewer update (HandViewer)"] = time_frames(update, min(args.frames, 150),
                                                                count, warmup=5)
        finally:
            viewer.close()

    ours_t = results["ours (overlay default)"]
    print(f"AR overlay of two hands on {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"{args.frames} frames (ms per frame)")
    print(f"{'method':<30} {'mean':>7} {'p50':>7} {'p95':>7} {'cpu p50':>8} "
          f"{'ours/this (p50)':>16}")
    for name, t in results.items():
        s = stats(t)
        ratio = (f"{np.percentile(ours_t, 50) / s['p50']:16.2f}"
                 if s["p50"] and "viewer" not in name else f"{'':>16}")
        cpu = fmt(float(np.percentile(CPU_MS[id(t)], 50))) if t is not None else fmt(None)
        print(f"{name:<30} {fmt(s['mean'])} {fmt(s['p50'])} {fmt(s['p95'])} {cpu:>8} {ratio}")
    if not display:
        print(f"Open3D capture and viewer update skipped: {why_no_display}")
    else:
        print("Open3D rendered with", _gl_renderer())

    if not args.no_plot:
        plot(results)
    viewer_t = results["viewer update (HandViewer)"]
    print(json.dumps({
        "overlay_ms": round(float(np.percentile(ours_t, 50)), 3),
        "viewer_update_ms": (round(float(np.percentile(viewer_t, 50)), 3)
                             if viewer_t is not None else None),
    }))


def _gl_renderer() -> str:
    """Which OpenGL answers here (Mesa llvmpipe = software, under Xvfb)."""
    try:
        import subprocess

        out = subprocess.run(["glxinfo", "-B"], capture_output=True, text=True, timeout=10)
        for line in out.stdout.splitlines():
            if "renderer string" in line:
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "the display's OpenGL (glxinfo not installed to name it)"


def plot(results: dict[str, np.ndarray | None]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for name in ("ours (overlay default)", "ours, per-pixel light, no cull",
                 "OpenCV filled triangles"):
        t = results[name]
        axes[0].hist(t, bins=np.linspace(0, max(20.0, np.percentile(t, 99)), 80), alpha=0.6,
                     label=f"{name} (p50 {np.percentile(t, 50):.1f} ms)")
    axes[0].axvline(4.0, color="k", linestyle="--", linewidth=1, label="target 4 ms")
    axes[0].set_xlabel("ms per 640x480 frame, two hands")
    axes[0].set_ylabel("frames")
    axes[0].set_title("AR overlay (CPU)")
    axes[0].legend(fontsize=8)
    for name in ("viewer update (HandViewer)", "Open3D Visualizer capture"):
        t = results[name]
        if t is not None:
            axes[1].hist(t, bins=40, alpha=0.6,
                         label=f"{name} (p50 {np.percentile(t, 50):.1f} ms)")
    axes[1].set_xlabel("ms per update")
    axes[1].set_title("Open3D (here: software OpenGL under Xvfb)")
    if any(results[n] is not None for n in ("viewer update (HandViewer)",
                                            "Open3D Visualizer capture")):
        axes[1].legend(fontsize=8)
    else:
        axes[1].text(0.5, 0.5, "no display: skipped", ha="center", transform=axes[1].transAxes)
    fig.tight_layout()
    save_figure(fig, PLOT)


if __name__ == "__main__":
    main()
