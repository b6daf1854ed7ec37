"""Geometry of the 3D viewer's scene, as pure NumPy functions (no Open3D, no window).

Everything is in the camera frame (OpenCV axes: x right, y down, z forward; meters), so
hands from the pipeline go into the scene unchanged and a view from the origin with the
camera's intrinsics sees exactly what the camera saw.
"""

from __future__ import annotations

import numpy as np

from models.topology import SKELETON_EDGES

SKELETON_LINES = np.asarray(SKELETON_EDGES, dtype=np.int32)  # (E,2) into the 21 joints


def frustum(K: np.ndarray, width: int, height: int,  # noqa: N803
            depth_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The camera's viewing pyramid up to its image plane at ``depth_m``.

    Returns points (5,3) (the centre, then the image corners top-left, top-right,
    bottom-right, bottom-left at ``depth_m``) and lines (8,2): four rays and the plane's
    rectangle. Corners are the outer pixel edges (-0.5 and size - 0.5).
    """
    corners = image_plane_corners(K, width, height, depth_m)
    points = np.vstack([np.zeros((1, 3)), corners])
    lines = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3], [3, 4], [4, 1]],
                     dtype=np.int32)
    return points, lines


def image_plane_corners(K: np.ndarray, width: int, height: int,  # noqa: N803
                        depth_m: float) -> np.ndarray:
    """(4,3) corners of the image at ``depth_m``: top-left, top-right, bottom-right,
    bottom-left (the rays through the outer pixel edges)."""
    if not depth_m > 0.0:
        raise ValueError(f"depth_m must be > 0, got {depth_m}")
    uv = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5],
                   [-0.5, height - 0.5]])
    rays = np.linalg.solve(np.asarray(K, dtype=np.float64),
                           np.vstack([uv.T, np.ones(4)])).T
    return rays / rays[:, 2:3] * depth_m


def image_plane_mesh(K: np.ndarray, width: int, height: int,  # noqa: N803
                     depth_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A quad showing the video frame at ``depth_m``: vertices (4,3), triangles (2,3)
    facing the camera, and per-corner UVs (6,2) in Open3D's layout (one per triangle
    corner; v = 0 at the image's top row)."""
    verts = image_plane_corners(K, width, height, depth_m)
    tris = np.array([[0, 2, 1], [0, 3, 2]], dtype=np.int32)  # normal -z: toward the camera
    corner_uv = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    return verts, tris, corner_uv[tris.reshape(-1)]


def ground_grid(y_m: float = 0.25, z_range_m: tuple[float, float] = (0.0, 1.0),
                half_width_m: float = 0.5, step_m: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A floor of lines at height ``y_m`` below the camera (y points down): points (P,3),
    lines (L,2)."""
    if not step_m > 0.0:
        raise ValueError(f"step_m must be > 0, got {step_m}")
    xs = np.arange(-half_width_m, half_width_m + 1e-9, step_m)
    zs = np.arange(z_range_m[0], z_range_m[1] + 1e-9, step_m)
    pts, lines = [], []
    for x in xs:
        lines.append([len(pts), len(pts) + 1])
        pts += [[x, y_m, zs[0]], [x, y_m, zs[-1]]]
    for z in zs:
        lines.append([len(pts), len(pts) + 1])
        pts += [[xs[0], y_m, z], [xs[-1], y_m, z]]
    return np.asarray(pts, dtype=np.float64), np.asarray(lines, dtype=np.int32)


def look_at_extrinsic(eye: np.ndarray, target: np.ndarray,
                      up: np.ndarray = np.array([0.0, -1.0, 0.0])) -> np.ndarray:
    """World-to-camera (4,4) for an OpenCV-style camera (z forward, y down) at ``eye``
    looking at ``target`` with ``up`` pointing up on screen."""
    eye, target = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(-np.asarray(up, dtype=np.float64), z)  # screen right (y down = -up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("up is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])  # rows: camera axes in world coordinates
    ext = np.eye(4)
    ext[:3, :3] = rot
    ext[:3, 3] = -rot @ eye
    return ext


def fit_intrinsics(K: np.ndarray, image_size: tuple[int, int],  # noqa: N803
                   window_size: tuple[int, int]) -> np.ndarray:
    """K of the camera scaled (same aspect, centred) into a window of another size, so a
    view from the camera fills the window the way the frame would."""
    (iw, ih), (ww, wh) = image_size, window_size
    s = min(ww / iw, wh / ih)
    out = np.array(K, dtype=np.float64, copy=True)
    out[0, 0] *= s
    out[1, 1] *= s
    out[0, 1] *= s
    out[0, 2] = (K[0, 2] + 0.5) * s - 0.5 + (ww - iw * s) / 2.0
    out[1, 2] = (K[1, 2] + 0.5) * s - 0.5 + (wh - ih * s) / 2.0
    return out
