"""Our .npz assets: a missing, corrupt or pickled file is the asset's own clear error that
says how to make one; a good file is read whole."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import AssetError
from models.hand_model import load_npz
from models.interaction_prior import InteractionPrior
from models.npz_files import read_npz
from models.uv_layout import load_uv_layout
from realtime.mesh.pinch_head import PinchHead, PinchHeadError


def test_reads_every_array(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x=np.arange(3), y=np.eye(2))
    got = read_npz(path, "thing", "Make it.")
    assert sorted(got) == ["x", "y"]
    np.testing.assert_array_equal(got["y"], np.eye(2))


@pytest.mark.parametrize("content", [None, b"not a zip", b"PK\x03\x04broken", "pickle"])
def test_missing_corrupt_or_pickled_is_a_clear_error(tmp_path, content):
    path = tmp_path / "a.npz"
    if content == "pickle":
        np.savez(path, x=np.array([{"a": 1}], dtype=object))  # would need allow_pickle
    elif content is not None:
        path.write_bytes(content)
    want = "thing not found: .*Make it" if content is None else "not a readable thing .npz"
    with pytest.raises(AssetError, match=want):
        read_npz(path, "thing", "Make it.")


@pytest.mark.parametrize("load, error, how", [
    (load_npz, AssetError, "build_open_hand"),
    (InteractionPrior.load, AssetError, "train_interaction_prior"),
    (lambda p: load_uv_layout(p, mesh_path=None), AssetError, "build_uv"),
    (PinchHead, PinchHeadError, "train_pinch_head"),
])
def test_each_asset_says_how_to_make_it(tmp_path, load, error, how):
    with pytest.raises(error, match=f"not found: .*{how}"):
        load(tmp_path / "none.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(error, match="is not a readable"):
        load(junk)


def test_arrays_missing_from_a_prior_or_a_layout(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, something=np.zeros(2))
    with pytest.raises(AssetError, match="not an interaction prior .no feature_mean"):
        InteractionPrior.load(path)
    with pytest.raises(AssetError, match="not a UV layout written by models.training.build_uv"):
        load_uv_layout(path, mesh_path=None)
