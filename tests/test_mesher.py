"""The library API: ``HandMesher.process`` on real frames of the built-in sample, the same
hands as the threaded pipeline of the demo, and a clear error for every bad input."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from calibration.camera import Camera
from calibration.intrinsics import CameraIntrinsics
from realtime import HandMesher, HandMesherConfig, build_pipeline
from realtime.app import AppConfig, OutputConfig, Sinks
from realtime.io.camera import CameraConfig
from realtime.io.sample import SAMPLE_GT, SAMPLE_VIDEO, sample_intrinsics
from realtime.io.sources import SourceConfig
from realtime.mesh.estimator import EstimatorConfig
from realtime.types import Packet

FRAMES = 40
SAME_TOL_M = 1e-9  # the same stages on the same frames: equal up to float rounding


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    out = [cap.read()[1] for _ in range(260)]
    cap.release()
    return out


@pytest.fixture(scope="module")
def mesher():
    with HandMesher(HandMesherConfig()) as m:
        yield m


class Probe:
    """A publish sink that keeps every final packet."""

    def __init__(self) -> None:
        self.packets: list[Packet] = []

    def write(self, packet: Packet) -> None:
        self.packets.append(packet)

    def close(self) -> None:
        pass


def test_three_lines_give_metric_hands(frames):
    with HandMesher(HandMesherConfig()) as mesher:
        hands = mesher.process(frames[250])
        K = mesher.cameras.for_size((640, 480)).K  # a guess: 60 deg field of view  # noqa: N806
    assert sorted(h.handedness for h in hands) == ["left", "right"]
    for h in hands:
        assert h.vertices.shape == (1302, 3) and h.joints.shape == (21, 3)
        assert 0.2 < h.joints[:, 2].mean() < 1.2  # meters in front of the camera
        uv = h.joints[:, :2] / h.joints[:, 2:] * np.diag(K)[:2] + K[:2, 2]
        np.testing.assert_allclose(uv, h.keypoints_2d, atol=1e-6)
        assert np.isfinite(h.vertex_std).all() and h.score > 0.5


def test_process_equals_the_demo_pipeline(frames, tmp_path):
    """The threaded pipeline of the demo (build_pipeline) and process() run the same stage
    objects: on the same frames, with the same timestamps, they give the same hands."""
    probe = Probe()
    config = AppConfig(source=SourceConfig(str(SAMPLE_VIDEO)), max_frames=FRAMES,
                       output=OutputConfig(folder=tmp_path, video=False))
    with build_pipeline(config, [probe]) as built:
        stats = built.run()
    assert stats["frames"] == FRAMES and len(probe.packets) == FRAMES
    with HandMesher(HandMesherConfig()) as mesher:
        for packet in probe.packets:
            frame = packet.frame
            hands = mesher.process(frame.image, frame.timestamp, frame.camera)
            assert len(hands) == len(packet.hands)
            for mine, theirs in zip(hands, packet.hands):
                assert (mine.track_id, mine.handedness) == (theirs.track_id, theirs.handedness)
                np.testing.assert_allclose(mine.vertices, theirs.vertices, atol=SAME_TOL_M)
                np.testing.assert_allclose(mine.joints, theirs.joints, atol=SAME_TOL_M)


def test_the_sample_camera_places_hands_near_the_truth(frames):
    """With the camera the sample was rendered with, each wrist lies on the true wrist's ray
    (within 2 degrees) at about its depth (one camera cannot see a hand's size: 30%)."""
    with np.load(SAMPLE_GT) as gt:
        truth = gt["keypoints"][250]  # (hands, 21, 3) camera frame, meters
    camera = Camera.pinhole(sample_intrinsics())
    with HandMesher(HandMesherConfig(stills=True)) as m:
        hands = m.process(frames[250], camera=camera)
    assert len(hands) == 2
    for h in hands:
        wrist = h.joints[0]
        true = truth[np.argmin(np.linalg.norm(truth[:, 0] - wrist, axis=1)), 0]
        cos = wrist @ true / np.linalg.norm(wrist) / np.linalg.norm(true)
        assert np.degrees(np.arccos(min(cos, 1.0))) < 2.0, h.handedness
        assert wrist[2] == pytest.approx(true[2], rel=0.3), h.handedness


def test_frames_of_the_sample_carry_its_true_camera(tmp_path):
    probe = Probe()
    config = AppConfig(source=SourceConfig(str(SAMPLE_VIDEO)), max_frames=2,
                       output=OutputConfig(folder=tmp_path, video=False))
    with build_pipeline(config, Sinks(publish=[probe])) as built:
        built.run()
    camera = probe.packets[0].frame.camera
    assert not camera.estimated and camera.intrinsics == sample_intrinsics()


def test_the_camera_sets_the_scale(frames, mesher):
    """A camera of twice the focal length sees the same pixels from twice as far away."""
    h, w = frames[0].shape[:2]
    near = Camera.pinhole(CameraIntrinsics(500.0, 500.0, w / 2, h / 2, w, h))
    far = Camera.pinhole(CameraIntrinsics(1000.0, 1000.0, w / 2, h / 2, w, h))
    with HandMesher(HandMesherConfig(stills=True)) as stills:
        a = stills.process(frames[250], camera=near)
        b = stills.process(frames[250], camera=far)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert y.joints[:, 2].mean() / x.joints[:, 2].mean() == pytest.approx(2.0, rel=0.02)


def test_camera_config_is_used_for_the_image_size(frames):
    h, w = frames[0].shape[:2]
    guess = HandMesherConfig(camera=CameraConfig(hfov_deg=40.0), stills=True)
    with HandMesher(guess) as m:
        camera = m.cameras.for_size((w, h))
        assert camera.estimated
        assert camera.intrinsics.fx == pytest.approx((w / 2) / np.tan(np.radians(20.0)))


def test_stills_treat_calls_as_unrelated_photos(frames):
    with HandMesher(HandMesherConfig(stills=True)) as m:
        assert m.smoother is None and m.config.stills
        first = m.process(frames[250])
        again = m.process(frames[250])
        assert len(first) == len(again) == 2
        assert not {h.track_id for h in first} & {h.track_id for h in again}
        for x, y in zip(sorted(first, key=lambda h: h.handedness),
                        sorted(again, key=lambda h: h.handedness)):  # no smoothing, no state
            np.testing.assert_allclose(x.joints, y.joints, atol=SAME_TOL_M)
        older = m.process(frames[10], timestamp=0.0)  # photos may come in any order
        assert isinstance(older, list)


def test_tracking_keeps_ids_across_calls(frames, mesher):
    ids = [tuple(sorted(h.track_id for h in mesher.process(f, timestamp=100 + i / 30)))
           for i, f in enumerate(frames[230:250])]
    assert len(set(ids)) == 1 and len(ids[0]) == 2


def test_fitting_baseline_through_the_same_api(frames):
    with HandMesher(HandMesherConfig(estimator=EstimatorConfig(kind="fit"),
                                     stills=True)) as m:
        hands = m.process(frames[250])
    assert type(m.estimator).__name__ == "FitEstimator" and len(hands) == 2
    assert all(h.vertices.shape == (1302, 3) for h in hands)


@pytest.mark.parametrize("image, match", [
    (None, "image must be a NumPy array"),
    ("frame.png", "image must be a NumPy array"),
    (np.zeros((480, 640, 2), np.uint8), r"image must be \(H,W,3\)"),
    (np.zeros((480, 640, 3, 1), np.uint8), r"image must be \(H,W,3\)"),
    (np.zeros((8, 640, 3), np.uint8), "at least 32 on each side"),
    (np.zeros((480, 640, 3), np.float32), "uint8"),
    (np.zeros((480, 640, 3), bool), "uint8"),
])
def test_bad_images_are_refused(mesher, image, match):
    with pytest.raises(ValueError, match=match):
        mesher.process(image)


def test_gray_and_bgra_images_are_accepted(frames, mesher):
    gray = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(frames[0], cv2.COLOR_BGR2BGRA)
    assert isinstance(mesher.process(gray, timestamp=1000.0), list)
    assert isinstance(mesher.process(bgra, timestamp=1000.1), list)


def test_bad_timestamps_and_cameras_are_refused(frames):
    with HandMesher(HandMesherConfig()) as m:
        m.process(frames[0], timestamp=5.0)
        with pytest.raises(ValueError, match="earlier than the previous one"):
            m.process(frames[1], timestamp=4.0)
        for bad in (float("nan"), float("inf"), "soon", None.__class__):
            with pytest.raises(ValueError, match="timestamp"):
                m.process(frames[1], timestamp=bad)
        small = Camera.guess(320, 240)
        with pytest.raises(ValueError, match="camera is for 320x240 images"):
            m.process(frames[1], timestamp=6.0, camera=small)
        with pytest.raises(ValueError, match="camera must be"):
            m.process(frames[1], timestamp=6.0, camera=small.intrinsics)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="HandMesherConfig.detector"):
        HandMesherConfig(detector="scheduled")
    with pytest.raises(ValueError, match="HandMesherConfig.smoothing"):
        HandMesherConfig(smoothing=True)
    with pytest.raises(ValueError, match="config must be a HandMesherConfig"):
        HandMesher({"stills": True})
    with pytest.raises(ValueError, match="estimator kind"):
        EstimatorConfig(kind="magic")
    with pytest.raises(ValueError, match="hfov_deg"):
        CameraConfig(hfov_deg=0.0)


def test_close_is_idempotent_and_faces_follow_the_side():
    m = HandMesher(replace(HandMesherConfig(), smoothing=None))
    right, left = m.faces("right"), m.faces("left")
    np.testing.assert_array_equal(left, right[:, ::-1])
    m.close()
    m.close()


def test_camera_given_twice_is_an_error(tmp_path):
    config = AppConfig(source=SourceConfig(str(SAMPLE_VIDEO),
                                           camera=CameraConfig(hfov_deg=50.0)),
                       mesher=HandMesherConfig(camera=CameraConfig(hfov_deg=70.0)),
                       output=OutputConfig(folder=tmp_path))
    with pytest.raises(ValueError, match="camera is given twice"):
        build_pipeline(config)


def test_the_readme_three_lines_run_as_written(frames):
    """The front page's first Python block, verbatim, on a frame of the built-in sample."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert "HandMesher(HandMesherConfig())" in block and "mesher.process(bgr)" in block
    scope = {"bgr": frames[250]}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - our own front page
    hands = scope["hands"]
    assert len(hands) == 2 and all(h.vertices.shape == (1302, 3) for h in hands)
