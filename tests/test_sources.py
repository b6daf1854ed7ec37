"""Frame sources driven by real files written in tmp_path (VideoWriter mp4v/MJPG, imwrite)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.errors import SourceError
from realtime.io.sources import (
    CameraSource,
    ImageFolderSource,
    Source,
    SourceConfig,
    VideoSource,
    camera_available,
    capture_requests,
    fps_shortfall,
    open_source,
)

WIDTH, HEIGHT = 64, 48
N_FRAMES = 10
VIDEO_FPS = 25.0
COLOUR_STEP = 25
"""Frame i is filled with blue = i * COLOUR_STEP, so the index survives lossy coding."""
CODEC_TOL = 8.0
"""Max error of the mean pixel value after mp4v/MJPG coding of a flat frame (grey levels)."""


def _flat(index: int) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), (index * COLOUR_STEP, 100, 200), np.uint8)


def _half_white(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Left half white, right half black: mirroring is visible at a glance."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = 255
    return image


def _write_video(path: Path, frames: list[np.ndarray], fourcc: str = "mp4v",
                 fps: float = VIDEO_FPS) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc} videos"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return _write_video(tmp_path / "clip.mp4", [_flat(i) for i in range(N_FRAMES)])


# -- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"width": 0}, "width"), ({"height": -1}, "height"), ({"width": 1.5}, "width"),
     ({"fps": 0.0}, "fps"), ({"fps": float("nan")}, "fps"), ({"spec": " "}, "spec")],
)
def test_config_rejects_bad_values_naming_the_field(kwargs: dict, field: str) -> None:
    args = {"spec": "0", **kwargs}
    with pytest.raises(ValueError, match=field):
        SourceConfig(**args)


def test_config_accepts_requests() -> None:
    cfg = SourceConfig("0", width=640, height=480, fps=30, mirror=True)
    assert (cfg.width, cfg.height, cfg.fps, cfg.mirror) == (640, 480, 30, True)


# -- factory --------------------------------------------------------------------------------


def test_open_source_picks_the_backend(tmp_path: Path, video: Path) -> None:
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), _flat(1))
    assert isinstance(open_source(SourceConfig("0")), CameraSource)
    assert isinstance(open_source(SourceConfig("/dev/video0")), CameraSource)
    assert isinstance(open_source(SourceConfig(str(video))), VideoSource)
    assert isinstance(open_source(SourceConfig(str(tmp_path))), ImageFolderSource)
    assert isinstance(open_source(SourceConfig(str(image))), ImageFolderSource)


def test_open_source_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match="no such file or folder") as info:
        open_source(SourceConfig(str(missing)))
    assert str(missing) in str(info.value)


# -- video ----------------------------------------------------------------------------------


def test_video_frames_count_size_fps_timestamps_and_pixels(video: Path) -> None:
    with open_source(SourceConfig(str(video))) as source:
        assert not source.is_live
        assert source.fps == pytest.approx(VIDEO_FPS)
        assert source.size == (WIDTH, HEIGHT)
        assert source.frame_count == N_FRAMES
        frames = list(source)
    assert len(frames) == N_FRAMES
    for i, frame in enumerate(frames):
        assert frame.index == i
        assert frame.timestamp == pytest.approx(i / VIDEO_FPS)
        assert frame.source == "clip.mp4"
        assert frame.image.shape == (HEIGHT, WIDTH, 3) and frame.image.dtype == np.uint8
        assert frame.size == (WIDTH, HEIGHT)
        mean_bgr = frame.image.reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean_bgr, _flat(i)[0, 0], atol=CODEC_TOL)
        assert round(mean_bgr[0] / COLOUR_STEP) == i


def test_video_mirror_flips(tmp_path: Path) -> None:
    path = _write_video(tmp_path / "half.mp4", [_half_white()] * 3)
    with open_source(SourceConfig(str(path))) as plain:
        image = plain.read().image
    with open_source(SourceConfig(str(path), mirror=True)) as mirrored:
        flipped = mirrored.read().image
    assert image[:, : WIDTH // 4].mean() > 200 and image[:, -WIDTH // 4:].mean() < 50
    assert flipped[:, : WIDTH // 4].mean() < 50 and flipped[:, -WIDTH // 4:].mean() > 200
    np.testing.assert_array_equal(flipped, image[:, ::-1])


def test_video_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.mp4"
    with pytest.raises(SourceError, match="video file not found"):
        VideoSource(SourceConfig(str(path))).open()


def test_video_of_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    with pytest.raises(SourceError, match="cannot read video .*not a video OpenCV can decode"):
        open_source(SourceConfig(str(path))).open()


def test_empty_video_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(SourceError, match="cannot read video"):
        open_source(SourceConfig(str(path))).open()


def test_truncated_mp4_is_unreadable(video: Path, tmp_path: Path) -> None:
    """mp4v puts its index (moov) at the end: a cut file has no readable frame."""
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(SourceError, match="cannot read video"):
        open_source(SourceConfig(str(cut))).open()


def test_truncated_avi_keeps_frames_read_so_far(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A read error in mid-file ends the stream with a warning naming the frame index."""
    full = _write_video(tmp_path / "full.avi", [_flat(i) for i in range(N_FRAMES)], "MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.8)])
    try:
        with caplog.at_level(logging.WARNING, logger="realtime.io.sources"):
            with open_source(SourceConfig(str(cut))) as source:
                frames = list(source)
                assert source.read() is None
    except SourceError as exc:  # some FFmpeg builds reject the cut header outright
        assert "cannot read video" in str(exc)
        return
    assert 0 < len(frames) < N_FRAMES
    for i, frame in enumerate(frames):  # the frames before the cut are intact
        assert round(frame.image[..., 0].mean() / COLOUR_STEP) == i
    assert f"frame {len(frames)}" in caplog.text


# -- image folder ---------------------------------------------------------------------------


def test_folder_natural_order_and_timestamps(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    order = [1, 2, 3, 9, 10]  # lexical order would give 1, 10, 2, 3, 9
    for value in order:
        cv2.imwrite(str(folder / f"img{value}.png"), _flat(value))
    (folder / "notes.txt").write_text("not an image")
    with open_source(SourceConfig(str(folder))) as source:
        assert source.fps == 30.0
        assert source.frame_count == len(order)
        assert source.size == (WIDTH, HEIGHT)
        frames = list(source)
    assert [int(f.image[0, 0, 0]) // COLOUR_STEP for f in frames] == order
    assert [f.index for f in frames] == list(range(len(order)))
    assert [f.timestamp for f in frames] == pytest.approx([i / 30.0 for i in range(len(order))])


def test_folder_fps_from_config_and_mirror(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), _half_white())
    with open_source(SourceConfig(str(tmp_path), fps=10.0, mirror=True)) as source:
        frames = list(source)
    assert source.fps == 10.0
    np.testing.assert_array_equal(frames[0].image, _half_white()[:, ::-1])


def test_single_image(tmp_path: Path) -> None:
    path = tmp_path / "hand.jpg"
    cv2.imwrite(str(path), _flat(3))
    with open_source(SourceConfig(str(path))) as source:
        assert source.frame_count == 1
        assert source.name == "hand.jpg"
        frames = list(source)
        assert source.read() is None
    assert len(frames) == 1
    assert frames[0].image.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_allclose(frames[0].image.reshape(-1, 3).mean(0), _flat(3)[0, 0],
                               atol=CODEC_TOL)


def test_gray_and_bgra_images_become_bgr(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "1.png"), np.full((HEIGHT, WIDTH), 77, np.uint8))
    bgra = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 200, 255
    cv2.imwrite(str(tmp_path / "2.png"), bgra)
    with open_source(SourceConfig(str(tmp_path))) as source:
        gray, colour = list(source)
    for frame in (gray, colour):
        assert frame.image.shape == (HEIGHT, WIDTH, 3) and frame.image.dtype == np.uint8
    assert (gray.image == 77).all()
    assert tuple(colour.image[0, 0]) == (0, 0, 200)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(SourceError, match=r"no images in folder .*\.jpg, .*\.png"):
        open_source(SourceConfig(str(tmp_path))).open()


def test_unreadable_image_in_a_folder_is_skipped_and_named(tmp_path: Path, caplog) -> None:
    """One bad file among good images costs that file only (it used to end the run)."""
    cv2.imwrite(str(tmp_path / "a1.png"), _flat(1))
    bad = tmp_path / "a2.jpg"
    bad.write_text("this is text, not a JPEG")
    cv2.imwrite(str(tmp_path / "a3.png"), _flat(3))
    with caplog.at_level("WARNING", logger="realtime.io.sources"), \
            open_source(SourceConfig(str(tmp_path))) as source:
        frames = list(source)
    assert [f.index for f in frames] == [0, 1]
    assert np.array_equal(frames[1].image, _flat(3))
    assert any("a2.jpg is not a readable image" in r.getMessage() for r in caplog.records)


def test_image_size_limits(tmp_path: Path) -> None:
    """Too small refused; too large refused from the header (never decoded), except JPEGs,
    which are decoded at 1/2, 1/4 or 1/8 scale; the longer side ends at most MAX_IMAGE_SIDE."""
    from realtime.io.sources import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, load_image

    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((MIN_IMAGE_SIDE - 1, 64, 3), np.uint8))
    with pytest.raises(SourceError, match="too small"):
        load_image(small)
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((MAX_IMAGE_SIDE + 1, MAX_IMAGE_SIDE + 1), np.uint8))
    with pytest.raises(SourceError, match="over the limit"):
        load_image(big)
    wide = tmp_path / "wide.jpg"
    cv2.imwrite(str(wide), np.full((1000, 3 * MAX_IMAGE_SIDE), 50, np.uint8))
    image = load_image(wide)
    assert MAX_IMAGE_SIDE / 2 <= image.shape[1] <= MAX_IMAGE_SIDE and image.shape[2] == 3
    assert abs(image.shape[0] / image.shape[1] - 1000 / (3 * MAX_IMAGE_SIDE)) < 0.01


def test_single_unreadable_image(tmp_path: Path) -> None:
    bad = tmp_path / "fake.png"
    bad.write_text("text")
    with pytest.raises(SourceError, match="fake.png is not a readable image"):
        open_source(SourceConfig(str(bad))).open()


# -- camera (this machine has none: only the failure paths) ---------------------------------


def test_missing_camera_raises_one_clear_line() -> None:
    source = open_source(SourceConfig("7"))
    assert source.is_live and source.frame_count is None and source.name == "camera 7"
    with pytest.raises(SourceError, match="camera 7 could not be opened") as info:
        source.open()
    assert "--source" in str(info.value) and "\n" not in str(info.value)
    assert not source.is_open
    source.close()  # closing a never-opened source is fine


def test_camera_available_is_false_without_camera() -> None:
    assert camera_available(7) is False


# -- lifecycle ------------------------------------------------------------------------------


def test_double_open_raises(video: Path) -> None:
    source = open_source(SourceConfig(str(video)))
    source.open()
    try:
        with pytest.raises(SourceError, match="already open"):
            source.open()
    finally:
        source.close()


def test_read_before_open_raises(video: Path) -> None:
    source = open_source(SourceConfig(str(video)))
    with pytest.raises(SourceError, match="not open"):
        source.read()
    with pytest.raises(SourceError, match="after open"):
        _ = source.size


def test_close_twice_and_reopen(video: Path) -> None:
    source = open_source(SourceConfig(str(video)))
    source.open()
    source.read()
    source.close()
    source.close()
    assert not source.is_open
    source.open()  # a closed source may be opened again and starts over
    try:
        frame = source.read()
        assert frame is not None and frame.index == 0
    finally:
        source.close()


def test_context_manager_closes_even_on_error(video: Path) -> None:
    source: Source = open_source(SourceConfig(str(video)))
    with pytest.raises(RuntimeError):
        with source:
            assert source.is_open
            raise RuntimeError("boom")
    assert not source.is_open
    with pytest.raises(SourceError, match="not open"):
        source.read()


def test_iterating_after_the_end(video: Path) -> None:
    with open_source(SourceConfig(str(video))) as source:
        assert len(list(source)) == N_FRAMES
        assert list(source) == []
        assert source.read() is None
        assert source.read() is None


# -- the --fps camera path, without a camera ------------------------------------------------


def test_capture_requests_carry_fps_to_videocapture_props() -> None:
    cfg = SourceConfig("0", width=640, height=480, fps=60)
    mjpg = float(cv2.VideoWriter_fourcc(*"MJPG"))
    assert capture_requests(cfg) == [(cv2.CAP_PROP_FOURCC, mjpg),  # first: 60 needs MJPG
                                      (cv2.CAP_PROP_FRAME_WIDTH, 640.0),
                                      (cv2.CAP_PROP_FRAME_HEIGHT, 480.0),
                                      (cv2.CAP_PROP_FPS, 60.0)]
    assert capture_requests(SourceConfig("0", fps=30)) == [(cv2.CAP_PROP_FPS, 30.0)]
    assert capture_requests(SourceConfig("0")) == []  # nothing asked: the camera's default


def test_fps_shortfall_names_both_rates_only_when_short() -> None:
    assert fps_shortfall(None, 30.0) is None
    assert fps_shortfall(60.0, 60.0) is None and fps_shortfall(60.0, 59.94) is None
    note = fps_shortfall(60.0, 30.0)
    assert note is not None and "60" in note and "30" in note


def test_camera_path_with_fps_60_reports_what_the_device_grants(video: Path, caplog) -> None:
    """A video file opened through the camera path: a real VideoCapture that, like a camera
    without a 60 FPS mode, ignores the request; the granted rate is used and said."""
    with caplog.at_level(logging.WARNING, logger="realtime.io.sources"), \
            CameraSource(SourceConfig(str(video), fps=60)) as source:
        assert source.fps == pytest.approx(VIDEO_FPS)
        assert source.read() is not None
    assert any("asked for 60 fps" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bad", ["0", "-30", "nan", "inf"])
def test_demo_refuses_a_bad_fps_in_one_line(bad: str, tmp_path: Path, capsys) -> None:
    from realtime.cli.demo import main

    assert main(["--source", "0", "--fps", bad, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "fps" in err and "\n" not in err
    assert "Traceback" not in err
