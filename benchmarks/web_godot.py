"""The Godot client against the real stream: frames decoded and vertex error, plus the
OpenXR joints' cost.

    python -m benchmarks.web_godot [--quick]

A recording (``.hmstream``) of the sample clip's two ground-truth hands (30 FPS) is made
with the real publisher's encoder, then served by ``handmesh-stream replay --web PORT``
(the WebSocket gateway, 127.0.0.1) and received by the Godot 3 project in
``integrations/godot`` run headless (``godot3-server``), which dumps every hands message it
decoded (from the meshes it built). Reported: ``godot_frames_ratio`` (hands messages Godot
decoded / published), ``godot_max_vertex_error_mm`` (Godot's vertices against the
published ones, same axes), ``openxr_joints`` (26), ``xr_joints_ms`` (median cost of the
OpenXR joints of two hands per frame) and the publisher's encoding of a two-hand frame with
and without them (``publish_ms_with_xr`` / ``publish_ms_without_xr``, the baseline, same
run).
Without the gateway (``realtime.stream.web_gateway`` absent) the same messages are fed to
Godot from a file instead (``godot_transport``: "file"). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GODOT_PROJECT = ROOT / "integrations" / "godot"
SAMPLE_GT = ROOT / "realtime" / "assets" / "sample" / "sample_gt.npz"
GODOT = "godot3-server"


def godot_binary() -> str | None:
    return shutil.which(GODOT)


def sample_hands(model, frames: int):
    """The sample clip's ground-truth hands as :class:`HandMesh` per frame (both hands)."""
    from realtime.types import HandMesh

    with np.load(SAMPLE_GT) as npz:  # each npz[key] reads the file again: once each
        z = {k: npz[k] for k in ("handedness", "fps", "present", "vertices", "keypoints",
                                 "pose", "shape", "keypoints_2d")}
    sides = [str(s) for s in z["handedness"]]
    fps = float(z["fps"])
    out = []
    for f in range(min(frames, len(z["present"]))):
        hands = []
        for k in range(2):
            if not z["present"][f, k]:
                continue
            v = z["vertices"][f, k]
            hands.append(HandMesh(
                vertices=np.ascontiguousarray(v, np.float64),
                joints=np.ascontiguousarray(z["keypoints"][f, k], np.float64),
                vertex_std=np.full(len(v), 0.003), pose=np.ascontiguousarray(
                    z["pose"][f, k], np.float64),
                shape=np.ascontiguousarray(z["shape"][f, k], np.float64),
                keypoints_2d=np.ascontiguousarray(z["keypoints_2d"][f, k], np.float64),
                handedness=sides[k], score=0.95, track_id=k + 1, timestamp=f / fps,
                frame_index=f))
        out.append(hands)
    return out, fps


def make_recording(path: Path, frames: int, float16: bool = False) -> dict:
    """Write a ``.hmstream`` of the sample's hands, encoded by the real publisher (topology
    first, then ``hands`` and ``joints`` per frame at the clip's pace). Returns the
    published hands per ``hands`` seq: ``{seq: [(track_id, side, vertices float32,
    xr_joints)]}``."""
    from models.hand_model import HandModel
    from realtime.stream import protocol
    from realtime.stream.publisher import Publisher, PublisherConfig
    from realtime.stream.stream_file import StreamWriter
    from realtime.types import Frame, Packet

    model = HandModel.open_hand()
    per_frame, fps = sample_hands(model, frames)
    ports = [_free_port(), _free_port()]
    published = {}
    cfg = PublisherConfig(f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}",
                          float16=float16)
    image = np.zeros((480, 640, 3), np.uint8)
    Path(path).unlink(missing_ok=True)  # the writer appends
    with Publisher(cfg, model) as pub, StreamWriter(path) as writer:
        t0 = time.monotonic()
        writer.write(pub.topology_message(1), t0)
        for i, hands in enumerate(per_frame):
            packet = Packet(Frame(image, i, i / fps, source="sample"), t0 + i / fps, (),
                            tuple(hands))
            full, light = pub.messages(packet, t_publish=t0 + i / fps)
            writer.write(full, t0 + i / fps)
            writer.write(light, t0 + i / fps + 1e-4)
            msg = protocol.decode(full)
            published[msg.seq] = [(h["track_id"], h["handedness"],
                                   np.asarray(h["vertices"], np.float32), h.get("xr_joints"))
                                  for h in msg.hands]
    return published


def recording_messages(path: Path) -> list[bytes]:
    from realtime.stream.stream_file import read_stream

    return [r.message for r in read_stream(path)]


def write_message_file(path: Path, messages: list[bytes]) -> None:
    """uint32 LE length + message, repeated: what ``--hm-file`` reads."""
    with path.open("wb") as f:
        for m in messages:
            f.write(struct.pack("<I", len(m)) + m)


def read_dump(path: Path) -> dict:
    """Godot's dump (``hand_mesh_receiver.gd``, ``_write_dump``) -> ``{seq: [(track_id,
    side, indices, vertices (V,3) in Godot axes (the mesh's, turned by its node's basis),
    xr_joints (26,8) or (0,8))]}``."""
    data = path.read_bytes()
    out, pos = {}, 0
    while pos + 8 <= len(data):
        seq, n = struct.unpack_from("<ii", data, pos)
        pos += 8
        hands = []
        for _ in range(n):
            track, side, nv, ni = struct.unpack_from("<iiii", data, pos)
            basis = np.frombuffer(data, "<f4", 9, pos + 16).reshape(3, 3).astype(np.float64)
            pos += 16 + 36
            v = np.frombuffer(data, "<f4", nv * 3, pos).reshape(nv, 3) @ basis.T
            pos += nv * 12
            (nx,) = struct.unpack_from("<i", data, pos)
            xr = np.frombuffer(data, "<f4", nx * 8, pos + 4).reshape(nx, 8)
            pos += 4 + nx * 32
            hands.append((track, ("right", "left")[side], ni, v, xr))
        out[seq] = hands
    return out


def compare(published: dict, dumped: dict) -> dict:
    """Frames ratio and the largest vertex error (mm) of Godot's meshes against the
    published vertices turned into Godot axes (x, -y, -z); the largest OpenXR joint
    position (mm) and rotation (degrees) differences of Godot's Transforms."""
    err = xr_pos = xr_deg = 0.0
    matched = 0
    for seq, hands in dumped.items():
        want = {t: (s, v, x) for t, s, v, x in published.get(seq, [])}
        if len(want) != len(hands):
            continue
        ok = True
        for track, side, _, v, xr in hands:
            if track not in want or want[track][0] != side or len(v) != len(want[track][1]):
                ok = False
                break
            ref = want[track][1] * np.array([1, -1, -1], np.float32)
            err = max(err, float(np.abs(v.astype(np.float64) - ref).max()) * 1000.0)
            ref_xr = want[track][2]
            if ref_xr is not None and len(xr) == 26:
                xr_pos = max(xr_pos, float(np.abs(xr[:, :3] - ref_xr[:, :3]).max()) * 1000.0)
                dot = np.abs((xr[:, 3:7].astype(np.float64) * ref_xr[:, 3:7]).sum(1))
                xr_deg = max(xr_deg, float(np.degrees(2 * np.arccos(np.clip(dot, 0, 1))).max()))
            elif ref_xr is not None:
                ok = False
        matched += ok
    return {"godot_frames": len(dumped), "godot_frames_matched": matched,
            "godot_frames_ratio": matched / max(1, len(published)),
            "godot_max_vertex_error_mm": err, "godot_xr_max_position_error_mm": xr_pos,
            "godot_xr_max_rotation_error_deg": xr_deg}


def godot_env(home: Path) -> dict:
    env = dict(os.environ)
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"),
               XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    return env


def run_godot(args: list[str], home: Path, timeout_s: float) -> subprocess.CompletedProcess:
    """Run the project headless with ``--hm-*`` arguments; its output is returned."""
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run([godot_binary(), "--path", str(GODOT_PROJECT), *args],
                          check=False, capture_output=True, text=True, timeout=timeout_s,
                          env=godot_env(home))


def godot_from_file(messages: list[bytes], work: Path, timeout_s: float = 300
                    ) -> tuple[dict, str]:
    """Feed the messages to Godot from a file; its dump and output."""
    feed, dump = work / "feed.bin", work / "godot_dump.bin"
    dump.unlink(missing_ok=True)
    write_message_file(feed, messages)
    proc = run_godot([f"--hm-file={feed}", f"--hm-dump={dump}"], work / "home", timeout_s)
    if proc.returncode != 0 or not dump.exists():
        raise RuntimeError(f"godot failed ({proc.returncode}): {proc.stdout[-2000:]} "
                           f"{proc.stderr[-2000:]}")
    return read_dump(dump), proc.stdout


def gateway_available() -> bool:
    try:
        import realtime.stream.web_gateway  # noqa: F401
    except ImportError:
        return False
    return True


def godot_over_websocket(recording: Path, frames: int, work: Path, timeout_s: float = 300
                         ) -> tuple[dict, str]:
    """Replay the recording in a loop with the WebSocket gateway on 127.0.0.1 (the real
    ``handmesh-stream replay --web``) and let Godot receive ``frames`` hands messages
    (one pass' worth, from wherever it joined); its dump and the replay's output."""
    port = _free_port()
    dump = work / "godot_dump.bin"
    dump.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    replay = subprocess.Popen(
        [sys.executable, "-m", "realtime.cli.stream", "replay", str(recording), "--web",
         str(port), "--loop"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env)
    lines = []
    try:
        for line in replay.stdout:  # wait until it serves
            lines.append(line)
            if line.startswith("replaying"):
                break
        else:
            raise RuntimeError("the replay did not start: " + "".join(lines)[-2000:])
        proc = run_godot([f"--hm-url=ws://127.0.0.1:{port}/ws?topics=hands,topology",
                          f"--hm-dump={dump}", f"--hm-frames={frames}",
                          f"--hm-timeout={timeout_s - 10}"], work / "home", timeout_s)
    finally:
        replay.terminate()
        out, _ = replay.communicate(timeout=30)
    if proc.returncode != 0 or not dump.exists():
        raise RuntimeError(f"godot failed ({proc.returncode}): {proc.stdout[-2000:]}")
    return read_dump(dump), "".join(lines) + out + proc.stdout


def _two_hand_frames(model) -> list:
    per_frame, _ = sample_hands(model, 450)
    two = [h for h in per_frame if len(h) == 2]
    if not two:
        raise RuntimeError(f"{SAMPLE_GT} has no frame with two hands")
    return two


def xr_cost_ms(repeats: int = 300) -> float:
    """Median ms of the OpenXR joints of the sample's two hands (one tracker call)."""
    from models.hand_model import HandModel
    from realtime.stream.openxr import openxr_tracker

    model = HandModel.open_hand()
    tracker = openxr_tracker(model)
    two = _two_hand_frames(model)
    times = []
    for k in range(repeats):
        hands = two[k % len(two)]
        t = time.perf_counter()
        tracker(hands)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000.0)


def publish_cost_ms(repeats: int = 300) -> dict:
    """Median ms of the publisher's ``hands`` + ``joints`` messages of a two-hand frame
    (``Publisher.messages``, the publishing thread's encoding), with and without the OpenXR
    joints, interleaved in one run."""
    from models.hand_model import HandModel
    from realtime.stream.publisher import Publisher, PublisherConfig
    from realtime.types import Frame, Packet

    model = HandModel.open_hand()
    two = _two_hand_frames(model)
    image = np.zeros((480, 640, 3), np.uint8)
    pubs = {}
    try:
        for xr in (True, False):
            ports = _free_port(), _free_port()
            pubs[xr] = Publisher(PublisherConfig(f"tcp://127.0.0.1:{ports[0]}",
                                                 f"tcp://127.0.0.1:{ports[1]}",
                                                 xr_joints=xr), model)
        times = {True: [], False: []}
        for k in range(repeats):
            packet = Packet(Frame(image, k, k / 30, source="bench"), time.monotonic(), (),
                            tuple(two[k % len(two)]))
            for xr, pub in pubs.items():
                t = time.perf_counter()
                pub.messages(packet, copy=False)
                times[xr].append(time.perf_counter() - t)
    finally:
        for pub in pubs.values():
            pub.close()
    with_xr, without = (float(np.median(times[x]) * 1000.0) for x in (True, False))
    return {"publish_ms_with_xr": round(with_xr, 4), "publish_ms_without_xr": round(without, 4),
            "xr_publish_extra_ms": round(with_xr - without, 4)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(quick: bool = False, work: Path | None = None) -> dict:
    import tempfile

    frames = 90 if quick else 450
    result = {"openxr_joints": 26, "xr_joints_ms": round(xr_cost_ms(100 if quick else 500), 4),
              **publish_cost_ms(100 if quick else 500)}
    if godot_binary() is None:
        result["godot_skipped"] = f"{GODOT} not installed (scripts/setup_env.sh installs it)"
        return result
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(work or tmp)
        rec = work / "sample.hmstream"
        published = make_recording(rec, frames)
        if gateway_available():
            dumped, _ = godot_over_websocket(rec, len(published), work)
            result["godot_transport"] = "websocket"
        else:
            dumped, _ = godot_from_file(recording_messages(rec), work)
            result["godot_transport"] = "file"
        result.update(compare(published, dumped))
        result["godot_version"] = subprocess.run([godot_binary(), "--version"], check=False,
                                                 capture_output=True, text=True
                                                 ).stdout.strip()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 s of the clip instead of 15 s")
    a = ap.parse_args()
    res = run(a.quick)
    for k, v in res.items():
        print(f"{k}: {v}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
