"""The hands file's piecewise encoder writes exactly what one json.dumps of the record would."""

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
def test_record_line_is_byte_identical_to_one_dumps(model, include_vertices, with_camera):
    camera = CameraIntrinsics.from_matrix(
        np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]]), 640, 480) \
        if with_camera else None
    for hand in _hands(model):
        expected = json.dumps(hand_to_record(hand, include_vertices, camera))
        assert record_line(hand, include_vertices, camera) == expected


def test_tiny_and_empty_meshes_encode_the_same(model):
    hand = _hands(model)[0]
    for n in (0, 1, 127, 128, 129):
        small = type(hand)(**{**hand.__dict__, "vertices": hand.vertices[:n],
                              "vertex_std": hand.vertex_std[:n]})
        assert record_line(small) == json.dumps(hand_to_record(small))


def test_written_file_reads_back(model, tmp_path):
    path = tmp_path / "hands.jsonl"
    with HandsWriter(path) as writer:
        writer.write_frame(_hands(model))
    records = list(read_hands(path))
    assert len(records) == 3
    np.testing.assert_allclose(records[0]["vertices"], np.round(_hands(model)[0].vertices, 5))


@pytest.mark.parametrize("include_vertices", [True, False])
def test_record_line_with_openxr_joints_is_byte_identical(model, include_vertices):
    """The OpenXR joints ride before the mesh, so the piecewise mesh still ends the record."""
    from realtime.stream.openxr import openxr_tracker

    hands = _hands(model)
    xr = openxr_tracker(model)(hands)
    for hand, xr_joints in zip(hands, xr):
        line = record_line(hand, include_vertices, None, xr_joints)
        assert line == json.dumps(hand_to_record(hand, include_vertices, None, xr_joints))
        assert len(json.loads(line)["xr_joints"]) == 26
