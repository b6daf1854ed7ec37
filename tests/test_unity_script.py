"""The Unity script, compiled with Mono against stub Unity/NetMQ types, decodes and skins
the same messages to the same vertices as the Python reference decoder."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.hand_model import HandModel
from realtime.stream import protocol
from realtime.stream.client import skin_rigged
from realtime.stream.publisher import Publisher, PublisherConfig
from tests.test_stream import free_port, make_packet
from tests.test_stream_bones import random_hands

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "integrations" / "unity" / "HandMeshReceiver.cs"
STUBS = ROOT / "tests" / "unity_stubs"
CSHARP_TOL_M = 1e-5  # two float32 implementations of the same sums, 1e-5 m = 0.01 mm

pytestmark = pytest.mark.skipif(
    shutil.which("mcs") is None or shutil.which("mono") is None,
    reason="needs Mono's C# compiler and runtime (apt-get install mono-mcs mono-runtime)")


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("unity") / "harness.exe"
    out = subprocess.run(["mcs", "-nologo", "-warnaserror-", f"-out:{exe}", str(SCRIPT),
                          str(STUBS / "Stubs.cs"), str(STUBS / "Harness.cs")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return exe


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def run_harness(exe: Path, tmp: Path, topology: bytes, frame: bytes) -> list[np.ndarray]:
    (tmp / "topo.bin").write_bytes(topology)
    (tmp / "frame.bin").write_bytes(frame)
    out = subprocess.run(["mono", str(exe), str(tmp / "topo.bin"), str(tmp / "frame.bin"),
                          str(tmp / "out.bin")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    data = (tmp / "out.bin").read_bytes()
    hands, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<i", data, pos)
        pos += 4
        hands.append(np.frombuffer(data, "<f4", 3 * n, pos).reshape(n, 3))
        pos += 12 * n
    return hands


def messages(model, hands, mode, float16=False):
    ep = (f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}")
    with Publisher(PublisherConfig(*ep, mode=mode, float16=float16), model) as pub:
        return pub.topology_message(), pub.messages(make_packet(hands))[0]


def test_unity_rigged_skinning_equals_python_decoder(harness, model, tmp_path):
    hands = random_hands(model, 4, 11)
    topo_raw, frame_raw = messages(model, hands, "rigged")
    unity = run_harness(harness, tmp_path, topo_raw, frame_raw)
    topo, frame = protocol.decode(topo_raw), protocol.decode(frame_raw)
    assert len(unity) == len(hands)
    for got, hand, decoded in zip(unity, hands, frame.hands):
        want = skin_rigged(topo, decoded, unity=True)
        assert np.abs(got - want).max() < CSHARP_TOL_M
        # and both stand for the mesh-mode vertices, in Unity axes (x, -y, z)
        assert np.linalg.norm(got * [1, -1, 1] - hand.vertices, axis=1).max() < 1e-3


@pytest.mark.parametrize("float16", [False, True])
def test_unity_mesh_mode_vertices(harness, model, tmp_path, float16):
    hands = random_hands(model, 2, 12)
    topo_raw, frame_raw = messages(model, hands, "mesh", float16)
    unity = run_harness(harness, tmp_path, topo_raw, frame_raw)
    tol = 2e-3 if float16 else 1e-6  # float16: ~0.5 mm steps at 0.5-1 m
    for got, hand in zip(unity, hands):
        assert np.abs(got * [1, -1, 1] - hand.vertices).max() < tol


def test_unity_openxr_joints_in_xrhandjointid_order(harness, model, tmp_path):
    """TryGetXRJoint's math on a real published frame: XRHandJointID order (Wrist = 1 before
    Palm = 2), Unity axes (x, y, -z) and quaternions (-x, -y, z, w), so that each joint's
    forward (+Z) runs along its bone towards the fingertip and the frames stay proper."""
    hands = random_hands(model, 2, 13)
    topo_raw, frame_raw = messages(model, hands, "mesh")
    (tmp_path / "topo.bin").write_bytes(topo_raw)
    (tmp_path / "frame.bin").write_bytes(frame_raw)
    out = subprocess.run(["mono", str(harness), str(tmp_path / "topo.bin"),
                          str(tmp_path / "frame.bin"), str(tmp_path / "out.bin"),
                          str(tmp_path / "xr.bin")], check=False, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    data = (tmp_path / "xr.bin").read_bytes()
    frame = protocol.decode(frame_raw)
    pos = 0
    for decoded in frame.hands:
        (n,) = struct.unpack_from("<i", data, pos)
        assert n == 26
        unity = np.frombuffer(data, "<f4", 26 * 8, pos + 4).reshape(26, 8)
        pos += 4 + 26 * 32
        xr = decoded["xr_joints"]
        rows = [1, 0] + list(range(2, 26))  # XRHandJointID 1..26 -> XrHandJointEXT row
        want = xr[rows]
        np.testing.assert_allclose(unity[:, :3], want[:, :3] * [1, 1, -1], atol=1e-7)
        np.testing.assert_allclose(unity[:, 3:7], want[:, 3:7] * [-1, -1, 1, 1], atol=1e-7)
        np.testing.assert_allclose(unity[:, 7], want[:, 7])
        # Unity's forward (+Z) of IndexProximal (8) points to IndexIntermediate (9)
        q = unity[7, 3:7].astype(np.float64)
        x, y, z, w = q
        fwd = np.array([2 * (x * z + y * w), 2 * (y * z - x * w), 1 - 2 * (x * x + y * y)])
        bone = unity[8, :3] - unity[7, :3]
        assert fwd @ bone / np.linalg.norm(bone) > 0.9999
