"""More hands on photos: --max-hands and recall mode (flipped/padded passes, merged).

The mapping and the merge are checked as pure functions; the detector runs for real
(MediaPipe's models) on a photo made from the built-in sample clip: two frames with both
hands in view, side by side, a four-hand photo on which one palm pass finds only one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.detect.detector import MAX_HANDS, DetectorConfig, open_detector
from realtime.detect.hand_rois import associate_rects
from realtime.detect.recall import (
    RecallConfig,
    RecallDetector,
    Variant,
    confirmed,
    cut_by_crop,
    make_variant,
    map_back,
    merge_detections,
    needs_check,
    points_to_original,
    points_to_variant,
    same_hand,
    variants_for,
    verify_crop,
)
from realtime.io.hands_file import read_hands
from realtime.io.sample import SAMPLE_GT, SAMPLE_VIDEO
from realtime.types import Detection, Frame

REPO = Path(__file__).resolve().parent.parent
TILE_FRAMES = (240, 390)  # both hands in view in each (the clip has two hands from 7 s)
W, H = 640, 480


def _detection(px: np.ndarray, side: str = "right", score: float = 0.9) -> Detection:
    world = np.linspace(-0.05, 0.05, 63).reshape(21, 3)
    return Detection(landmarks_px=np.asarray(px, dtype=np.float64),
                     landmarks_z=np.linspace(-0.1, 0.0, 21), world=world, handedness=side,
                     score=score, frame_index=0, timestamp=0.0)


def _hand(cx: float, cy: float, size: float = 80.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([cx, cy]) + rng.uniform(-size / 2, size / 2, (21, 2))


# -- pure functions ----------------------------------------------------------------------
def test_flip_twice_is_identity():
    pts = _hand(100, 200)
    flip = Variant(flip=True)
    once = points_to_original(pts, flip, W)
    assert not np.allclose(once, pts)
    np.testing.assert_allclose(points_to_original(once, flip, W), pts)
    det = _detection(pts, "left")
    twice = map_back(map_back(det, flip, W), flip, W)
    np.testing.assert_allclose(twice.landmarks_px, det.landmarks_px)
    np.testing.assert_allclose(twice.world, det.world)
    assert twice.handedness == "left"


def test_flipped_detection_swaps_side_and_mirrors_world():
    det = _detection(_hand(100, 200), "left")
    back = map_back(det, Variant(flip=True), W)
    assert back.handedness == "right"
    np.testing.assert_allclose(back.world[:, 0], -det.world[:, 0])
    np.testing.assert_allclose(back.world[:, 1:], det.world[:, 1:])
    np.testing.assert_allclose(back.landmarks_px[:, 0], W - det.landmarks_px[:, 0])


@pytest.mark.parametrize("variant", [Variant(flip=True), Variant(pad_x=160, pad_y=120),
                                     Variant(scale=2.0), Variant(True, 2.0, 30, 40),
                                     Variant(crop=(100, 200, 400, 440)),
                                     Variant(True, 1.5, 10, 0, (20, 100, 300, 400))])
def test_mapping_follows_the_variant_image(variant):
    """A dot drawn in the original is found in the variant image where the mapping says,
    and maps back onto itself."""
    image = np.zeros((H, W, 3), np.uint8)
    dot = np.array([[123.5, 301.5]])  # the centre of pixel (123, 301)
    cv2.circle(image, (123, 301), 2, (255, 255, 255), -1)
    out = make_variant(image, variant)
    ys, xs = np.nonzero(out[:, :, 0] > 128)
    found = np.array([[xs.mean() + 0.5, ys.mean() + 0.5]])
    expected = points_to_variant(dot, variant, W)
    assert np.abs(found - expected).max() < 1.0
    np.testing.assert_allclose(points_to_original(expected, variant, W), dot)


def test_pad_rescales_relative_depth_to_the_original_width():
    det = _detection(_hand(300, 300))
    pad = Variant(pad_x=160, pad_y=120)
    back = map_back(det, pad, W)
    np.testing.assert_allclose(back.landmarks_z, det.landmarks_z * (W + 320) / W)
    np.testing.assert_allclose(back.landmarks_px, det.landmarks_px - (160, 120))


def test_variants_start_with_the_original():
    vs = variants_for(W, H, RecallConfig(tiles=False))
    assert vs[0].is_original and len(vs) == 3
    assert vs[2].pad_x == 160 and vs[2].pad_y == 120
    assert len(variants_for(W, H, RecallConfig(flip=False, pad_fraction=0, tiles=False))) == 1
    tiles = [v.crop for v in variants_for(W, H, RecallConfig())[3:]]
    assert tiles == [(0, 0, 448, 336), (192, 0, 640, 336), (0, 144, 448, 480),
                     (192, 144, 640, 480)]
    assert variants_for(200, 100, RecallConfig(upscale_below_px=320, tiles=False))[-1].scale == 2.0


def test_nms_merges_duplicates_and_keeps_distinct_hands():
    a = _hand(100, 100, seed=1)
    b = _hand(400, 300, seed=2)
    per_variant = [[_detection(a, score=0.6)],  # original pass: one hand
                   [_detection(a + 3.0, score=0.99), _detection(b, "left")],  # flipped
                   [_detection(b - 2.0, "left"), _detection(a - 2.0)]]  # padded
    merged = merge_detections(per_variant, max_hands=4, fraction=0.25)
    assert len(merged) == 2
    np.testing.assert_allclose(merged[0].landmarks_px, a)  # the original pass wins
    np.testing.assert_allclose(merged[1].landmarks_px, b)
    assert merge_detections(per_variant, max_hands=1, fraction=0.25)[0].score == 0.6


def test_a_fragment_inside_a_larger_hand_is_merged():
    big = _hand(300, 300, size=200, seed=5)
    part = _hand(320, 310, size=60, seed=6)  # a crop found a piece of it
    assert same_hand(big, part, 0.25)
    assert len(merge_detections([[_detection(big)], [_detection(part)]], 4, 0.25)) == 1


def test_hands_cut_by_a_tile_edge_are_dropped():
    tile = Variant(crop=(192, 144, 640, 480))  # the bottom-right quarter of a 640x480 image
    assert cut_by_crop(_hand(210, 300, size=30), tile, W, H)  # at its inner left edge
    assert cut_by_crop(_hand(400, 150, size=20), tile, W, H)  # at its inner top edge
    assert not cut_by_crop(_hand(400, 300, size=60), tile, W, H)  # well inside
    assert not cut_by_crop(_hand(630, 470, size=30), tile, W, H)  # at the image's own edge
    assert not cut_by_crop(_hand(10, 10), Variant(flip=True), W, H)


def test_overlapping_but_different_hands_are_kept():
    a = _hand(200, 200, seed=3)
    b = _hand(230, 210, seed=4)  # boxes overlap heavily, keypoints do not agree
    assert not same_hand(a, b, 0.25)
    assert same_hand(a, a + 5.0, 0.25)
    assert len(merge_detections([[_detection(a)], [_detection(b)]], 4, 0.25)) == 2


def test_only_quarter_hands_no_whole_image_pass_found_need_a_check():
    a, b = _hand(100, 100, seed=1), _hand(400, 300, seed=2)
    seen = [_detection(a)]  # what the whole-image passes found
    quarter = Variant(crop=(0, 0, 448, 336))
    assert needs_check(_detection(b), quarter, seen, 0.25)  # new, from a quarter
    assert not needs_check(_detection(a + 2.0), quarter, seen, 0.25)  # seen whole
    assert not needs_check(_detection(b), Variant(flip=True), seen, 0.25)  # a whole image
    assert not needs_check(_detection(b), Variant(), [], 0.25)


def test_check_confirms_the_same_hand_not_a_piece_or_another_shape():
    hand = _hand(300, 300, size=100, seed=7)
    assert confirmed(hand, [hand + 4.0], 0.2)  # found again, a little moved
    assert confirmed(hand, [_hand(50, 50, seed=1), hand - 3.0], 0.2)  # any of them
    assert not confirmed(hand, [], 0.2)  # nothing found there
    assert not confirmed(hand, [hand + 30.0], 0.2)  # the model found something else there
    whole = (hand - 300) * 2.0 + 300  # the piece's crop shows the whole, larger hand
    assert not confirmed(hand, [whole], 0.2)
    assert same_hand(hand, whole, 0.25)  # (the merge's own fragment rule would join them)


def test_check_crop_is_the_hand_box_twice_clipped_to_the_image():
    px = np.array([[100.0, 200.0], [140.0, 220.0]] * 10 + [[120.0, 210.0]])
    assert verify_crop(px, W, H).crop == (80, 170, 160, 250)  # 40 px hand: 80 px square
    x0, y0, x1, y1 = verify_crop(px - (95.0, 195.0), W, H).crop  # near the corner
    assert (x0, y0) == (0, 0) and x1 > 0 and y1 > 0
    assert verify_crop(px + (490.0, 250.0), W, H).crop[2:] == (W, H)


def test_palm_association_keeps_the_later_of_two_overlapping_palms():
    """MediaPipe's AssociationNormRectCalculator on the palms' rects (best first): a
    rect overlapping an earlier one (IoU > 0.5) replaces it; apart, both stay."""
    first = np.array([0.30, 0.28, 1.06, 1.06, -0.58])  # hgcnn 00544's two palms
    second = np.array([0.41, 0.44, 1.17, 1.17, -0.80])
    far = np.array([0.9, 0.9, 0.1, 0.1, 0.0])
    out = associate_rects([first, second])
    assert len(out) == 1 and out[0] is second
    out = associate_rects([first, far, second])
    assert [id(r) for r in out] == [id(far), id(second)]
    assert len(associate_rects([first, far])) == 2
    assert associate_rects([]) == []


@pytest.mark.parametrize("value", [0, -1, MAX_HANDS + 1, 100, True, 2.5])
def test_detector_config_refuses_bad_max_hands(value):
    with pytest.raises(ValueError, match="max_num_hands"):
        DetectorConfig(max_num_hands=value)


def test_recall_config_refuses_bad_values():
    for kwargs in ({"pad_fraction": -0.1}, {"same_hand_fraction": 0.0},
                   {"upscale_below_px": -5}, {"verify_fraction": 0.0},
                   {"verify_fraction": 1.5}):
        with pytest.raises(ValueError):
            RecallConfig(**kwargs)


def test_recall_refused_outside_static_image_mode():
    with pytest.raises(ValueError, match="recall mode is for photos"):
        open_detector(DetectorConfig(recall=RecallConfig()))


# -- real detector -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def four_hand_photo(tmp_path_factory) -> tuple[Path, np.ndarray, list]:
    """Two sample frames side by side; their ground-truth hands (side, 2D) in the photo."""
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    frames = {}
    index = 0
    while len(frames) < len(TILE_FRAMES):
        ok, frame = cap.read()
        assert ok
        if index in TILE_FRAMES:
            frames[index] = frame
        index += 1
    cap.release()
    gt = np.load(SAMPLE_GT)
    hands = []
    for k, f in enumerate(TILE_FRAMES):
        for slot in range(2):
            assert gt["present"][f, slot]
            hands.append((str(gt["handedness"][slot]), gt["keypoints_2d"][f, slot] + (k * W, 0)))
    photo = np.hstack([frames[f] for f in TILE_FRAMES])
    path = tmp_path_factory.mktemp("recall") / "four_hands.png"
    cv2.imwrite(str(path), photo)
    return path, photo, hands


@pytest.mark.parametrize("kind", ["scheduled", "mediapipe"])
def test_recall_finds_at_least_the_one_pass_hands(four_hand_photo, kind):
    _, photo, truth = four_hand_photo
    frame = Frame(photo, 0, 0.0)
    one = open_detector(DetectorConfig(kind=kind, static_image_mode=True, max_num_hands=4))
    try:
        single = one.process(frame)
    finally:
        one.close()
    rec = open_detector(DetectorConfig(kind=kind, static_image_mode=True, max_num_hands=4,
                                       recall=RecallConfig()))
    try:
        found = rec.process(frame)
    finally:
        rec.close()
    assert len(found) >= len(single)
    assert len(found) > 2  # more than two hands come through (four are in the photo)
    for det in single:  # every one-pass hand is still there, unchanged
        assert any(np.allclose(det.landmarks_px, f.landmarks_px) for f in found)
    for det in found:  # each is a real hand, on its side (flipped passes mapped back)
        errs = [np.linalg.norm(det.landmarks_px - kp, axis=1).mean() for _, kp in truth]
        best = int(np.argmin(errs))
        size = np.ptp(truth[best][1], axis=0).max()
        assert errs[best] < 0.5 * size
        assert det.handedness == truth[best][0]
        assert np.all(np.isfinite(det.world)) and np.all(np.isfinite(det.landmarks_z))


def test_check_confirms_a_real_hand_and_rejects_a_patch_without_one(four_hand_photo):
    """The scheduled detector's check pass (a landmark pass on the crop a hand's own
    landmarks predict) finds a real hand again, and nothing like it on a blank patch."""
    _, photo, _ = four_hand_photo
    det = open_detector(DetectorConfig(static_image_mode=True, max_num_hands=4))
    try:
        hands = det.process(Frame(photo, 0, 0.0))
        assert hands
        hand = hands[0].landmarks_px
        px, presence = det.recheck(photo, hand)
        assert presence >= 0.5 and confirmed(hand, [px], 0.2)
        blank = photo.copy()
        lo, hi = np.floor(hand.min(0)).astype(int), np.ceil(hand.max(0)).astype(int)
        pad = (hi - lo) // 2
        blank[max(lo[1] - pad[1], 0):hi[1] + pad[1], max(lo[0] - pad[0], 0):hi[0] + pad[0]] = 128
        px, presence = det.recheck(blank, hand)
        assert presence < 0.5 or not confirmed(hand, [px], 0.2)
        # wrapped in recall mode, a hand only a quarter found that the check rejects is gone
        rec = RecallDetector(det, RecallConfig(), max_hands=4)
        frame = Frame(blank, 0, 0.0)
        assert not rec._confirm(frame, _detection(hand))
        assert rec._confirm(Frame(photo, 0, 0.0), _detection(hand))
    finally:
        det.close()


def test_cli_recall_writes_more_than_two_hands_and_replays_them(four_hand_photo, tmp_path):
    """The whole command on the photo: hands.jsonl holds every hand, and replays."""
    from realtime.cli.demo import main

    path, _, _ = four_hand_photo
    out = tmp_path / "out"
    assert main(["--source", str(path), "--recall", "--output", str(out), "--headless"]) == 0
    records = list(read_hands(out / "hands.jsonl"))
    assert len(records) > 2
    assert len({r["track_id"] for r in records}) == len(records)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["hands"] == len(records)
    replay = tmp_path / "replay"
    assert main(["--replay", str(out / "hands.jsonl"), "--output", str(replay),
                 "--headless", "--no-video"]) == 0
    assert len(list(read_hands(replay / "hands.jsonl"))) == len(records)


# -- command line ------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, str(REPO / "run_demo.py"), *args], check=False,
                          cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("args, expected", [
    (["--max-hands", "0"], "--max-hands must be 1-8, got 0"),
    (["--max-hands", "9"], "--max-hands must be 1-8, got 9"),
    (["--max-hands", "-3"], "--max-hands must be 1-8"),
    (["--recall"], "--recall is for photos"),
])
def test_cli_bad_max_hands_or_recall_on_video(tmp_path, args, expected):
    result = _cli("--source", str(SAMPLE_VIDEO), "--output", str(tmp_path), "--headless",
                  *args)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "hands.jsonl").exists()


def test_cli_max_hands_not_a_number(tmp_path):
    result = _cli("--max-hands", "many", "--output", str(tmp_path))
    assert result.returncode == 2
    assert "--max-hands" in result.stderr and "invalid int value" in result.stderr
    assert "Traceback" not in result.stderr


def test_photo_default_is_four_hands_video_two(four_hand_photo):
    from realtime.cli.demo import parse_args

    path, _, _ = four_hand_photo
    photo = parse_args(["--source", str(path)]).app.mesher.detector
    video = parse_args(["--source", str(SAMPLE_VIDEO)]).app.mesher.detector
    assert (photo.max_num_hands, video.max_num_hands) == (4, 2)
    assert photo.recall is None
    assert parse_args(["--source", str(path), "--max-hands", "6",
                       "--recall"]).app.mesher.detector.max_num_hands == 6


def test_stream_carries_more_than_two_hands():
    """The publisher's two-hand fast path steps aside for four hands: all four arrive."""
    import socket
    import time

    from benchmarks.common import random_hand_mesh
    from models.hand_model import HandModel
    from realtime.stream.client import HandClient
    from realtime.stream.publisher import Publisher, PublisherConfig
    from realtime.types import Packet

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    model = HandModel.open_hand()
    hands = [random_hand_mesh(model, side, seed=k, track_id=k, score=0.9, timestamp=1.0,
                              frame_index=3)
             for k, side in enumerate(("right", "left", "right", "left"))]
    packet = Packet(Frame(np.zeros((480, 640, 3), np.uint8), 3, 1.0, source="photo"),
                    time.monotonic(), (), tuple(hands))
    endpoints = (f"tcp://127.0.0.1:{port()}", f"tcp://127.0.0.1:{port()}")
    with Publisher(PublisherConfig(*endpoints), model) as pub, \
            HandClient(endpoints[0], ("hands",), endpoints[1]) as client:
        msg = None
        for _ in range(100):  # the first messages may precede the subscription
            pub.write(packet)
            msg = client.recv(100)
            if msg is not None:
                break
    assert msg is not None
    assert [h["track_id"] for h in msg.hands] == [0, 1, 2, 3]
    for got, hand in zip(msg.hands, hands):
        assert got["handedness"] == hand.handedness
        np.testing.assert_allclose(got["vertices"], hand.vertices, atol=1e-4)


def test_check_without_a_landmark_pass_uses_a_palm_pass_on_a_crop(four_hand_photo):
    """MediaPipe's legacy detector has no single landmark pass: the check runs it on a crop
    of twice the hand's box around the hand instead."""
    _, photo, _ = four_hand_photo
    mp = open_detector(DetectorConfig(kind="mediapipe", static_image_mode=True,
                                      max_num_hands=4))
    try:
        hands = mp.process(Frame(photo, 0, 0.0))
        assert hands
        hand = hands[0].landmarks_px
        rec = RecallDetector(mp, RecallConfig(), max_hands=4)
        assert rec._confirm(Frame(photo, 0, 0.0), _detection(hand))
        x0, y0, x1, y1 = verify_crop(hand, *photo.shape[1::-1]).crop
        blank = photo.copy()
        blank[y0:y1, x0:x1] = 128
        assert not rec._confirm(Frame(blank, 0, 0.0), _detection(hand))
    finally:
        mp.close()
