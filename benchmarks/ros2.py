"""The ROS 2 output on real Cyclone DDS over loopback: cost, delivery, latency, MCAP.

One run: a two-hand recording (``hands.jsonl``, written by the real ``HandsFileSink`` from
the built-in sample's ground-truth hands, the frames where both hands are present) is
replayed by the real ``HandsFileSource`` (looping) at 30 FPS for ``--seconds`` (20 by
default); each frame goes to a :class:`realtime.ros2.Ros2Sink` (every topic: JointState,
PoseStamped, PoseArray, pinch distance, /tf, and the MarkerArray at its default 10 Hz with
uncertainty colours) and to a :class:`realtime.ros2.McapSink`. A subscriber in another
process (``multiprocessing`` spawn; the ROS 2 types, loopback-only DDS config, woken by a
DDS WaitSet) takes every sample. A second subscriber process is killed (SIGKILL) a third
of the way in: a subscriber that disappears.

- ``dds_frames_ratio``: frames whose every message (each topic's, markers included) reached
  the subscriber, over frames published;
- ``dds_publish_ms``: median wall time of ``Ros2Sink.write`` (build, encode and write every
  topic of the frame) in the publishing thread; p95, mean, the CPU time and the cost of the
  frames that carry markers in the table;
- ``dds_latency_p50_ms``: the subscriber's ``time.time()`` when it took the sample minus
  the header stamp (the capture time on the system clock, ``CLOCK_REALTIME``, which both
  processes of the machine share); over the JointState/PoseStamped/PoseArray/TF messages
  (decoded), and separately for the markers (taken undecoded);
- ``mcap_messages_decoded_ratio``: messages of the MCAP file decoded by mcap_ros2's
  decoder over messages written (the file is finished, then read back whole);
- ``pinch_f1``: from ``benchmarks.pinch.pinch_f1`` (the pinch work) when it is present,
  else null.

Prints a table; the last line is one JSON object. ``--quick``: 3 s (for the tests).

    .venv/bin/python -m benchmarks.ros2 [--quick] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FPS = 30.0


# -- the recording ----------------------------------------------------------------------------
def write_recording(path: Path, model) -> int:
    """A hands.jsonl of the sample clip's true two-hand frames; returns the frame count."""
    from realtime.io.hands_file import HandsFileSink
    from realtime.io.sample import SAMPLE_GT
    from realtime.types import Frame, HandMesh, Packet

    with np.load(SAMPLE_GT) as z:
        gt = {k: z[k] for k in ("present", "height", "width", "vertices", "keypoints", "pose",
                                "shape", "keypoints_2d", "handedness")}  # decompressed once
    both = np.nonzero(gt["present"].all(1))[0]
    image = np.zeros((int(gt["height"]), int(gt["width"]), 3), np.uint8)
    sink = HandsFileSink(path)
    for n, f in enumerate(both):
        t = n / FPS
        hands = tuple(HandMesh(
            vertices=gt["vertices"][f, h], joints=gt["keypoints"][f, h],
            vertex_std=np.full(len(gt["vertices"][f, h]), 0.003), pose=gt["pose"][f, h],
            shape=gt["shape"][f, h], keypoints_2d=gt["keypoints_2d"][f, h],
            handedness=str(gt["handedness"][h]), score=1.0, track_id=h + 1, timestamp=t,
            frame_index=n) for h in range(2))
        sink.write(Packet(Frame(image, n, t), t, (), hands))
    sink.close()
    return len(both)


# -- subscribers (child processes) ------------------------------------------------------------
def stamp_ns_of(data: bytes, nested: bool) -> int:
    """The first header stamp in CDR bytes: at the start (a stamped message), or after the
    sequence count (``nested``: TFMessage, MarkerArray)."""
    off = 8 if nested else 4
    sec, nsec = struct.unpack_from("<iI", data, off)
    return sec * 10**9 + nsec


def subscriber(domain_id: int, topics: dict, ready, done, results) -> None:
    """Takes every sample (undecoded: the stamp is read from the bytes) and records
    (topic, stamp ns or None, latency s); decodes one sample per topic with its ROS 2 type."""
    from realtime.ros2.listen import Listener
    from realtime.ros2.msgs import SPEC, idl_type

    listener = Listener(topics, domain_id)
    ready.set()
    got: list[tuple[str, int | None, float]] = []
    checked = {}
    quiet_since = None
    while True:
        listener.wait(0.1)
        batch = listener.take_raw()
        for topic, data, now in batch:
            short = topics[topic]
            first = SPEC[short][0][0]
            if first == "std_msgs/Header":
                stamp = stamp_ns_of(data, False)
            elif first.endswith("[]") and data[4:8] != b"\0\0\0\0":  # TF, MarkerArray
                stamp = stamp_ns_of(data, True)
            else:
                stamp = None  # std_msgs/Float32, Bool: no header
            got.append((topic, stamp, now - stamp * 1e-9 if stamp is not None else None))
            if topic not in checked:  # decoded after the run (a mesh takes ~0.1 s)
                checked[topic] = data
        if done.is_set():
            quiet_since = quiet_since or time.monotonic()
            if batch:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 0.5:
                break
    checked = {t: type(idl_type(topics[t]).deserialize(d)).__name__ for t, d in checked.items()}
    results.put((got, checked, listener.invalid))


def doomed_subscriber(domain_id: int, topics: dict, ready) -> None:
    """Subscribes to everything and takes nothing; killed mid-run."""
    from realtime.ros2.listen import Listener

    listener = Listener(topics, domain_id)  # noqa: F841 - kept alive until killed
    ready.set()
    while True:
        time.sleep(1)


# -- the run ----------------------------------------------------------------------------------
def run(seconds: float, quick: bool) -> dict:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    from models.hand_model import HandModel
    from realtime.io.sources import SourceConfig, open_source
    from realtime.ros2 import McapConfig, McapSink, Ros2Config, Ros2Sink
    from realtime.types import Packet

    model = HandModel.open_hand()
    tmp = Path(tempfile.mkdtemp(prefix="handmesh_ros2_bench_"))
    recording = tmp / "hands.jsonl"
    n_rec = write_recording(recording, model)
    domain_id = 150 + os.getpid() % 80
    config = Ros2Config(domain_id=domain_id)
    topics = {t.name: t.type for t in config.topics()}
    ctx = mp.get_context("spawn")
    ready, done, results = ctx.Event(), ctx.Event(), ctx.Queue()
    sub = ctx.Process(target=subscriber, args=(domain_id, topics, ready, done, results),
                      daemon=True)
    sub.start()
    doomed_ready = ctx.Event()
    doomed = ctx.Process(target=doomed_subscriber, args=(domain_id, topics, doomed_ready),
                         daemon=True)
    doomed.start()
    assert ready.wait(60) and doomed_ready.wait(60), "subscriber processes did not start"

    sink = Ros2Sink(config, model)
    mcap = McapSink(McapConfig(tmp / "hands.mcap", config), model)
    end = time.monotonic() + 20
    while time.monotonic() < end and not all(sink.writers.matched(t) >= 2 for t in topics):
        time.sleep(0.05)
    matched = min(sink.writers.matched(t) for t in topics)
    frames = int(seconds * FPS)
    sent: list[list[str]] = []
    stamps: list[int] = []

    def on_sent(t: float, names: list[str]) -> None:
        stamps.append(round((t + sink.builder.clock_offset_s) * 1e9))
        sent.append(list(names))

    sink.on_sent = on_sent
    cpu_ms = []
    kill_at = frames // 3
    t0 = time.monotonic() + 0.1
    with open_source(SourceConfig(spec=str(recording), loop=True)) as source:
        for i in range(frames):
            frame = source.read()
            wait = t0 + i / FPS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            now = time.monotonic()
            packet = Packet(frame, now, (), frame.hands or ())
            c0 = time.thread_time()
            sink.write(packet)
            cpu_ms.append((time.thread_time() - c0) * 1e3)
            mcap.write(packet)
            if i == kill_at:
                os.kill(doomed.pid, signal.SIGKILL)
                doomed.join(5)
    sink.flush()
    time.sleep(1.0)
    done.set()
    got, checked, invalid = results.get(timeout=120)
    sub.join(10)
    errors = sink.writers.errors
    publish = np.array(sink.publish_ms)
    send, send_cpu = np.array(sink.send_ms), np.array(sink.send_cpu_ms)
    write_ms = np.array(sink.write_ms)
    dropped = sink.dropped
    sink.close()
    mcap.close()

    # delivery and latency: a frame is complete when each of its stamped messages arrived;
    # the unstamped ones (Float32, Bool) are counted per topic
    markers_topic = config.topic(config.markers_topic)
    received = {(t, s) for t, s, _ in got if s is not None}
    unstamped = {t for t in topics if topics[t] in ("std_msgs/Float32", "std_msgs/Bool")}
    complete = sum(all((t, st) in received for t in f if t not in unstamped)
                   for f, st in zip(sent, stamps))
    n_unstamped_sent = sum(t in unstamped for f in sent for t in f)
    n_unstamped_got = sum(t in unstamped for t, _, _ in got)
    lat_small = np.array([lat for t, s, lat in got if s is not None and t != markers_topic]) * 1e3
    lat_markers = np.array([lat for t, s, lat in got if t == markers_topic]) * 1e3
    marker_frame = np.array([markers_topic in f for f in sent])
    cpu = np.array(cpu_ms)

    # MCAP read back whole
    with open(tmp / "hands.mcap", "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        decoded = 0
        for _schema, _channel, _message, ros in reader.iter_decoded_messages():
            decoded += ros is not None
    mcap_ratio = decoded / mcap.messages if mcap.messages else 0.0

    pinch = pinch_result(quick)
    per_frame_msgs = np.mean([len(f) for f in sent])
    print(f"recording: {n_rec} two-hand frames of the sample (ground truth), looped; "
          f"{frames} frames at {FPS:g} FPS ({seconds:g} s); subscribers matched: {matched}")
    print(f"{'':34s}{'median':>9s}{'p95':>9s}{'mean':>9s}")
    rows = [("loop: publish ms (wall)", publish),
            ("loop: publish ms (thread CPU)", cpu),
            ("sender: ms per frame (wall)", send),
            ("sender: ms per frame (CPU)", send_cpu),
            ("sender: of which DDS writes", write_ms),
            ("sender: frames without markers", send[~marker_frame]),
            ("sender: frames with markers", send[marker_frame]),
            ("sender: before subscriber kill", send[:kill_at]),
            ("sender: after subscriber kill", send[kill_at + 1:]),
            ("latency ms (stamped, decoded)", lat_small),
            ("latency ms (MarkerArray)", lat_markers)]
    for name, v in rows:
        if len(v):
            print(f"{name:34s}{np.median(v):9.3f}{np.percentile(v, 95):9.3f}{v.mean():9.3f}")
    print(f"messages per frame: {per_frame_msgs:.2f}; frames complete at the subscriber: "
          f"{complete}/{frames} (sent {len(sent)}); unstamped (pinch) messages received {n_unstamped_got}/"
          f"{n_unstamped_sent}; dropped by the sender queue: {dropped}; write errors: {errors}; invalid samples: {invalid}; "
          f"decoded with the ROS 2 types: {sorted(set(checked.values()))}")
    print(f"MCAP: {mcap.messages} messages, {decoded} decoded by mcap_ros2, "
          f"{(tmp / 'hands.mcap').stat().st_size / 1e6:.1f} MB")
    print(f"pinch_f1: {pinch['note']}")
    return {
        "dds_frames_ratio": round(complete / frames, 4),
        "dds_unstamped_ratio": round(n_unstamped_got / max(n_unstamped_sent, 1), 4),
        "dds_publish_ms": round(float(np.median(publish)), 4),
        "dds_publish_p95_ms": round(float(np.percentile(publish, 95)), 4),
        "dds_publish_cpu_ms": round(float(np.median(cpu)), 4),
        "dds_send_ms": round(float(np.median(send)), 4),
        "dds_send_cpu_ms": round(float(np.median(send_cpu)), 4),
        "dds_send_marker_frame_ms": round(float(np.median(send[marker_frame])), 4)
        if marker_frame.any() else None,
        "dds_send_after_subscriber_killed_ms": round(float(np.median(send[kill_at + 1:])), 4),
        "dds_frames_dropped_by_sender": dropped,
        "dds_latency_p50_ms": round(float(np.median(lat_small)), 4),
        "dds_latency_p95_ms": round(float(np.percentile(lat_small, 95)), 4),
        "dds_marker_latency_p50_ms": round(float(np.median(lat_markers)), 4)
        if len(lat_markers) else None,
        "mcap_messages_decoded_ratio": round(mcap_ratio, 4),
        "pinch_f1": pinch["value"],
        "frames": len(sent),
        "seconds": seconds,
        "clock": "CLOCK_REALTIME (header stamp = monotonic capture time + offset at start)",
    }


def pinch_result(quick: bool) -> dict:
    """``benchmarks.pinch.pinch_f1`` when the pinch work is merged, else null."""
    try:
        from benchmarks.pinch import pinch_f1
    except ImportError:
        return {"value": None, "note": "null: benchmarks/pinch.py (the pinch work) is not "
                                       "in this branch"}
    out = pinch_f1(quick=quick)
    value = out.get("pinch_f1") if isinstance(out, dict) else out
    return {"value": value, "note": f"{value} ({out})"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=None, help="default 20 (--quick: 3)")
    p.add_argument("--quick", action="store_true", help="3 s instead of 20 (for the tests)")
    a = p.parse_args(argv)
    seconds = a.seconds if a.seconds is not None else (3.0 if a.quick else 20.0)
    result = run(seconds, a.quick)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
