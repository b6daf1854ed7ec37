"""OpenXR hand joints (``realtime.stream.openxr``): positions from the keypoints and the rig,
-Z along the bones, +Y out of the back of the hand, right-handed frames for both hands,
quaternions continuous along a track, radii of the mesh."""

from __future__ import annotations

import numpy as np
import pytest

from models.geometry import axis_angle_to_matrix
from models.hand_model import HandModel, mirror_x
from models.poses import named_pose
from realtime.stream import openxr
from realtime.stream.bones import quaternion_to_matrix32
from tests.test_stream_bones import lbs_hand, random_hands

C = openxr.CAMERA_TO_OPENXR
N = openxr.XR_JOINT_NAMES
ROW = {n: i for i, n in enumerate(N)}


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


@pytest.fixture(scope="module")
def tracker(model) -> openxr.XrJointTracker:
    return openxr.XrJointTracker(model)


def axes(xr: np.ndarray) -> np.ndarray:
    """(26,3,3): columns X, Y, Z of each joint, OpenXR axes."""
    return quaternion_to_matrix32(xr[:, 3:7]).astype(np.float64)


def posed(model, name, rot, trans, side, track=1):
    pose = named_pose(model.data.joint_names, name)[0]
    return lbs_hand(model, pose, np.zeros(model.num_shape), rot, trans, side, track)


def test_layout_and_positions(model):
    """26 rows in XrHandJointEXT order; keypoint joints are the published keypoints in
    OpenXR axes; metacarpals are the rig's posed CMC joints; the palm is mid-metacarpal."""
    assert len(N) == openxr.NUM_XR_JOINTS == 26
    assert N[:6] == ("palm", "wrist", "thumb_metacarpal", "thumb_proximal", "thumb_distal",
                     "thumb_tip") and N[-1] == "little_tip"
    rig = openxr.xr_rig(model)
    names = model.data.joint_names
    rng = np.random.default_rng(3)
    for side in ("right", "left"):
        pose = rng.normal(0, 0.3, (model.num_joints, 3))
        shape = rng.normal(0, 1, model.num_shape)
        rot = axis_angle_to_matrix(rng.normal(0, 1, (1, 1, 3)))[0, 0]
        trans = np.array([0.05, -0.02, 0.5])
        hand = lbs_hand(model, pose, shape, rot, trans, side)
        xr = openxr.xr_joints(rig, [hand])[0]
        assert xr.shape == (26, 8) and xr.dtype == np.float32
        kp = np.asarray(hand.joints) @ C
        for row, k in ((1, 0), (2, 1), (5, 4), (7, 5), (10, 8), (12, 9), (25, 20)):
            np.testing.assert_allclose(xr[row, :3], kp[k], atol=1e-6)
        posed_joints = model.forward(pose[None], shape[None]).joints[0] @ rot.T + trans
        if side == "left":
            posed_joints = mirror_x(posed_joints)
        for row, f in zip((6, 11, 16, 21), ("index", "middle", "ring", "pinky")):
            want = posed_joints[names.index(f"{f}_cmc")] @ C
            np.testing.assert_allclose(xr[row, :3], want, atol=1e-5)
        np.testing.assert_allclose(xr[0, :3], 0.5 * (xr[11, :3] + xr[12, :3]), atol=1e-6)


def test_bone_directions_follow_the_fingers(model, tracker):
    """Each joint's -Z points from it to the next joint along its finger (tips: along the
    distal bone; the wrist: to the palm; the palm: along the middle metacarpal)."""
    for hand, xr in zip(hs := random_hands(model, 6, 11), tracker(hs)):
        pos, ax = xr[:, :3].astype(np.float64), axes(xr)
        forward = -ax[:, :, 2]
        pairs = [(0, 11, 12), (1, 1, 0)]
        for base in (2, 6, 11, 16, 21):
            last = base + (3 if base == 2 else 4)
            for j in range(base, last):
                pairs.append((j, j, j + 1))
            pairs.append((last, last - 1, last))
        for j, a, b in pairs:
            bone = pos[b] - pos[a]
            cos = forward[j] @ bone / np.linalg.norm(bone)
            assert cos > 0.9999, (hand.handedness, N[j], cos)


def test_back_of_hand_and_handedness(model, tracker):
    """+Y leaves the back of the hand; frames are right-handed for both hands, so a right
    hand's +X points to the little finger side and a left hand's to the thumb side; the
    left hand is the right one mirrored (Y, Z mirrored, X = Y x Z)."""
    rot = axis_angle_to_matrix(np.array([[[0.3, -0.4, 0.2]]]))[0, 0]
    trans = np.array([0.0, 0.0, 0.45])
    right = posed(model, "open", rot, trans, "right")
    left = posed(model, "open", rot, trans, "left", track=2)
    xr_r, xr_l = tracker([right, left])
    back_r = C @ rot @ np.array([0.0, 0.0, 1.0])  # the model's back of the hand is +z
    back_l = C @ mirror_x(rot @ np.array([0.0, 0.0, 1.0]))
    ax_r, ax_l = axes(xr_r), axes(xr_l)
    for j in [0, 1] + list(range(6, 26)):
        assert ax_r[j, :, 1] @ back_r > 0.5, N[j]
        assert ax_l[j, :, 1] @ back_l > 0.5, N[j]
    for ax, xr, sign in ((ax_r, xr_r, 1), (ax_l, xr_l, -1)):
        across = xr[ROW["little_proximal"], :3] - xr[ROW["index_proximal"], :3]
        assert sign * (ax[ROW["index_proximal"], :, 0] @ across) > 0
        np.testing.assert_allclose(np.linalg.det(ax), 1.0, atol=1e-5)
    m = C @ np.diag([-1.0, 1.0, 1.0]) @ C  # the mirror x -> -x, in OpenXR axes
    np.testing.assert_allclose(xr_l[:, :3], xr_r[:, :3] @ m, atol=1e-6)
    np.testing.assert_allclose(ax_l[:, :, 1], ax_r[:, :, 1] @ m, atol=1e-4)
    np.testing.assert_allclose(ax_l[:, :, 2], ax_r[:, :, 2] @ m, atol=1e-4)
    np.testing.assert_allclose(ax_l[:, :, 0], -ax_r[:, :, 0] @ m, atol=1e-4)


def test_quaternions_unit_and_continuous(model):
    """A hand turning a full circle while it closes: unit quaternions, each in the previous
    frame's hemisphere (the raw w >= 0 form flips sign along the way), small steps."""
    tracker = openxr.XrJointTracker(model)
    names = model.data.joint_names
    open_, fist = named_pose(names, "open")[0], named_pose(names, "fist")[0]
    prev = raw_prev = None
    raw_flips = 0
    for k in range(73):
        a = k / 72
        rot = axis_angle_to_matrix(np.array([[[0.0, 2 * np.pi * a * 0.999, 0.0]]]))[0, 0]
        rot = axis_angle_to_matrix(np.array([[[0.4, 0.0, 0.3]]]))[0, 0] @ rot
        hand = lbs_hand(model, (1 - a) * open_ + a * fist, np.zeros(model.num_shape), rot,
                        np.array([0.0, 0.0, 0.5]), "left", track=7)
        xr = tracker([hand])[0]
        raw = openxr.xr_joints(tracker.rig, [hand])[0]
        np.testing.assert_allclose(np.linalg.norm(xr[:, 3:7], axis=1), 1.0, atol=1e-6)
        if prev is not None:
            dots = (prev[:, 3:7] * xr[:, 3:7]).sum(1)
            assert np.all(dots > 0.9), dots.min()  # same hemisphere, steps of < ~50 deg
            raw_flips += int(np.sum((raw_prev[:, 3:7] * raw[:, 3:7]).sum(1) < 0))
        prev, raw_prev = xr, raw
    assert raw_flips > 0  # the sequence does cross the hemisphere boundary


def test_radii_match_the_mesh(model, tracker):
    """Finger joint radii within 30% of the finger's cross-section on the posed mesh (the
    median distance to the bone axis of the vertices within 3 mm of the joint's plane);
    palm and wrist radii between 5 and 35 mm; a hand without a mesh gets the rest radii."""
    rot = axis_angle_to_matrix(np.array([[[0.2, 2.8, 0.1]]]))[0, 0]
    for name in ("open", "relaxed", "spread"):
        for side in ("right", "left"):
            hand = posed(model, name, rot, np.array([0.02, 0.01, 0.4]), side, track=9)
            xr = tracker([hand])[0]
            verts = np.asarray(hand.vertices) @ C
            ax = axes(xr)
            for f in ("index", "middle", "ring", "little"):
                for b in ("proximal", "intermediate", "distal"):
                    j = ROW[f"{f}_{b}"]
                    d = verts - xr[j, :3]
                    along = d @ ax[j, :, 2]
                    perp = np.linalg.norm(d - along[:, None] * ax[j, :, 2], axis=1)
                    ring = perp[(np.abs(along) < 0.003) & (perp < 0.02)]
                    assert len(ring) >= 3, (name, side, N[j])
                    want = np.median(ring)
                    assert abs(xr[j, 7] - want) <= 0.3 * want, (name, side, N[j], xr[j, 7],
                                                                want)
            assert 0.005 < xr[ROW["palm"], 7] < 0.035 and 0.005 < xr[ROW["wrist"], 7] < 0.035
    bare = posed(model, "open", rot, np.array([0.0, 0.0, 0.4]), "right", track=10)
    bare = type(bare)(**{**bare.__dict__, "vertices": np.zeros((0, 3))})
    xr = openxr.xr_joints(tracker.rig, [bare])[0]
    np.testing.assert_allclose(xr[:, 7], tracker.rig.rest_radius.astype(np.float32))


def test_unusable_hands_get_none(model, tracker):
    """No pose of the model's size, or non-finite keypoints: None, never garbage."""
    good = random_hands(model, 1, 2)[0]
    no_pose = type(good)(**{**good.__dict__, "pose": np.zeros((0, 3)), "track_id": 40})
    nan = type(good)(**{**good.__dict__, "joints": np.full((21, 3), np.nan), "track_id": 41})
    out = tracker([no_pose, good, nan])
    assert out[0] is None and out[2] is None and out[1].shape == (26, 8)


@pytest.mark.parametrize("mode,float16,count", [("mesh", False, 2), ("mesh", False, 1),
                                                ("mesh", True, 2), ("rigged", False, 2)])
def test_published_on_hands_and_joints_topics(model, mode, float16, count):
    """The publisher's ``hands`` and ``joints`` messages carry ``xr_joints`` on every path
    (the two-hand fast path, one hand, float16, rigged), equal to a tracker's own result,
    and a real client on 127.0.0.1 decodes them; ``xr_joints=False`` leaves them out."""
    from realtime.stream import protocol
    from realtime.stream.client import HandClient
    from realtime.stream.publisher import Publisher, PublisherConfig
    from tests.test_stream import free_port, make_packet, publish_until

    hands = random_hands(model, count, 5)
    eps = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    pub = Publisher(PublisherConfig(*eps, float16=float16, mode=mode), model)
    try:
        want = openxr.XrJointTracker(model)(hands)
        full, light = pub.messages(make_packet(hands))
        for msg in (full, light):
            got = protocol.decode(msg).hands
            assert len(got) == count
            for h, w in zip(got, want):
                np.testing.assert_array_equal(h["xr_joints"], w)
        client = HandClient(eps[0], ("joints",), eps[1])
        try:
            msg = publish_until(pub, client, make_packet(hands))
            assert msg is not None
            np.testing.assert_allclose(msg.hands[0]["xr_joints"], want[0], atol=0.02)
        finally:
            client.close()
    finally:
        pub.close()
    eps = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    pub = Publisher(PublisherConfig(*eps, xr_joints=False), model)
    try:
        full, _ = pub.messages(make_packet(hands))
        assert "xr_joints" not in protocol.decode(full).hands[0]
    finally:
        pub.close()


def test_hands_file_records_carry_them(model, tmp_path):
    """``hands.jsonl`` records get ``xr_joints`` (26 rows of 8) from a writer with a tracker,
    the same joints as the stream's to the file's 10 micrometre rounding."""
    from realtime.io.hands_file import HandsWriter, read_hands

    hands = random_hands(model, 2, 8)
    want = openxr.XrJointTracker(model)(hands)
    path = tmp_path / "hands.jsonl"
    with HandsWriter(path, include_vertices=False, xr=openxr.openxr_tracker(model)) as w:
        w.write_frame(hands)
    recs = list(read_hands(path))
    assert len(recs) == 2
    for rec, xr in zip(recs, want):
        np.testing.assert_allclose(np.asarray(rec["xr_joints"]), xr, atol=1e-5)
    with HandsWriter(path, include_vertices=False) as w:
        w.write_frame(hands)
    assert "xr_joints" not in next(read_hands(path))


def test_ros2_pose_array_in_the_camera_frame(model):
    """``Ros2Config(openxr=True)``: a ``<side>/xr_joints`` PoseArray per hand, CDR-encodable,
    whose poses are the OpenXR joints in the camera frame: positions (x, -y, -z) equal the
    keypoints, rotations C R (C: the half turn between the axes)."""
    from realtime.ros2 import msgs
    from realtime.ros2.messages import MessageBuilder, Ros2Config
    from tests.test_stream import make_packet

    hands = random_hands(model, 2, 21)
    config = Ros2Config(markers_hz=0, openxr=True)
    assert {t.name for t in config.topics()} >= {"/handmesh/right/xr_joints",
                                                 "/handmesh/left/xr_joints"}
    assert "/handmesh/right/xr_joints" not in {t.name for t in Ros2Config().topics()}
    b = MessageBuilder(config, model.data.joint_names, xr=openxr.openxr_tracker(model))
    out = {topic: (type_, m) for topic, type_, m in b.frame(make_packet(hands))}
    want = openxr.XrJointTracker(model)(hands)
    for hand, xr in zip(hands, want):
        type_, m = out[f"/handmesh/{hand.handedness}/xr_joints"]
        assert type_ == "geometry_msgs/PoseArray" and len(msgs.encode(type_, m)) > 26 * 56
        poses = np.asarray(m["poses"])
        np.testing.assert_allclose(poses[1, :3], hand.joints[0], atol=1e-6)
        np.testing.assert_allclose(poses[10, :3], hand.joints[8], atol=1e-6)
        rot_cam = quaternion_to_matrix32(poses[:, 3:7]).astype(np.float64)
        np.testing.assert_allclose(rot_cam, C @ axes(xr), atol=1e-5)
