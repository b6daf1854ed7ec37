"""Rogue peers against every network surface, over real sockets on 127.0.0.1.

The fusion node, the publisher's topology port and ``handmesh-stream listen`` run as real
processes; the attacks are ``benchmarks.hostile_cases.network`` (the benchmark runs the same
ones). What is asserted: the process survives, keeps serving the legitimate peers, counts
what it dropped (per source for the fusion node), and its memory stays bounded. Every wait
is bounded; nothing here is a timing threshold.
"""

from __future__ import annotations

import json
import signal
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import zmq

from benchmarks.hostile_cases import network as hn
from calibration.multiview import HandView
from realtime.multiview.landmark_stream import (
    MAX_FUSED_HANDS,
    MAX_LANDMARKS_BYTES,
    FusionNode,
    LandmarkFrame,
    LandmarkSubscriber,
    decode_landmarks,
)
from realtime.stream import protocol
from realtime.stream.client import HandClient

MEMORY_BOUND_MB = 100  # the target for any surface, over the idle process


@pytest.fixture(scope="module")
def rig():
    return hn.test_rig(2)


@pytest.fixture(scope="module")
def hand():
    return hn.hand_points()


def _is_stats(line: str) -> bool:
    return line.startswith("stats ")


def _legit(stats: dict) -> int:
    return sum(stats["frames_fused"].get(str(c), 0) for c in (0, 1))


def _start_fusion(rig, hand, tmp_path: Path, extra=("--print",)):
    """Two legitimate camera nodes, one rogue PUB, and the fusion node connected to all
    three; returns once the node fused both legitimate cameras."""
    ctx = zmq.Context.instance()
    cams = hn.CameraNodes(rig, hand, fps=15.0, ctx=ctx)
    rogue = ctx.socket(zmq.PUB)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.bind("tcp://127.0.0.1:*")
    rogue_ep = rogue.getsockopt(zmq.LAST_ENDPOINT).decode()
    node = hn.start_fuse(hn.write_rig(tmp_path / "rig.json", rig),
                         cams.endpoints + [rogue_ep], seconds=120, fit=True,
                         stats_every=0.3, extra=extra)
    end = time.monotonic() + 90
    while time.monotonic() < end and node.alive():
        line = node.wait_line(_is_stats, 1.0)
        if line and all(hn.parse_stats(line)["frames_fused"].get(str(c)) for c in (0, 1)):
            return cams, rogue, rogue_ep, node
    node.proc.kill()
    node.finish(5)
    cams.close()
    rogue.close(linger=0)
    pytest.fail("the fusion node never fused the two legitimate cameras: "
                + " / ".join(node.err[-3:]))


def _stop_fusion(cams, rogue, node) -> int | None:
    if node.alive():
        node.proc.send_signal(signal.SIGINT)
    code = node.finish(20)
    cams.close()
    rogue.close(linger=0)
    return code


# -- (a) the fusion node ----------------------------------------------------------------------
def test_fusion_node_drops_every_crafted_message_per_source_and_keeps_fusing(
        rig, hand, tmp_path):
    cases = hn.landmark_cases(rig, hand)
    in_limit = [m for _, m in cases if len(m) < MAX_LANDMARKS_BYTES]
    oversized = [m for _, m in cases if len(m) >= MAX_LANDMARKS_BYTES]
    cams, rogue, rogue_ep, node = _start_fusion(rig, hand, tmp_path)

    def rogue_stats() -> dict:
        return hn.parse_stats(node.fresh_line(_is_stats, 5.0))["sources"][rogue_ep]

    try:
        for _ in range(5):  # rounds: the rogue's subscription may still be on its way
            for m in in_limit:
                rogue.send(m)
            time.sleep(0.5)
            if rogue_stats()["dropped"] >= len(in_limit):
                break
        # over 64 kB: ZeroMQ drops the connection (and what was queued on it); the node
        # connects again, and the rogue's next messages are counted again
        for m in oversized:
            rogue.send(m)
        for _ in range(20):
            st = rogue_stats()
            if st["reconnects"] >= 1:
                break
        dropped = st["dropped"]
        for _ in range(10):
            rogue.send(in_limit[0])
            time.sleep(0.3)
            if rogue_stats()["dropped"] > dropped:
                break
        stats = hn.parse_stats(node.fresh_line(_is_stats, 5.0))
        before = _legit(stats)
        later = hn.parse_stats(node.fresh_line(_is_stats, 5.0))
        for _ in range(10):  # the legitimate cameras keep being fused after the attack
            if _legit(later) > before:
                break
            later = hn.parse_stats(node.fresh_line(_is_stats, 5.0))
        assert node.alive(), node.err[-5:]
    finally:
        code = _stop_fusion(cams, rogue, node)
    src = later["sources"]
    assert src[rogue_ep]["accepted"] == 0
    assert src[rogue_ep]["dropped"] > len(in_limit)  # each crafted message counted
    assert src[rogue_ep]["reconnects"] >= 1  # the 64 kB+ ones: dropped by ZeroMQ, not fatal
    assert src[rogue_ep]["last_error"]
    for ep in cams.endpoints:  # the legitimate sources: nothing dropped, still accepted
        assert src[ep]["dropped"] == 0 and src[ep]["accepted"] > 0
    assert _legit(later) > before
    assert code == 0 and not node.traceback(), node.err[-5:]
    # never garbage out: every fused frame has one hand, its wrist where the hand is
    fused = [ln for ln in node.out if "views" in ln]
    assert fused
    want = np.round(hand[0] * 100, 1)
    for line in fused:
        assert line.count("views") == 1, line
        wrist = json.loads(line.split("wrist ")[1].split(" cm")[0])
        assert np.abs(np.asarray(wrist) - want).max() < 1.0, line


def test_fusion_node_under_flood_keeps_fusing_with_bounded_memory(rig, hand, tmp_path):
    flood = [m for _, m in hn.landmark_cases(rig, hand) if len(m) < MAX_LANDMARKS_BYTES]
    cams, rogue, rogue_ep, node = _start_fusion(rig, hand, tmp_path, extra=())
    try:
        node.mark_idle()
        start = hn.parse_stats(node.fresh_line(_is_stats, 5.0))
        end = time.monotonic() + 3.0
        i = 0
        while time.monotonic() < end:  # thousands of bad messages a second
            for _ in range(50):
                try:
                    rogue.send(flood[i % len(flood)], zmq.NOBLOCK)
                except zmq.Again:
                    pass
                i += 1
            node.sample()
            time.sleep(0.005)
        stats = hn.parse_stats(node.fresh_line(_is_stats, 5.0))
        growth = node.growth_mb()
        assert node.alive(), node.err[-5:]
    finally:
        code = _stop_fusion(cams, rogue, node)
    assert stats["sources"][rogue_ep]["dropped"] > 1000
    assert stats["sources"][rogue_ep]["accepted"] == 0
    assert _legit(stats) > _legit(start)  # fused during the flood
    assert growth < MEMORY_BOUND_MB
    assert code == 0 and not node.traceback()


@pytest.mark.parametrize("name", [n for n, _ in hn.landmark_cases(hn.test_rig(2),
                                                                   hn.hand_points())
                                  if n != "impersonation"])
def test_decode_landmarks_refuses(name, rig, hand):
    msg = dict(hn.landmark_cases(rig, hand))[name]
    with pytest.raises(protocol.ProtocolError) as err:
        decode_landmarks(msg, [c.calibration.size for c in rig])
    assert str(err.value)  # says what was wrong


def test_decode_landmarks_accepts_a_camera_frame(rig, hand):
    f = decode_landmarks(hn.good_landmarks(rig, hand, 1, 9), [c.calibration.size for c in rig])
    assert (f.camera_id, f.frame_index, f.image_size, len(f.views)) == (1, 9, (640, 480), 1)
    assert np.isfinite(f.views[0].uv).all() and f.views[0].score == pytest.approx(0.9)


def test_a_camera_id_belongs_to_the_first_node_that_sends_it(rig, hand):
    """Impersonation: a second endpoint claiming camera 0 is dropped and counted there."""
    ctx = zmq.Context.instance()
    pubs = []
    for _ in range(2):
        p = ctx.socket(zmq.PUB)
        p.setsockopt(zmq.LINGER, 0)
        p.bind("tcp://127.0.0.1:*")
        pubs.append(p)
    eps = [p.getsockopt(zmq.LAST_ENDPOINT).decode() for p in pubs]
    sub = LandmarkSubscriber(eps, image_sizes=[c.calibration.size for c in rig])
    try:
        end = time.monotonic() + 10
        while sub.sources[eps[0]].accepted == 0 and time.monotonic() < end:
            pubs[0].send(hn.good_landmarks(rig, hand, 0, 1))
            sub.receive(50)
        assert sub.sources[eps[0]].camera == 0
        end = time.monotonic() + 10
        while sub.sources[eps[1]].dropped == 0 and time.monotonic() < end:
            pubs[1].send(hn.good_landmarks(rig, hand, 0, 2))  # well formed, but camera 0
            frames = sub.receive(50)
            assert all(f.frame_index != 2 for f in frames)
        assert sub.sources[eps[1]].dropped >= 1 and sub.sources[eps[1]].accepted == 0
        assert "already comes from" in sub.sources[eps[1]].last_error
        assert sub.dropped[eps[1]] == sub.sources[eps[1]].dropped and sub.malformed >= 1
    finally:
        sub.close()
        for p in pubs:
            p.close(linger=0)


def test_a_flooding_source_gets_a_bounded_share_of_each_receive(rig, hand):
    ctx = zmq.Context.instance()
    good, bad = ctx.socket(zmq.PUB), ctx.socket(zmq.PUB)
    for s in (good, bad):
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.bind("tcp://127.0.0.1:*")
    eps = [s.getsockopt(zmq.LAST_ENDPOINT).decode() for s in (good, bad)]
    sub = LandmarkSubscriber(eps, image_sizes=[c.calibration.size for c in rig],
                             max_per_source=8)
    try:
        end = time.monotonic() + 10
        while sub.sources[eps[0]].accepted == 0 and time.monotonic() < end:
            good.send(hn.good_landmarks(rig, hand, 0, 1))
            bad.send(b"landmarks garbage")
            sub.receive(50)
        for _ in range(500):
            bad.send(b"landmarks garbage")
        good.send(hn.good_landmarks(rig, hand, 0, 2))
        time.sleep(0.3)
        dropped = sub.sources[eps[1]].dropped
        frames = sub.receive(100)
        assert sub.sources[eps[1]].dropped - dropped <= 8  # one receive: at most 8 from it
        assert [f.frame_index for f in frames] == [2]  # and the good node is still read
    finally:
        sub.close()
        good.close(linger=0)
        bad.close(linger=0)


def _view_frame(rig, hand, cam: int, world_scale: float = 1.0, n_hands: int = 1,
                frame_index: int = 0) -> LandmarkFrame:
    det = hn.camera_detections(rig, hand, cam)[0]
    views = tuple(HandView(cam, det.landmarks_px, np.ones(21), "right", 0.9,
                           det.world * world_scale) for _ in range(n_hands))
    return LandmarkFrame(cam, frame_index, 0.0, 0.0, (640, 480), views)


def test_fused_hands_are_checked_before_they_leave(rig, hand):
    """Past the message checks (a frame built in-process): a single view whose world
    landmarks are scaled by 1e30 would be placed 1e30 m away; it is dropped and counted."""
    node = FusionNode(rig, fit=False, max_skew_s=1.0)
    node.update(_view_frame(rig, hand, 1, world_scale=1e30), arrival=0.0)
    assert node.fuse() == []
    assert node.stats.implausible_hands + node.stats.fuse_errors >= 1
    node = FusionNode(rig, fit=False, max_skew_s=1.0)
    node.update(_view_frame(rig, hand, 1), arrival=0.0)
    (good,) = node.fuse()
    assert np.abs(good.joints - hand).max() < 1e-3 and node.stats.implausible_hands == 0


def test_fused_hands_per_frame_are_bounded(rig, hand):
    node = FusionNode(rig, fit=False, max_skew_s=1.0)
    node.update(_view_frame(rig, hand, 0, n_hands=20), arrival=0.0)
    hands = node.fuse()
    assert len(hands) == MAX_FUSED_HANDS
    assert node.stats.implausible_hands == 20 - MAX_FUSED_HANDS


# -- (b) the topology port --------------------------------------------------------------------
def test_topology_port_memory_is_bounded_under_request_floods():
    """Ten peers x 2,000 requests never read, a 64 MB request, bad envelopes, raw TCP
    garbage, connection churn: the publisher process stays within 100 MB of idle and a
    legitimate client still gets the topology."""
    ctx = zmq.Context()
    child, ep, tep = hn.start_publisher()
    socks = []
    try:
        time.sleep(0.5)
        child.mark_idle()
        cases, socks = hn.topology_attacks(tep, True, ctx, child.sample)
        assert cases >= 8
        assert hn.legit_topology(ep, tep)  # the flooding peers are still connected
        growth = child.growth_mb()
        assert child.alive()
    finally:
        for s in socks:
            s.close(linger=0)
        ctx.term()
        child.proc.stdin.close()
        child.wait_line(lambda s: s.startswith("counts "), 20)
        code = child.finish(20)
    assert growth < MEMORY_BOUND_MB
    assert code == 0 and not child.traceback()
    counts = json.loads([ln for ln in child.out if ln.startswith("counts ")][-1].split(" ", 1)[1])
    assert counts["answered"] >= 1
    assert counts["refused"] > 10_000  # most of the 20,000 flood requests: rate-limited


def test_topology_requests_are_rate_limited_per_peer(model_publisher):
    pub, ep, tep = model_publisher
    ctx = zmq.Context.instance()
    peer = ctx.socket(zmq.DEALER)
    peer.setsockopt(zmq.LINGER, 0)
    peer.connect(tep)
    try:
        for _ in range(50):
            peer.send_multipart([b"", b"topology"])
        replies = 0
        while peer.poll(1000):
            frames = peer.recv_multipart()
            assert frames[0] == b"" and protocol.decode(frames[1]).topic == "topology"
            replies += 1
    finally:
        peer.close(linger=0)
    assert 1 <= replies <= 10  # the burst allowance (5), plus tokens refilled meanwhile
    # every other request was refused, or answered into a full queue and dropped
    assert pub.topology_refused + pub.topology_reply_dropped + replies >= 45
    assert pub.topology_refused >= 35
    with HandClient(ep, ("hands",), tep) as client:  # a REQ client is its own peer
        assert "faces" in client.topology(3000).arrays
    assert pub.status()["topology_refused"] == pub.topology_refused


def test_topology_reply_is_encoded_once(model_publisher):
    pub, ep, tep = model_publisher
    frame = pub._topology_reply
    with HandClient(ep, ("hands",), tep) as client:
        a = client.topology_raw(3000)
    with HandClient(ep, ("hands",), tep) as client:
        b = client.topology_raw(3000)
    assert a == b == frame.bytes and pub._topology_reply is frame


@pytest.fixture
def model_publisher():
    from models.hand_model import HandModel
    from realtime.stream.publisher import Publisher, PublisherConfig

    port = hn.free_port(pair=True)
    ep, tep = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}"
    pub = Publisher(PublisherConfig(ep, tep), HandModel.open_hand())
    yield pub, ep, tep
    pub.close()


# -- (c) the client decoder -------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n, _ in hn.decoder_cases()])
def test_decoder_refuses(name):
    msg = dict(hn.decoder_cases())[name]
    tracemalloc.start()
    try:
        with pytest.raises(protocol.ProtocolError) as err:
            protocol.decode(msg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(err.value)
    assert peak < 4 << 20  # nothing is copied before the message is known to be sound


def test_aliasing_message_is_refused_naming_the_arrays():
    msg = dict(hn.decoder_cases())["aliasing_200_entries_10mb"]
    with pytest.raises(protocol.MalformedMessage, match="overlaps .* must not share bytes"):
        protocol.decode(msg)


@pytest.mark.parametrize("name, match", [
    ("joints_5x3", r"'joints' has shape \[5, 3\], must be \(21, 3\)"),
    ("handedness_int", r"'handedness' must be \"left\" or \"right\", got 1"),
    ("score_string", r"'score' must be a number or null"),
    ("hands_not_list", r"'hands' must be a list"),
    ("seq_1e400", r"number 1e400 in the header is not finite"),
    ("nan_token", r"NaN in the header"),
])
def test_decoder_says_what_was_wrong(name, match):
    with pytest.raises(protocol.MalformedMessage, match=match):
        protocol.decode(dict(hn.decoder_cases())[name])


def test_legitimate_messages_of_every_topic_still_decode():
    from realtime.stream.texture_topic import decode_texture

    hands = protocol.decode(hn.good_hands_message(3))
    assert hands.hands[0]["joints"].shape == (21, 3)
    tex = protocol.encode(b"texture", {"seq": 1, "t_send": 1.0}, [(
        {"track_id": 1, "handedness": "left", "version": 2},
        {"vertex_colors": np.zeros((5, 3), "<f4"), "vertex_weight": np.zeros(5, "<f4")})])
    assert decode_texture(tex).hands[0]["vertex_colors"].shape == (5, 3)
    status = protocol.encode(b"status", {"seq": 1, "fps": None, "frames": 3,
                                         "sent": {"hands": 2}, "topology_refused": 0})
    assert protocol.decode(status).header["frames"] == 3


def test_client_sockets_carry_the_message_limit():
    with HandClient(f"tcp://127.0.0.1:{hn.free_port()}", max_message_bytes=1 << 20) as c:
        assert c._sub.getsockopt(zmq.MAXMSGSIZE) == (1 << 20) + protocol.TRANSPORT_SLACK_BYTES
    with pytest.raises(ValueError, match="max_message_bytes"):
        HandClient(max_message_bytes=0)


def test_client_survives_a_message_over_its_limit_and_reconnects():
    """ZeroMQ drops the connection on a message over ZMQ_MAXMSGSIZE (and would not come
    back by itself): the client connects again and receives what follows."""
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    ep = f"tcp://127.0.0.1:{hn.free_port()}"
    pub.bind(ep)
    try:
        with HandClient(ep, ("hands",), max_message_bytes=1 << 20) as client:
            end = time.monotonic() + 10
            msg = None
            while msg is None and time.monotonic() < end:
                pub.send(hn.good_hands_message(1))
                msg = client.recv(100)
            assert msg is not None
            pub.send(b"hands " + bytes(8 << 20))  # 8 MB: refused as it arrives
            end = time.monotonic() + 15
            msg = None
            while (msg is None or msg.seq != 2) and time.monotonic() < end:
                pub.send(hn.good_hands_message(2))
                msg = client.recv(100)
            assert msg is not None and msg.seq == 2
            assert client.reconnects >= 1
    finally:
        pub.close(linger=0)


def test_validated_raw_receive_skips_garbage():
    """The recorder's receive: only messages that decode are returned (and written)."""
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    ep = f"tcp://127.0.0.1:{hn.free_port()}"
    pub.bind(ep)
    try:
        with HandClient(ep, ("hands",)) as client:
            bad = dict(hn.decoder_cases())["joints_5x3"]
            end = time.monotonic() + 10
            raw = None
            while raw is None and time.monotonic() < end:
                pub.send(bad)
                pub.send(hn.good_hands_message(1))
                raw = client.recv_raw(200, validate=True)
            assert raw == hn.good_hands_message(1)
            assert client.rejected >= 1 and "shape [5, 3]" in str(client.last_error)
    finally:
        pub.close(linger=0)


# -- (d) handmesh-stream listen ---------------------------------------------------------------
def test_listen_skips_bad_messages_and_prints_good_ones():
    result = hn.stream_listen(quick=True)
    assert result["crashes"] == 0 and result["hangs"] == 0, result
    assert result["good_messages_after_bad"] >= 3
    # every bad message that arrived was counted (the one over 16 MB is refused by ZeroMQ
    # before it arrives, so it is not)
    assert result["skipped"] == result["cases"] - 1
    assert result["peak_growth_mb"] < MEMORY_BOUND_MB


def test_rejections_are_counted_each_but_logged_at_most_once_a_second(caplog):
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    ep = f"tcp://127.0.0.1:{hn.free_port()}"
    pub.bind(ep)
    bad = dict(hn.decoder_cases())["handedness_int"]
    try:
        with HandClient(ep, ("hands",)) as client, caplog.at_level("WARNING"):
            end = time.monotonic() + 10
            while client.received == 0 and time.monotonic() < end:
                pub.send(hn.good_hands_message(1))
                client.recv(100)
            rejected = client.rejected
            t0 = time.monotonic()
            for _ in range(200):
                pub.send(bad)
            pub.send(hn.good_hands_message(2))
            msg = client.recv(5000)
            elapsed = time.monotonic() - t0
    finally:
        pub.close(linger=0)
    assert msg is not None and msg.seq == 2
    assert client.rejected - rejected == 200
    warnings = [r for r in caplog.records if "rejected a message" in r.getMessage()]
    assert 1 <= len(warnings) <= 1 + elapsed  # one a second at most (not one per message)
