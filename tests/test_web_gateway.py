"""The WebSocket gateway (``--web``): real websockets clients on 127.0.0.1, a real publisher.

What a browser or engine may rely on (the same bytes as ZeroMQ, topology on connect, topic
subscription) and what a hostile one cannot do (garbage, huge frames, a wrong token, a
thousand connect/disconnect cycles, never reading): it is dropped with a reason, the
publisher goes on, memory stays flat.
"""

from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from models.hand_model import HandModel
from realtime.stream import protocol
from realtime.stream.client import HandClient
from realtime.stream.publisher import Publisher, PublisherConfig
from realtime.stream.web_gateway import WebConfig, parse_web_address
from tests.test_stream import free_port, make_hand, make_packet

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


@pytest.fixture
def two_hands(model):
    return [make_hand(model, "right", 1), make_hand(model, "left", 2)]


def web_publisher(model, **web) -> Publisher:
    return Publisher(PublisherConfig(endpoint=None, topology_endpoint=None,
                                     web=WebConfig(port=0, **web)), model)


def ws_url(pub: Publisher, query: str = "") -> str:
    return f"ws://127.0.0.1:{pub.web.port}/ws" + (f"?{query}" if query else "")


def wait_for(pred, timeout_s: float = 5.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def recv_topic(ws, topic: bytes, timeout: float = 5.0) -> bytes:
    end = time.monotonic() + timeout
    while True:
        msg = ws.recv(timeout=max(0.01, end - time.monotonic()))
        if protocol.peek_topic(msg) == topic:
            return msg


def publish_until(pub, hands, ws, n_max: int = 50) -> bytes:
    """Publish frames until the client gets a ``hands`` message (the publisher reads
    subscriptions every 0.1 s, so the first frames after connecting may not be built)."""
    for i in range(n_max):
        pub.write(make_packet(hands, i))
        try:
            return recv_topic(ws, protocol.TOPIC_HANDS, timeout=0.05)
        except TimeoutError:
            continue
    raise AssertionError("no hands message reached the WebSocket client")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def test_parse_web_address():
    assert parse_web_address("8080") == ("127.0.0.1", 8080)
    assert parse_web_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_web_address("[::1]:9000") == ("::1", 9000)
    for bad in ("x", "70000", "host:", "-1"):
        with pytest.raises(ValueError):
            parse_web_address(bad)


def test_remote_bind_needs_a_token():
    with pytest.raises(ValueError, match="without a token"):
        WebConfig(host="0.0.0.0", port=0)
    WebConfig(host="0.0.0.0", port=0, token="a-long-secret")  # accepted
    with pytest.raises(ValueError, match="at least 8"):
        WebConfig(host="127.0.0.1", port=0, token="short")


def test_topology_on_connect_and_the_same_bytes_as_zeromq(model, two_hands):
    """With --publish and --web, a ZeroMQ subscriber and a WebSocket client receive the
    identical message, one WebSocket binary message per ZeroMQ frame."""
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub = Publisher(PublisherConfig(endpoint=ep, topology_endpoint=f"tcp://127.0.0.1:"
                                    f"{free_port()}", web=WebConfig(port=0)), model)
    try:
        with HandClient(ep, ("hands",), pub.config.topology_endpoint) as zc, \
                connect(ws_url(pub, "topics=hands,topology")) as ws:
            topo = ws.recv(timeout=5)
            assert protocol.peek_topic(topo) == protocol.TOPIC_TOPOLOGY
            assert protocol.decode(topo).header["hand_model_sha256"] == model.data.sha256
            assert np.array_equal(protocol.decode(topo).arrays["faces"], model.data.faces)
            time.sleep(0.3)  # both subscriptions seen by the publisher
            got_ws = publish_until(pub, two_hands, ws)
            seq = protocol.decode(got_ws).seq
            assert zc._sub.poll(5000), "the ZeroMQ subscriber got nothing"
            raw = zc._sub.recv()  # the raw ZeroMQ frame of the same frame number
            while protocol.decode(raw).seq < seq:
                assert zc._sub.poll(5000)
                raw = zc._sub.recv()
            assert raw == got_ws
    finally:
        pub.close()


def test_web_only_publisher_sends_what_it_encodes(model, two_hands):
    """Without ZeroMQ endpoints (--web alone) the bytes are exactly the encoded message."""
    pub = web_publisher(model)
    try:
        with connect(ws_url(pub, "topics=hands")) as ws:
            assert wait_for(lambda: pub.web.wants("hands"))
            time.sleep(0.15)
            got = publish_until(pub, two_hands, ws)
            dec = protocol.decode(got)
            expected, _ = pub.messages(make_packet(two_hands, 999), joints=False)
            # the same layout (only seq/time differ): same length, same arrays
            assert len(got) == len(expected)
            assert np.allclose(dec.hands[0]["vertices"], two_hands[0].vertices, atol=1e-6)
            assert dec.hands[1]["handedness"] == "left"
            # counted after ws.send returns, which may be after the client has it
            assert pub.web.clients == 1 and wait_for(lambda: pub.web.sent >= 1)
    finally:
        pub.close()


def test_subscription_filters_topics(model, two_hands):
    pub = web_publisher(model)
    try:
        with connect(ws_url(pub, "topics=status")) as ws:
            for i in range(5):
                pub.write(make_packet(two_hands, i))
            pub._publish_status()
            msg = ws.recv(timeout=5)
            assert protocol.peek_topic(msg) == protocol.TOPIC_STATUS
            ws.send(json.dumps({"subscribe": ["joints"]}))
            assert wait_for(lambda: pub.web.wants("joints") and not pub.web.wants("status"))
            time.sleep(0.15)
            for i in range(20):
                pub.write(make_packet(two_hands, 10 + i))
                time.sleep(0.01)
            msg = ws.recv(timeout=5)
            assert protocol.peek_topic(msg) == protocol.TOPIC_JOINTS
            assert "vertices" not in protocol.decode(msg).hands[0]
    finally:
        pub.close()


def test_token(model):
    pub = web_publisher(model, token="correct-horse")
    try:
        for query, headers in (("", None), ("token=wrong-horse-", None),
                               ("", {"Authorization": "Bearer nope-nope"})):
            with pytest.raises(InvalidStatus) as err:
                connect(ws_url(pub, query), additional_headers=headers)
            assert err.value.response.status_code == 401
        assert pub.web.dropped["wrong or missing token"] == 3
        # the page is public code (no data): it loads, and passes its ?token= to the socket
        page = urllib.request.urlopen(f"http://127.0.0.1:{pub.web.port}/?token=x").read()
        assert b"viewer.js" in page
        with connect(ws_url(pub, "token=correct-horse&topics=topology")) as ws:
            assert protocol.peek_topic(ws.recv(timeout=5)) == protocol.TOPIC_TOPOLOGY
        with connect(ws_url(pub, "topics=topology"),
                     additional_headers={"Authorization": "Bearer correct-horse"}) as ws:
            assert protocol.peek_topic(ws.recv(timeout=5)) == protocol.TOPIC_TOPOLOGY
    finally:
        pub.close()


@pytest.mark.parametrize("bad, reason", [
    (b"\x00\x01binary", "binary message"),
    ("{not json", "not JSON"),
    ('["a list"]', "not a control message"),
    ('{"subscribe": ["hands", "secrets"]}', "unknown topic"),
    ('{"echo": {"seq": "1"}}', "echo: expected"),
    ("x" * 10_000, "message too big"),
])
def test_bad_messages_drop_the_client_not_the_gateway(model, two_hands, bad, reason):
    pub = web_publisher(model)
    try:
        with connect(ws_url(pub, "topics=topology"), max_size=None) as ws:
            ws.recv(timeout=5)
            ws.send(bad)
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=5)
        assert wait_for(lambda: sum(v for k, v in pub.web.dropped.items() if reason in k) == 1)
        assert wait_for(lambda: pub.web.clients == 0)
        with connect(ws_url(pub, "topics=hands")) as ws2:  # the next client is served
            assert wait_for(lambda: pub.web.wants("hands"))
            time.sleep(0.15)
            publish_until(pub, two_hands, ws2)
    finally:
        pub.close()


def test_flood_of_control_messages_is_cut_off(model):
    pub = web_publisher(model, max_messages_per_s=50)
    try:
        with connect(ws_url(pub, "topics=topology")) as ws, pytest.raises(ConnectionClosed):
            for _ in range(5000):
                ws.send('{"subscribe": ["topology"]}')
                time.sleep(0)
            ws.recv(timeout=5)
            ws.recv(timeout=5)
        assert wait_for(lambda: pub.web.dropped["too many messages"] == 1)
    finally:
        pub.close()


def test_unknown_path_and_raw_garbage(model, two_hands):
    pub = web_publisher(model)
    try:
        for path in ("/../../etc/passwd", "/nope.js", "/ws/../secret"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{pub.web.port}{path}")
            assert err.value.code in (400, 404)
        for garbage in (b"\x16\x03\x01\x02\x00" + bytes(range(256)) * 4, b"GET /ws\r\n\r\n",
                        b"A" * 70_000 + b"\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", pub.web.port), timeout=5) as s:
                s.sendall(garbage)
                s.settimeout(5)
                try:
                    while s.recv(4096):
                        pass
                except (ConnectionResetError, TimeoutError):
                    pass
        with connect(ws_url(pub, "topics=hands")) as ws:  # still serving
            assert wait_for(lambda: pub.web.wants("hands"))
            time.sleep(0.15)
            publish_until(pub, two_hands, ws)
    finally:
        pub.close()


def test_stalled_client_loses_frames_never_the_publisher(model, two_hands):
    """A client that connects and never reads: the publisher keeps publishing (latest-only
    for that client), a reading client gets the newest frames, memory stays bounded."""
    pub = web_publisher(model, write_limit=64 << 10)
    stalled = socket.create_connection(("127.0.0.1", pub.web.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /ws?topics=hands HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n")
    try:
        assert wait_for(lambda: pub.web.clients == 1)
        time.sleep(0.15)
        for i in range(200):  # fill every buffer the stalled client has
            pub.write(make_packet(two_hands, i))
        gc.collect()
        before = rss_mb()
        n = 3000
        for i in range(n):
            pub.write(make_packet(two_hands, 200 + i))
        gc.collect()
        growth = rss_mb() - before
        assert pub.status()["frames"] == n + 200  # every frame published, none waited
        with connect(ws_url(pub, "topics=hands")) as ws:
            time.sleep(0.3)
            got = publish_until(pub, two_hands, ws)
            assert protocol.decode(got).seq > n  # the newest, not a backlog
        assert growth < 20, f"publisher grew by {growth:.1f} MB with a stalled client"
    finally:
        stalled.close()
        pub.close()


def test_a_thousand_connect_disconnect_cycles():
    """Against a publisher in another process (publishing at 30 Hz all along): a thousand
    clients come and go, half of them abruptly; it keeps publishing, holds no client
    afterwards, and its memory stays flat (measured on its process, not on the clients')."""
    server = subprocess.Popen([sys.executable, "-m", "tests.web_gateway_server"], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(server.stdout.readline())

        def server_rss_mb() -> float:
            with open(f"/proc/{server.pid}/status") as f:
                return next(int(line.split()[1]) for line in f
                            if line.startswith("VmRSS:")) / 1024.0

        def cycles(n):
            for i in range(n):
                if i % 2:
                    with connect(f"ws://127.0.0.1:{port}/ws?topics=topology") as ws:
                        assert protocol.peek_topic(ws.recv(timeout=5)) == b"topology"
                else:  # abrupt: TCP closed without a close frame, mid-stream
                    with connect(f"ws://127.0.0.1:{port}/ws?topics=hands") as ws:
                        ws.socket.close()
        cycles(200)  # warm: buffers, caches and the allocator's arenas settle
        time.sleep(0.5)
        before = server_rss_mb()
        cycles(1000)
        time.sleep(0.5)
        growth = server_rss_mb() - before
        with connect(f"ws://127.0.0.1:{port}/ws?topics=hands") as ws:  # still publishing
            assert protocol.decode(ws.recv(timeout=5)).topic == "hands"
        server.stdin.close()
        counts = json.loads(server.stdout.readline())
        assert server.wait(timeout=10) == 0
        assert counts["connections"] == 1201 and counts["clients"] == 0
        assert growth < 5, f"the publisher grew by {growth:.1f} MB over 1000 connections"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_echo_records_latency(model, two_hands):
    pub = web_publisher(model)
    try:
        with connect(ws_url(pub, "topics=hands")) as ws:
            assert wait_for(lambda: pub.web.wants("hands"))
            time.sleep(0.15)
            seq = protocol.decode(publish_until(pub, two_hands, ws)).seq
            ws.send(json.dumps({"echo": {"seq": seq, "t_render_ms": time.time() * 1000}}))
            ws.send(json.dumps({"echo": {"seq": 10**9, "t_render_ms": 0}}))  # never sent
            assert wait_for(lambda: len(pub.web.echoes) == 1)
            got_seq, t_render, t_pub, t_echo = pub.web.echoes[0]
            assert got_seq == seq and t_pub <= t_render <= t_echo
    finally:
        pub.close()


def test_cli_refuses_remote_web_without_token(tmp_path):
    out = subprocess.run([sys.executable, "run_demo.py", "--web", "0.0.0.0:0",
                          "--output", str(tmp_path), "--headless"], cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2
    assert out.stderr.startswith("error: --web 0.0.0.0:0") and "token" in out.stderr
    assert "Traceback" not in out.stderr


def test_stream_replay_serves_the_recording_byte_for_byte(model, two_hands, tmp_path):
    """``handmesh-stream replay FILE --web PORT`` (no ZeroMQ): a WebSocket client receives
    the recorded messages exactly as they were recorded."""
    from realtime.cli.stream import main as stream_main
    from realtime.stream.stream_file import StreamWriter

    with web_publisher(model) as pub:
        topo = pub.topology_message()
        frames = [bytes(pub.messages(make_packet(two_hands, i))[0]) for i in range(60)]
    path = tmp_path / "run.hmstream"
    with StreamWriter(path) as w:
        w.write(topo, t_receive=100.0)
        for i, m in enumerate(frames):
            w.write(m, t_receive=100.5 + i / 30)
    port = free_port()
    codes = []
    run = threading.Thread(target=lambda: codes.append(stream_main(
        ["replay", str(path), "--web", f"127.0.0.1:{port}"])))
    run.start()
    got = []
    try:
        end = time.monotonic() + 10
        while True:  # the replay waits 0.5 s before its first message: connect meanwhile
            try:
                ws = connect(f"ws://127.0.0.1:{port}/ws?topics=hands,topology").__enter__()
                break
            except OSError:
                assert time.monotonic() < end, "the replay's gateway never listened"
                time.sleep(0.02)
        with ws:
            assert ws.recv(timeout=5) == topo  # the recording's topology, on connect
            while True:
                try:
                    got.append(ws.recv(timeout=5))
                except (TimeoutError, ConnectionClosed):
                    break
    finally:
        run.join(30)
    assert codes == [0]
    hands = [m for m in got if protocol.peek_topic(m) == b"hands"]
    assert hands == frames[-len(hands):] and len(hands) >= 55  # the same bytes, in order
