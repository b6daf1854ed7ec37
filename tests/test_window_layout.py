"""The video window and the 3D viewer open side by side, not on top of each other."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from realtime.cli.demo import WINDOW, window_layout
from realtime.io.sample import SAMPLE_VIDEO
from tests.test_shutdown import REPO, _xdotool, press_q


def test_the_viewer_opens_right_of_the_video_window():
    video_at, viewer_at = window_layout((640, 480))
    assert video_at == (40, 40)
    assert viewer_at[0] >= video_at[0] + 640 and viewer_at[1] == video_at[1]


def _geometry(title: str) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the visible window named ``title``, from the X server."""
    found = _xdotool("search", "--sync", "--onlyvisible", "--name", f"^{title}$",
                     timeout_s=120)
    assert found.returncode == 0 and found.stdout.split(), found.stderr
    shell = _xdotool("getwindowgeometry", "--shell", found.stdout.split()[0]).stdout
    values = dict(line.split("=", 1) for line in shell.split())
    return tuple(int(values[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))


@pytest.mark.display
@pytest.mark.skipif(not os.environ.get("DISPLAY"),
                    reason="no X display (DISPLAY unset; scripts/test.sh starts Xvfb :99)")
@pytest.mark.skipif(shutil.which("xdotool") is None,
                    reason="xdotool not installed (scripts/setup_env.sh installs it)")
def test_the_demo_windows_do_not_overlap(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "run_demo.py"), "--source",
                             str(SAMPLE_VIDEO), "--output", str(tmp_path), "--regressor", "fit",
                             "--realtime"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        viewer = _geometry("handmesh 3D")
        video = _geometry(WINDOW)
        time.sleep(0.5)  # both up and drawing
        assert proc.poll() is None, "the demo ended before its windows could be measured"
        vx, vy, vw, vh = video
        gx, gy, gw, gh = viewer
        assert vw >= 640 and gw > 0  # the whole frame is shown
        overlap_x = min(vx + vw, gx + gw) - max(vx, gx)
        overlap_y = min(vy + vh, gy + gh) - max(vy, gy)
        assert overlap_x <= 0 or overlap_y <= 0, (video, viewer)
        assert gx >= vx + vw  # the viewer to the right of the video
        found = _xdotool("search", "--onlyvisible", "--name", f"^{WINDOW}$")
        press_q(int(found.stdout.split()[0]))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
