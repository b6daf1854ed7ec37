"""Track ids from handedness plus position: stable, re-acquired, robust to flips and crossings."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.mesh.tracking import HandTracker, TrackerConfig
from realtime.types import Detection

SIZE = (640, 480)  # width, height: the diagonal is 800 px
HAND_PX = np.array([[0.0, 0.0], [20.0, -30.0], [-20.0, -30.0], [0.0, -60.0]] * 5
                   + [[0.0, -10.0]])  # (21, 2) a rigid hand-ish shape, offsets from its centre


def det(x: float, y: float, side: str, frame: int) -> Detection:
    """A synthetic detection whose landmark centroid is near ``(x, y)`` pixels."""
    pts = HAND_PX - HAND_PX.mean(axis=0) + [x, y]
    return Detection(landmarks_px=pts, landmarks_z=np.zeros(21), world=np.zeros((21, 3)),
                     handedness=side, score=0.9, frame_index=frame, timestamp=frame / 30)


def test_no_hands_gives_no_ids():
    assert HandTracker().assign([], SIZE) == []


def test_one_hand_moving_keeps_its_id():
    tracker = HandTracker()
    ids = [tracker.assign([det(100 + 8 * f, 240 + 3 * f, "right", f)], SIZE)[0]
           for f in range(40)]
    assert len(set(ids)) == 1


def test_two_hands_moving_keep_distinct_ids():
    tracker = HandTracker()
    seq = [tracker.assign([det(150 + 5 * f, 240, "left", f), det(450 - 5 * f, 200, "right", f)],
                          SIZE) for f in range(20)]
    assert all(ids == seq[0] for ids in seq)
    assert seq[0][0] != seq[0][1]


def test_hand_reacquired_after_short_gap_at_predicted_position():
    tracker = HandTracker(TrackerConfig(max_gap_frames=10))
    first = [tracker.assign([det(100 + 10 * f, 240, "right", f)], SIZE)[0] for f in range(5)]
    for f in range(5, 12):  # gone for 7 frames, still moving at 10 px/frame
        tracker.assign([], SIZE, frame_index=f)
    back = tracker.assign([det(100 + 10 * 12, 240, "right", 12)], SIZE)[0]
    assert back == first[0]


def test_velocity_prediction_beats_last_position():
    """After a gap, a hand far from where it vanished but where it was heading keeps its id."""
    tracker = HandTracker(TrackerConfig(max_gap_frames=10, max_jump_fraction=0.15))
    first = [tracker.assign([det(50 + 20 * f, 240, "right", f)], SIZE)[0] for f in range(4)]
    # 8 frames later it is 160 px (0.2 diagonals) from its last sighting: beyond the gate
    # from there, on the spot from its predicted position.
    assert tracker.assign([det(50 + 20 * 11, 240, "right", 11)], SIZE)[0] == first[0]


def test_new_id_after_long_gap():
    tracker = HandTracker(TrackerConfig(max_gap_frames=5))
    old = tracker.assign([det(300, 240, "right", 0)], SIZE)[0]
    new = tracker.assign([det(300, 240, "right", 7)], SIZE)[0]
    assert new != old
    assert tracker.track_ids == [new]


def test_far_jump_gives_new_id():
    tracker = HandTracker()
    old = tracker.assign([det(50, 50, "right", 0)], SIZE)[0]
    assert tracker.assign([det(600, 450, "right", 1)], SIZE)[0] != old


def test_hands_crossing_keep_their_ids():
    tracker = HandTracker()
    seq = []
    for f in range(30):  # left hand moves right, right hand moves left; they cross at f=15
        seq.append(tracker.assign([det(170 + 20 * f, 240, "left", f),
                                   det(470 - 20 * f, 250, "right", f)], SIZE))
    assert all(ids == seq[0] for ids in seq)


def test_same_label_crossing_uses_minimal_total_distance():
    """Two hands with the same label passing: position and velocity alone must keep ids.

    At the last frame the detection at x=330 is nearer track B's last position, but with
    velocities (A moving right, B moving left) the minimal total distance keeps A and B.
    """
    tracker = HandTracker()
    for f in range(10):
        a, b = tracker.assign([det(150 + 20 * f, 240, "right", f),
                               det(510 - 20 * f, 240, "right", f)], SIZE)
    # order of the detections swapped too, so the answer cannot come from list order
    b2, a2 = tracker.assign([det(510 - 20 * 10, 240, "right", 10),
                             det(150 + 20 * 10, 240, "right", 10)], SIZE)
    assert (a2, b2) == (a, b)


def test_hungarian_not_greedy():
    """Greedy nearest-first would give the first detection track B and leave A to a new id."""
    tracker = HandTracker(TrackerConfig(max_jump_fraction=0.2))
    a, b = tracker.assign([det(100, 240, "right", 0), det(200, 240, "right", 0)], SIZE)
    # 0.2 diagonals = 160 px gate: 190->200 (B) is 10 px, but then 330->100 (A) is out of
    # reach; 190->100 (90) + 330->200 (130) keeps both.
    ids = tracker.assign([det(190, 240, "right", 1), det(330, 240, "right", 1)], SIZE)
    assert ids == [a, b]


def test_one_frame_handedness_flip_keeps_id():
    tracker = HandTracker()
    ids, sides = [], []
    for f in range(12):
        side = "left" if f == 6 else "right"  # MediaPipe mislabels frame 6
        ids.append(tracker.assign([det(300 + 2 * f, 240, side, f)], SIZE)[0])
        sides.append(tracker.handedness(ids[-1]))
    assert len(set(ids)) == 1
    assert set(sides) == {"right"}  # the track's side ignores a one-frame flip


def test_flip_in_two_hand_scene_keeps_both_ids():
    tracker = HandTracker()
    first = tracker.assign([det(150, 240, "left", 0), det(480, 240, "right", 0)], SIZE)
    # both labelled "right" for one frame: the left hand keeps its track by position
    flipped = tracker.assign([det(152, 240, "right", 1), det(478, 240, "right", 1)], SIZE)
    after = tracker.assign([det(154, 240, "left", 2), det(476, 240, "right", 2)], SIZE)
    assert flipped == first == after


def test_flip_near_the_other_hand_does_not_steal_its_track():
    """Labels win when both tracks are near: an ambiguous flip must not swap identities."""
    tracker = HandTracker()
    left, right = tracker.assign([det(300, 240, "left", 0), det(340, 240, "right", 0)], SIZE)
    ids = tracker.assign([det(300, 240, "right", 1)], SIZE)  # only one, labelled right
    assert ids == [right]
    assert left != right


def test_persistent_relabel_changes_track_side():
    tracker = HandTracker(TrackerConfig(relabel_after_frames=3))
    tid = tracker.assign([det(300, 240, "right", 0)], SIZE)[0]
    for f in range(1, 5):
        assert tracker.assign([det(300, 240, "left", f)], SIZE)[0] == tid
    assert tracker.handedness(tid) == "left"


@pytest.mark.parametrize("kwargs, field", [
    ({"max_gap_frames": -1}, "max_gap_frames"),
    ({"max_jump_fraction": 0.0}, "max_jump_fraction"),
    ({"flip_radius_fraction": 0.5}, "flip_radius_fraction"),
    ({"relabel_after_frames": 0}, "relabel_after_frames"),
])
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TrackerConfig(**kwargs)


# -- fused handedness: label, 3D chirality, one of each, memory ---------------------------
def _world(side: str, curl: float = 0.6) -> np.ndarray:
    """Metric, hand-centred 3D landmarks of a curled right hand or its mirror image."""
    from models.hand_model import HandModel, mirror_x
    from models.poses import pose_from_curls

    model = HandModel.open_hand()
    pose = pose_from_curls(model.data.joint_names, np.array([[curl] * 5]), 0.2)
    kps = model.forward(pose).keypoints[0]
    kps = kps - kps.mean(0)
    return mirror_x(kps) if side == "left" else kps


def wdet(x: float, y: float, label: str, true_side: str, frame: int,
         score: float = 0.9) -> Detection:
    pts = HAND_PX - HAND_PX.mean(axis=0) + [x, y]
    return Detection(landmarks_px=pts, landmarks_z=np.zeros(21), world=_world(true_side),
                     handedness=label, score=score, frame_index=frame, timestamp=frame / 30)


def test_chirality_tells_a_right_hand_from_its_mirror_image():
    from realtime.mesh.tracking import chirality

    assert chirality(_world("right")) > 0.1
    assert chirality(_world("left")) < -0.1
    assert chirality(np.zeros((21, 3))) == 0.0  # degenerate: no opinion


def _numpy_chirality(world: np.ndarray) -> float:
    """The NumPy formulation the compiled chirality replaced (the reference)."""
    k = np.asarray(world, dtype=np.float64).reshape(21, 3)
    n = np.cross(k[5] - k[0], k[17] - k[0])
    norm = float(np.linalg.norm(n))
    size = float(np.linalg.norm(k[9] - k[0]))
    if norm < 1e-9 or size < 1e-6 or not np.isfinite(norm):
        return 0.0
    centre = k[[0, 5, 9, 13, 17]].mean(axis=0)
    chiral = [2, 3, 4, 7, 8, 11, 12, 15, 16, 19, 20]
    return float(((k[chiral] - centre) @ (n / norm)).mean() / size)


def test_chirality_equals_the_numpy_formulation():
    from realtime.mesh.tracking import chirality

    rng = np.random.default_rng(8)
    worlds = [_world("right", c) for c in (0.0, 0.3, 0.9)] + [_world("left", 0.5)]
    worlds += [rng.normal(0, 0.04, (21, 3)) for _ in range(200)]
    worlds += [rng.normal(0, 0.04, 63).astype(np.float32), np.full((21, 3), np.nan)]
    for world in worlds:
        assert abs(chirality(world) - _numpy_chirality(world)) < 1e-12


def _crossing(config: TrackerConfig) -> tuple[list[str], list[str]]:
    """Two hands cross; MediaPipe swaps their labels for 8 frames while they overlap."""
    tracker = HandTracker(config)
    out_r, out_l = [], []
    for f in range(30):
        xr, xl = 200 + 10 * f, 490 - 10 * f
        swapped = 11 <= f < 19
        dets = [wdet(xr, 240, "left" if swapped else "right", "right", f, 0.7 if swapped else 0.95),
                wdet(xl, 250, "right" if swapped else "left", "left", f, 0.7 if swapped else 0.95)]
        ids = tracker.assign(dets, SIZE)
        out_r.append(tracker.handedness(ids[0]))
        out_l.append(tracker.handedness(ids[1]))
    return out_r, out_l


def test_fused_handedness_survives_a_long_label_swap_while_crossing():
    out_r, out_l = _crossing(TrackerConfig())
    assert set(out_r) == {"right"} and set(out_l) == {"left"}


def test_label_only_tracking_flips_on_the_same_crossing():
    """The previous rule (labels + a 3-frame streak) is what the fused one improves on."""
    out_r, out_l = _crossing(TrackerConfig(fuse_handedness=False))
    assert "left" in out_r or "right" in out_l


def test_two_hands_with_one_label_become_one_of_each():
    tracker = HandTracker()
    ids = tracker.assign([wdet(150, 240, "right", "right", 0, 0.9),
                          wdet(480, 240, "right", "left", 0, 0.6)], SIZE)
    assert [tracker.handedness(t) for t in ids] == ["right", "left"]
