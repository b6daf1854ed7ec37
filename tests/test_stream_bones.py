"""Rigged mode: bone rotations on the wire, skinned by the reference decoder (= Unity's math)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from calibration.camera import Camera
from calibration.intrinsics import CameraIntrinsics
from models.geometry import axis_angle_to_matrix, matrix_to_quaternion
from models.hand_model import HandModel, mirror_x
from realtime.stream import bones, protocol
from realtime.stream.client import HandClient, skin_rigged
from realtime.stream.publisher import Publisher, PublisherConfig
from realtime.types import Detection, HandMesh
from tests.test_stream import free_port, make_packet, publish_until

SAMPLE = Path(__file__).resolve().parent.parent / "realtime" / "assets" / "sample" / "sample_gt.npz"
SKIN_TOL_M = 1e-3  # the target: rigged skinning vs the mesh it stands for, 1 mm
EXACT_TOL_M = 1e-5  # float32 decoder vs float64 skinning of the same parameters


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


@pytest.fixture
def endpoints():
    return f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"


def lbs_hand(model, pose, shape, rot, trans, side, track=1) -> HandMesh:
    """A pure linear-blend-skinned hand turned by ``rot`` and moved to ``trans`` (camera)."""
    out = model.forward(pose[None], shape[None])
    verts = out.vertices[0] @ rot.T + trans
    joints = out.keypoints[0] @ rot.T + trans
    if side == "left":
        verts, joints = mirror_x(verts), mirror_x(joints)
    return HandMesh(vertices=verts, joints=joints, vertex_std=np.full(len(verts), 0.004),
                    pose=pose, shape=shape, keypoints_2d=np.zeros((21, 2)), handedness=side,
                    score=0.9, track_id=track, timestamp=1.0, frame_index=3)


def random_hands(model, n, seed):
    rng = np.random.default_rng(seed)
    hands = []
    for k in range(n):
        pose = rng.normal(0, 0.35, (model.num_joints, 3))
        shape = rng.normal(0, 1.0, model.num_shape)
        rot = axis_angle_to_matrix(rng.normal(0, 1.5, (1, 1, 3)))[0, 0]
        trans = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), rng.uniform(0.3, 0.8)])
        hands.append(lbs_hand(model, pose, shape, rot, trans, ("right", "left")[k % 2], k + 1))
    return hands


def decode_rigged(model, hands, mode="rigged"):
    """Encode like the publisher (no sockets) and decode: topology message and hands message."""
    ep = (f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}")
    with Publisher(PublisherConfig(*ep, mode=mode), model) as pub:
        topo = protocol.decode(pub.topology_message())
        full, light = pub.messages(make_packet(hands))
    return topo, protocol.decode(full), protocol.decode(light)


def test_quaternions_round_trip():
    rng = np.random.default_rng(0)
    m = axis_angle_to_matrix(rng.normal(0, 2.0, (1, 500, 3)))[0]
    m = np.concatenate([m, np.eye(3)[None], np.diag([1.0, -1, -1])[None],
                        np.diag([-1.0, 1, -1])[None], np.diag([-1.0, -1, 1])[None]])
    q = matrix_to_quaternion(m)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    assert np.all(q[:, 3] >= 0)
    np.testing.assert_allclose(bones.quaternion_to_matrix32(q), m, atol=1e-6)


def test_sparse_weights_keep_every_influence(model):
    idx, w = bones.sparse_weights(model.data.weights)
    dense = np.zeros_like(model.data.weights)
    np.add.at(dense, (np.arange(len(idx))[:, None], idx), w)
    np.testing.assert_allclose(dense, model.data.weights, atol=1e-6)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)


def test_rigged_topology_and_hands_layout(model):
    hands = random_hands(model, 2, 1)
    topo, full, light = decode_rigged(model, hands)
    assert topo.header["mode"] == "rigged" and full.header["mode"] == "rigged"
    v, j, s = model.num_vertices, model.num_joints, model.num_shape
    assert topo.arrays["rest_vertices"].shape == (v, 3)
    assert topo.arrays["shape_dirs"].shape == (v, 3, s)
    assert topo.arrays["rest_joints"].shape == (j, 3)
    assert topo.arrays["skin_joints"].dtype == np.int32
    assert topo.arrays["skin_weights"].shape == topo.arrays["skin_joints"].shape
    assert topo.header["joint_parents"] == [int(p) for p in model.data.parents]
    for got in full.hands:
        assert "vertices" not in got and "vertex_std" not in got
        assert got["rotations"].shape == (j, 4) and got["model_rotation"].shape == (3, 3)
        assert got["model_translation"].shape == (3,) and got["shape"].shape == (s,)
    for got in light.hands:  # the joints topic is the same in both modes
        assert set(got) >= set(protocol.LIGHT_ARRAYS) and "rotations" not in got


def test_mesh_mode_topology_has_no_rig(model):
    topo, full, _ = decode_rigged(model, random_hands(model, 1, 2), mode="mesh")
    assert topo.header["mode"] == "mesh" and "rest_vertices" not in topo.arrays
    assert "vertices" in full.hands[0] and "rotations" not in full.hands[0]


def test_decoder_matches_mesh_mode_on_random_poses(model):
    hands = random_hands(model, 8, 3)
    topo, full, _ = decode_rigged(model, hands)
    for hand, got in zip(hands, full.hands):
        verts = skin_rigged(topo, got)
        err = np.linalg.norm(verts - hand.vertices, axis=1).max()
        assert err < SKIN_TOL_M, (hand.handedness, err)
        assert err < EXACT_TOL_M  # pure skinning in: the decoder reproduces it exactly
        # Unity axes: (x, -y, z) of the camera-frame result
        uni = skin_rigged(topo, got, unity=True)
        np.testing.assert_array_equal(uni * [1, -1, 1], verts)


def test_decoder_matches_mesh_mode_on_sample_frames(model):
    z = np.load(SAMPLE)
    frames = np.linspace(0, len(z["present"]) - 1, 12).astype(int)
    for f in frames:
        hands = []
        for h in np.nonzero(z["present"][f])[0]:
            side = str(z["handedness"][h])
            hands.append(HandMesh(vertices=z["vertices"][f, h], joints=z["keypoints"][f, h],
                                  vertex_std=np.full(model.num_vertices, 0.003),
                                  pose=z["pose"][f, h], shape=z["shape"][f, h],
                                  keypoints_2d=z["keypoints_2d"][f, h], handedness=side,
                                  score=1.0, track_id=int(h), timestamp=0.0,
                                  frame_index=int(f)))
        topo, full, _ = decode_rigged(model, hands)
        for hand, got in zip(hands, full.hands):
            err = np.linalg.norm(skin_rigged(topo, got) - hand.vertices, axis=1).max()
            assert err < SKIN_TOL_M, (f, hand.handedness, err)


def sample_detections(z, f):
    """MediaPipe-like detections of the sample's ground-truth hands in frame f."""
    w = float(z["width"])
    k = z["K"]
    dets = []
    for h in np.nonzero(z["present"][f])[0]:
        kp = z["keypoints"][f, h]
        rel_z = (kp[:, 2] - kp[0, 2]) * k[0, 0] / kp[:, 2].mean() / w
        dets.append(Detection(landmarks_px=z["keypoints_2d"][f, h], landmarks_z=rel_z,
                              world=kp - kp.mean(0), handedness=str(z["handedness"][h]),
                              score=0.95, frame_index=int(f), timestamp=f / 30.0))
    return dets


def test_rigged_regressor_hands_skin_to_their_reference(model):
    """Real regressor output (not pure skinning): the decoder reproduces the rigged mesh
    (skinned pose/shape + fitted rigid pose) within 1 mm; the gap to the regressor's own
    vertices is its model-free refinement, reported by benchmarks/stream.py."""
    from realtime.mesh.regressor import RegressorEstimator, RunnerConfig

    z = np.load(SAMPLE)
    intr = CameraIntrinsics(z["K"][0, 0], z["K"][1, 1], z["K"][0, 2], z["K"][1, 2],
                            int(z["width"]), int(z["height"]))
    fitter = RegressorEstimator(model, RunnerConfig(threads=1))
    gaps = []
    for f in (30, 200, 300):
        dets = sample_detections(z, f)
        hands = fitter.estimate(dets, Camera.pinhole(intr), list(range(len(dets))))
        topo, full, _ = decode_rigged(model, hands)
        rigs = bones.rig_arrays(model, hands)
        for hand, got, arrays in zip(hands, full.hands, rigs):
            ref = bones.rigged_reference(model, hand, arrays)
            assert np.linalg.norm(skin_rigged(topo, got) - ref, axis=1).max() < SKIN_TOL_M
            gaps.append(np.linalg.norm(ref - hand.vertices, axis=1).mean())
    assert np.all(np.isfinite(gaps))


def test_hand_without_pose_is_sent_with_vertices(model):
    hand = random_hands(model, 1, 4)[0]
    bad = HandMesh(**{**hand.__dict__, "pose": np.zeros((0, 3))})
    _, full, _ = decode_rigged(model, [bad, hand])
    assert "vertices" in full.hands[0] and "rotations" not in full.hands[0]
    assert "rotations" in full.hands[1]


def test_rigged_stream_over_sockets_with_late_topology(model, endpoints):
    hands = random_hands(model, 2, 5)
    with Publisher(PublisherConfig(*endpoints, mode="rigged"), model) as pub:
        with HandClient(endpoints[0], ("hands",), endpoints[1]) as client:
            time.sleep(0.3)
            msg = publish_until(pub, client, make_packet(hands))
            topo = client.topology()  # joined late: asks the REP socket
        for hand, got in zip(hands, msg.hands):
            err = np.linalg.norm(skin_rigged(topo, got) - hand.vertices, axis=1).max()
            assert err < SKIN_TOL_M


def test_decoder_refuses_mesh_topology(model):
    topo, _, _ = decode_rigged(model, [], mode="mesh")
    _, full, _ = decode_rigged(model, random_hands(model, 1, 6))
    with pytest.raises(ValueError, match="rigged"):
        skin_rigged(topo, full.hands[0])


def test_rigged_mode_needs_a_model(endpoints):
    with pytest.raises(ValueError, match="HandModel"):
        Publisher(PublisherConfig(*endpoints, mode="rigged"), None)
    with pytest.raises(ValueError, match="mode"):
        PublisherConfig(*endpoints, mode="bones")


def test_demo_publishes_rigged_hands(tmp_path):
    """run_demo --publish-mode rigged on the sample clip: real detector, regressor, smoother."""
    import threading

    from realtime.cli.demo import main, parse_args
    from realtime.io.sample import SAMPLE_VIDEO

    assert parse_args(["--publish", "tcp://127.0.0.1:5555", "--publish-mode",
                       "rigged"]).app.publish.mode == "rigged"
    assert parse_args(["--publish", "tcp://127.0.0.1:5555"]).app.publish.mode == "mesh"
    port = free_port()
    endpoints = (f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}")
    got, codes, topo = [], [], []
    client = HandClient(endpoints[0], ("hands",))  # the topology REP: port + 1, derived
    run = threading.Thread(target=lambda: codes.append(main([
        "--source", str(SAMPLE_VIDEO), "--output", str(tmp_path), "--headless", "--no-video",
        "--max-frames", "30", "--realtime", "--publish", endpoints[0],
        "--publish-mode", "rigged"])))
    run.start()
    try:
        deadline = time.monotonic() + 60
        while run.is_alive() and time.monotonic() < deadline:
            msg = client.recv(100)
            if msg is not None and msg.hands:
                got.append(msg)
                if not topo:
                    topo.append(client.topology())
        run.join(30)
    finally:
        client.close()
    assert codes == [0] and got and topo
    assert topo[0].header["mode"] == "rigged"
    for msg in got:
        for hand in msg.hands:
            verts = skin_rigged(topo[0], hand)
            assert np.all(np.isfinite(verts))
            # the skinned hand lies on the published keypoints (same pose, same placement)
            assert np.linalg.norm(verts.mean(0) - hand["joints"].mean(0)) < 0.03


def test_client_cli_prints_rigged_hands(model, endpoints, capsys):
    import threading

    from realtime.cli.stream import main as stream_main

    hands = random_hands(model, 2, 7)
    codes = []
    with Publisher(PublisherConfig(*endpoints, mode="rigged"), model) as pub:
        run = threading.Thread(target=lambda: codes.append(stream_main(
            ["listen", "--endpoint", endpoints[0], "--topology-endpoint", endpoints[1],
             "--count", "2"])))
        run.start()
        deadline = time.monotonic() + 20
        while run.is_alive() and time.monotonic() < deadline:
            pub.write(make_packet(hands))
            time.sleep(0.02)
        run.join(5)
    out = capsys.readouterr().out
    assert codes == [0]
    assert f"{model.num_vertices} vertices" in out  # the topology line
    assert f"rigged ({model.num_joints} joints)" in out and "left#2" in out


def test_decoder_refuses_mismatched_rig(model):
    topo, full, _ = decode_rigged(model, random_hands(model, 1, 8))
    hand = dict(full.hands[0])
    hand["rotations"] = hand["rotations"][:-1]
    with pytest.raises(ValueError, match="do not fit"):
        skin_rigged(topo, hand)
    topo.arrays["skin_joints"] = topo.arrays["skin_joints"] + model.num_joints
    with pytest.raises(ValueError, match="do not fit"):
        skin_rigged(topo, full.hands[0])
