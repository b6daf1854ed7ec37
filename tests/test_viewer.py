"""The Open3D 3D viewer in a real window (under Xvfb in CI: scripts/test.sh starts it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from realtime.render.viewer import HandViewer, ViewerConfig
from tests.render_fixtures import (
    HEIGHT,
    WIDTH,
    K,
    faces_for,
    iou,
    projected_silhouette,
    synthetic_hand,
    write_gt_hands_file,
)

REPO = Path(__file__).resolve().parent.parent
VIEWER_MIN_IOU = 0.9  # OpenGL's rasterization (pixel centres, edges) vs cv2.fillPoly (0.98 here)
CENTROID_TOL_PX = 2.0
CHANGED = 0.02  # a pixel differs from the empty scene by more than this (of 1.0)

pytestmark = [
    pytest.mark.display,
    pytest.mark.skipif(not os.environ.get("DISPLAY"),
                       reason="no X display (DISPLAY unset; scripts/test.sh starts Xvfb :99)"),
]


@pytest.fixture
def viewer(tmp_path):
    v = HandViewer(ViewerConfig(window_name="handmesh 3D test", width=WIDTH, height=HEIGHT,
                                show_video=False, screenshot_dir=tmp_path),
                   faces_for(), K, (WIDTH, HEIGHT)).open()
    yield v
    v.close()


def _frame(viewer: HandViewer, hands) -> np.ndarray:
    viewer.show(hands)
    viewer.poll()
    return viewer.capture()


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b).max(axis=2) > CHANGED


def assert_same_silhouette(drawn: np.ndarray, reference: np.ndarray) -> None:
    """The viewer's pixels cover the projected mesh (IoU) and sit where it does (centroid)."""
    assert iou(drawn, reference) >= VIEWER_MIN_IOU
    ys, xs = np.nonzero(drawn)
    ry, rx = np.nonzero(reference)
    assert abs(xs.mean() - rx.mean()) < CENTROID_TOL_PX
    assert abs(ys.mean() - ry.mean()) < CENTROID_TOL_PX


def test_viewer_draws_the_hand_where_the_projection_says(viewer):
    viewer.view_from_camera()
    empty = _frame(viewer, [])
    assert empty.shape == (HEIGHT, WIDTH, 3)
    hand = synthetic_hand("right")
    drawn = _changed(_frame(viewer, [hand]), empty)
    reference = projected_silhouette(hand.vertices, faces_for()["right"])
    assert_same_silhouette(drawn, reference)


def test_view_from_an_off_centre_camera(tmp_path):
    # a calibrated camera's principal point is rarely the image centre
    camera = K + np.array([[0.0, 0.0, -19.5], [0.0, 0.0, 12.5], [0.0, 0.0, 0.0]])
    v = HandViewer(ViewerConfig(window_name="handmesh 3D test", width=WIDTH, height=HEIGHT,
                                show_video=False), faces_for(), camera, (WIDTH, HEIGHT)).open()
    try:
        v.view_from_camera()
        empty = _frame(v, [])
        hand = synthetic_hand("right")
        drawn = _changed(_frame(v, [hand]), empty)
    finally:
        v.close()
    reference = projected_silhouette(hand.vertices, faces_for()["right"], camera=camera)
    assert_same_silhouette(drawn, reference)


def test_viewer_updates_in_place_and_hides_absent_hands(viewer):
    viewer.view_from_camera()
    empty = _frame(viewer, [])
    slots = [(s.mesh, s.skeleton, np.asarray(s.mesh.vertices).__array_interface__["data"][0])
             for s in viewer._slots]
    right, left = synthetic_hand("right", centre_m=(-0.08, 0.0, 0.45)), \
        synthetic_hand("left", centre_m=(0.09, 0.0, 0.45), track_id=1)
    two = _changed(_frame(viewer, [right, left]), empty)
    moved = synthetic_hand("right", centre_m=(-0.05, 0.03, 0.45))
    one = _changed(_frame(viewer, [moved]), empty)
    both = projected_silhouette(right.vertices, faces_for()["right"]) | \
        projected_silhouette(left.vertices, faces_for()["left"])
    assert iou(two, both) >= VIEWER_MIN_IOU
    # the left hand vanished, the right one moved
    assert iou(one, projected_silhouette(moved.vertices, faces_for()["right"])) >= VIEWER_MIN_IOU
    assert not _changed(_frame(viewer, []), empty).any()  # gone when absent
    # the same Open3D objects and vertex buffers all along: updated, never re-created
    assert [(s.mesh, s.skeleton, np.asarray(s.mesh.vertices).__array_interface__["data"][0])
            for s in viewer._slots] == slots


def test_viewer_modes_change_the_picture(viewer):
    viewer.view_from_camera()
    empty = _frame(viewer, [])
    hand = synthetic_hand("right")
    shaded = _frame(viewer, [hand])
    viewer.uncertainty = True
    heat = _frame(viewer, [hand])
    viewer.uncertainty, viewer.show_mesh = False, False
    skeleton_only = _changed(_frame(viewer, [hand]), empty)
    mask = _changed(shaded, empty)
    assert np.abs(heat - shaded)[mask].mean() > 0.05
    assert 0 < skeleton_only.sum() < 0.5 * mask.sum()


def test_default_view_shows_hands_and_camera(viewer):
    empty = _frame(viewer, [])
    assert (np.abs(empty - empty[0, 0]).max(axis=2) > CHANGED).sum() > 1000  # grid, frustum
    assert _changed(_frame(viewer, [synthetic_hand("right")]), empty).sum() > 500


def _xdotool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=20)


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool not installed")
def test_keys_toggle_the_mesh_and_take_screenshots(viewer, tmp_path):
    viewer.view_from_camera()
    empty = _frame(viewer, [])
    hand = synthetic_hand("right")
    with_mesh = _changed(_frame(viewer, [hand]), empty).sum()
    found = _xdotool("search", "--name", "^handmesh 3D test$")
    assert found.returncode == 0, found.stderr
    window = found.stdout.split()[0]
    assert _xdotool("windowfocus", "--sync", window, "key", "m", "c", "p").returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not viewer.paused:
        viewer.poll()
        time.sleep(0.02)
    assert viewer.show_mesh is False and viewer.paused is True
    skeleton_only = _changed(viewer.capture(), empty)
    assert skeleton_only.sum() < 0.5 * with_mesh
    assert (tmp_path / "viewer_000.png").is_file()
    # paused: new hands are ignored, the picture stays
    moved = synthetic_hand("right", centre_m=(-0.1, 0.05, 0.5))
    assert (_changed(_frame(viewer, [moved]), empty) == skeleton_only).all()


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool not installed")
def test_closing_the_viewer_ends_the_demo_cleanly(tmp_path):
    from tests.test_shutdown import close_demo_window, send_wm_delete

    hands = tmp_path / "gt_hands.jsonl"
    write_gt_hands_file(hands)
    code, err = close_demo_window(["--source", str(hands), "--loop", "--output",
                                   str(tmp_path / "out")], "handmesh 3D", send_wm_delete,
                                  settle_s=1.0)
    assert code == 0, err
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["stopped_by"] == "viewer closed"
    assert stats["frames"] > 0


def test_texture_key_colours_the_mesh_from_the_video(tmp_path):
    """T on: a hand without its own texture takes the frame's colours through
    ``realtime.mesh.texture`` (red frame -> red seen vertices); one that carries
    ``vertex_colors`` (the demo's ``--texture``) is drawn with those."""
    from dataclasses import replace

    v = HandViewer(ViewerConfig(window_name="handmesh 3D test", width=WIDTH, height=HEIGHT,
                                show_video=False, texture=True), faces_for(), K,
                   (WIDTH, HEIGHT)).open()
    try:
        red = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        red[..., 2] = 255  # BGR
        hand = synthetic_hand("right")
        v.show([hand], red)
        v.poll()
        colors = np.asarray(v._slots[0].c)
        assert (colors[:, 0] > 0.9).mean() > 0.3  # the visible side took the red
        assert (colors[:, 1:] < 0.1).all(axis=1).mean() > 0.3
        green = np.zeros((len(hand.vertices), 3))
        green[:, 1] = 1.0
        v.show([replace(hand, vertex_colors=green)], red)
        v.poll()
        np.testing.assert_allclose(np.asarray(v._slots[0].c), green)
    finally:
        v.close()
