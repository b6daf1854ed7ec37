"""Extrinsic calibration: where 2-4 cameras are, in one world frame (camera 0's).

A board seen at the same moment by two cameras gives their relative pose
(``x_j = R_j R_i^T (x_i - t_i) + t_j`` from the two board poses). Each pair's estimates over
all shared views are averaged (rotations by projecting their sum back onto SO(3)), and
pairs are chained to camera 0 along the most-observed path, so a camera that never shares a
view with camera 0 is still placed through a third one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from calibration.board import BoardSpec, BoardView
from calibration.calibrate import board_pose
from calibration.camera import Camera
from calibration.errors import CalibrationError

Pose = tuple[np.ndarray, np.ndarray]  # (R (3,3), t (3,)): x_cam = R x_world + t


def relative_pose(board_in_i: Pose, board_in_j: Pose) -> Pose:
    """Pose of camera i's frame in camera j's: ``x_j = R x_i + t``."""
    ri, ti = board_in_i
    rj, tj = board_in_j
    r = rj @ ri.T
    return r, tj - r @ ti


def average_poses(poses: list[Pose]) -> Pose:
    """Chordal mean of rotations (SVD projection of their sum) and median translation."""
    m = sum(r for r, _ in poses)
    u, _, vt = np.linalg.svd(m)
    r = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    return r, np.median(np.stack([t for _, t in poses]), axis=0)


def compose(a: Pose, b: Pose) -> Pose:
    """``a`` after ``b``: x -> R_a (R_b x + t_b) + t_a."""
    return a[0] @ b[0], a[0] @ b[1] + a[1]


def invert(p: Pose) -> Pose:
    return p[0].T, -p[0].T @ p[1]


@dataclass(frozen=True)
class ExtrinsicsResult:
    """Camera poses in the world (camera 0) frame, and how many shared views placed each
    pair."""

    poses: tuple[Pose, ...]
    pair_views: dict[tuple[int, int], int]
    pair_spread_mm: dict[tuple[int, int], float]  # translation spread of a pair's estimates


def calibrate_extrinsics(
    spec: BoardSpec, calibs: list[Camera],
    frames: list[list[BoardView | None]], min_shared: int = 2,
) -> ExtrinsicsResult:
    """``frames[k][c]``: the board view of camera ``c`` at moment ``k`` (None if unseen)."""
    n = len(calibs)
    if spec.kind != "charuco":
        raise CalibrationError("extrinsics need a ChArUco board: a plain chessboard's corner "
                               "order can flip between cameras (pass --kind charuco)")
    if not 2 <= n <= 8:
        raise CalibrationError(f"extrinsics need 2-8 cameras, got {n}")
    pair_est: dict[tuple[int, int], list[Pose]] = {}
    for k, views in enumerate(frames):
        if len(views) != n:
            raise CalibrationError(f"frame {k} has {len(views)} views for {n} cameras")
        poses = [board_pose(spec, v, c) if v is not None else None
                 for v, c in zip(views, calibs)]
        for i in range(n):
            for j in range(i + 1, n):
                if poses[i] is not None and poses[j] is not None:
                    pair_est.setdefault((i, j), []).append(relative_pose(poses[i], poses[j]))
    pairs = {p: average_poses(e) for p, e in pair_est.items() if len(e) >= min_shared}
    spread = {p: float(np.median(np.linalg.norm(
        np.stack([t for _, t in pair_est[p]]) - pairs[p][1], axis=1)) * 1000) for p in pairs}
    # Breadth-first from camera 0, preferring well-observed pairs.
    world: dict[int, Pose] = {0: (np.eye(3), np.zeros(3))}
    queue = deque([0])
    while queue:
        i = queue.popleft()
        nbrs = sorted(((len(pair_est[p]), p) for p in pairs if i in p), reverse=True)
        for _, (a, b) in nbrs:
            j = b if a == i else a
            if j in world:
                continue
            rel = pairs[(a, b)] if a == i else invert(pairs[(a, b)])  # x_j = rel(x_i)
            world[j] = compose(rel, world[i])
            queue.append(j)
    missing = [c for c in range(n) if c not in world]
    if missing:
        raise CalibrationError(
            f"camera(s) {missing} never saw the board together with a placed camera in at "
            f"least {min_shared} frames: show the board to them and a neighbour at once")
    return ExtrinsicsResult(tuple(world[c] for c in range(n)),
                            {p: len(e) for p, e in pair_est.items()}, spread)


def save_rig(path, calibs: list[Camera], poses: list[Pose]) -> None:
    """A rig file (JSON): each camera's calibration and its pose in the world frame."""
    import json
    from pathlib import Path

    cams = []
    for c, (r, t) in zip(calibs, poses):
        cams.append({**c.to_dict(), "R": np.asarray(r).tolist(),
                     "t": np.asarray(t).reshape(3).tolist()})
    Path(path).write_text(json.dumps({"kind": "handmesh.camera_rig", "world": "camera 0",
                                      "cameras": cams}, indent=2) + "\n")


def load_rig(path) -> tuple[list[Camera], list[Pose]]:
    """Read a rig file; errors name the camera and the field."""
    import json
    from pathlib import Path

    from calibration.camera_file import calibration_from_dict

    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"{p}: not a rig file ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
        raise CalibrationError(f"{p}: field 'cameras' is missing")
    calibs, poses = [], []
    for i, cam in enumerate(data["cameras"]):
        calibs.append(calibration_from_dict(cam, f"{p} camera {i}"))
        try:
            r = np.asarray(cam["R"], dtype=np.float64)
            t = np.asarray(cam["t"], dtype=np.float64).reshape(3)
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{p} camera {i}: field 'R' or 't' missing or bad") from exc
        if (r.shape != (3, 3) or not np.all(np.isfinite(r)) or not np.all(np.isfinite(t))
                or abs(np.linalg.det(r) - 1) > 1e-3):
            raise CalibrationError(f"{p} camera {i}: field 'R' must be a rotation matrix")
        poses.append((r, t))
    return calibs, poses
