"""The hands file's piecewise encoder writes the record one json.dumps would: the same fields in
the same order, byte for byte up to the mesh, and a mesh whose numbers parse back exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.common import random_hand_mesh
from calibration.intrinsics import CameraIntrinsics
from models.hand_model import HandModel
from realtime.io.hands_file import HandsWriter, hand_to_record, read_hands, record_line
from realtime.types import Pinch


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def _hands(model: HandModel) -> list:
    camera = {"track_id": 0, "score": 0.93, "frame_index": 12, "timestamp": 0.4}
    return [
        random_hand_mesh(model, "right", 1, reprojection_error_px=1.25, **camera),
        random_hand_mesh(model, "left", 2, reprojection_error_px=float("nan"),
                         pinch=Pinch(0.0123456789, True, False), **camera),
        random_hand_mesh(model, "right", 3, reprojection_error_px=0.5,
                         pinch=Pinch(float("nan"), False, True), **camera),
    ]


@pytest.mark.parametrize("include_vertices", [True, False])
@pytest.mark.parametrize("with_camera", [True, False])
def test_record_line_is_the_record_of_one_dumps(model, include_vertices, with_camera):
    camera = CameraIntrinsics.from_matrix(
        np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]]), 640, 480) \
        if with_camera else None
    for hand in _hands(model):
        _assert_same_record(record_line(hand, include_vertices, camera),
                            hand_to_record(hand, include_vertices, camera))


def _assert_same_record(line: str, record: dict) -> None:
    """``line`` is ``json.dumps(record)`` up to the mesh, and parses to the same values."""
    head = {k: v for k, v in record.items() if k not in ("vertices", "vertex_std")}
    assert line.startswith(json.dumps(head)[:-1])
    parsed = json.loads(line)
    assert list(parsed) == list(record)
    for key in ("vertices", "vertex_std"):
        if key in record:
            np.testing.assert_array_equal(np.asarray(parsed[key], dtype=np.float64),
                                          np.asarray(record[key], dtype=np.float64))


def test_mesh_numbers_are_fixed_point():
    """All five decimals (so the encoder never falls back on repr), no negative zero, and
    NaN still written as json.dumps writes it."""
    from realtime.io.hands_file import _mesh_json

    assert _mesh_json(np.array([[0.5, -0.000001, -1.234567]])) == "[[0.50000, 0.00000, -1.23457]]"
    assert _mesh_json(np.array([0.5, float("nan")])) == "[0.5, NaN]"
    assert _mesh_json(np.zeros((0, 3))) == "[]"


def test_tiny_and_empty_meshes_encode_the_same(model):
    hand = _hands(model)[0]
    for n in (0, 1, 127, 128, 129):
        small = type(hand)(**{**hand.__dict__, "vertices": hand.vertices[:n],
                              "vertex_std": hand.vertex_std[:n]})
        _assert_same_record(record_line(small), hand_to_record(small))


def test_written_file_reads_back(model, tmp_path):
    path = tmp_path / "hands.jsonl"
    with HandsWriter(path) as writer:
        writer.write_frame(_hands(model))
    records = list(read_hands(path))
    assert len(records) == 3
    np.testing.assert_allclose(records[0]["vertices"], np.round(_hands(model)[0].vertices, 5))


@pytest.mark.parametrize("include_vertices", [True, False])
def test_record_line_with_openxr_joints_is_the_same_record(model, include_vertices):
    """The OpenXR joints ride before the mesh, so the piecewise mesh still ends the record."""
    from realtime.stream.openxr import openxr_tracker

    hands = _hands(model)
    xr = openxr_tracker(model)(hands)
    for hand, xr_joints in zip(hands, xr):
        line = record_line(hand, include_vertices, None, xr_joints)
        _assert_same_record(line, hand_to_record(hand, include_vertices, None, xr_joints))
        assert len(json.loads(line)["xr_joints"]) == 26
