"""Our scheduled detector (MediaPipe's bundled models, our schedule) against the legacy
MediaPipe pipeline, on real photos and the built-in clip.

Golden values come from the legacy pipeline itself, run in the same test on the same images:
the same models with the same pre/post-processing must give the same landmarks, so the
tolerance is a small fraction of a pixel.
"""

from __future__ import annotations

import math
import shutil

import cv2
import numpy as np
import pytest

from benchmarks.common import read_frames
from realtime.detect import hand_rois as hr
from realtime.detect.detector import DetectorConfig
from realtime.detect.litert_models import mediapipe_model_dir
from realtime.detect.mediapipe_legacy import MediaPipeDetector
from realtime.detect.scheduled import ScheduledDetector, ScheduledDetectorConfig
from realtime.errors import ModelFileError, RealtimeError
from realtime.io.sample import SAMPLE_GT, SAMPLE_VIDEO
from realtime.mesh.tracking import HandTracker
from realtime.types import Frame

GOLDEN_PX = 0.5  # mean landmark distance to the legacy pipeline's, pixels
GOLDEN_WORLD_M = 0.002  # largest world-landmark difference, meters (static photos)
# Tracking: each crop comes from the previous frame's landmarks, so the tiny differences of
# float arithmetic carry over from frame to frame; the world depth is the most sensitive.
GOLDEN_WORLD_TRACKING_M = 0.005
GOLDEN_TRACKING_PX = 1.5  # measured up to 0.93 px on the clip's hard pinching hand (lite)
GOLDEN_PHOTOS = ("mediapipe_reference/hands.jpg", "hgcnn_realworld/00300.jpg",
                 "hgcnn_realworld/00450.jpg", "onehand10k_mmpose/9.jpg",
                 "panoptic_mmpose/005880453_01.jpg",
                 # two overlapping palms: MediaPipe's association keeps the second's crop
                 "hgcnn_realworld/00544.jpg", "hgcnn_realworld/00562.jpg")
SAMPLE_TWO_HANDS = (340, 400, 440)  # sample clip frames with both hands in view


@pytest.fixture(scope="module")
def sample_frames() -> list[np.ndarray]:
    return read_frames(SAMPLE_VIDEO)


def _match(ours, ref, image_name: str, world_m: float = GOLDEN_WORLD_M,
           px: float = GOLDEN_PX) -> None:
    """Every legacy hand has one of ours within GOLDEN_PX, same world landmarks, and the same
    side where the legacy side is confident (a score near 0.5 may fall either way)."""
    assert len(ours) == len(ref), f"{image_name}: {len(ours)} hands vs legacy {len(ref)}"
    for r in ref:
        errors = [np.linalg.norm(d.landmarks_px - r.landmarks_px, axis=1).mean() for d in ours]
        d = ours[int(np.argmin(errors))]
        assert min(errors) < px, f"{image_name}: {min(errors):.3f} px from legacy"
        if r.score > 0.7:
            assert d.handedness == r.handedness, f"{image_name}: side differs from legacy"
        assert np.abs(d.world - r.world).max() < world_m, image_name
        assert np.abs(d.landmarks_z - r.landmarks_z).max() < 0.01, image_name
        assert d.score == pytest.approx(r.score, abs=0.05)


def test_golden_static_photos_match_legacy(realhands):
    images = {name: cv2.imread(str(realhands / name)) for name in GOLDEN_PHOTOS}
    ours = ScheduledDetector(ScheduledDetectorConfig(static_image_mode=True))
    with MediaPipeDetector(DetectorConfig(kind="mediapipe", static_image_mode=True)) as legacy:
        for n, (name, image) in enumerate(images.items()):
            frame = Frame(image, n, float(n))
            ref = legacy.process(frame)
            assert ref, f"legacy found no hand in {name}: pick another golden photo"
            _match(ours.process(frame), ref, name)


def test_golden_tracking_on_the_clip_matches_legacy(sample_frames):
    """Tracking mode over 30 frames with two hands: ours follows legacy frame by frame."""
    ours = ScheduledDetector(ScheduledDetectorConfig())
    with MediaPipeDetector(DetectorConfig(kind="mediapipe")) as legacy:
        for i in range(400, 430):
            frame = Frame(sample_frames[i], i, i / 30)
            _match(ours.process(frame), legacy.process(frame), f"sample frame {i}",
                   GOLDEN_WORLD_TRACKING_M, GOLDEN_TRACKING_PX)
    assert ours.palm_runs == 1, "two tracked hands must not need the palm detector again"


def test_mirrored_swaps_handedness(sample_frames):
    frame = Frame(sample_frames[400], 400, 0.0)
    plain = ScheduledDetector(ScheduledDetectorConfig(static_image_mode=True)).process(frame)
    mirrored = ScheduledDetector(
        ScheduledDetectorConfig(static_image_mode=True, mirrored=True)).process(frame)
    assert sorted(d.handedness for d in plain) == ["left", "right"]
    for a, b in zip(plain, mirrored):
        assert a.handedness != b.handedness


def test_redetects_a_hand_after_it_leaves(sample_frames):
    """Blank frames between real ones: tracks end, palm detection finds both hands again."""
    det = ScheduledDetector(ScheduledDetectorConfig())
    blank = np.zeros_like(sample_frames[0])
    seq = sample_frames[380:390] + [blank] * 5 + sample_frames[390:400]
    counts = [len(det.process(Frame(im, i, i / 30))) for i, im in enumerate(seq)]
    assert counts[:10] == [2] * 10
    assert counts[10:15] == [0] * 5
    assert counts[15] == 2, f"hands not found on the first frame back: {counts}"
    assert counts[15:] == [2] * 10


def test_second_hand_found_while_one_is_tracked(sample_frames):
    """With one hand tracked the palm detector still runs now and then: a second hand that
    appears is picked up within palm_interval_frames."""
    cfg = ScheduledDetectorConfig(palm_interval_frames=5)
    det = ScheduledDetector(cfg)
    gt = np.load(SAMPLE_GT)
    right = gt["keypoints_2d"][400, 0]
    lo, hi = right.min(0) - 60, right.max(0) + 60
    x0, y0, x1, y1 = (int(v) for v in (*lo, *hi))
    counts = []
    for i in range(400, 420):
        image = sample_frames[i].copy()
        if i < 405:  # the right hand alone: paint the rest of the frame flat
            keep = image[max(y0, 0):y1, max(x0, 0):x1].copy()
            image[:] = image[5:40, 300:340].reshape(-1, 3).mean(0).astype(np.uint8)
            image[max(y0, 0):y1, max(x0, 0):x1] = keep
        counts.append(len(det.process(Frame(image, i, i / 30))))
    assert counts[:5] == [1] * 5
    assert counts[5 + cfg.palm_interval_frames:] == [2] * (15 - cfg.palm_interval_frames)


def _crossing_clip(sample_frames, frames: int = 40):
    """Two real hand patches of the clip sliding past each other (their x paths cross)."""
    gt = np.load(SAMPLE_GT)
    src, kps = sample_frames[400], gt["keypoints_2d"][400]
    patches = []
    for slot in (0, 1):
        lo, hi = kps[slot].min(0), kps[slot].max(0)
        centre, half = (lo + hi) / 2, (hi - lo).max() * 0.75
        x0, y0 = np.maximum((centre - half).astype(int), 0)
        x1, y1 = np.minimum((centre + half).astype(int), [640, 480])
        patch = cv2.resize(src[y0:y1, x0:x1], None, fx=0.55, fy=0.55,
                           interpolation=cv2.INTER_AREA)
        patches.append((patch, (kps[slot] - [x0, y0]) * 0.55))
    wall = src[5:40, 300:340].reshape(-1, 3).mean(0).astype(np.uint8)
    for t in range(frames):
        image = np.empty_like(src)
        image[:] = wall
        truth = []
        for slot, (patch, kp) in enumerate(patches):
            a = t / (frames - 1)
            cx, cy = (130 + 380 * a, 190) if slot == 0 else (510 - 380 * a, 290)
            h, w = patch.shape[:2]
            x0, y0 = int(cx - w / 2), int(cy - h / 2)
            image[y0:y0 + h, x0:x0 + w] = patch
            truth.append(kp + [x0, y0])
        yield image, np.array(truth)


def test_crossing_hands_keep_their_track_ids(sample_frames):
    det = ScheduledDetector(ScheduledDetectorConfig())
    tracker = HandTracker()
    ids: dict[int, set] = {0: set(), 1: set()}
    both = 0
    for t, (image, truth) in enumerate(_crossing_clip(sample_frames)):
        dets = det.process(Frame(image, t, t / 30))
        tids = tracker.assign(dets, (640, 480), t)
        found = 0
        for slot in (0, 1):
            err = [np.linalg.norm(d.landmarks_px - truth[slot], axis=1).mean() for d in dets]
            if err and min(err) < 20:
                ids[slot].add(tids[int(np.argmin(err))])
                found += 1
        both += found == 2
    assert both >= 25, f"both hands found on only {both} of 40 frames"
    assert len(ids[0]) == 1 and len(ids[1]) == 1, f"track ids changed: {ids}"
    assert ids[0] != ids[1]


def _model_dir_copy(tmp_path):
    src = mediapipe_model_dir()
    for sub in ("palm_detection", "hand_landmark"):
        (tmp_path / sub).mkdir()
        for f in (src / sub).glob("*.tflite"):
            shutil.copy(f, tmp_path / sub / f.name)
    return tmp_path


def test_missing_model_file_is_a_clear_error(tmp_path):
    model_dir = _model_dir_copy(tmp_path)
    missing = model_dir / "hand_landmark" / "hand_landmark_full.tflite"
    missing.unlink()
    with pytest.raises(ModelFileError, match="hand_landmark_full.tflite") as info:
        ScheduledDetector(ScheduledDetectorConfig(model_dir=model_dir))
    assert isinstance(info.value, RealtimeError)
    assert "not found" in str(info.value)


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    model_dir = _model_dir_copy(tmp_path)
    bad = model_dir / "palm_detection" / "palm_detection_full.tflite"
    bad.write_bytes(bad.read_bytes()[:5000])  # truncated, as by an interrupted download
    with pytest.raises(ModelFileError, match="palm_detection_full.tflite"):
        ScheduledDetector(ScheduledDetectorConfig(model_dir=model_dir))
    # a valid model in the wrong place: the shape check names the file
    shutil.copy(model_dir / "hand_landmark" / "hand_landmark_lite.tflite", bad)
    with pytest.raises(ModelFileError, match="not the model"):
        ScheduledDetector(ScheduledDetectorConfig(model_dir=model_dir))


@pytest.mark.parametrize("field, value", [("max_num_hands", 0), ("landmarks", "huge"),
                                          ("palm_model", "tiny"), ("num_threads", 0),
                                          ("palm_interval_frames", 0),
                                          ("min_tracking_confidence", 1.5),
                                          ("frame_budget_ms", 0.0),
                                          ("precision", "fp8")])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        ScheduledDetectorConfig(**{field: value})


def test_config_rejects_fp16_with_split():
    with pytest.raises(ValueError, match="split_hands"):
        ScheduledDetectorConfig(precision="fp16", split_hands=True)


def test_lite_matches_legacy_complexity_0(sample_frames):
    ours = ScheduledDetector(ScheduledDetectorConfig(landmarks="lite"))
    with MediaPipeDetector(DetectorConfig(kind="mediapipe", model_complexity=0)) as legacy:
        for i in range(400, 410):
            frame = Frame(sample_frames[i], i, i / 30)
            _match(ours.process(frame), legacy.process(frame), f"lite, sample frame {i}",
                   GOLDEN_WORLD_TRACKING_M, GOLDEN_TRACKING_PX)


def test_adaptive_runs_lite_when_full_misses_the_budget(sample_frames):
    """Full while one hand or while full fits the budget; lite on two hands when it does not."""
    det = ScheduledDetector(ScheduledDetectorConfig(landmarks="adaptive", frame_budget_ms=1e-3))
    assert det._variant(2) == "full"  # nothing measured yet
    for i in range(400, 406):
        assert len(det.process(Frame(sample_frames[i], i, i / 30))) == 2
    assert det._variant(1) == "full"
    assert det._variant(2) == "lite"
    roomy = ScheduledDetector(ScheduledDetectorConfig(landmarks="adaptive",
                                                      frame_budget_ms=1e4))
    for i in range(400, 403):
        roomy.process(Frame(sample_frames[i], i, i / 30))
    assert roomy._variant(2) == "full"


# -- pure functions -------------------------------------------------------------------------
def test_anchors_follow_the_ssd_layout():
    anchors = hr.ssd_anchors()
    assert anchors.shape == (2016, 2)
    assert np.allclose(anchors[0], [0.5 / 24, 0.5 / 24])  # stride 8: 24x24 cells, 2 each
    assert np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[1152], [0.5 / 12, 0.5 / 12])  # stride 16: 12x12 cells, 6 each
    assert np.allclose(anchors[-1], [11.5 / 12, 11.5 / 12])


def test_weighted_nms_averages_a_cluster():
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]])
    kps = np.zeros((3, 7, 2))
    kps[:, :, 0] = np.array([1.0, 2.0, 5.0])[:, None]
    scores = np.array([0.9, 0.6, 0.7])
    b, k, s = hr.weighted_nms(boxes, kps, scores)
    assert np.allclose(s, [0.9, 0.7])
    assert np.allclose(b[0], (0.9 * boxes[0] + 0.6 * boxes[1]) / 1.5)
    assert np.allclose(k[0, :, 0], (0.9 * 1 + 0.6 * 2) / 1.5)
    assert np.allclose(b[1], boxes[2])


def test_crop_and_projection_are_inverse():
    """A crop pixel projected back lands where the crop matrix took it from."""
    rect = np.array([0.4, 0.55, 0.3, 0.4, 0.7])  # 640x480: 192x192 px square, rotated
    w, h = 640, 480
    m = hr.crop_matrix(hr.rect_to_px(rect, w, h), hr.LANDMARK_INPUT)
    raw = np.zeros((21, 3))
    raw[:3, :2] = [[30.0, 50.0], [200.0, 120.0], [112.0, 112.0]]
    image_pts = hr.project_landmarks(raw.ravel(), rect)[:3, :2] * (w, h)
    forward = image_pts @ m[:, :2].T + m[:, 2]
    assert np.allclose(forward, raw[:3, :2], atol=1e-3)


def test_landmarks_to_rect_recovers_rotation():
    """An upright synthetic hand turned by 30 degrees gives a rect turned by 30 degrees."""
    upright = np.zeros((21, 2))
    upright[:, 0] = np.linspace(-40, 40, 21)
    upright[:, 1] = np.linspace(0, -120, 21)  # fingers up (y down in images)
    upright[0] = [0, 0]
    upright[[5, 9, 13]] = [[-20, -80], [0, -85], [20, -80]]  # MCPs above the wrist
    angle = math.radians(30)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pts = upright @ rot.T + [320, 240]
    rect = hr.landmarks_to_rect(pts / (640, 480), 640, 480)
    assert rect[4] == pytest.approx(angle, abs=1e-6)
    assert rect[2] * 640 == pytest.approx(rect[3] * 480)  # square in pixels


def test_demo_picks_the_detector():
    from realtime.cli.demo import parse_args
    from realtime.detect.detector import open_detector

    assert parse_args([]).app.mesher.detector.kind == "scheduled"
    assert parse_args(["--detector", "mediapipe"]).app.mesher.detector.kind == "mediapipe"
    with pytest.raises(ValueError, match="landmarks"):
        parse_args(["--detector", "mediapipe", "--landmarks", "lite"])
    assert parse_args([]).app.mesher.detector.precision == "auto"
    assert parse_args(["--landmark-precision", "fp32"]).app.mesher.detector.precision == "fp32"
    assert parse_args(["--landmark-precision", "fp16"]).app.mesher.detector.precision == "fp16"
    with pytest.raises(ValueError, match="precision"):
        parse_args(["--detector", "mediapipe", "--landmark-precision", "fp16"])
    with open_detector(DetectorConfig(model_complexity=0)) as det:
        assert isinstance(det, ScheduledDetector)
        assert det.config.landmarks == "lite"
        assert det.palm.path.name == "palm_detection_lite.tflite"  # as MediaPipe pairs them
    with pytest.raises(ValueError, match="detector kind"):
        DetectorConfig(kind="yolo")


def test_batched_crops_equal_one_by_one(sample_frames):
    """Two hands in one batch-2 call give the same numbers as two batch-1 calls."""
    batched = ScheduledDetector(ScheduledDetectorConfig())
    single = ScheduledDetector(ScheduledDetectorConfig(batch_hands=False))
    for i in range(400, 405):
        frame = Frame(sample_frames[i], i, i / 30)
        a, b = batched.process(frame), single.process(frame)
        assert len(a) == len(b) == 2
        for x, y in zip(a, b):
            assert np.allclose(x.landmarks_px, y.landmarks_px, atol=1e-3)
            assert np.allclose(x.world, y.world, atol=1e-5)


def test_split_crops_equal_batched(sample_frames):
    """Each crop on its own thread and batch-1 interpreter gives the batched call's numbers,
    with every field of the detection, frame after frame of tracking."""
    batched = ScheduledDetector(ScheduledDetectorConfig())
    split = ScheduledDetector(ScheduledDetectorConfig(split_hands=True))
    model = split.landmark_models["full"][2]
    assert model.split and len(model._interps) == 2  # two interpreters, one per crop
    for i in range(400, 410):
        frame = Frame(sample_frames[i], i, i / 30)
        a, b = batched.process(frame), split.process(frame)
        assert len(a) == len(b) == 2
        for x, y in zip(a, b):
            assert x.handedness == y.handedness
            assert np.allclose(x.landmarks_px, y.landmarks_px, atol=1e-3)
            assert np.allclose(x.landmarks_z, y.landmarks_z, atol=1e-5)
            assert np.allclose(x.world, y.world, atol=1e-5)
            assert x.score == pytest.approx(y.score, abs=1e-5)
    assert split.palm_runs == batched.palm_runs


def test_split_runs_one_hand_on_the_single_model(sample_frames):
    """One-hand frames take the batch-1 model in split mode too, with the same numbers."""
    batched = ScheduledDetector(ScheduledDetectorConfig())
    split = ScheduledDetector(ScheduledDetectorConfig(split_hands=True))
    assert not split.landmark_models["full"][1].split
    gt = np.load(SAMPLE_GT)
    one = np.nonzero(gt["present"].sum(1) == 1)[0]
    start = int(one[len(one) // 2])
    found = 0
    for i in range(start, start + 5):
        frame = Frame(sample_frames[i], i, i / 30)
        a, b = batched.process(frame), split.process(frame)
        assert len(a) == len(b)
        found += len(b)
        for x, y in zip(a, b):
            assert np.allclose(x.landmarks_px, y.landmarks_px, atol=1e-3)
    assert found >= 4  # the hand is in view: the comparison is not vacuous


def test_fp16_landmarks_stay_near_fp32(sample_frames):
    """Half-precision arithmetic: the same hands and confident sides, landmarks within a
    pixel of the fp32 ones while tracking both hands (measured ~0.3 px per crop)."""
    try:
        half = ScheduledDetector(ScheduledDetectorConfig(precision="fp16"))
    except ModelFileError as exc:  # a CPU without native fp16 arithmetic
        assert "fp16" in str(exc)
        pytest.skip(f"no native fp16 on this CPU: {exc}")
    full = ScheduledDetector(ScheduledDetectorConfig())
    assert half.landmark_models["full"][2]._fp16 is not None
    diffs = []
    for i in range(400, 420):
        frame = Frame(sample_frames[i], i, i / 30)
        a, b = full.process(frame), half.process(frame)
        assert len(a) == len(b) == 2
        for x in a:  # the same hand (the order of the tracks may differ)
            y = min(b, key=lambda d: np.linalg.norm(d.landmarks_px - x.landmarks_px, axis=1).mean())
            if x.score > 0.7:  # a side near 0.5 may fall either way (as against legacy)
                assert x.handedness == y.handedness
                assert x.score == pytest.approx(y.score, abs=0.05)
            diffs.append(np.linalg.norm(x.landmarks_px - y.landmarks_px, axis=1).mean())
            # the depth is the most sensitive: measured up to 5.2 mm on the clip's weak hand
            assert np.abs(x.world - y.world).max() < 2 * GOLDEN_WORLD_TRACKING_M
    assert 0.0 < np.mean(diffs) < 1.0  # not fp32 (the option is live), not far from it
    assert max(diffs) < GOLDEN_TRACKING_PX
    half.close()  # stops its landmark worker processes
    full.close()


def test_open_detector_passes_precision():
    """DetectorConfig.precision reaches the scheduled detector ("auto" by default); the
    legacy one refuses fp16 (it runs fp32, which "auto" allows)."""
    from realtime.detect.detector import open_detector
    from realtime.detect.litert_models import native_fp16

    det = open_detector(DetectorConfig())
    assert det.config.precision == "auto"
    assert det.precision == ("fp16" if native_fp16() else "fp32")
    assert (det.landmark_models["full"][2]._fp16 is not None) == native_fp16()
    det.close()
    det = open_detector(DetectorConfig(precision="fp32"))
    assert det.precision == "fp32" and det.landmark_models["full"][2]._fp16 is None
    det.close()
    DetectorConfig(kind="mediapipe", precision="auto").__post_init__()
    with pytest.raises(ValueError, match="precision"):
        DetectorConfig(kind="mediapipe", precision="fp16")
    with pytest.raises(ValueError, match="precision"):
        DetectorConfig(precision="bf16")


def test_auto_precision_is_fp16_for_tracked_frames_on_a_native_fp16_cpu(sample_frames):
    """"auto": fp16 where the CPU has native fp16 and frames are tracked; photos, split
    crops and other CPUs run fp32; an explicit choice is kept."""
    from realtime.detect.landmark_worker import _Fp16Landmarks
    from realtime.detect.litert_models import model_path, native_fp16
    from realtime.detect.scheduled import resolve_precision

    native = native_fp16()
    try:  # what the flag promises: the fp16 model builds here
        _Fp16Landmarks(model_path(mediapipe_model_dir(), "landmark", "full"), 1, 1)
        builds = True
    except (RuntimeError, ValueError):
        builds = False
    assert native == builds
    auto = ScheduledDetectorConfig(precision="auto")
    assert resolve_precision(auto) == ("fp16" if native else "fp32")
    assert resolve_precision(ScheduledDetectorConfig(precision="auto",
                                                     static_image_mode=True)) == "fp32"
    assert resolve_precision(ScheduledDetectorConfig(precision="auto",
                                                     split_hands=True)) == "fp32"
    for fixed in ("fp32", "fp16"):
        assert resolve_precision(ScheduledDetectorConfig(precision=fixed)) == fixed
    with ScheduledDetector(auto) as det:
        assert det.precision == resolve_precision(auto)
        assert (det._worker is not None) == native
        dets = [det.process(Frame(sample_frames[i], i, i / 30)) for i in range(400, 404)]
    assert [len(d) for d in dets] == [2, 2, 2, 2]


def test_auto_precision_falls_back_to_fp32_when_fp16_cannot_start(monkeypatch, sample_frames,
                                                                 caplog):
    """A worker that cannot start is a warning and fp32 under "auto", an error under
    "fp16" (the failure is injected: this CPU may well run fp16)."""
    from realtime.detect import scheduled

    def refuse(models, num_threads):
        raise ModelFileError("fp16 landmarks could not run on this CPU (injected)")

    monkeypatch.setattr(scheduled, "native_fp16", lambda: True)
    monkeypatch.setattr(scheduled, "fp16_worker", refuse)
    with ScheduledDetector(ScheduledDetectorConfig(precision="auto")) as det:
        assert det.precision == "fp32" and det._worker is None
        assert len(det.process(Frame(sample_frames[400], 400, 400 / 30))) == 2
    assert "running fp32" in caplog.text
    with pytest.raises(ModelFileError, match="injected"):
        ScheduledDetector(ScheduledDetectorConfig(precision="fp16"))


def test_native_fp16_reads_the_cpu_flags():
    """x86 AVX512-FP16 or ARM fphp+asimdhp in /proc/cpuinfo; neither, or no flags: False."""
    from realtime.detect.litert_models import native_fp16

    cases = {"flags\t\t: fpu sse avx512f avx512_fp16 amx_tile\n": True,
             "flags\t\t: fpu sse avx512f avx2\n": False,
             "Features\t: fp asimd fphp asimdhp cpuid\n": True,
             "Features\t: fp asimd cpuid\n": False,
             "processor\t: 0\n": False, "": False}
    for text, want in cases.items():
        assert native_fp16(text) is want, text
