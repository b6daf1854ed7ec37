"""The AR overlay, the viewer's scene geometry and the contact sheet (no display needed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.io.contact_sheet import ContactSheet, ContactSheetConfig, pick_evenly
from realtime.render import raster
from realtime.render.overlay import (
    OverlayConfig,
    draw_hands,
    draw_hud,
    hand_hud_lines,
    uncertainty_colors,
)
from realtime.render.scene import (
    fit_intrinsics,
    frustum,
    ground_grid,
    image_plane_mesh,
    look_at_extrinsic,
)
from tests.render_fixtures import (
    HEIGHT,
    WIDTH,
    K,
    faces_for,
    iou,
    projected_silhouette,
    synthetic_hand,
)

OVERLAY_MIN_IOU = 0.9  # the required bar, vs an independent projection (0.98 here)
CORNER_TOL_PX = 1e-6
GOURAUD_MEAN_TOL_LEVELS = 6.0  # per-vertex vs per-pixel lighting, mean 8-bit difference


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    raster.warmup()


@pytest.mark.parametrize("side", ["right", "left"])
def test_overlay_covers_the_projected_silhouette(side):
    hand = synthetic_hand(side)
    blank = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    out = draw_hands(blank, [hand], faces_for(), K,
                     OverlayConfig(draw_skeleton=False, draw_labels=False))
    drawn = out.any(axis=2)
    reference = projected_silhouette(hand.vertices, faces_for()[side])
    assert reference.sum() > 5000  # a hand at 40 cm covers thousands of pixels
    assert iou(drawn, reference) >= OVERLAY_MIN_IOU
    assert not blank.any()  # the input frame is left untouched


def test_two_hands_occlude_each_other_by_depth():
    near = synthetic_hand("right", centre_m=(0.0, 0.0, 0.35), track_id=0)
    far = synthetic_hand("left", centre_m=(0.02, 0.0, 0.55), track_id=1)
    blank = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    cfg = OverlayConfig(draw_skeleton=False, draw_labels=False, mesh_alpha=1.0)
    both = draw_hands(blank, [far, near], faces_for(), K, cfg)
    alone = draw_hands(blank, [near], faces_for(), K, cfg)
    near_mask = projected_silhouette(near.vertices, faces_for()["right"])
    # Wherever the near hand is, the far one (drawn first) must not show through.
    inside = near_mask & alone.any(axis=2)
    assert np.abs(both[inside].astype(int) - alone[inside].astype(int)).mean() < 1.0


def test_overlay_draws_skeleton_labels_and_uncertainty():
    hand = synthetic_hand("right")
    blank = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    plain = draw_hands(blank, [hand], faces_for(), K,
                       OverlayConfig(draw_skeleton=False, draw_labels=False))
    heat = draw_hands(blank, [hand], faces_for(), K,
                      OverlayConfig(draw_skeleton=False, draw_labels=False, uncertainty=True))
    full = draw_hands(blank, [hand], faces_for(), K)
    assert np.abs(heat.astype(int) - plain.astype(int)).mean() > 1.0  # colours changed
    assert full.any(axis=2).sum() > plain.any(axis=2).sum()  # skeleton and label added
    wrist = np.round(hand.keypoints_2d[0]).astype(int)
    assert full[wrist[1], wrist[0]].any()


def test_uncertainty_colours_run_from_blue_to_red():
    colors = uncertainty_colors(np.array([0.0, 0.0075, 0.015, 0.5, np.nan]), std_max_mm=15.0)
    assert colors.shape == (5, 3)
    assert colors[0, 2] > colors[0, 0]  # sure: blue
    assert colors[2, 0] > colors[2, 2]  # at the top of the scale: red
    np.testing.assert_allclose(colors[3], colors[2])  # clipped beyond the scale
    np.testing.assert_allclose(colors[4], colors[1], atol=0.01)  # unknown: middle


def test_hud_lines_say_score_uncertainty_and_depth():
    hand = synthetic_hand("left", track_id=3)
    (line,) = hand_hud_lines([hand])
    assert "left #3" in line and "score 0.93" in line
    assert f"{np.mean(hand.vertex_std) * 1e3:4.1f} mm" in line
    assert f"{hand.joints[0, 2] * 100:3.0f} cm" in line
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    draw_hud(image, ["30.0 FPS", line])
    assert image[10:50, 10:200].any()


def test_overlay_config_rejects_bad_values():
    with pytest.raises(ValueError, match="mesh_alpha"):
        OverlayConfig(mesh_alpha=1.5)
    with pytest.raises(ValueError, match="std_max_mm"):
        OverlayConfig(std_max_mm=0.0)


# ---- scene geometry ---------------------------------------------------------------------


def test_frustum_corners_project_to_the_image_corners():
    points, lines = frustum(K, WIDTH, HEIGHT, 0.5)
    assert points.shape == (5, 3) and lines.shape == (8, 2)
    np.testing.assert_allclose(points[0], 0.0)
    uvw = points[1:] @ K.T
    uv = uvw[:, :2] / uvw[:, 2:3]
    expected = [[-0.5, -0.5], [WIDTH - 0.5, -0.5], [WIDTH - 0.5, HEIGHT - 0.5],
                [-0.5, HEIGHT - 0.5]]
    np.testing.assert_allclose(uv, expected, atol=CORNER_TOL_PX)
    np.testing.assert_allclose(points[1:, 2], 0.5)
    verts, tris, uvs = image_plane_mesh(K, WIDTH, HEIGHT, 0.5)
    np.testing.assert_allclose(verts, points[1:])
    assert tris.shape == (2, 3) and uvs.shape == (6, 2)
    normal = np.cross(verts[tris[0, 1]] - verts[tris[0, 0]], verts[tris[0, 2]] - verts[tris[0, 0]])
    assert normal[2] < 0  # counter-clockwise seen from the camera: faces it
    with pytest.raises(ValueError, match="depth_m"):
        frustum(K, WIDTH, HEIGHT, 0.0)


def test_look_at_puts_the_target_straight_ahead():
    eye, target = np.array([0.5, -0.4, -0.4]), np.array([0.0, 0.0, 0.45])
    ext = look_at_extrinsic(eye, target)
    np.testing.assert_allclose(np.linalg.det(ext[:3, :3]), 1.0)  # a rotation, no mirror
    np.testing.assert_allclose(ext[:3, :3] @ eye + ext[:3, 3], 0.0, atol=1e-12)
    ahead = ext[:3, :3] @ target + ext[:3, 3]
    np.testing.assert_allclose(ahead[:2], 0.0, atol=1e-12)
    assert ahead[2] > 0
    above = ext[:3, :3] @ (target + [0.0, -0.1, 0.0]) + ext[:3, 3]  # world up is -y
    assert above[1] < 0  # shows above the centre of the screen (image y down)
    np.testing.assert_allclose(look_at_extrinsic(np.zeros(3), [0, 0, 1]), np.eye(4),
                               atol=1e-12)


def test_fit_intrinsics_keeps_the_picture_centred():
    big = fit_intrinsics(K, (WIDTH, HEIGHT), (1280, 960))
    np.testing.assert_allclose(big[[0, 1], [0, 1]], 1200.0)
    np.testing.assert_allclose(big[:2, 2], [639.5, 479.5])
    wide = fit_intrinsics(K, (WIDTH, HEIGHT), (960, 480))  # pillar-boxed
    np.testing.assert_allclose(wide[:2, 2], [479.5, 239.5])


def test_ground_grid_lies_below_the_camera():
    points, lines = ground_grid(y_m=0.3, z_range_m=(0.0, 1.0), half_width_m=0.5, step_m=0.1)
    np.testing.assert_allclose(points[:, 1], 0.3)
    assert len(lines) == 11 + 11 and lines.max() < len(points)


def test_pick_evenly_spans_first_to_last():
    assert pick_evenly(5, 12) == [0, 1, 2, 3, 4]
    picks = pick_evenly(100, 12)
    assert len(picks) == 12 and picks[0] == 0 and picks[-1] == 99
    assert max(np.diff(picks)) - min(np.diff(picks)) <= 1


def test_contact_sheet_keeps_bounded_evenly_spaced_frames(tmp_path):
    sheet = ContactSheet(ContactSheetConfig(count=12, columns=4, thumb_width=80))
    for i in range(450):
        frame = np.full((120, 160, 3), i % 256, dtype=np.uint8)
        sheet.add(i, frame)
        assert len(sheet) < 24  # memory stays bounded
    kept = [index for index, _ in sheet._kept]
    assert kept[0] == 0 and kept[-1] >= 450 - 450 // 12
    image = sheet.image()
    assert image.shape == (3 * 60 + 4 * 4, 4 * 80 + 5 * 4, 3)
    assert sheet.save(tmp_path / "sheet.png")
    assert cv2.imread(str(tmp_path / "sheet.png")).shape == image.shape
    assert not ContactSheet().save(tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_vertex_lighting_matches_pixel_lighting():
    hand = synthetic_hand("right")
    frames, masks = [], []
    for per_vertex in (False, True):
        image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        masks.append(raster.render_mesh(image, hand.vertices, faces_for()["right"], K,
                                        (0.35, 0.7, 0.95), vertex_lighting=per_vertex))
        frames.append(image.astype(int))
    np.testing.assert_array_equal(masks[0], masks[1])  # same visibility
    diff = np.abs(frames[0] - frames[1])[masks[0]]
    assert diff.mean() < GOURAUD_MEAN_TOL_LEVELS


# ---- headless demo ------------------------------------------------------------------------


def test_headless_demo_writes_video_and_contact_sheet_and_says_why_no_viewer(
        tmp_path, monkeypatch, capsys):
    import json

    from realtime.cli.demo import main
    from tests.render_fixtures import write_gt_hands_file

    hands = tmp_path / "gt_hands.jsonl"
    write_gt_hands_file(hands, count=40)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "out"
    assert main(["--source", str(hands), "--fast", "--output", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if "viewer skipped" in line] == [
        "3D viewer skipped: no display (DISPLAY unset)"]
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] > 4 * 200  # 4 columns of thumbnails
    stats = json.loads((out / "stats.json").read_text())
    assert stats["outputs"]["contact_sheet"] == str(out / "contact_sheet.png")
    assert stats["frames"] == 40
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    ok, frame = cap.read()
    assert ok and frame.shape == (HEIGHT, WIDTH, 3)


def test_overlay_draws_the_fused_texture_colours():
    """A hand carrying ``vertex_colors`` (the fused texture) is drawn in those colours."""
    from dataclasses import replace

    hand = synthetic_hand("right")
    red = np.zeros((len(hand.vertices), 3))
    red[:, 0] = 1.0  # RGB
    blank = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    cfg = OverlayConfig(draw_skeleton=False, draw_labels=False, mesh_alpha=1.0)
    plain = draw_hands(blank, [hand], faces_for(), K, cfg)
    textured = draw_hands(blank, [replace(hand, vertex_colors=red)], faces_for(), K, cfg)
    mask = textured.any(axis=2)
    b, g, r = (textured[mask][:, i].astype(float).mean() for i in range(3))
    assert r > 4 * max(b, g, 1.0)  # red (BGR order in the frame)
    pb, _, pr = (plain[mask][:, i].astype(float).mean() for i in range(3))
    assert pb > pr  # the default right-hand tint is blue-ish: the colours did change
