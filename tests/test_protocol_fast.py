"""The compiled packing path (realtime.stream.pack_kernels) gives exactly the bytes of the
generic one.

The reference is the plain encoder: ``encode`` of ``hand_header`` + ``hand_arrays``, built
with straightforward NumPy, no packer at all; and the packer's own generic NumPy path.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.hand_geometry import FINGER_JOINTS
from realtime.stream import pack_kernels, protocol
from realtime.types import HandMesh

NAMES = tuple(FINGER_JOINTS[:12]) + ("wrist", "extra_a", "extra_b")  # some missing
V, S = 1302, 10


def random_hand(rng, dtype, side: str, nan: bool = False, degenerate: bool = False) -> HandMesh:
    joints = rng.normal(0, 0.05, (21, 3)) + [0.0, 0.0, 0.5]
    if degenerate:  # the middle MCP on the wrist: the wrist frame falls back to identity
        joints[9] = joints[0]
    arrays = dict(vertices=rng.normal(0, 0.05, (V, 3)) + [0.0, 0.0, 0.5], joints=joints,
                  vertex_std=rng.uniform(1e-3, 1e-2, V), pose=rng.normal(0, 0.4, (15, 3)),
                  shape=rng.normal(0, 1, S), keypoints_2d=rng.uniform(0, 640, (21, 2)))
    if nan:
        arrays["joints"][rng.integers(0, 21)] = np.nan
        arrays["vertices"][:5] = np.nan
        arrays["pose"][2, 0] = np.inf
        arrays["vertex_std"][7] = np.nan
    arrays = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in arrays.items()}
    return HandMesh(**arrays, handedness=side, score=float(rng.uniform()) if not nan else
                    float("nan"), track_id=int(rng.integers(1, 9)),
                    timestamp=float(rng.uniform(0, 1e4)), frame_index=int(rng.integers(1e6)),
                    reprojection_error_px=float(rng.uniform(0, 5)) if not nan else float("inf"))


def reference(topic: bytes, hands, names, float16: bool, mesh: bool) -> bytes:
    parts = [(protocol.hand_header(h),
              protocol.hand_arrays(h, names, float16=float16, mesh=mesh)) for h in hands]
    return protocol.encode(topic, {"seq": 7}, [(protocol.json_safe(f), a) for f, a in parts])


def generic(packer, hands, mesh: bool) -> list:
    return [packer._pack_generic(i, h, mesh, None) for i, h in enumerate(hands)]


@pytest.mark.parametrize("float16", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("names", [NAMES, FINGER_JOINTS, ()])
def test_fast_path_bytes_equal_reference(float16, dtype, names):
    rng = np.random.default_rng(int(float16) * 10 + (dtype == np.float32) + len(names))
    packer = protocol.HandPacker(names, float16)
    packer.warmup()
    for trial in range(12):
        hands = [random_hand(rng, dtype, "right", nan=trial % 3 == 1, degenerate=trial == 5),
                 random_hand(rng, dtype, "left", nan=trial % 4 == 2)]
        for mesh in (True, False):
            topic = protocol.TOPIC_HANDS if mesh else protocol.TOPIC_JOINTS
            packed = [packer.pack(i, h, mesh=mesh) for i, h in enumerate(hands)]
            fast = protocol.encode_packed(topic, {"seq": 7}, packed, extra=mesh)
            assert fast == reference(topic, hands, names, float16, mesh)
            slow = protocol.encode_packed(topic, {"seq": 7}, generic(packer, hands, mesh),
                                          extra=mesh)
            assert fast == slow
            light = protocol.encode_packed(topic, {"seq": 7}, packed, extra=False)
            assert light == reference(topic, hands, names, float16, mesh=False)


def test_pose_of_another_model_gives_nan_finger_angles():
    rng = np.random.default_rng(3)
    hand = random_hand(rng, np.float64, "right")
    hand = dataclasses.replace(hand, pose=np.zeros((4, 3)))  # not the model's 15 joints
    packer = protocol.HandPacker(FINGER_JOINTS)
    msg = protocol.decode(protocol.encode_packed(protocol.TOPIC_JOINTS, {},
                                                 [packer.pack(0, hand)], extra=False))
    assert np.isnan(msg.hands[0]["finger_angles"]).all()
    assert msg.hands[0]["pose"].shape == (4, 3)


def test_unusual_hands_take_the_generic_path_with_the_same_bytes():
    """Mixed dtypes, non-contiguous views and flat poses are not for the kernel."""
    rng = np.random.default_rng(4)
    base = random_hand(rng, np.float64, "left")
    odd = [dataclasses.replace(base, vertices=base.vertices.astype(np.float32)),
           dataclasses.replace(base, joints=np.asfortranarray(base.joints)),
           dataclasses.replace(base, pose=base.pose.reshape(-1)),
           dataclasses.replace(base, keypoints_2d=base.keypoints_2d.tolist())]
    packer = protocol.HandPacker(NAMES)
    for hand in odd:
        assert packer._pack_fast(0, hand, True) is None
        got = protocol.encode_packed(protocol.TOPIC_HANDS, {"seq": 7}, [packer.pack(0, hand)])
        assert got == reference(protocol.TOPIC_HANDS, [hand], NAMES, False, True)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 1302, 8192, 8193, 20000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sum_matches_numpy_pairwise(n, dtype):
    a = np.random.default_rng(n).uniform(-1, 1, n).astype(dtype) * 1e3
    assert pack_kernels.np_sum(a) == a.sum(dtype=np.float64)


@pytest.mark.parametrize("t_capture", [12.5, float("nan"), float("inf"), 1e-300, 3])
@pytest.mark.parametrize("camera", ["bench", 'cam "0" é\n', ""])
def test_frame_header_json_is_what_json_writes(t_capture, camera):
    args = dict(seq=41, t_capture=t_capture, t_publish=1234.000001, t_publish_wall=1.7e9 + 0.1,
                camera_id=camera, frame_index=9, image_size=(640, 480), mode="mesh")
    want = {"schema": protocol.SCHEMA_VERSION, **args, "image_size": [640, 480],
            "t_capture": protocol.json_safe(float(t_capture))}
    assert protocol.frame_header_json(**args) == protocol._DUMPS(want)
    packer = protocol.HandPacker(NAMES)
    hand = random_hand(np.random.default_rng(5), np.float64, "right")
    assert (protocol.encode_packed(protocol.TOPIC_HANDS, protocol.frame_header_json(**args),
                                   [packer.pack(0, hand)])
            == protocol.encode_packed(protocol.TOPIC_HANDS, {k: v for k, v in want.items()
                                                             if k != "schema"},
                                      [packer.pack(0, hand)]))


def assert_same_message(got: bytes, want: bytes) -> None:
    """Decoded equal: header, fields, every array's dtype, shape and bits (NaN included)."""
    a, b = protocol.decode(bytes(got)), protocol.decode(want)
    assert a.topic == b.topic and a.header == b.header
    assert len(a.hands) == len(b.hands)
    for x, y in zip(a.hands, b.hands):
        assert x.keys() == y.keys()
        for k, v in x.items():
            if isinstance(v, np.ndarray):
                assert v.dtype == y[k].dtype and v.shape == y[k].shape, k
                assert v.tobytes() == y[k].tobytes(), k
            else:
                assert v == y[k], k


def general_messages(packer, hands, seq_h, seq_j, tail):
    packed = [packer.pack(i, h) for i, h in enumerate(hands)]
    text = protocol.frame_header_tail(*tail)
    return (protocol.encode_packed(protocol.TOPIC_HANDS, protocol.frame_header_head(seq_h)
                                   + text, packed),
            protocol.encode_packed(protocol.TOPIC_JOINTS, protocol.frame_header_head(seq_j)
                                   + text, packed, extra=False))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("names", [NAMES, FINGER_JOINTS, ()])
def test_two_hand_messages_decode_as_the_general_path(dtype, names):
    """The publisher's in-place two-hand messages: same content as pack + encode_packed,
    over frames with NaN/inf fields, a degenerate wrist and a change of camera; the buffers
    are reused (payload at a fixed offset, aligned), and one packer serves every frame."""
    rng = np.random.default_rng(11 + len(names))
    packer = protocol.HandPacker(names)
    reference_packer = protocol.HandPacker(names)
    for trial in range(10):
        hands = [random_hand(rng, dtype, "right", nan=trial % 3 == 1, degenerate=trial == 4),
                 random_hand(rng, dtype, "left", nan=trial % 4 == 2)]
        tail = (float("nan") if trial == 6 else 10.0 + trial, 11.5 + trial, 1.7e9 + trial,
                "cam%" if trial >= 7 else "cam0", trial, (640, 480), "mesh")
        got = packer.two_hand_messages(*hands, 100 + trial, 200 + trial, tail)
        assert got is not None, f"trial {trial} left the fast path"
        want = general_messages(reference_packer, hands, 100 + trial, 200 + trial, tail)
        for g, w in zip(got, want):
            assert_same_message(g, w)
            hlen = int.from_bytes(g[len(g.split(b" ", 1)[0]) + 1:][:4], "little")
            assert (len(g.split(b" ", 1)[0]) + 5 + hlen) % protocol.ALIGN == 0
        hands_only = packer.two_hand_messages(*hands, 1, 1, tail, want_joints=False)
        assert hands_only[1] is None and hands_only[0] is got[0]  # the same reused buffer


def test_two_hand_messages_follow_new_shapes_and_refuse_odd_hands():
    rng = np.random.default_rng(12)
    packer = protocol.HandPacker(NAMES)
    tail = (1.0, 2.0, 3.0, "cam0", 5, (640, 480), "mesh")
    a, b = random_hand(rng, np.float64, "right"), random_hand(rng, np.float64, "left")
    assert packer.two_hand_messages(a, b, 1, 1, tail) is not None
    # a different vertex count (another hand model) on the next frame: new layout
    small = dataclasses.replace(b, vertices=b.vertices[:700].copy(),
                                vertex_std=b.vertex_std[:700].copy())
    got = packer.two_hand_messages(a, small, 2, 2, tail)
    assert_same_message(got[0], general_messages(protocol.HandPacker(NAMES), [a, small], 2, 2,
                                                 tail)[0])
    odd = [dataclasses.replace(b, vertices=b.vertices.astype(np.float32)),  # mixed dtypes
           dataclasses.replace(b, joints=np.asfortranarray(b.joints)),  # not C-contiguous
           dataclasses.replace(b, vertices=b.vertices[::2]),  # a strided view
           dataclasses.replace(b, keypoints_2d=b.keypoints_2d.tolist()),  # not an array
           dataclasses.replace(b, handedness="unknown")]
    for hand in odd:
        assert packer.two_hand_messages(a, hand, 3, 3, tail) is None
    assert protocol.HandPacker(NAMES, float16=True).two_hand_messages(a, b, 1, 1, tail) is None
