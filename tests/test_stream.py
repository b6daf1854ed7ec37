"""The ZeroMQ stream: real sockets on 127.0.0.1, publisher -> client, every field."""

from __future__ import annotations

import json
import socket
import struct
import time

import numpy as np
import pytest
import zmq

from benchmarks.common import random_hand_mesh
from models.hand_geometry import FINGER_JOINTS, wrist_frame
from models.hand_model import HandModel, flip_faces
from realtime.errors import RealtimeError
from realtime.stream import protocol
from realtime.stream.client import HandClient
from realtime.stream.protocol import (
    MalformedMessage,
    OversizedMessage,
    SchemaMismatch,
    TruncatedMessage,
)
from realtime.stream.publisher import Publisher, PublisherConfig, is_loopback
from realtime.types import Frame, HandMesh, Packet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def make_hand(model: HandModel, side: str = "right", track: int = 1) -> HandMesh:
    return random_hand_mesh(model, side, seed=track, track_id=track, score=0.93,
                            timestamp=12.5, frame_index=7, reprojection_error_px=2.25)


def make_packet(hands, index: int = 7) -> Packet:
    frame = Frame(np.zeros((480, 640, 3), np.uint8), index, 12.5, source="cam0")
    return Packet(frame, time.monotonic(), (), tuple(hands))


@pytest.fixture
def endpoints():
    return f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"


@pytest.fixture
def publisher(endpoints, model):
    pub = Publisher(PublisherConfig(*endpoints), model)
    yield pub
    pub.close()


def connect(endpoints, topics=("hands",), **kw) -> HandClient:
    client = HandClient(endpoints[0], topics, endpoints[1], **kw)
    time.sleep(0.3)  # the slow joiner: let the subscription reach the publisher
    return client


def publish_until(pub, client, packet, timeout_s=5.0):
    """Write until the client gets a message (the first ones may precede the connection)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pub.write(packet)
        msg = client.recv(100)
        if msg is not None:
            return msg
    raise AssertionError("no message received")


def test_every_field_round_trips(publisher, endpoints, model):
    right, left = make_hand(model, "right", 1), make_hand(model, "left", 2)
    with connect(endpoints) as client:
        msg = publish_until(publisher, client, make_packet([right, left]))
    assert publisher.sent["joints"] == 0  # nobody subscribed to joints: never built
    assert msg.topic == "hands" and msg.header["schema"] == protocol.SCHEMA_VERSION
    assert msg.header["camera_id"] == "cam0" and msg.header["frame_index"] == 7
    assert msg.header["image_size"] == [640, 480]
    assert msg.header["t_publish"] >= msg.header["t_capture"]
    assert len(msg.hands) == 2
    for got, hand in zip(msg.hands, (right, left)):
        assert got["handedness"] == hand.handedness and got["track_id"] == hand.track_id
        assert got["score"] == pytest.approx(hand.score)
        assert got["mean_std"] == pytest.approx(hand.vertex_std.mean())
        assert got["frame_index"] == 7 and got["timestamp"] == 12.5
        assert got["reprojection_error_px"] == 2.25
        for name in ("joints", "vertices", "vertex_std", "pose", "shape", "keypoints_2d"):
            want = getattr(hand, name)
            assert got[name].dtype == np.float32 and got[name].shape == want.shape, name
            np.testing.assert_allclose(got[name], want, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(got["wrist_position"], hand.joints[0], atol=1e-6)
        rot = got["wrist_rotation"].astype(np.float64)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-5)
        assert np.linalg.det(rot) == pytest.approx(1.0, abs=1e-5)
        names = model.data.joint_names
        want_angles = [hand.pose[names.index(n), 0] for n in FINGER_JOINTS]
        assert got["finger_angles"].shape == (15,)
        np.testing.assert_allclose(got["finger_angles"], want_angles, atol=1e-6)


def test_wrist_rotation_is_identity_for_an_upright_right_hand(model):
    hand = make_hand(model)
    rest = model.forward().keypoints[0]
    rot = wrist_frame(rest)
    # fingers up (-y in the camera), thumb side +x, back of the hand +z (towards the camera)
    assert rot[1, 1] > 0.9 and rot[0, 0] > 0.8 and rot[2, 2] > 0.8
    assert protocol.hand_arrays(hand)["wrist_rotation"].shape == (3, 3)


def test_joints_topic_has_no_vertices(publisher, endpoints, model):
    with connect(endpoints, ("joints",)) as client:
        msg = publish_until(publisher, client, make_packet([make_hand(model)]))
        assert msg.topic == "joints"
        hand = msg.hands[0]
        assert "vertices" not in hand and "vertex_std" not in hand
        assert hand["joints"].shape == (21, 3) and hand["finger_angles"].shape == (15,)
        # only joints were subscribed to: no hands message arrives
        publisher.write(make_packet([make_hand(model)]))
        msg = client.recv(300)
        assert msg is None or msg.topic == "joints"
    # ... and none was even built (XPUB: the publisher knows who listens to what)
    assert publisher.sent["hands"] == 0 and publisher.sent["joints"] > 0


def test_topics_are_built_only_while_subscribed(endpoints, model):
    hands = [make_hand(model, "right", 1), make_hand(model, "left", 2)]
    with Publisher(PublisherConfig(*endpoints), model) as pub:
        for i in range(5):  # nobody listens: frames are counted, nothing is sent
            pub.write(make_packet(hands, index=i))
        assert pub.sent["hands"] == pub.sent["joints"] == 0 and pub.status()["frames"] == 5
        with connect(endpoints, ("hands",)) as client:
            publish_until(pub, client, make_packet(hands))
            assert pub.sent["hands"] > 0 and pub.sent["joints"] == 0
        deadline = time.monotonic() + 5  # until the unsubscription reaches the publisher
        while pub.subscribed("hands") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pub.subscribed("hands")
        sent = pub.sent["hands"]
        pub.write(make_packet(hands))
        assert pub.sent["hands"] == sent  # the subscriber left: hands are no longer built
        with connect(endpoints, ("joints",)) as client:  # a latecomer on the other topic
            msg = publish_until(pub, client, make_packet(hands))
            assert msg.topic == "joints" and len(msg.hands) == 2
            assert msg.seq == pub.status()["frames"]  # sequence numbers count frames


def test_conflating_publisher_delivers(endpoints, model):
    with Publisher(PublisherConfig(*endpoints, conflate=True), model) as pub, \
            connect(endpoints) as client:
        msg = publish_until(pub, client, make_packet([make_hand(model)]))
    assert msg.topic == "hands" and len(msg.hands) == 1


def test_float16_vertices(endpoints, model):
    hand = make_hand(model)
    with Publisher(PublisherConfig(*endpoints, float16=True), model) as pub, \
            connect(endpoints) as client:
        msg = publish_until(pub, client, make_packet([hand]))
    got = msg.hands[0]
    assert got["vertices"].dtype == np.float16 and got["joints"].dtype == np.float32
    np.testing.assert_allclose(got["vertices"], hand.vertices, atol=1e-3)


def test_frame_without_hands_is_published(publisher, endpoints):
    with connect(endpoints) as client:
        msg = publish_until(publisher, client, make_packet([]))
    assert msg.hands == [] and msg.header["hands"] == []


def test_late_client_gets_topology_by_request(publisher, endpoints, model):
    for _ in range(20):
        publisher.write(make_packet([make_hand(model)]))
    with HandClient(endpoints[0], ("hands",), endpoints[1]) as client:  # joins late
        topo = client.topology(timeout_ms=2000)
    assert topo.topic == "topology"
    np.testing.assert_array_equal(topo.arrays["faces"], model.faces)
    assert topo.arrays["faces"].dtype == np.int32
    assert np.array_equal(flip_faces(topo.arrays["faces"]), flip_faces(model.faces))
    h = topo.header
    assert h["vertex_count"] == model.num_vertices
    assert h["hand_model"] == model.data.name and h["hand_model_sha256"] == model.data.sha256
    assert len(h["keypoint_names"]) == 21 and h["keypoint_parents"][0] == -1
    assert h["joint_parents"] == [int(p) for p in model.data.parents]
    assert "left" in h["winding"]
    assert publisher.topology_requests == 1


def test_topology_published_on_its_topic(endpoints, model):
    cfg = PublisherConfig(*endpoints, topology_every_s=0.05)
    with connect(endpoints, ("topology",)) as client, Publisher(cfg, model) as pub:
        time.sleep(0.3)
        msg = None
        deadline = time.monotonic() + 5
        while msg is None and time.monotonic() < deadline:
            pub.write(make_packet([]))
            msg = client.recv(100)
    assert msg is not None and msg.topic == "topology" and "faces" in msg.arrays
    uv, uv_faces, uv_vertex = msg.arrays["uv"], msg.arrays["uv_faces"], msg.arrays["uv_vertex"]
    assert uv.shape[1] == 2 and np.all((uv >= 0) & (uv <= 1))
    assert uv_faces.shape == msg.arrays["faces"].shape and uv_faces.max() < len(uv)
    # each UV triangle is the same mesh triangle through uv_vertex
    np.testing.assert_array_equal(uv_vertex[uv_faces], msg.arrays["faces"])


def test_status_topic(endpoints, model):
    cfg = PublisherConfig(*endpoints, status_every_s=0.05)
    with Publisher(cfg, model) as pub, connect(endpoints, ("status",)) as client:
        msg = None
        deadline = time.monotonic() + 5
        while msg is None and time.monotonic() < deadline:
            pub.write(make_packet([]))
            time.sleep(0.01)
            msg = client.recv(10)
    assert msg is not None and msg.topic == "status"
    assert {"fps", "latency_ms_p50", "dropped", "sent", "frames"} <= set(msg.header)
    assert msg.header["frames"] > 0
    # nobody subscribed to hands or joints: those messages were not even built
    assert msg.header["sent"]["hands"] == msg.header["sent"]["joints"] == 0


def test_sequence_gaps_are_counted(publisher, endpoints, model):
    with connect(endpoints) as client:
        first = publish_until(publisher, client, make_packet([]))
        while client.recv(100) is not None:
            pass
        publisher._seq[protocol.TOPIC_HANDS] += 5  # five messages lost on the way
        publisher.write(make_packet([]))
        msg = client.recv(2000)
    assert msg is not None and msg.seq > first.seq
    assert client.missed == 5


# -- bad messages -----------------------------------------------------------------------------
def raw(topic: bytes, header: dict | bytes, payload: bytes = b"", hlen: int | None = None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return topic + b" " + struct.pack("<I", len(text) if hlen is None else hlen) + text + payload


GOOD = protocol.encode(b"hands", {"seq": 1, "hands": []},
                       [({"track_id": 1}, {"joints": np.zeros((21, 3), "<f4")})])


@pytest.mark.parametrize("msg, error", [
    (raw(b"hands", {"schema": 2, "seq": 1}), SchemaMismatch),
    (raw(b"hands", b"{not json"), MalformedMessage),
    (raw(b"hands", b"[1, 2]"), MalformedMessage),
    (raw(b"hands", {"schema": 1}, hlen=1000), TruncatedMessage),
    (b"hands", MalformedMessage),
    (b"hands \x01", TruncatedMessage),
    (b"", MalformedMessage),
    (GOOD[:-8], TruncatedMessage),
    (raw(b"hands", {"schema": 1, "hands": [{"arrays": {"j": {"dtype": "<f8", "shape": [3],
                                                               "offset": 0, "nbytes": 24}}}]},
         bytes(24)), MalformedMessage),
    (raw(b"hands", {"schema": 1, "hands": [{"arrays": {"j": {"dtype": "<f4", "shape": [4],
                                                               "offset": 0, "nbytes": 8}}}]},
         bytes(16)), MalformedMessage),
    (raw(b"hands", {"schema": 1, "hands": "x"}), MalformedMessage),
    (raw(b"hands", {"schema": 1}, hlen=2 << 20), OversizedMessage),
])
def test_decode_rejects_bad_messages(msg, error):
    with pytest.raises(error):
        protocol.decode(msg)


def test_schema_mismatch_message():
    with pytest.raises(SchemaMismatch, match="schema 2 from the publisher, this client reads "
                                             "1: update the client"):
        protocol.decode(raw(b"hands", {"schema": 2}))


def test_oversized_message_rejected():
    with pytest.raises(OversizedMessage):
        protocol.decode(GOOD, max_bytes=len(GOOD) - 1)
    assert protocol.decode(GOOD).hands[0]["joints"].shape == (21, 3)


def test_payload_is_aligned():
    hlen = struct.unpack("<I", GOOD[6:10])[0]
    assert (10 + hlen) % 8 == 0


def test_client_survives_bad_messages(endpoints):
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(endpoints[0])
    try:
        with connect(endpoints, max_message_bytes=1 << 16) as client:
            bad = [raw(b"hands", b"{oops"), GOOD[:-8], raw(b"hands", {"schema": 1}, hlen=99),
                   GOOD + bytes(1 << 16)]
            for m in bad:
                pub.send(m)
            pub.send(GOOD)
            msg = client.recv(3000)
            assert msg is not None and msg.hands[0]["joints"].shape == (21, 3)
            assert client.rejected == len(bad)
            assert isinstance(client.last_error, OversizedMessage)
            pub.send(raw(b"hands", {"schema": 2, "seq": 3}))
            with pytest.raises(SchemaMismatch, match="update the client"):
                client.recv(3000)
    finally:
        pub.close(linger=0)


# -- never stall, security --------------------------------------------------------------------
def test_slow_subscriber_never_blocks_publisher(endpoints, model):
    packet = make_packet([make_hand(model, "right", 1), make_hand(model, "left", 2)])
    cfg = PublisherConfig(*endpoints, sndhwm=10)
    sub = zmq.Context.instance().socket(zmq.SUB)  # subscribes, then never reads
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 1)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        with Publisher(cfg, model) as pub:
            sub.connect(endpoints[0])
            time.sleep(0.3)
            t0 = time.monotonic()
            for _ in range(2000):
                pub.write(packet)
            elapsed = time.monotonic() - t0
            assert elapsed < 20.0  # a hang guard, not a performance threshold
            assert pub.sent["hands"] + pub.dropped["hands"] == 2000
            # A PUB socket drops silently at its high-water mark (no zmq.Again): the slow
            # subscriber's losses show up as sequence gaps on its side, not as an error here.
    finally:
        sub.close(linger=0)


def test_close_is_prompt(endpoints, model):
    pub = Publisher(PublisherConfig(*endpoints), model)
    t0 = time.monotonic()
    pub.close()
    assert time.monotonic() - t0 < 1.5
    pub.write(make_packet([]))  # after close: ignored, no exception
    pub.close()


@pytest.mark.parametrize("ep", ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.5:5555",
                                "tcp://eth0:5555"])
def test_non_loopback_requires_insecure(ep):
    assert not is_loopback(ep)
    with pytest.raises(ValueError, match="--insecure"):
        PublisherConfig(endpoint=ep)
    PublisherConfig(endpoint=ep, insecure=True)


@pytest.mark.parametrize("ep", ["tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:5",
                                "ipc:///tmp/hands", "inproc://hands"])
def test_loopback_endpoints(ep):
    assert is_loopback(ep)


def test_insecure_bind_warns(model, caplog):
    cfg = PublisherConfig(f"tcp://0.0.0.0:{free_port()}", f"tcp://127.0.0.1:{free_port()}",
                          insecure=True)
    with caplog.at_level("WARNING"), Publisher(cfg, model):
        pass
    assert "UNENCRYPTED" in caplog.text


# -- CURVE ------------------------------------------------------------------------------------
@pytest.fixture
def curve_keys(tmp_path):
    """A server key pair and two client key pairs; only client-good is allowed."""
    from realtime.stream import keys

    keys.generate(tmp_path, "server")
    allowed = tmp_path / "allowed"
    keys.generate(allowed, "client-good")
    keys.generate(tmp_path / "others", "client-bad")
    return tmp_path


def curve_publisher(endpoints, model, keydir, allowed=None, **kw):
    return Publisher(PublisherConfig(*endpoints, curve_secret_key_file=keydir / "server.key_secret",
                                     curve_allowed_clients_file=allowed or keydir / "allowed",
                                     **kw), model)


def curve_client(endpoints, keydir, name, topics=("hands",)):
    sub = "allowed" if name == "client-good" else "others"
    return connect(endpoints, topics, curve_secret_key_file=keydir / sub / f"{name}.key_secret",
                   curve_server_public_key_file=keydir / "server.key")


def test_key_generation_round_trip(tmp_path, capsys):
    import os
    import stat

    from realtime.cli.stream import main as stream_main
    from realtime.stream import keys

    assert stream_main(["keys", str(tmp_path), "--name", "client-robot"]) == 0
    public, secret = tmp_path / "client-robot.key", tmp_path / "client-robot.key_secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    pub, sec = keys.load_secret(secret)
    assert keys.load_public(public) == pub and len(pub) == len(sec) == 40
    assert zmq.curve_public(sec) == pub  # the pair belongs together
    assert pub.decode() in capsys.readouterr().out
    assert stream_main(["keys", str(tmp_path), "--name", "client-robot"]) == 2  # no overwrite
    assert keys.load_public(public) == pub
    with pytest.raises(ValueError, match="server' or 'client-NAME"):
        keys.generate(tmp_path, "robot")
    with pytest.raises(keys.CurveKeyError, match="no secret key"):
        keys.load_secret(public)
    listing = tmp_path / "clients.txt"
    listing.write_text(f"# the robot\n{pub.decode()}  # arm 1\n\n")
    assert keys.load_allowed_clients(listing) == {pub}
    assert keys.load_allowed_clients(tmp_path) == {pub}  # a directory of .key files
    listing.write_text("# nobody\n")
    with pytest.raises(keys.CurveKeyError, match="nobody could connect"):
        keys.load_allowed_clients(listing)
    listing.write_text("not-a-key\n")
    with pytest.raises(keys.CurveKeyError, match="40 characters"):
        keys.load_allowed_clients(listing)


def test_curve_authorised_client_gets_hands_and_topology(endpoints, model, curve_keys):
    with curve_publisher(endpoints, model, curve_keys) as pub, \
            curve_client(endpoints, curve_keys, "client-good") as client:
        msg = publish_until(pub, client, make_packet([make_hand(model)]))
        topo = client.topology(timeout_ms=3000)
    assert msg.topic == "hands" and msg.hands[0]["vertices"].shape == (model.num_vertices, 3)
    np.testing.assert_array_equal(topo.arrays["faces"], model.faces)


def test_curve_allowed_clients_from_a_key_list(endpoints, model, curve_keys):
    from realtime.stream import keys

    listing = curve_keys / "allowed.txt"
    good = keys.load_public(curve_keys / "allowed" / "client-good.key").decode()
    listing.write_text(f"# clients\n{good}\n")
    with curve_publisher(endpoints, model, curve_keys, allowed=listing) as pub, \
            curve_client(endpoints, curve_keys, "client-good") as client:
        assert publish_until(pub, client, make_packet([])).topic == "hands"


def test_curve_wrong_key_and_plain_clients_receive_nothing(endpoints, model, curve_keys):
    with curve_publisher(endpoints, model, curve_keys) as pub, \
            curve_client(endpoints, curve_keys, "client-good") as good, \
            curve_client(endpoints, curve_keys, "client-bad") as bad, \
            connect(endpoints) as plain:
        publish_until(pub, good, make_packet([]))  # the authorised one does receive
        for _ in range(20):
            pub.write(make_packet([make_hand(model)]))
            time.sleep(0.02)
        assert good.recv(1000) is not None
        assert bad.recv(500) is None and plain.recv(500) is None
        assert bad.received == plain.received == 0
        with pytest.raises(RealtimeError, match="no topology"):
            bad.topology(timeout_ms=500)
        with pytest.raises(RealtimeError, match="no topology"):
            plain.topology(timeout_ms=500)
        assert pub.topology_requests == 0


def test_curve_authenticator_stopped_on_close(endpoints, model, curve_keys):
    import threading

    before = set(threading.enumerate())
    pub = curve_publisher(endpoints, model, curve_keys)
    assert pub._auth is not None and pub._auth.is_alive()
    pub.close()
    time.sleep(0.1)
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []
    # the ports are free again: a second CURVE publisher binds them
    curve_publisher(endpoints, model, curve_keys).close()


def test_curve_allows_remote_bind_without_insecure(curve_keys, caplog):
    cfg = PublisherConfig("tcp://0.0.0.0:5555", "tcp://0.0.0.0:5556",
                          curve_secret_key_file=curve_keys / "server.key_secret",
                          curve_allowed_clients_file=curve_keys / "allowed")
    assert cfg.curve and not cfg.insecure
    with pytest.raises(ValueError, match="both"):
        PublisherConfig(curve_secret_key_file=curve_keys / "server.key_secret")
    with pytest.raises(ValueError, match="no such file"):
        PublisherConfig(curve_secret_key_file=curve_keys / "nope.key_secret",
                        curve_allowed_clients_file=curve_keys / "allowed")
    with pytest.raises(ValueError, match="no secret key"):  # the public file by mistake
        Publisher(PublisherConfig(f"tcp://127.0.0.1:{free_port()}",
                                  f"tcp://127.0.0.1:{free_port()}",
                                  curve_secret_key_file=curve_keys / "server.key",
                                  curve_allowed_clients_file=curve_keys / "allowed"))


# -- the demo's --publish ---------------------------------------------------------------------
def test_demo_flags(tmp_path):
    from realtime.cli.demo import parse_args

    cfg = parse_args(["--publish", "tcp://127.0.0.1:6000", "--insecure"]).app.publish
    assert cfg.endpoint == "tcp://127.0.0.1:6000" and cfg.insecure
    assert cfg.topology_endpoint == "tcp://127.0.0.1:6001"
    assert parse_args([]).app.publish is None
    assert PublisherConfig.for_endpoint("ipc:///tmp/h").topology_endpoint == "ipc:///tmp/h.topology"
    secret, clients = tmp_path / "server.key_secret", tmp_path / "clients"
    secret.write_text("x")
    clients.mkdir()
    cfg = parse_args(["--publish", "tcp://0.0.0.0:6000", "--curve-keys", str(secret),
                      "--allowed-clients", str(clients)]).app.publish
    assert cfg.curve_secret_key_file == secret and cfg.curve_allowed_clients_file == clients
    assert not cfg.insecure and cfg.curve
    with pytest.raises(ValueError, match="--publish"):
        parse_args(["--publish", "tcp://127.0.0.1"])  # no port: no topology endpoint


def test_demo_publishes_hands(tmp_path):
    import threading

    from realtime.cli.demo import main
    from realtime.io.sample import SAMPLE_VIDEO

    port = free_port()
    endpoints = (f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}")
    got, codes = [], []
    client = HandClient(endpoints[0], ("joints",), endpoints[1])
    run = threading.Thread(target=lambda: codes.append(main([
        "--source", str(SAMPLE_VIDEO), "--output", str(tmp_path), "--headless", "--no-video",
        "--max-frames", "30", "--realtime", "--publish", endpoints[0]])))
    run.start()
    try:
        deadline = time.monotonic() + 60
        while run.is_alive() and time.monotonic() < deadline:
            msg = client.recv(100)
            if msg is not None:
                got.append(msg)
        run.join(30)
    finally:
        client.close()
    assert codes == [0]
    assert got and any(m.hands for m in got)
    assert all(m.topic == "joints" for m in got)


def test_demo_refuses_remote_publish_without_insecure(tmp_path, capsys):
    from realtime.cli.demo import main
    from realtime.io.sample import SAMPLE_VIDEO

    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(tmp_path), "--headless",
                 "--no-video", "--max-frames", "2", "--publish", "tcp://0.0.0.0:5555"])
    assert code == 2 and "--insecure" in capsys.readouterr().err


def test_non_finite_numbers_are_sent_as_null(publisher, endpoints, model):
    hand = make_hand(model)
    hand = HandMesh(**{**hand.__dict__, "score": float("nan"),
                       "reprojection_error_px": float("inf")})
    packet = make_packet([hand])
    packet = Packet(packet.frame, float("nan"), (), packet.hands)
    with connect(endpoints) as client:
        msg = publish_until(publisher, client, packet)
    assert msg.header["t_capture"] is None
    assert msg.hands[0]["score"] is None and msg.hands[0]["reprojection_error_px"] is None
    np.testing.assert_allclose(msg.hands[0]["vertices"], hand.vertices, atol=1e-6)


@pytest.mark.parametrize("ep,want", [("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556"),
                                     ("tcp://[::1]:7000", "tcp://[::1]:7001"),
                                     ("ipc:///tmp/hands", "ipc:///tmp/hands.topology")])
def test_topology_endpoint_convention(ep, want):
    assert protocol.topology_endpoint_for(ep) == want
    with HandClient(ep) as client:
        assert client.topology_endpoint == want


def test_sender_thread_publishes_every_frame_in_order(endpoints, model):
    hands = [make_hand(model, "right", 1), make_hand(model, "left", 2)]
    with Publisher(PublisherConfig(*endpoints, sender_thread=True, sender_queue=64),
                   model) as pub:
        with connect(endpoints) as client:
            first = publish_until(pub, client, make_packet(hands))
            assert pub.flush()
            while client.recv(100) is not None:  # whatever the warm-up left
                pass
            for i in range(50):
                pub.write(make_packet(hands, index=i))
            assert pub.flush()
            got = [client.recv(1000) for _ in range(50)]
        assert all(m is not None for m in got)
        assert [m.seq for m in got] == list(range(got[0].seq, got[0].seq + 50))
        assert [m.header["frame_index"] for m in got] == list(range(50))
        np.testing.assert_allclose(got[-1].hands[1]["vertices"], hands[1].vertices, atol=1e-6)
        assert first.topic == "hands" and pub.sender_cpu_s > 0
        t = time.monotonic()
    assert time.monotonic() - t < 2.0  # close stops the sender thread promptly


def test_sender_thread_drops_oldest_when_behind(endpoints, model):
    with Publisher(PublisherConfig(*endpoints, sender_thread=True, sender_queue=1),
                   model) as pub:
        for i in range(200):
            pub.write(make_packet([make_hand(model)], index=i))
        assert pub.flush()
        # every frame was either published (no subscriber: counted, not built) or dropped
        assert pub.status()["frames"] + pub.dropped["hands"] == 200
