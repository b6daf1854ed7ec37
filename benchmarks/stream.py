"""The ZeroMQ hand stream on real sockets over 127.0.0.1: cost, latency, slow subscribers.

One run, one ``realtime.stream.publisher.Publisher`` in this process, subscribers in their own
processes (``multiprocessing`` spawn: they never share this process's GIL or memory):

1. **without** the slow subscriber: ``--messages`` frames at ``--rate`` Hz, one fast
   subscriber (a ``HandClient`` on ``hands``, decoding every message);
2. **with** it: the same again, plus a deliberately slow subscriber on ``hands`` (RCVHWM 2,
   sleeps ``--slow-sleep`` s between receives).

Every frame is two hands with full meshes (``HandModel.open_hand().forward``, random pose
and shape), so each ``write`` encodes and sends a ``hands`` message (~45 kB); ``joints`` is
built only while someone subscribes to it (XPUB), so phases 1-2 (subscribers on ``hands``,
like a Unity scene) do not build it, and a third, shorter phase adds a ``joints``
subscriber to show what a frame costs with both topics (a table row).

- ``publish_ms``: median time of ``Publisher.write`` (encode + NOBLOCK send of both
  messages) in phase 1; p95 in the table.
- ``latency_p50_ms`` / ``latency_p95_ms``: ``time.monotonic()`` at the fast subscriber after
  decoding minus the header's ``t_publish`` (``CLOCK_MONOTONIC``, the same clock in every
  process of the machine), over both phases.
- ``fast_subscriber_lost``: sequence gaps (missing ``hands`` messages) seen by the fast
  subscriber over both phases; out-of-order arrivals are counted in the table.
- ``loop_time_ratio_with_slow_subscriber``: median ``write`` time in phase 2 over phase 1.
- ``memory_growth_mb``: this (publisher) process's VmRSS after phase 2 minus before
  phase 1 (after a warm-up), from ``/proc/self/status``.

Also, in the same run: what the loop pays with ``PublisherConfig(sender_thread=True)`` (paced,
no subscriber) against inline publishing, and the sender thread's CPU time; without sockets,
the publish cost before this encoder (the
generic ``protocol.encode`` of freshly built arrays, as a ratio), the cost of rigged mode
(``--publish-mode rigged``: skinning for the rigid fit + quaternions), the reference
decoder's error against mesh-mode vertices (pure skinning: the 1 mm target), and the gap
between the rigged mesh and the regressor's own vertices on the sample clip (its
model-free refinement, which rigged mode leaves out).

The target run is 10,000 messages at 60 Hz (167 s per phase, so ~6 min): that is the
default. ``--quick``: 2,000 messages at 200 Hz (~25 s). Prints a table; the last line is
one JSON object. Writes docs/stream_latency.png.

    .venv/bin/python -m benchmarks.stream [--quick] [--messages 10000] [--rate 60]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import socket
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- subscribers (child processes) ------------------------------------------------------------
def fast_subscriber(endpoint: str, topology: str, ready, done, results) -> None:
    from realtime.stream.client import HandClient

    seqs, lat = [], []
    with HandClient(endpoint, ("hands",), topology) as client:
        quiet_since = None
        while True:
            msg = client.recv(100)
            now = time.monotonic()
            if msg is None:
                if done.is_set():
                    quiet_since = quiet_since or now
                    if now - quiet_since > 1.0:
                        break
                continue
            quiet_since = None
            if not ready.is_set():
                ready.set()
            seqs.append(msg.seq)
            lat.append(now - msg.header["t_publish"])
    results.put(("fast", seqs, lat))


def raw_subscriber(endpoint: str, topic: str, name: str, ready, done, results,
                   sleep_s: float = 0.0, rcvhwm: int | None = None) -> None:
    """A plain SUB socket on ``topic``: the sequence numbers it got, reported as ``name``;
    ``sleep_s`` between receives and a small ``rcvhwm`` make it the slow subscriber."""
    import zmq

    from realtime.stream import protocol

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    if rcvhwm is not None:
        sub.setsockopt(zmq.RCVHWM, rcvhwm)
    sub.setsockopt(zmq.SUBSCRIBE, topic.encode() + b" ")
    sub.connect(endpoint)
    seqs = []
    while not done.is_set():
        if sub.poll(100):
            seqs.append(protocol.decode(sub.recv()).seq)
            ready.set()
            if sleep_s:
                time.sleep(sleep_s)
    sub.close(linger=0)
    ctx.term()
    results.put((name, seqs, []))


# -- publisher --------------------------------------------------------------------------------
def make_hands(model, n: int = 2):
    from benchmarks.common import random_hand_mesh

    return tuple(random_hand_mesh(model, side, seed=k, track_id=k + 1, score=0.9,
                                  timestamp=0.0, frame_index=0)
                 for k, side in enumerate(("right", "left")[:n]))


def run_phase(pub, hands, image, n: int, rate: float, start_index: int,
              cpu: list | None = None) -> np.ndarray:
    """Publish ``n`` frames paced at ``rate``; the duration of each ``write``, seconds.

    ``cpu``: filled with each ``write``'s CPU time of this thread (``time.thread_time``),
    which, unlike the wall time, leaves out waiting for a core on a busy machine.
    """
    from realtime.types import Frame, Packet

    costs = np.empty(n)
    period = 1.0 / rate
    t0 = time.monotonic()
    for i in range(n):
        wait = t0 + i * period - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        now = time.monotonic()
        packet = Packet(Frame(image, start_index + i, now, source="bench"), now, (), hands)
        c = time.thread_time()
        t = time.perf_counter()
        pub.write(packet)
        costs[i] = time.perf_counter() - t
        if cpu is not None:
            cpu.append(time.thread_time() - c)
    return costs


def publish_until_ready(pub, hands, image, i: int, ready, who: str) -> int:
    """Publish a frame every 10 ms until ``ready`` is set (a subscriber got one: it is
    connected and subscribed); the next frame index."""
    from realtime.types import Frame, Packet

    deadline = time.monotonic() + 30
    while not ready.is_set():
        if time.monotonic() > deadline:
            raise SystemExit(f"{who} never connected")
        now = time.monotonic()
        pub.write(Packet(Frame(image, i, now, source="bench"), now, (), hands))
        i += 1
        time.sleep(0.01)
    return i


def order_stats(seqs: list[int], lo: int, hi: int) -> tuple[int, int, int]:
    """(received, lost, out of order) among hands sequence numbers lo..hi."""
    got = [s for s in seqs if lo <= s <= hi]
    if not got:
        return 0, hi - lo + 1, 0
    arr = np.asarray(got)
    back = int((np.diff(arr) <= 0).sum())
    lost = (hi - lo + 1) - len(set(got))
    return len(got), lost, back


def ms(x) -> float:
    return round(float(x) * 1000.0, 4)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream", description=__doc__.split(
        "\n")[0])
    p.add_argument("--messages", type=int, default=None, help="frames per phase (10000)")
    p.add_argument("--rate", type=float, default=None, help="frames per second (60)")
    p.add_argument("--quick", action="store_true", help="2000 frames per phase at 200 Hz")
    p.add_argument("--slow-sleep", type=float, default=0.1,
                   help="the slow subscriber's sleep between receives, s (0.1)")
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "stream_latency.png")
    a = p.parse_args(argv)
    a.messages = a.messages or (2000 if a.quick else 10_000)
    a.rate = a.rate or (200.0 if a.quick else 60.0)

    from models.hand_model import HandModel
    from realtime.stream.publisher import Publisher, PublisherConfig

    model = HandModel.open_hand()
    hands = make_hands(model)
    image = np.zeros((480, 640, 3), np.uint8)
    offline = offline_costs(model, hands, image)
    sender = sender_thread_costs(model, hands, image)
    gap = rigged_gap(model)
    ep = f"tcp://127.0.0.1:{free_port()}"
    topo = f"tcp://127.0.0.1:{free_port()}"
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    done_fast, done_slow = ctx.Event(), ctx.Event()
    fast_ready, slow_ready = ctx.Event(), ctx.Event()
    with Publisher(PublisherConfig(ep, topo, topology_every_s=3600, status_every_s=3600),
                   model) as pub:
        fast = ctx.Process(target=fast_subscriber, args=(ep, topo, fast_ready, done_fast, results))
        fast.start()
        # warm-up: until the fast subscriber is connected, then 200 more frames
        i = publish_until_ready(pub, hands, image, 0, fast_ready, "the fast subscriber")
        run_phase(pub, hands, image, 200, 1000.0, i)
        i += 200
        time.sleep(0.5)
        rss0 = rss_mb()
        first_a = pub._seq[b"hands"] + 1
        cpu_a: list[float] = []
        cost_a = run_phase(pub, hands, image, a.messages, a.rate, i, cpu_a)
        i += a.messages
        last_a = pub._seq[b"hands"]
        rss_a = rss_mb()

        slow = ctx.Process(target=raw_subscriber, args=(ep, "hands", "slow", slow_ready,
                                                        done_slow, results, a.slow_sleep, 2))
        slow.start()
        i = publish_until_ready(pub, hands, image, i, slow_ready, "the slow subscriber")
        first_b = pub._seq[b"hands"] + 1
        cost_b = run_phase(pub, hands, image, a.messages, a.rate, i)
        i += a.messages
        last_b = pub._seq[b"hands"]
        rss_b = rss_mb()
        # phase 3 (not in the JSON): both topics subscribed
        done_joints, joints_ready = ctx.Event(), ctx.Event()
        jsub = ctx.Process(target=raw_subscriber, args=(ep, "joints", "joints", joints_ready,
                                                        done_joints, results))
        jsub.start()
        i = publish_until_ready(pub, hands, image, i, joints_ready, "the joints subscriber")
        cost_c = run_phase(pub, hands, image, max(a.messages // 5, 200), a.rate, i)
        done_joints.set()
        joints_got = results.get(timeout=60)
        jsub.join(10)
        done_fast.set()
        got = dict((name, (s, lat)) for name, s, lat in (results.get(timeout=60),))
        done_slow.set()
        got.update({name: (s, lat) for name, s, lat in (results.get(timeout=60),)})
        fast.join(10)
        slow.join(10)
        dropped = dict(pub.dropped)
    rss_end = rss_mb()

    fseq, flat = got["fast"]
    fseq_arr, flat_arr = np.asarray(fseq), np.asarray(flat)
    in_a = (fseq_arr >= first_a) & (fseq_arr <= last_a)
    in_b = (fseq_arr >= first_b) & (fseq_arr <= last_b)
    lat_a, lat_b = flat_arr[in_a], flat_arr[in_b]
    lat_all = np.concatenate([lat_a, lat_b])
    rec_a, lost_a, back_a = order_stats(fseq, first_a, last_a)
    rec_b, lost_b, back_b = order_stats(fseq, first_b, last_b)
    slow_got = [s for s in got["slow"][0] if first_b <= s <= last_b]
    ratio = float(np.median(cost_b) / np.median(cost_a))
    growth = rss_b - rss0

    rows = [
        ("frames per phase, rate", f"{a.messages} at {a.rate:g} Hz "
                                   f"({a.messages / a.rate:.0f} s each)"),
        ("message sizes", "hands ~{:.0f} kB per frame (two full-mesh hands)".format(
            len(pub_messages_size(model, hands)) / 1024)),
        ("publish (write) ms, no slow sub", f"median {ms(np.median(cost_a)):.3f}, "
                                            f"p95 {ms(np.percentile(cost_a, 95)):.3f}, "
                                            f"max {ms(cost_a.max()):.3f}"),
        ("publish (write) CPU ms, no slow sub", f"median {ms(np.median(cpu_a)):.3f}, p95 "
                                                f"{ms(np.percentile(cpu_a, 95)):.3f} (thread "
                                                "CPU time: without waiting for a core)"),
        ("publish (write) ms, slow sub", f"median {ms(np.median(cost_b)):.3f}, "
                                         f"p95 {ms(np.percentile(cost_b, 95)):.3f}, "
                                         f"max {ms(cost_b.max()):.3f}"),
        ("publish ms, hands + joints subscribed", f"median {ms(np.median(cost_c)):.3f}, p95 "
                                                  f"{ms(np.percentile(cost_c, 95)):.3f} "
                                                  f"({len(cost_c)} frames; joints subscriber "
                                                  f"got {len(joints_got[1])})"),
        ("loop time ratio (median, p95)",
         f"{ratio:.3f}, {np.percentile(cost_b, 95) / np.percentile(cost_a, 95):.3f}"),
        ("latency ms, no slow sub", f"p50 {ms(np.median(lat_a)):.3f}, "
                                    f"p95 {ms(np.percentile(lat_a, 95)):.3f}, "
                                    f"max {ms(lat_a.max()):.3f}"),
        ("latency ms, slow sub", f"p50 {ms(np.median(lat_b)):.3f}, "
                                 f"p95 {ms(np.percentile(lat_b, 95)):.3f}, "
                                 f"max {ms(lat_b.max()):.3f}"),
        ("fast sub received / lost / out of order",
         f"no slow: {rec_a}/{lost_a}/{back_a}; slow: {rec_b}/{lost_b}/{back_b}"),
        ("slow sub received", f"{len(slow_got)} of {last_b - first_b + 1} "
                              f"(sleeps {a.slow_sleep:g} s per message)"),
        ("publisher dropped (zmq.Again)", str(dropped)),
        ("encode ms, before (generic encode)", f"median {offline['generic_ms']:.3f} "
                                               f"(now {offline['packed_ms']:.3f}: x"
                                               f"{offline['generic_ms'] / offline['packed_ms']:.1f}"
                                               " faster)"),
        ("sender_thread=True: loop pays ms", f"median {sender['threaded_ms']:.3f} (inline, same "
                                             f"conditions: {sender['inline_ms']:.3f}); sender "
                                             f"thread CPU {sender['sender_cpu_ms']:.3f} ms per "
                                             f"frame, {sender['sender_dropped']} dropped"),
        ("rigged mode: messages ms", f"median {offline['rigged_ms']:.3f} (two hands; fit + "
                                     f"quaternions), hands message {offline['rigged_kb']:.1f} kB"),
        ("rigged decoder vs mesh vertices", f"max {offline['rig_err_mm']:.2e} mm "
                                            "(pure skinning in; target < 1 mm)"),
        ("rigged vs regressor vertices", gap),
        ("publisher VmRSS MB", f"start {rss0:.1f}, after phase 1 {rss_a:.1f}, after phase 2 "
                               f"{rss_b:.1f}, after close {rss_end:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        hi = float(np.percentile(lat_all, 99.5)) * 1000
        bins = np.linspace(0, max(hi, 0.1), 80)
        ax.hist(lat_a * 1000, bins, alpha=0.6, label="fast subscriber alone")
        ax.hist(lat_b * 1000, bins, alpha=0.6, label="with a slow subscriber")
        ax.set_xlabel("publish -> receive + decode latency, ms (127.0.0.1)")
        ax.set_ylabel("messages")
        ax.set_title(f"hands stream: {a.messages} frames per phase at {a.rate:g} Hz, "
                     "two full-mesh hands")
        ax.legend()
        fig.tight_layout()
        a.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(a.plot, dpi=110)
        print(f"wrote {a.plot}")
    except ImportError:
        print("matplotlib missing: no plot")

    print(json.dumps({
        "publish_ms": ms(np.median(cost_a)),
        "latency_p50_ms": ms(np.median(lat_all)),
        "latency_p95_ms": ms(np.percentile(lat_all, 95)),
        "fast_subscriber_lost": int(lost_a + lost_b),
        "loop_time_ratio_with_slow_subscriber": round(ratio, 4),
        "memory_growth_mb": round(growth, 2),
    }))
    return 0


def offline_costs(model, hands, image, n: int = 300) -> dict:
    """Publish cost without sockets: generic encode (before) vs packed; rigged mode."""
    from realtime.stream import bones, protocol
    from realtime.stream.publisher import Publisher, PublisherConfig
    from realtime.types import Frame, Packet

    names = model.data.joint_names

    def generic():
        full = [(protocol.hand_header(h), protocol.hand_arrays(h, names)) for h in hands]
        light = [(f, {k: v for k, v in arr.items() if k not in protocol.MESH_ARRAYS})
                 for f, arr in full]
        protocol.encode(protocol.TOPIC_HANDS, {"seq": 1}, full)
        protocol.encode(protocol.TOPIC_JOINTS, {"seq": 1}, light)

    def timed(f) -> float:
        for _ in range(20):
            f()
        t = np.empty(n)
        for i in range(n):
            t0 = time.perf_counter()
            f()
            t[i] = time.perf_counter() - t0
        return ms(np.median(t))

    out = {"generic_ms": timed(generic)}
    eps = [f"tcp://127.0.0.1:{free_port()}" for _ in range(4)]
    now = time.monotonic()
    packet = Packet(Frame(image, 0, now, source="bench"), now, (), hands)
    with Publisher(PublisherConfig(eps[0], eps[1]), model) as pub:
        out["packed_ms"] = timed(lambda: pub.messages(packet))
    with Publisher(PublisherConfig(eps[2], eps[3], mode="rigged"), model) as pub:
        out["rigged_ms"] = timed(lambda: pub.messages(packet))
        full, _ = pub.messages(packet)
        topo = protocol.decode(pub.topology_message())
    out["rigged_kb"] = len(full) / 1024
    msg = protocol.decode(full)
    out["rig_err_mm"] = max(float(np.linalg.norm(bones.skin_rigged(topo, got) - h.vertices,
                                                 axis=1).max()) * 1000
                            for h, got in zip(hands, msg.hands))
    return out


def sender_thread_costs(model, hands, image, n: int = 1200, rate: float = 120.0) -> dict:
    """What the loop pays per frame, inline vs with ``sender_thread`` (paced, a subscriber on
    ``hands`` that never reads: ZeroMQ drops for it once its queue is full),
    and the sender thread's own CPU time per frame."""
    import zmq

    from realtime.stream.publisher import Publisher, PublisherConfig

    out = {}
    ctx = zmq.Context()
    for threaded in (False, True):
        eps = [f"tcp://127.0.0.1:{free_port()}" for _ in range(2)]
        with Publisher(PublisherConfig(*eps, sender_thread=threaded, sender_queue=64),
                       model) as pub:
            sub = ctx.socket(zmq.SUB)  # a subscriber on hands, or nothing would be built
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"hands ")
            sub.connect(eps[0])
            while not pub.subscribed("hands"):
                time.sleep(0.01)
            costs = run_phase(pub, hands, image, n, rate, 0)
            sub.close(linger=0)
            if threaded:
                pub.flush()
                out["sender_cpu_ms"] = ms(pub.sender_cpu_s / n)
                out["sender_dropped"] = pub.dropped["hands"]
        out["threaded_ms" if threaded else "inline_ms"] = ms(np.median(costs))
    ctx.term()
    return out


def rigged_gap(model, frames=(30, 100, 200, 300, 400)) -> str:
    """Mean/max distance, mm, between the rigged mesh and the regressor's vertices."""
    try:
        from calibration.camera import Camera
        from calibration.intrinsics import CameraIntrinsics
        from realtime.mesh.regressor import RegressorEstimator, RunnerConfig
        from realtime.stream import bones
        from realtime.types import Detection

        z = np.load(REPO / "realtime" / "assets" / "sample" / "sample_gt.npz")
        k = z["K"]
        intr = CameraIntrinsics(k[0, 0], k[1, 1], k[0, 2], k[1, 2], int(z["width"]),
                                int(z["height"]))
        fitter = RegressorEstimator(model, RunnerConfig(threads=1))
    except Exception as exc:  # noqa: BLE001 - optional row: say why it is missing
        return f"not measured ({type(exc).__name__}: {exc})"
    dists = []
    for f in frames:
        dets = []
        for h in np.nonzero(z["present"][f])[0]:
            kp = z["keypoints"][f, h]
            rel_z = (kp[:, 2] - kp[0, 2]) * k[0, 0] / kp[:, 2].mean() / float(z["width"])
            dets.append(Detection(z["keypoints_2d"][f, h], rel_z, kp - kp.mean(0),
                                  str(z["handedness"][h]), 0.95, int(f), 0.0))
        got = fitter.estimate(dets, Camera.pinhole(intr), list(range(len(dets))))
        for hand, arrays in zip(got, bones.rig_arrays(model, got)):
            ref = bones.rigged_reference(model, hand, arrays)
            dists.append(np.linalg.norm(ref - hand.vertices, axis=1))
    d = np.concatenate(dists) * 1000
    return (f"mean {d.mean():.2f} mm, p95 {np.percentile(d, 95):.2f} mm, max {d.max():.2f} mm "
            f"({len(dists)} regressed hands of the sample clip: the refinement rigged mode "
            "leaves out)")


def pub_messages_size(model, hands) -> bytes:
    from realtime.stream import protocol

    return protocol.encode(protocol.TOPIC_HANDS, {"seq": 0}, [
        (protocol.hand_header(h), protocol.hand_arrays(h, model.data.joint_names))
        for h in hands])


if __name__ == "__main__":
    raise SystemExit(main())
