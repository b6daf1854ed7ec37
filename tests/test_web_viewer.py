"""The browser viewer in real headless Chromium against a real demo run with ``--web``.

A short real run on the built-in sample (MediaPipe + the regressor) records a hands file;
``handmesh --source hands.jsonl --loop --web 127.0.0.1:PORT`` replays it at its recorded
pace through the whole pipeline and the publisher; Chromium (SwiftShader, no GPU, no
display) opens the page the demo prints. The test reads the page's own counters, freezes
the page on a frame, takes a screenshot of the camera view and compares the hands'
silhouettes with the overlay rasteriser's projection of the same published frame.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.cli.demo import main
from realtime.io.hands_file import read_hands
from realtime.io.sample import SAMPLE_VIDEO
from realtime.stream import protocol
from scripts.headless_chromium import Chromium, chromium_path
from tests.test_stream import free_port

REPO = Path(__file__).resolve().parents[1]
RECORDED_FRAMES = 15

pytestmark = pytest.mark.skipif(chromium_path() is None,
                                reason="chromium is not installed (scripts/setup_env.sh does)")


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """hands.jsonl of a short real run on the sample (MediaPipe + the learned regressor)."""
    out = tmp_path_factory.mktemp("recording")
    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(out), "--headless",
                 "--max-frames", str(RECORDED_FRAMES), "--no-video"])
    assert code == 0
    hands = out / "hands.jsonl"
    assert list(read_hands(hands)), "the sample run found no hands"
    return hands


class Demo:
    """``handmesh --source REC --loop --web 127.0.0.1:PORT`` in its own process."""

    def __init__(self, recording: Path, out: Path, extra: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "run_demo.py", "--source", str(recording), "--loop",
             "--web", f"127.0.0.1:{free_port()}", "--output", str(out), "--headless",
             "--no-video", *extra],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self.url = None
        end = time.monotonic() + 120
        while time.monotonic() < end and self.url is None:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"open (http://\S+)", line)
            if m:
                self.url = m.group(1)
        if self.url is None:
            self.stop()
            raise AssertionError("the demo printed no viewer URL:\n" + "".join(self.lines))
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the demo finishes its files and exits
        return self.proc.wait(timeout=60)


class Collector:
    """A WebSocket client of the same gateway keeping every published hands message by seq."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        port = int(re.search(r":(\d+)/", url).group(1))
        self.ws = connect(f"ws://127.0.0.1:{port}/ws?topics=hands", max_size=None).__enter__()
        self.by_seq: dict[int, protocol.Message] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self.ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - the demo ended
                return
            msg = protocol.decode(raw)
            self.by_seq[msg.seq] = msg

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.ws.close()


def projected_silhouette(msg: protocol.Message, K: np.ndarray, size: tuple[int, int]):
    """The overlay rasteriser's coverage of the frame's hands (the projection with K)."""
    from models.hand_model import HandModel
    from realtime.render.raster import new_zbuffer, render_mesh

    model = HandModel.open_hand()
    w, h = size
    image = np.zeros((h, w, 3), np.uint8)
    zbuf = new_zbuffer(h, w)
    mask = np.zeros((h, w), bool)
    for hand in msg.hands:
        mask |= render_mesh(image, hand["vertices"].astype(np.float64),
                            model.faces_for(hand["handedness"]), K, (1.0, 1.0, 1.0),
                            zbuffer=zbuf)
    return mask


def test_page_renders_the_published_hands(recording, tmp_path):
    record = next(iter(read_hands(recording)))
    cam = record["camera"]
    K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1]])
    size = (cam["width"], cam["height"])
    demo = Demo(recording, tmp_path / "replay")
    collector = Collector(demo.url)
    try:
        with Chromium(width=size[0], height=size[1]) as browser:
            # the page as a person opens it: counters go up, frames are drawn
            browser.navigate(demo.url)
            state = json.loads(browser.wait_for(
                "window.handmesh && window.handmesh.rendered >= 10 && "
                "JSON.stringify(window.handmesh)", 90))
            assert state["topology"] and state["connected"] and state["errors"] == 0
            assert state["received"] >= state["rendered"] >= 10
            assert state["lastRenderedSeq"] <= state["lastSeq"]
            fx = state["K"]["fx"]  # the intrinsics the page took from the topology
            assert abs(fx - cam["fx"]) < 1.0 and abs(state["K"]["cy"] - cam["cy"]) < 1.0
            full = browser.screenshot()
            (tmp_path / "viewer.png").write_bytes(full)
            assert cv2.imdecode(np.frombuffer(full, np.uint8), cv2.IMREAD_COLOR).std() > 5

            # silhouette mode, frozen on a frame with hands: compare with the projection
            browser.navigate(demo.url + "?silhouette=1&freeze=0&finish=1")
            for _ in range(20):
                frozen = browser.wait_for("window.handmesh && window.handmesh.frozen && "
                                          "JSON.stringify(window.handmesh)", 60)
                frozen = json.loads(frozen)
                if frozen["hands"] > 0:
                    break
                seq = frozen["frozenSeq"]
                browser.navigate(f"{demo.url}?silhouette=1&freeze={seq + 3}")
            assert frozen["hands"] > 0, "no frame with hands to compare"
            seq = frozen["frozenSeq"]
            shot = browser.screenshot(0, 0, *size)
        png = cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_GRAYSCALE)
        (tmp_path / "silhouette.png").write_bytes(shot)
        assert png.shape == (size[1], size[0])
        assert collector.by_seq.get(seq) is not None, f"frame {seq} was not published"
        published = projected_silhouette(collector.by_seq[seq], K, size)
        drawn = png > 127
        iou = (drawn & published).sum() / max(1, (drawn | published).sum())
        print(f"frame {seq}: {frozen['hands']} hand(s), silhouette IoU {iou:.4f}")
        assert published.sum() > 500, "the published hands cover almost nothing"
        assert iou >= 0.9, f"silhouette IoU {iou:.3f} for frame {seq}"
    finally:
        collector.close()
        code = demo.stop()
    assert code in (0, 143), "".join(demo.lines[-20:])


def test_page_reconnects_when_the_publisher_restarts():
    """The stream goes away and comes back on the same port: the page connects again by
    itself and draws the new publisher's frames."""
    def start(port: int = 0):
        proc = subprocess.Popen([sys.executable, "-m", "tests.web_gateway_server", str(port)],
                                cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        return proc, int(proc.stdout.readline())

    def stop(proc) -> None:
        proc.stdin.close()
        proc.wait(timeout=30)

    server, port = start()
    try:
        with Chromium(800, 480) as browser:
            browser.navigate(f"http://127.0.0.1:{port}/")
            browser.wait_for("window.handmesh && window.handmesh.rendered >= 5", 60)
            stop(server)
            browser.wait_for("window.handmesh.connected === false", 30)
            before = browser.evaluate("window.handmesh.rendered")
            server, again = start(port)
            assert again == port
            state = json.loads(browser.wait_for(
                f"window.handmesh.connections >= 2 && window.handmesh.rendered >= {before + 5}"
                " && JSON.stringify(window.handmesh)", 60))
            assert state["connected"] and state["errors"] == 0
    finally:
        if server.poll() is None:
            stop(server)
