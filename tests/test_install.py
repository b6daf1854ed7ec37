"""Install check: the wheel carries what handmesh needs to run, and runs from a fresh venv.

``pip wheel .`` builds the wheel; it is installed into a fresh virtual environment (its
dependencies are the test environment's own, reached through a ``.pth`` path line, so
nothing is downloaded); then, from a folder outside the checkout, the three-line API runs
on a frame of the built-in sample, and the console scripts answer. Anything the wheel
forgot (the hand model, the regressor weights, the sample clip) fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = (  # package data the runtime reads
    "models/assets/open_hand.npz", "models/assets/open_hand.json",
    "models/assets/open_hand_uv.npz", "models/assets/NOTICE",
    "models/weights/regressor.json", "models/weights/regressor.onnx",
    "models/weights/regressor_fp32.onnx", "models/weights/interaction_prior.npz",
    "realtime/assets/sample/sample.mp4", "realtime/assets/sample/sample_gt.npz",
)
SCRIPTS = ("handmesh", "handmesh-calibrate", "handmesh-stream", "handmesh-multiview")

THREE_LINES = """
import json, cv2
import realtime
from realtime import HandMesher, HandMesherConfig
from realtime.io.sample import SAMPLE_VIDEO

cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
for _ in range(251):  # frame 250: both hands in view
    ok, bgr = cap.read()
assert ok, SAMPLE_VIDEO
with HandMesher(HandMesherConfig()) as mesher:
    hands = mesher.process(bgr)
print(json.dumps({"realtime": realtime.__file__, "sample": str(SAMPLE_VIDEO),
                  "estimator": type(mesher.estimator).__name__,
                  "hands": [[h.handedness, list(h.vertices.shape), float(h.joints[0, 2])]
                            for h in hands]}))
"""


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


def _source_copy(dest: Path) -> Path:
    """The checkout's files (tracked, or new and not ignored) in a clean folder: a build in
    the checkout itself would reuse a stale ``build/`` and leave one behind."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                  cwd=REPO)
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): copy it all
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".git"))
        return dest
    for name in filter(None, listed.stdout.split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the freshly built wheel installed; returns its bin folder."""
    tmp = tmp_path_factory.mktemp("install")
    dist = tmp / "dist"
    # --no-build-isolation: build with this environment's setuptools (the [test] extra pins
    # one that builds wheels by itself), so the check needs no network
    source = _source_copy(tmp / "src")
    built = _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                  "--no-build-isolation", "-q", "-w", str(dist)], cwd=tmp)
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(dist.glob("handmesh-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    inst = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                 "--no-index", "-q", str(wheels[0])], cwd=tmp)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    site = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # plain path lines: the dependencies become importable, while this environment's own
    # .pth files (the editable install of the checkout) are not run
    (Path(site.stdout.strip()) / "handmesh_test_deps.pth").write_text("\n".join(deps) + "\n")
    return venv / "bin"


def test_wheel_contents_and_scripts(installed):
    wheel = next((installed.parent.parent / "dist").glob("handmesh-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in SHIPPED if f not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "scripts/"))]
    assert not [n for n in names if n.endswith(".pt")], "training checkpoints stay out"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry).decode()
    for script in SCRIPTS:
        assert f"{script} =" in scripts
        assert (installed / script).is_file()


def test_three_line_api_runs_from_the_installed_wheel(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = _run([str(installed / "python"), "-c", THREE_LINES], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    venv = installed.parent.resolve()
    assert Path(out["realtime"]).resolve().is_relative_to(venv), out  # not the checkout
    assert Path(out["sample"]).resolve().is_relative_to(venv), out
    assert out["estimator"] == "RegressorEstimator"  # the shipped weights were found
    assert len(out["hands"]) == 2
    for side, shape, depth in out["hands"]:
        assert side in ("left", "right") and shape == [1302, 3] and 0.2 < depth < 1.5


def test_console_scripts_run_from_the_installed_wheel(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DISPLAY")}
    for script in SCRIPTS:
        proc = _run([str(installed / script), "--help"], cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"usage: {script}" in proc.stdout
    out = tmp_path / "run"
    proc = _run([str(installed / "handmesh"), "--max-frames", "5", "--headless", "--output",
                 str(out)], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "built-in sample" in proc.stdout
    stats = json.loads((out / "stats.json").read_text())
    assert stats["frames"] == 5 and stats["hands_from"] == "RegressorEstimator"
