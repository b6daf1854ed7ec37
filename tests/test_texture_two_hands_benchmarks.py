"""The texture and two-hand benchmarks run end to end and end with their JSON line; the UV
layout rebuilds to the committed asset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def _last_json(*args: str) -> dict:
    out = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_texture_benchmark_prints_its_json(tmp_path):
    got = _last_json("-m", "benchmarks.texture", "--frames", "6", "--plot", str(tmp_path / "t.png"))
    assert set(got) == {"texture_psnr_db", "texture_leak_rate", "texture_ms"}
    assert got["texture_psnr_db"] > 20 and 0 <= got["texture_leak_rate"] < 0.05


def test_two_hands_benchmark_prints_its_json(tmp_path):
    got = _last_json("-m", "benchmarks.two_hands", "--pairs", "4", "--minutes", "0.05",
                     "--plot", str(tmp_path / "h.png"))
    assert set(got) == {"penetration_mm3_before", "penetration_mm3_after",
                        "keypoint_error_mm_before", "keypoint_error_mm_after",
                        "handedness_flips_per_min", "two_hands_ms"}
    assert got["penetration_mm3_after"] <= got["penetration_mm3_before"]


def test_uv_layout_rebuilds_to_the_committed_asset():
    pytest.importorskip("xatlas", reason="xatlas is a build-time dependency ([train] extra)")
    from models.training.build_uv import build_uv
    from models.uv_layout import UV_PATH

    built = build_uv()
    with np.load(UV_PATH) as z:
        for key in ("uv", "uv_faces", "vmapping"):
            np.testing.assert_array_equal(built[key], z[key])
        assert str(built["mesh_sha256"]) == str(z["mesh_sha256"])
