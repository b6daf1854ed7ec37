"""Photos: one overlay per photo at its own size, a photo's hands independent of the others,
a video that never drops a frame of another size, and a HUD sized to the image."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.cli.demo import main
from realtime.io.contact_sheet import ContactSheet
from realtime.io.hands_file import read_hands
from realtime.io.letterbox import letterbox
from realtime.io.outputs import OutputSet, partial_path
from realtime.io.photo_overlays import PhotoOverlays, overlay_names
from realtime.io.sample import SAMPLE_VIDEO
from realtime.render.overlay import OverlayConfig, draw_hands, draw_hud, ui_scale
from realtime.render.overlay_sink import OverlaySink
from realtime.types import Frame, Packet
from tests.render_fixtures import HEIGHT, WIDTH, K, faces_for, synthetic_hand

JOINT_TOL_M = 1e-6  # same photo, same models: the same hands to float precision
HUD_FRACTION_RATIO_TOL = 1.35  # covered share on a 224-px vs a 1920-px image
# skeleton lines: whole pixels of width, plus an anti-aliased edge of fixed size, weigh
# more on a small image (unscaled, a 4x image gave a quarter of the share)
SKELETON_FRACTION_RATIO_TOL = 1.5


def sample_frame(index: int) -> np.ndarray:
    """Frame ``index`` of the built-in clip (real rendered hands; see its README)."""
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    cap.release()
    assert ok, f"frame {index} of {SAMPLE_VIDEO}"
    return image


def write_photo(path: Path, frame_index: int, size: tuple[int, int]) -> Path:
    image = cv2.resize(sample_frame(frame_index), size, interpolation=cv2.INTER_AREA)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Four photos of three sizes, two sharing a stem (a.jpg, a.png)."""
    folder = tmp_path_factory.mktemp("photos")
    write_photo(folder / "a.jpg", 240, (320, 240))
    write_photo(folder / "a.png", 300, (640, 480))
    write_photo(folder / "hand_big.png", 330, (1280, 960))
    write_photo(folder / "small.png", 360, (224, 168))
    return folder


@pytest.fixture(scope="module")
def photo_run(photos, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("photo_run")
    (out / "overlay.mp4").write_bytes(b"a previous run's video")  # not this run's: removed
    assert main(["--source", str(photos), "--output", str(out), "--headless"]) == 0
    return out, json.loads((out / "stats.json").read_text())


def test_a_folder_of_photos_gives_one_overlay_per_photo_at_its_own_size(photos, photo_run):
    out, stats = photo_run
    expected = {"a.jpg.png": "a.jpg", "a.png.png": "a.png", "hand_big.png": "hand_big.png",
                "small.png": "small.png"}
    assert sorted(p.name for p in (out / "overlays").iterdir()) == sorted(expected)
    for name, source in expected.items():
        drawn = cv2.imread(str(out / "overlays" / name))
        photo = cv2.imread(str(photos / source))
        assert drawn.shape == photo.shape
        assert np.abs(drawn.astype(int) - photo.astype(int)).mean() > 1.0  # hands drawn on it
    assert stats["overlay_files"] == 4
    assert stats["outputs"]["overlays"] == str(out / "overlays")
    assert stats["outputs"]["video"] is None and not (out / "overlay.mp4").exists()
    assert (out / "contact_sheet.png").is_file()
    assert stats["frames"] == 4 and stats["frames_with_hands"] == 4
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial left


def test_overlay_names_are_unique_for_clashing_stems():
    files = [Path("x/a.jpg"), Path("x/a.png"), Path("x/A.jpg.png"), Path("x/b.jpeg")]
    names = overlay_names(files)
    assert names[Path("x/b.jpeg")] == "b.png"
    assert len({n.lower() for n in names.values()}) == len(files)


def test_a_photo_gives_the_same_hands_alone_or_after_others(photos, photo_run, tmp_path):
    """Photos are unrelated: no tracking or smoothing carries from one to the next."""
    out, _ = photo_run
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "small.png").write_bytes((photos / "small.png").read_bytes())
    assert main(["--source", str(alone / "small.png"), "--output", str(tmp_path / "out"),
                 "--headless"]) == 0
    in_folder = [r for r in read_hands(out / "hands.jsonl") if r["frame_index"] == 3]
    by_itself = list(read_hands(tmp_path / "out" / "hands.jsonl"))
    assert len(by_itself) == len(in_folder) >= 1
    key = lambda r: r["handedness"]
    for a, b in zip(sorted(in_folder, key=key), sorted(by_itself, key=key), strict=True):
        assert a["handedness"] == b["handedness"]
        np.testing.assert_allclose(a["joints"], b["joints"], atol=JOINT_TOL_M)
        np.testing.assert_allclose(a["keypoints_2d"], b["keypoints_2d"], atol=1e-3)
    assert (tmp_path / "out" / "overlays" / "small.png").is_file()


def test_a_failed_run_keeps_the_previous_overlays_and_a_commit_replaces_them(tmp_path):
    paths = {"overlays": tmp_path / "overlays", "stats": tmp_path / "stats.json"}
    first = OutputSet(paths)
    PhotoOverlays(first.partial("overlays"), lambda i: f"old{i}.png").write(
        0, np.full((40, 40, 3), 9, np.uint8))
    first.partial("stats").write_text("{}")
    first.commit(["overlays", "stats"])
    assert [p.name for p in (tmp_path / "overlays").iterdir()] == ["old0.png"]

    failed = OutputSet(paths)
    PhotoOverlays(failed.partial("overlays"), lambda i: f"new{i}.png").write(
        0, np.zeros((40, 40, 3), np.uint8))
    failed.discard()
    assert [p.name for p in (tmp_path / "overlays").iterdir()] == ["old0.png"]
    assert not partial_path(paths["overlays"]).exists()

    stale = partial_path(paths["overlays"])  # a killed run's leftovers are not carried over
    stale.mkdir()
    (stale / "killed.png").write_bytes(b"x")
    second = OutputSet(paths)
    writer = PhotoOverlays(second.partial("overlays"), lambda i: f"new{i}.png")
    for i in range(2):
        writer.write(i, np.zeros((40, 40, 3), np.uint8))
    second.partial("stats").write_text("{}")
    second.commit(["overlays", "stats"])
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == ["new0.png", "new1.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlays", "stats.json"]


def test_the_video_letterboxes_frames_of_another_size_instead_of_dropping_them(tmp_path):
    video = tmp_path / "overlay.mp4"
    sink = OverlaySink({}, video_path=video, fps=10.0)
    sizes = [(640, 480)] * 3 + [(480, 640)] * 2 + [(320, 240)] + [(1280, 480)] * 2
    for i, (w, h) in enumerate(sizes):
        image = cv2.resize(sample_frame(60 + i), (w, h))
        sink.write(Packet(Frame(image=image, index=i, timestamp=i / 10.0), 0.0))
    sink.close()
    assert sink.frames_written == len(sizes)
    assert sink.frames_fitted == 5
    cap = cv2.VideoCapture(str(video))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    assert len(frames) == len(sizes)
    assert all(f.shape == (480, 640, 3) for f in frames)
    portrait = frames[3]  # 480x640 fitted into 640x480: 360 px wide, black bars each side
    assert portrait[:, :120].mean() < 8 and portrait[:, 520:].mean() < 8
    assert portrait[:, 200:440].mean() > 30
    wide = frames[6]  # 1280x480 into 640x480: 240 px high, black above and below
    assert wide[:110].mean() < 8 and wide[370:].mean() < 8 and wide[140:340].mean() > 30


def test_letterbox_keeps_the_aspect():
    image = np.full((100, 400, 3), 200, np.uint8)
    boxed = letterbox(image, (200, 200))
    assert boxed.shape == (200, 200, 3)
    rows = np.flatnonzero(boxed[:, 100, 0] > 0)
    assert (rows[0], rows[-1]) == (75, 124)  # 200x50 centred


def _hud_fraction(side: int) -> float:
    image = np.full((side, side, 3), 200, np.uint8)
    draw_hud(image, ["12.3 FPS (file, every frame)", "hands 2",
                     "right #0  score 0.98  +- 4.1 mm   45 cm"])
    return float((image != 200).any(axis=2).mean())


def test_the_hud_covers_a_like_share_of_small_and_large_images():
    small, large = _hud_fraction(224), _hud_fraction(1920)
    assert 0.02 < small < 0.5 and 0.02 < large < 0.5
    assert max(small, large) / min(small, large) < HUD_FRACTION_RATIO_TOL


def test_ui_scale_follows_the_shorter_side_within_bounds():
    assert ui_scale((480, 640, 3)) == pytest.approx(1.0)
    assert ui_scale((1080, 1920, 3)) == pytest.approx(2.25)
    assert ui_scale((64, 64, 3)) == pytest.approx(0.4)  # legible floor
    assert ui_scale((8000, 8000, 3)) == pytest.approx(4.0)


def _skeleton_and_label_fraction(scale: float) -> float:
    """The share of the image the skeleton and label cover: the same view of a hand on an
    image ``scale`` times the 640x480 reference."""
    hand = synthetic_hand("right")
    hand = replace(hand, keypoints_2d=hand.keypoints_2d * scale)
    h, w = round(HEIGHT * scale), round(WIDTH * scale)
    image = np.zeros((h, w, 3), np.uint8)
    out = draw_hands(image, [hand], faces_for(), K, OverlayConfig(draw_mesh=False))
    return float((out.max(axis=2) > 127).mean())  # half-covered edge pixels or more


def test_skeleton_and_labels_scale_with_the_image():
    small, reference, large = (_skeleton_and_label_fraction(s) for s in (224 / 480, 1, 4))
    for other in (small, large):
        assert max(other, reference) / min(other, reference) < SKELETON_FRACTION_RATIO_TOL


def test_the_contact_sheet_fits_photos_of_another_shape_without_stretching():
    sheet = ContactSheet()
    landscape = np.full((480, 640, 3), 200, np.uint8)
    portrait = np.full((640, 480, 3), 200, np.uint8)
    sheet.add(0, landscape)
    sheet.add(1, portrait)
    grid = sheet.image()
    tw, th = 240, 180  # the first photo's tile
    tile = grid[4:4 + th, 8 + tw:8 + 2 * tw]  # the portrait's tile, right of the first
    bright = np.flatnonzero(tile[th // 2, :, 1] > 100)
    assert 130 <= len(bright) <= 137  # 135 px wide (180 * 3/4), centred: not stretched to 240
    assert abs((bright[0] + bright[-1]) / 2 - tw / 2) < 3
