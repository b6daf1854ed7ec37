"""Imports: nothing breaks when another package is imported first, and a foreign package
named like one of ours ('models', 'calibration') is reported plainly.

Each case runs in a fresh interpreter (import order only matters once per process), then
runs the three-line API on a frame of the built-in sample.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

API = """
import cv2
from realtime import HandMesher, HandMesherConfig
from realtime.io.sample import SAMPLE_VIDEO
cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
ok, bgr = cap.read()
with HandMesher(HandMesherConfig()) as mesher:
    hands = mesher.process(bgr)
print("hands", len(hands))
"""
# Libraries a handmesh user is likely to have imported already, in orders that have bitten
# other projects (static TLS of OpenMP runtimes, two protobufs, two copies of OpenCV).
FIRST = {
    "torch": "import torch",
    "open3d": "import open3d",
    "mediapipe+tflite": "import mediapipe; from ai_edge_litert import interpreter",
    "onnxruntime+numba": "import onnxruntime, numba",
    "zmq+scipy+matplotlib": "import zmq, scipy.optimize, matplotlib.pyplot",
}


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


@pytest.mark.parametrize("name", sorted(FIRST))
def test_api_works_after_another_package(name, tmp_path):
    proc = _python(FIRST[name] + "\n" + API, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hands 1" in proc.stdout or "hands 2" in proc.stdout, proc.stdout


def test_other_packages_work_after_the_api(tmp_path):
    code = API + "\n" + "\n".join(FIRST.values()) + "\nprint('all imported')"
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all imported" in proc.stdout


@pytest.mark.parametrize("shadowed", ["models", "calibration"])
def test_a_foreign_package_of_our_name_is_reported(shadowed, tmp_path):
    """A ``models/`` folder in the working directory (common in ML projects) comes first on
    sys.path; importing realtime must say what happened, not fail somewhere deep."""
    (tmp_path / shadowed).mkdir()
    (tmp_path / shadowed / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    proc = subprocess.run([sys.executable, "-c", f"import {shadowed}; import realtime"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"another package named '{shadowed}'" in proc.stderr
    assert "own virtual environment" in proc.stderr
