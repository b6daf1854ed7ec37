"""Hostile network inputs: rogue peers on 127.0.0.1 against every network surface.

``run(quick)`` returns one dict per surface (``benchmarks/hostile.py`` prints them):

* ``fusion_node``: ``handmesh-multiview fuse`` as a process, two legitimate camera nodes
  and a rogue one that sends every crafted ``landmarks`` message (NaN, 1e999, 1e400,
  scaled landmarks, 500 hands, aliasing arrays, impersonation...), then floods; the fused
  frame rate of the legitimate cameras with and without the flood.
* ``topology_port``: a publisher process; ten peers send requests without reading the
  replies, one sends a huge request, others send malformed envelopes and raw TCP garbage;
  a legitimate client must still get the topology.
* ``client_decoder``: ``protocol.decode`` against aliasing, overlapping, huge and mistyped
  messages (Python heap growth while decoding, measured with tracemalloc).
* ``stream_listen``: ``handmesh-stream listen`` as a process fed bad messages (and one
  larger than its limit) between good ones.

``cases``: distinct hostile inputs tried; ``crashes``: the target died or raised something
unexpected; ``hangs``: a case ran past its bounded timeout; ``peak_growth_mb``: peak RSS
(``VmHWM``, reset through ``/proc/PID/clear_refs`` once idle) minus the idle RSS.
The test suite ``tests/test_hostile_network.py`` uses the same attacks.

    python -m benchmarks.hostile_cases.network [--quick]
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zmq

REPO = Path(__file__).resolve().parents[2]


# -- processes --------------------------------------------------------------------------------
def free_port(pair: bool = False) -> int:
    """A free tcp port of 127.0.0.1 (with ``pair``, the next one is free too)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair on 127.0.0.1")


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def memory_mb(pid: int) -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of a process, MB (0 if it is gone)."""
    out = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in out:
                out[key] = int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return out["VmRSS"], out["VmHWM"]


def reset_peak(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Child:
    """A child process whose stdout lines are read on a thread (never blocks the caller)."""

    def __init__(self, args: list[str], stdin: bool = False) -> None:
        self.proc = subprocess.Popen(args, cwd=REPO, env=child_env(), text=True,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True
                         ).start()
        errq: queue.Queue[str] = queue.Queue()
        self._errq = errq
        threading.Thread(target=self._pump, args=(self.proc.stderr, errq), daemon=True).start()
        self._peak = 0.0
        self._idle = None

    @staticmethod
    def _pump(stream, q) -> None:
        for line in stream:
            q.put(line.rstrip("\n"))

    def wait_line(self, pred: Callable[[str], bool], timeout_s: float) -> str | None:
        """The first new stdout line for which ``pred`` holds, or None after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    return None
                continue
            self.out.append(line)
            if pred(line):
                return line
        return None

    def fresh_line(self, pred: Callable[[str], bool], timeout_s: float) -> str | None:
        """The first matching line printed after this call (older ones are skipped)."""
        while not self.lines.empty():
            self.out.append(self.lines.get())
        return self.wait_line(pred, timeout_s)

    def drain(self) -> None:
        while not self.lines.empty():
            self.out.append(self.lines.get())
        while not self._errq.empty():
            self.err.append(self._errq.get())

    def mark_idle(self) -> float:
        """The idle RSS now; the peak is measured from here."""
        rss, _ = memory_mb(self.proc.pid)
        self._idle = rss
        if not reset_peak(self.proc.pid):
            self._peak = rss
        return rss

    def sample(self) -> None:
        rss, _ = memory_mb(self.proc.pid)
        self._peak = max(self._peak, rss)

    def growth_mb(self) -> float:
        _, hwm = memory_mb(self.proc.pid)
        return round(max(self._peak, hwm) - (self._idle or 0.0), 1)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def finish(self, timeout_s: float = 20.0) -> int | None:
        """Wait for the exit (closing stdin first); None if it had to be killed."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            code = None
        time.sleep(0.1)
        self.drain()
        return code

    def traceback(self) -> bool:
        self.drain()
        return any("Traceback" in line for line in self.err + self.out)


# -- crafting messages ------------------------------------------------------------------------
def split(msg: bytes) -> tuple[bytes, bytes, bytes]:
    """``(topic, header JSON text, payload)`` of a message."""
    space = msg.index(b" ")
    (hlen,) = struct.unpack("<I", msg[space + 1:space + 5])
    return msg[:space], msg[space + 5:space + 5 + hlen], msg[space + 5 + hlen:]


def craft(topic: bytes, text: bytes, payload: bytes = b"", hlen: int | None = None) -> bytes:
    """A message from raw parts (header padded so the payload stays 8-byte aligned)."""
    text = text + b" " * ((-(len(topic) + 5 + len(text))) % 8)
    return topic + b" " + struct.pack("<I", len(text) if hlen is None else hlen) + text + payload


def patch(msg: bytes, old: bytes, new: bytes) -> bytes:
    """``msg`` with ``old`` replaced by ``new`` in its header (lengths fixed up)."""
    topic, text, payload = split(msg)
    if old not in text:
        raise ValueError(f"{old!r} not in the header")
    return craft(topic, text.rstrip(b" ").replace(old, new, 1), payload)


def test_rig(n: int = 2):
    """The synthetic rig of the tests: 640x480 webcams on an arc 0.6 m from the hand."""
    from calibration.multiview import RigCamera
    from calibration.simulation import synthetic_rig, webcam_calibration

    return [RigCamera(webcam_calibration(640, 480, 60 + 3 * i, name=f"cam{i}"), c.R, c.t)
            for i, c in enumerate(synthetic_rig(n, distance_m=0.6))]


def write_rig(path: Path, rig) -> Path:
    from calibration.extrinsics import save_rig

    save_rig(path, [c.calibration for c in rig], [(c.R, c.t) for c in rig])
    return path


def hand_points(offset=(0.0, 0.0, 0.6)) -> np.ndarray:
    from models.hand_model import HandModel
    from models.poses import named_pose

    model = HandModel.open_hand()
    kps = model.forward(named_pose(model.data.joint_names, "spread")).keypoints[0]
    return kps - kps.mean(0) + np.asarray(offset)


def camera_detections(rig, x: np.ndarray, cam: int, score: float = 0.9) -> list:
    """What camera ``cam`` of the rig would detect of the hand ``x`` (world, metres)."""
    from realtime.types import Detection

    c = rig[cam]
    uv = c.calibration.distort_points(c.project(x))
    rel = x @ c.R.T
    return [Detection(uv, np.zeros(21), rel - rel.mean(0), "right", score, 0, 0.0)]


def _lm_hand(uv, world, z=None, side: object = "right", score: object = 0.9):
    return ({"handedness": side, "score": score},
            {"landmarks_px": np.asarray(uv, "<f4"),
             "landmarks_z": np.asarray(np.zeros(21) if z is None else z, "<f4"),
             "world": np.asarray(world, "<f4")})


def landmark_cases(rig, x: np.ndarray, cam: int = 1) -> list[tuple[str, bytes]]:
    """Crafted ``landmarks`` messages, each refused by a correct fusion node.
    ``impersonation`` is well formed: it claims camera 0 from another endpoint; the last two
    are over the 64 kB limit (ZeroMQ drops the connection as they arrive)."""
    from realtime.stream import protocol

    det = camera_detections(rig, x, cam)[0]
    uv, world = det.landmarks_px, det.world

    def msg(hands=None, header=None, cam_id=cam) -> bytes:
        h = {"seq": 1, "camera_id": cam_id, "frame_index": 5, "timestamp": 1.0,
             "t_send_wall": 1.0, "image_size": [640, 480], "hands": []}
        h.update(header or {})
        return protocol.encode(b"landmarks", h, [_lm_hand(uv, world)] if hands is None
                               else hands)

    def arr(a, idx, value):
        a = np.array(a, np.float64)
        a[idx] = value
        return a

    good = msg()
    sentinel = msg(hands=[_lm_hand(uv, world, score=0.123456)])
    cases = [
        ("nan_pixel", msg(hands=[_lm_hand(arr(uv, (3, 0), np.nan), world)])),
        ("inf_pixel", msg(hands=[_lm_hand(arr(uv, (3, 1), np.inf), world)])),
        ("nan_world", msg(hands=[_lm_hand(uv, arr(world, (4, 2), np.nan))])),
        ("nan_landmarks_z", msg(hands=[_lm_hand(uv, world, z=arr(np.zeros(21), 2, np.nan))])),
        ("nan_score", patch(sentinel, b"0.123456", b"NaN")),
        ("score_1e999", patch(sentinel, b"0.123456", b"1e999")),
        ("score_infinity", patch(sentinel, b"0.123456", b"-Infinity")),
        ("score_7", msg(hands=[_lm_hand(uv, world, score=7.0)])),
        ("score_string", msg(hands=[_lm_hand(uv, world, score="high")])),
        ("score_missing", msg(hands=[({"handedness": "right"}, _lm_hand(uv, world)[1])])),
        ("frame_index_1e400", patch(good, b'"frame_index":5', b'"frame_index":1e400')),
        ("frame_index_10e30_int", patch(good, b'"frame_index":5', b'"frame_index":' +
                                        b"1" + b"0" * 30)),
        ("frame_index_negative", msg(header={"frame_index": -3})),
        ("frame_index_float", msg(header={"frame_index": 5.5})),
        ("frame_index_string", msg(header={"frame_index": "5"})),
        ("timestamp_nan", patch(good, b'"timestamp":1.0', b'"timestamp":NaN')),
        ("timestamp_string", msg(header={"timestamp": "now"})),
        ("world_scaled_1e30", msg(hands=[_lm_hand(uv, world * 1e30)])),
        ("world_scaled_100", msg(hands=[_lm_hand(uv, world * 100)])),
        ("world_all_zero", msg(hands=[_lm_hand(uv, world * 0)])),
        ("pixels_3e38", msg(hands=[_lm_hand(uv * 0 + 3e38, world)])),
        ("pixels_far_outside", msg(hands=[_lm_hand(uv + 1e5, world)])),
        ("hands_5", msg(hands=[_lm_hand(uv, world)] * 5)),
        ("hands_not_list", patch(msg(hands=[]), b'"hands":[]', b'"hands":{"a":1}')),
        ("camera_unknown", msg(cam_id=7)),
        ("camera_negative", msg(cam_id=-1)),
        ("camera_huge", msg(cam_id=10 ** 12)),
        ("camera_string", msg(cam_id="1")),
        ("camera_bool", msg(cam_id=True)),
        ("camera_missing", patch(good, b'"camera_id":1,', b"")),
        ("image_size_mismatch", msg(header={"image_size": [1280, 720]})),
        ("image_size_zero", msg(header={"image_size": [0, 0]})),
        ("image_size_huge", msg(header={"image_size": [10 ** 9, 10 ** 9]})),
        ("handedness_int", msg(hands=[_lm_hand(uv, world, side=1)])),
        ("handedness_other", msg(hands=[_lm_hand(uv, world, side="middle")])),
        ("landmarks_px_shape_5x2", msg(hands=[_lm_hand(uv[:5], world)])),
        ("world_shape_21x2", msg(hands=[_lm_hand(uv, world[:, :2])])),
        ("world_missing", msg(hands=[({"handedness": "right", "score": 0.9},
                                      {"landmarks_px": np.asarray(uv, "<f4")})])),
        ("world_int32", msg(hands=[({"handedness": "right", "score": 0.9},
                                    {"landmarks_px": np.asarray(uv, "<f4"),
                                     "world": np.zeros((21, 3), "<i4")})])),
        ("aliasing_arrays", patch(good, b'"offset":256', b'"offset":0')),
        ("array_past_payload", patch(good, b'"offset":256', b'"offset":4096')),
        ("schema_2", patch(good, b'"schema":1', b'"schema":2')),
        ("truncated", good[:-40]),
        ("garbage_after_topic", b"landmarks " + bytes(range(256)) * 4),
        ("header_not_json", craft(b"landmarks", b"{not json")),
        ("header_length_lie", craft(b"landmarks", b"{}", hlen=60000)),
        ("header_nested_bomb", craft(b"landmarks", b"[" * 30000 + b"]" * 30000)),
        ("header_not_utf8", craft(b"landmarks", b'{"schema":1,"x":"\xff\xfe"}')),
        ("impersonation", msg(cam_id=0)),
        # over 64 kB: ZeroMQ drops the connection (the subscriber connects again)
        ("hands_500", msg(hands=[_lm_hand(uv, world)] * 500)),
        ("oversized_1mb", good + bytes(1 << 20)),
    ]
    return cases


def good_landmarks(rig, x: np.ndarray, cam: int, frame: int) -> bytes:
    from realtime.multiview.landmark_stream import encode_landmarks

    return encode_landmarks(cam, frame, time.monotonic(), (640, 480),
                            camera_detections(rig, x, cam), frame)


class CameraNodes:
    """Legitimate camera nodes (PUB sockets on 127.0.0.1) sending at ``fps`` on a thread."""

    def __init__(self, rig, x: np.ndarray, fps: float = 15.0, ctx: zmq.Context | None = None
                 ) -> None:
        self.ctx = ctx or zmq.Context.instance()
        self.rig, self.x, self.fps = rig, x, fps
        self.socks = []
        self.endpoints = []
        for _ in rig:
            s = self.ctx.socket(zmq.PUB)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 100)
            s.bind("tcp://127.0.0.1:*")
            self.socks.append(s)
            self.endpoints.append(s.getsockopt(zmq.LAST_ENDPOINT).decode())
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period = 1.0 / self.fps
        t = time.monotonic()
        i = 0
        while not self._stop.is_set():
            for c, s in enumerate(self.socks):
                try:
                    s.send(good_landmarks(self.rig, self.x, c, i), zmq.NOBLOCK)
                except zmq.Again:
                    pass
            self.sent += 1
            i += 1
            t += period
            self._stop.wait(max(0.0, t - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in self.socks:
            s.close(linger=0)


def parse_stats(line: str) -> dict:
    return json.loads(line.split(" ", 1)[1])


def start_fuse(rig_path: Path, endpoints: list[str], seconds: float, fit: bool,
               stats_every: float = 0.5, extra: tuple[str, ...] = ()) -> Child:
    args = [sys.executable, "-m", "realtime.cli.multiview", "fuse", "--rig", str(rig_path),
            "--stats-every", str(stats_every), "--seconds", str(seconds), *extra]
    for ep in endpoints:
        args += ["--connect", ep]
    if not fit:
        args.append("--no-fit")
    return Child(args)


def _legit_frames(stats: dict) -> int:
    return sum(stats["frames_fused"].get(str(c), 0) for c in (0, 1))


def fusion_node(quick: bool = False, workdir: Path | None = None) -> dict:
    """Crafted messages, then a flood, from a rogue camera node against the fusion node."""
    import tempfile

    ctx = zmq.Context.instance()
    rig = test_rig(2)
    x = hand_points()
    cases = landmark_cases(rig, x)
    phase_s = 4.0 if quick else 10.0
    tmp = tempfile.TemporaryDirectory() if workdir is None else None
    work = Path(tmp.name) if tmp else workdir
    rig_path = write_rig(work / "rig.json", rig)
    cams = CameraNodes(rig, x, fps=15.0, ctx=ctx)
    rogue = ctx.socket(zmq.PUB)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.setsockopt(zmq.SNDHWM, 1000)
    rogue.bind("tcp://127.0.0.1:*")
    rogue_ep = rogue.getsockopt(zmq.LAST_ENDPOINT).decode()
    node = start_fuse(rig_path, cams.endpoints + [rogue_ep], seconds=3 * phase_s + 30,
                      fit=True, stats_every=0.5)
    result = {"surface": "fusion_node", "cases": len(cases) + 1, "crashes": 0, "hangs": 0}
    try:
        is_stats = lambda s: s.startswith("stats ")
        first = None
        end = time.monotonic() + 60
        while time.monotonic() < end:  # the node is up and fuses both cameras
            line = node.wait_line(is_stats, 1.0)
            if line and _legit_frames(parse_stats(line)) > 0 and all(
                    parse_stats(line)["frames_fused"].get(str(c)) for c in (0, 1)):
                first = parse_stats(line)
                break
            if not node.alive():
                break
        if first is None:
            result["hangs"] += 1
            raise RuntimeError("the fusion node never fused the legitimate cameras")
        node.mark_idle()
        # each case a few times (the rogue's subscription may still be on its way); the
        # ones over 64 kB last: ZeroMQ drops the connection with whatever was queued on it
        small = [m for _, m in cases if len(m) < 60000]
        for _ in range(3):
            for m in small:
                rogue.send(m)
                node.sample()
            time.sleep(0.3)
        for m in (m for _, m in cases if len(m) >= 60000):
            rogue.send(m)
        time.sleep(1.0)
        after_cases = parse_stats(node.fresh_line(is_stats, 5.0) or "stats {}")
        # rates: baseline, then the flood
        base0 = parse_stats(node.fresh_line(is_stats, 5.0))
        time.sleep(phase_s)
        base1 = parse_stats(node.fresh_line(is_stats, 5.0))
        flood = small
        stop = threading.Event()

        def flood_loop() -> None:  # ~4,000 bad messages a second, in bursts
            i = 0
            while not stop.is_set():
                for _ in range(40):
                    try:
                        rogue.send(flood[i % len(flood)], zmq.NOBLOCK)
                    except zmq.Again:
                        pass
                    i += 1
                stop.wait(0.01)

        flooder = threading.Thread(target=flood_loop, daemon=True)
        flooder.start()
        time.sleep(0.5)
        fl0 = parse_stats(node.fresh_line(is_stats, 5.0))
        t_end = time.monotonic() + phase_s
        while time.monotonic() < t_end:
            node.sample()
            time.sleep(0.2)
        fl1 = parse_stats(node.fresh_line(is_stats, 5.0))
        stop.set()
        flooder.join(2)
        base_rate = (_legit_frames(base1) - _legit_frames(base0)) / (base1["t"] - base0["t"])
        flood_rate = (_legit_frames(fl1) - _legit_frames(fl0)) / (fl1["t"] - fl0["t"])
        rogue_stats = fl1["sources"][rogue_ep]
        result.update({
            "peak_growth_mb": node.growth_mb(),
            "fused_rate_ratio_under_flood": round(flood_rate / base_rate, 3) if base_rate else 0.0,
            "legit_fused_frames_per_s": round(base_rate, 1),
            "legit_fused_frames_per_s_under_flood": round(flood_rate, 1),
            "rogue_dropped": rogue_stats["dropped"], "rogue_accepted": rogue_stats["accepted"],
            "dropped_after_cases": after_cases.get("sources", {}).get(rogue_ep, {}).get(
                "dropped"),
            "rogue_reconnects": rogue_stats["reconnects"],
            "implausible_hands": fl1["implausible_hands"], "fuse_errors": fl1["fuse_errors"],
        })
        if not node.alive():
            result["crashes"] += 1
    except (RuntimeError, TypeError, KeyError, json.JSONDecodeError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        if not node.alive():
            result["crashes"] += 1
    finally:
        if node.alive():
            node.proc.send_signal(signal.SIGINT)  # as Ctrl-C: the node prints its stats
        code = node.finish(20)
        if code is None:
            result["hangs"] += 1
        if node.traceback():
            result["crashes"] += 1
            result["traceback"] = [line for line in node.err if line][-3:]
        cams.close()
        rogue.close(linger=0)
        if tmp:
            tmp.cleanup()
    return result


# -- the topology port ------------------------------------------------------------------------
PUBLISHER_SCRIPT = """
import json, sys
from models.hand_model import HandModel
from realtime.stream.publisher import Publisher, PublisherConfig
pub = Publisher(PublisherConfig(sys.argv[1], sys.argv[2]), HandModel.open_hand())
print("ready", flush=True)
sys.stdin.read()
print("counts " + json.dumps({"answered": pub.topology_requests,
                              "refused": pub.topology_refused,
                              "reply_dropped": pub.topology_reply_dropped}), flush=True)
pub.close()
"""


def start_publisher() -> tuple[Child, str, str]:
    port = free_port(pair=True)
    ep, tep = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}"
    child = Child([sys.executable, "-c", PUBLISHER_SCRIPT, ep, tep], stdin=True)
    if child.wait_line(lambda s: s == "ready", 120) is None:
        child.finish(5)
        raise RuntimeError("the publisher did not start: " + " / ".join(child.err[-3:]))
    return child, ep, tep


def legit_topology(ep: str, tep: str, timeout_ms: int = 3000) -> bool:
    from realtime.stream.client import HandClient

    with HandClient(ep, ("hands",), tep) as client:
        try:
            return "faces" in client.topology(timeout_ms).arrays
        except Exception:  # noqa: BLE001 - the answer is the check
            return False


def topology_attacks(tep: str, quick: bool, ctx: zmq.Context, sample: Callable[[], None]
                     ) -> tuple[int, list[zmq.Socket]]:
    """Every attack on the topology port; the sockets stay open (never read) until closed."""
    socks: list[zmq.Socket] = []

    def dealer() -> zmq.Socket:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)  # queue everything on our side: the flood is complete
        s.setsockopt(zmq.RCVHWM, 1)  # and read nothing
        s.connect(tep)
        socks.append(s)
        return s

    n_req = 2000 if quick else 10_000
    cases = 0
    # 1. ten peers, n_req one-byte requests each, replies never read
    peers = [dealer() for _ in range(10)]
    time.sleep(0.2)
    for k in range(n_req):
        for p in peers:
            p.send_multipart([b"", b"x"])
        if k % 500 == 0:
            sample()
    cases += 1
    # 2. one huge request (ZeroMQ drops it as it arrives)
    big = dealer()
    time.sleep(0.1)
    big.send_multipart([b"", bytes((64 if quick else 500) << 20)], copy=False)
    cases += 1
    # 3. envelopes that are not REQ requests; a many-part message
    odd = dealer()
    odd.send(b"no delimiter")
    odd.send_multipart([b"", b"a", b"b"])
    odd.send_multipart([b"x", b"", b"topology"])
    odd.send_multipart([b""] + [bytes(1024)] * 1000)
    cases += 4
    # 4. raw TCP garbage and a half-open ZMTP greeting
    port = int(tep.rsplit(":", 1)[1])
    for payload in (os.urandom(4096), b"\xff" + bytes(8) + b"\x7f\x03\x00NULL" + bytes(16)):
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            try:
                s.sendall(payload)
            except OSError:
                pass
        cases += 1
    # 5. connection churn: REQ peers that ask and leave at once
    for _ in range(100 if quick else 300):
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(tep)
        s.send(b"topology")
        s.close(linger=0)
    cases += 1
    for _ in range(20):
        sample()
        time.sleep(0.1)
    return cases, socks


def topology_port(quick: bool = False) -> dict:
    ctx = zmq.Context()
    result = {"surface": "topology_port", "cases": 0, "crashes": 0, "hangs": 0}
    child, ep, tep = start_publisher()
    socks: list[zmq.Socket] = []
    try:
        time.sleep(1.0)
        result["idle_rss_mb"] = round(child.mark_idle(), 1)
        ok_before = legit_topology(ep, tep)
        cases, socks = topology_attacks(tep, quick, ctx, child.sample)
        result["cases"] = cases
        ok_during = legit_topology(ep, tep)  # the flooding peers are still connected
        result.update({"legit_topology_before": ok_before,
                       "legit_topology_under_flood": ok_during,
                       "peak_growth_mb": child.growth_mb()})
        if not child.alive():
            result["crashes"] += 1
    finally:
        for s in socks:
            s.close(linger=0)
        ctx.term()
        if child.alive() and child.proc.stdin:
            child.proc.stdin.close()
        child.wait_line(lambda s: s.startswith("counts "), 20)
        code = child.finish(20)
        if code is None:
            result["hangs"] += 1
        elif code != 0 or child.traceback():
            result["crashes"] += 1
        counts = [ln for ln in child.out if ln.startswith("counts ")]
        if counts:
            result.update(json.loads(counts[-1].split(" ", 1)[1]))
    return result


# -- the client decoder -----------------------------------------------------------------------
def decoder_cases() -> list[tuple[str, bytes]]:
    """Messages ``protocol.decode`` must refuse (a ``ProtocolError``, nothing else)."""
    from realtime.stream import protocol

    j = np.zeros((21, 3), "<f4")
    good = protocol.encode(b"hands", {"seq": 1, "hands": []},
                           [({"track_id": 1, "handedness": "right", "score": 0.9},
                             {"joints": j, "vertices": np.zeros((10, 3), "<f4"),
                              "vertex_std": np.zeros(10, "<f4")})])

    def table(entries: dict) -> dict:
        return {k: {"dtype": d, "shape": s, "offset": o, "nbytes": n}
                for k, (d, s, o, n) in entries.items()}

    def hands_msg(hands: list, payload: bytes, topic=b"hands", extra=None) -> bytes:
        return craft(topic, json.dumps({"schema": 1, "seq": 1, "hands": hands, **(extra or {})}
                                       ).encode(), payload)

    ten_mb = 10 << 20
    alias = [{"arrays": table({f"a{k}": ("<f4", [ten_mb // 4], 0, ten_mb) for k in range(20)})}
             for _ in range(10)]
    cases = [
        ("aliasing_200_entries_10mb", hands_msg(alias, bytes(ten_mb))),
        ("aliasing_two_hands_same_joints", hands_msg(
            [{"arrays": table({"joints": ("<f4", [21, 3], 0, 252)})}] * 2, bytes(256))),
        ("overlap_by_4_bytes", hands_msg([{"arrays": table({
            "joints": ("<f4", [21, 3], 0, 252), "wrist_position": ("<f4", [3], 248, 12)})}],
            bytes(264))),
        ("top_level_aliasing", craft(b"topology", json.dumps({"schema": 1, "arrays": table({
            "faces": ("<i4", [2, 3], 0, 24), "uv_faces": ("<i4", [2, 3], 0, 24)})}).encode(),
            bytes(24))),
        ("array_past_payload", hands_msg([{"arrays": table({
            "joints": ("<f4", [21, 3], 8, 252)})}], bytes(256))),
        ("huge_shape", hands_msg([{"arrays": table({
            "vertices": ("<f4", [1 << 40, 3], 0, 12 << 40)})}], bytes(64))),
        ("shape_nbytes_mismatch", hands_msg([{"arrays": table({
            "joints": ("<f4", [21, 3], 0, 8)})}], bytes(256))),
        ("negative_offset", hands_msg([{"arrays": table({
            "joints": ("<f4", [21, 3], -8, 252)})}], bytes(256))),
        ("float_offset", hands_msg([{"arrays": table({
            "joints": ("<f4", [21, 3], 0.5, 252)})}], bytes(256))),
        ("ndim_6", hands_msg([{"arrays": table({"x": ("<f4", [1] * 6, 0, 4)})}], bytes(8))),
        ("33_arrays", hands_msg([{"arrays": table({f"x{k}": ("<f4", [1], 8 * k, 4)
                                                   for k in range(33)})}], bytes(8 * 33))),
        ("17_hands", hands_msg([{"track_id": k} for k in range(17)], b"")),
        ("dtype_f8", hands_msg([{"arrays": table({"joints": ("<f8", [21, 3], 0, 504)})}],
                               bytes(504))),
        ("hands_not_list", hands_msg({"a": 1}, b"")),  # type: ignore[arg-type]
        ("hand_not_object", hands_msg([3], b"")),
        ("joints_5x3", hands_msg([{"arrays": table({"joints": ("<f4", [5, 3], 0, 60)})}],
                                 bytes(64))),
        ("joints_as_json_field", hands_msg([{"joints": [[0, 0, 0]] * 21}], b"")),
        ("wrist_rotation_int", hands_msg([{"arrays": table({
            "wrist_rotation": ("<i4", [3, 3], 0, 36)})}], bytes(40))),
        ("vertices_std_count_differ", hands_msg([{"arrays": table({
            "vertices": ("<f4", [10, 3], 0, 120), "vertex_std": ("<f4", [9], 120, 36)})}],
            bytes(160))),
        ("handedness_int", hands_msg([{"handedness": 1}], b"")),
        ("score_string", hands_msg([{"score": "0.9"}], b"")),
        ("track_id_float", hands_msg([{"track_id": 1.5}], b"")),
        ("seq_string", craft(b"hands", b'{"schema":1,"seq":"7","hands":[]}')),
        ("seq_1e400", craft(b"hands", b'{"schema":1,"seq":1e400,"hands":[]}')),
        ("nan_token", craft(b"hands", b'{"schema":1,"seq":1,"t_capture":NaN,"hands":[]}')),
        ("image_size_string", hands_msg([], b"", extra={"image_size": "640x480"})),
        ("frame_index_list", hands_msg([], b"", extra={"frame_index": [1]})),
        ("topology_faces_out_of_range", craft(b"topology", json.dumps({
            "schema": 1, "vertex_count": 3,
            "arrays": table({"faces": ("<i4", [1, 3], 0, 12)})}).encode(),
            np.array([0, 1, 7, 0], "<i4").tobytes())),
        ("texture_colors_4_channels", hands_msg([{"arrays": table({
            "vertex_colors": ("<f4", [2, 4], 0, 32)})}], bytes(32), topic=b"texture")),
        ("status_fps_string", craft(b"status", b'{"schema":1,"seq":1,"fps":"fast"}')),
        ("nested_json_bomb", craft(b"hands", b"[" * 30000 + b"]" * 30000)),
        ("header_over_64k", craft(b"hands", b"{}", hlen=(64 << 10) + 1)),
        ("header_not_utf8", craft(b"hands", b'{"schema":1,"a":"\xff"}')),
        ("truncated", good[:-16]),
        ("no_topic", b"\x00" * 100),
        ("schema_0", patch(good, b'"schema":1', b'"schema":0')),
    ]
    return cases


def client_decoder(quick: bool = False) -> dict:
    from realtime.stream import protocol

    cases = decoder_cases()
    crashes = []
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    for name, msg in cases:
        try:
            protocol.decode(msg)
            crashes.append(f"{name}: accepted")
        except protocol.ProtocolError:
            pass
        except Exception as exc:  # noqa: BLE001 - that is the crash being counted
            crashes.append(f"{name}: {type(exc).__name__}: {exc}")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"surface": "client_decoder", "cases": len(cases), "crashes": len(crashes),
            "hangs": 0, "peak_growth_mb": round((peak - base) / 2**20, 1),
            "largest_case_mb": round(max(len(m) for _, m in cases) / 2**20, 1),
            **({"failures": crashes} if crashes else {})}


# -- handmesh-stream listen -------------------------------------------------------------------
def good_hands_message(seq: int) -> bytes:
    from realtime.stream import protocol

    return protocol.encode(b"hands", {"seq": seq, "frame_index": seq, "hands": []},
                           [({"track_id": 1, "handedness": "right", "score": 0.9},
                             {"joints": np.zeros((21, 3), "<f4"),
                              "wrist_position": np.zeros(3, "<f4"),
                              "finger_angles": np.zeros(15, "<f4")})])


def listen_cases(quick: bool) -> list[tuple[str, bytes]]:
    """Decoder cases on the ``hands`` topic (the ones listen subscribes to), plus one message
    over the client's 16 MB limit. Not the other schema version: that one ends listen
    (exit 2, "update the publisher"), by design, since no later message would decode."""
    out = [(n, m) for n, m in decoder_cases() if m.startswith(b"hands ") and len(m) < 1 << 20
           and not n.startswith("schema_")]
    out.append(("over_the_limit", b"hands " + bytes((20 if quick else 200) << 20)))
    return out


def start_listen(ep: str) -> Child:
    return Child([sys.executable, "-m", "realtime.cli.stream", "listen", "--endpoint", ep])


def _seq_of(line: str) -> int:
    """The sequence number of a ``hands #N frame ...`` line of listen."""
    return int(line.split("#", 1)[1].split()[0])


def stream_listen(quick: bool = False) -> dict:
    """Bad messages between good ones to ``handmesh-stream listen``; stopped with SIGINT
    once good messages sent after the bad ones were printed."""
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = free_port(pair=True)
    ep = f"tcp://127.0.0.1:{port}"
    pub.bind(ep)
    cases = listen_cases(quick)
    child = start_listen(ep)
    result = {"surface": "stream_listen", "cases": len(cases), "crashes": 0, "hangs": 0}
    is_hands = lambda s: s.startswith("hands #")
    try:
        seq = 0
        end = time.monotonic() + 90
        got = None
        while got is None and time.monotonic() < end and child.alive():  # until connected
            seq += 1
            pub.send(good_hands_message(seq))
            got = child.wait_line(is_hands, 0.2)
        if got is None:
            result["hangs"] += 1
            raise RuntimeError("listen printed nothing")
        child.mark_idle()

        def until_printed(n: int) -> int:
            """Send good messages until ``n`` sent from now on were printed."""
            after, printed = seq_box[0], 0
            end = time.monotonic() + 60
            while child.alive() and printed < n and time.monotonic() < end:
                seq_box[0] += 1
                pub.send(good_hands_message(seq_box[0]))
                line = child.wait_line(is_hands, 0.2)
                while line is not None:
                    printed += _seq_of(line) > after
                    line = child.wait_line(is_hands, 0.05) if child.lines.qsize() else None
                child.sample()
            return printed

        seq_box = [seq]
        # the bad messages, then good ones until one sent after them is printed (so every
        # bad one was read); only then the one over the limit: ZeroMQ drops the connection
        # with whatever is still queued on it
        for _, m in cases:
            if len(m) <= 16 << 20:
                pub.send(m)
                child.sample()
        until_printed(1)
        for _, m in cases:
            if len(m) > 16 << 20:
                pub.send(m, copy=False)
        printed_after = until_printed(3)
        if printed_after < 3:
            result["hangs"] += 1
        result["peak_growth_mb"] = child.growth_mb()
        result["good_messages_after_bad"] = printed_after
    except RuntimeError as exc:
        result["error"] = str(exc)
    finally:
        if child.alive():
            child.proc.send_signal(signal.SIGINT)
        code = child.finish(10)
        pub.close(linger=0)
        ctx.term()
        if code is None:
            result["hangs"] += 1
        elif code != 0 or child.traceback():
            result["crashes"] += 1
            result["stderr_tail"] = child.err[-5:]
        skipped = [ln for ln in child.err if ln.startswith("skipped ")]
        result["skipped"] = int(skipped[-1].split()[1]) if skipped else 0
    return result


def run(quick: bool = False) -> list[dict]:
    """One dict per network surface (see the module docstring)."""
    return [fusion_node(quick), topology_port(quick), client_decoder(quick),
            stream_listen(quick)]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
