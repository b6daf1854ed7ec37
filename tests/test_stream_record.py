"""Recording the published stream to a file and replaying it: real sockets on 127.0.0.1."""

from __future__ import annotations

import struct
import threading
import time

import numpy as np
import pytest

from models.hand_model import HandModel
from realtime.cli.stream import main as stream_main
from realtime.stream import protocol
from realtime.stream.client import HandClient
from realtime.stream.publisher import Publisher, PublisherConfig
from realtime.stream.record import record
from realtime.stream.replay import ReplayConfig, first_topology, replay
from realtime.stream.stream_file import StreamFileError, StreamWriter, read_stream, scan
from tests.test_stream import free_port, make_hand, make_packet


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def endpoints():
    return f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"


def record_in_thread(ep, path, stop, topics=("hands", "topology")):
    client = HandClient(ep[0], topics, ep[1])
    writer = StreamWriter(path)
    box = {}

    def run():
        box["n"] = record(client, writer, stop)
        writer.close()
        client.close()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.4)  # connected and subscribed before the first message
    return t, box


def test_file_round_trip_and_torn_tail(tmp_path):
    path = tmp_path / "run.hmstream"
    msgs = [bytes([i]) * (i * 100 + 1) for i in range(5)]
    with StreamWriter(path) as w:
        for i, m in enumerate(msgs):
            w.write(m, t_receive=100.0 + i)
    got = list(read_stream(path))
    assert [r.message for r in got] == msgs and [r.t_receive for r in got] == [100.0 + i
                                                                              for i in range(5)]
    # a crash in the middle of the next record: the reader ignores it
    full = path.read_bytes()
    with open(path, "ab") as f:  # a record header announcing 1000 bytes, then 14 of them
        f.write(struct.pack("<IdI", 1000, 105.0, 0) + b"x" * 14)
    scanned = scan(path)
    assert len(scanned.records) == 5 and scanned.torn == 30 and scanned.end == len(full)
    assert [r.message for r in read_stream(path)] == msgs
    # a flipped byte in the last record: CRC mismatch, the four before survive
    bad = bytearray(full)
    bad[-1] ^= 0xFF
    (tmp_path / "bad.hmstream").write_bytes(bytes(bad))
    assert [r.message for r in read_stream(tmp_path / "bad.hmstream")] == msgs[:4]
    # appending after a crash cuts the torn tail first: every record stays reachable
    with StreamWriter(path) as w:
        w.write(b"after the crash", t_receive=200.0)
    assert [r.message for r in read_stream(path)] == msgs + [b"after the crash"]


def test_not_a_recording_is_refused(tmp_path):
    path = tmp_path / "x.hmstream"
    path.write_bytes(b"hello, not a stream")
    with pytest.raises(StreamFileError, match="not a stream recording"):
        list(read_stream(path))
    with pytest.raises(StreamFileError):
        StreamWriter(path)


def test_record_then_replay_is_byte_identical(tmp_path, model):
    hands = [make_hand(model, "right", 1), make_hand(model, "left", 2)]
    ep = endpoints()
    path = tmp_path / "live.hmstream"
    stop = threading.Event()
    with Publisher(PublisherConfig(*ep, mode="rigged"), model) as pub:
        t, box = record_in_thread(ep, path, stop)
        for i in range(40):
            pub.write(make_packet(hands, index=i))
            time.sleep(1 / 120)
        time.sleep(0.3)
        stop.set()
        t.join(5)
    recorded = [r.message for r in read_stream(path)]
    assert box["n"] == len(recorded)
    assert protocol.peek_topic(recorded[0]) == b"topology"  # asked for at the start
    live_hands = [m for m in recorded if protocol.peek_topic(m) == b"hands"]
    assert [protocol.decode(m).seq for m in live_hands] == list(range(1, 41))
    rec_t = [r.t_receive for r in read_stream(path)]

    # replay into a fresh publisher; a second recorder sees exactly the same messages
    ep2 = endpoints()
    path2 = tmp_path / "replayed.hmstream"
    stop2 = threading.Event()
    with Publisher(PublisherConfig(*ep2), topology=first_topology(path)) as pub2:
        with HandClient(ep2[0], ("hands",), ep2[1]) as late:
            assert late.topology_raw() == recorded[0]  # the recorded topology, on request
        t2, box2 = record_in_thread(ep2, path2, stop2, topics=("hands",))
        t0 = time.monotonic()
        sent = replay(path, pub2, ReplayConfig(start_delay_s=0.0))
        took = time.monotonic() - t0
        time.sleep(0.3)
        stop2.set()
        t2.join(5)
    assert sent == len(recorded)
    replayed = [r.message for r in read_stream(path2)]
    assert replayed[0] == recorded[0]  # the topology the replaying publisher serves
    assert replayed[1:] == live_hands  # byte for byte: header, sequence, timestamps, payload
    assert took >= 0.8 * (rec_t[-1] - rec_t[0])  # original speed, not as fast as possible


def test_record_cli_and_missing_publisher(tmp_path, model, capsys):
    ep = endpoints()
    out = tmp_path / "cli.hmstream"
    with Publisher(PublisherConfig(*ep), model) as pub:
        done = threading.Thread(target=stream_main, args=(
            ["record", "--connect", ep[0], "--topology-endpoint", ep[1], "--out", str(out),
             "--count", "5", "--duration", "20"],))
        done.start()
        deadline = time.monotonic() + 15
        while done.is_alive() and time.monotonic() < deadline:
            pub.write(make_packet([make_hand(model)]))
            time.sleep(0.02)
        done.join(5)
    msgs = [r.message for r in read_stream(out)]
    assert sum(protocol.peek_topic(m) == b"hands" for m in msgs) == 5
    decoded = [protocol.decode(m) for m in msgs]
    hand = next(d for d in decoded if d.topic == "hands").hands[0]
    np.testing.assert_allclose(hand["vertices"], make_hand(model).vertices, atol=1e-6)
    assert "wrote" in capsys.readouterr().out


def test_replay_cli(tmp_path, model, capsys):
    path = tmp_path / "short.hmstream"
    topo_pub = Publisher(PublisherConfig(*endpoints()), model)
    with StreamWriter(path) as w:
        w.write(topo_pub.topology_message(), 10.0)
        for i, t in enumerate((10.0, 10.05, 10.1)):
            w.write(protocol.encode(b"hands", {"seq": i + 1, "hands": []}), t)
    topo_pub.close()

    port = free_port()
    assert stream_main(["replay", str(path), "--publish", f"tcp://127.0.0.1:{port}",
                        "--topology-endpoint", f"tcp://127.0.0.1:{free_port()}"]) == 0
    out = capsys.readouterr().out
    assert "replaying 4 messages" in out and "sent 4 messages" in out
    assert stream_main(["replay", str(tmp_path / "missing.hmstream")]) == 2
