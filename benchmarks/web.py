"""The browser viewer and the WebSocket gateway on a real two-hand replay: frames, latency,
cost to the loop, a stalled client.

The source: the built-in sample clip through the real demo (MediaPipe + the regressor,
headless) once, its two-hand part (frames 330-449: every frame with both hands) kept as a
hands file, replayed in a loop at its recorded 30 FPS through the whole pipeline
(``build_pipeline``: smoothing, pinch, overlay, hands file) into a web-only publisher
(``--web``) in this process. Headless Chromium (SwiftShader) opens the viewer page.

- ``browser_frames_ratio``: distinct frames the page rendered (echoed back by the page
  after drawing each one) over the frames published while it was connected (first to last
  echoed ``seq``), over ``--seconds`` (20 s by default).
- ``browser_latency_p50_ms``: the page's wall-clock time after drawing a frame (WebGL
  ``finish``) minus the gateway's wall-clock time when the publisher handed it the frame;
  same machine, same clock (``performance.timeOrigin + now()`` vs ``time.time()``). The
  round trip back to the gateway (an upper bound on the same thing) is printed beside it.
- ``gateway_ms``: median cost of ``WebGateway.publish`` in the publishing thread per frame
  (the ``hands`` message; the page subscribes to nothing that is built per frame besides
  it) with the browser connected.
- ``stalled_fps_ratio``: the pipeline's frame rate, unpaced (every frame as fast as the loop
  goes: the stronger test), with a client that connects and never reads, over the same
  without any client. ``stalled_memory_growth_mb``: this process's RSS at the end of the
  stalled phases minus its RSS 1 s into each; ``stalled_gateway_ms``: the gateway's cost
  per frame in the publishing thread meanwhile (what the stalled client can cost the loop).
- Godot/OpenXR figures are merged in when ``benchmarks/web_godot.py`` exists (``run(quick)``).

    .venv/bin/python -m benchmarks.web [--quick] [--seconds 20] [--hands two_hands.jsonl]

``--quick``: 6 s phases. Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.stream import rss_mb

TWO_HAND_FIRST_FRAME = 330  # the sample's two-hand part (realtime/assets/sample/README.md)


def two_hand_recording(out_dir: Path) -> Path:
    """The sample through the real demo; its frames with both hands as a hands file."""
    from realtime.cli.demo import main

    run_dir = out_dir / "sample_run"
    from realtime.io.sample import SAMPLE_VIDEO

    code = main(["--source", str(SAMPLE_VIDEO), "--output", str(run_dir), "--headless", "--no-video"])
    if code != 0:
        raise SystemExit(f"the demo on the sample failed with exit code {code}")
    frames: dict[int, list[str]] = {}
    for line in (run_dir / "hands.jsonl").read_text().splitlines():
        if line.strip():
            frames.setdefault(json.loads(line)["frame_index"], []).append(line)
    keep = [lines for idx, lines in sorted(frames.items())
            if idx >= TWO_HAND_FIRST_FRAME and len(lines) == 2]
    if len(keep) < 30:
        raise SystemExit(f"only {len(keep)} two-hand frames found in the sample run")
    path = out_dir / "two_hands.jsonl"
    path.write_text("".join(line + "\n" for lines in keep for line in lines))
    print(f"two-hand replay: {len(keep)} frames ({path})")
    return path


class Run:
    """The pipeline on a looped hands file with a web-only publisher, in a thread."""

    def __init__(self, hands: Path, out: Path, paced: bool) -> None:
        from calibration.intrinsics import CameraIntrinsics
        from models.hand_model import HandModel
        from realtime.app import AppConfig, OutputConfig, Sinks, build_pipeline
        from realtime.io.sources import SourceConfig
        from realtime.stream.publisher import Publisher, PublisherConfig
        from realtime.stream.web_gateway import WebConfig

        cam = json.loads(hands.read_text().splitlines()[0])["camera"]
        self.publisher = Publisher(
            PublisherConfig(endpoint=None, topology_endpoint=None, web=WebConfig(port=0)),
            HandModel.open_hand(), camera=CameraIntrinsics(**cam))
        self.web = self.publisher.web
        config = AppConfig(source=SourceConfig(str(hands), loop=True),
                           output=OutputConfig(folder=out, video=False),
                           realtime=paced)
        self.built = build_pipeline(config, Sinks(publish=[self.publisher]))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.built:
            self.built.run()

    def frames(self) -> int:
        return self.publisher.status()["frames"]

    def fps_over(self, seconds: float) -> float:
        f0, t0 = self.frames(), time.monotonic()
        time.sleep(seconds)
        return (self.frames() - f0) / (time.monotonic() - t0)

    def stop(self) -> None:
        self.built.pipeline.stop("benchmark done")
        self._thread.join(30)
        self.publisher.close()


def stalled_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /ws?topics=hands,joints,status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    return s


def browser_phase(hands: Path, out: Path, seconds: float) -> dict:
    from scripts.headless_chromium import Chromium, ChromiumError

    run = Run(hands, out / "browser", paced=True)
    try:
        with Chromium(1280, 720) as browser:
            browser.navigate(run.web.url)
            browser.wait_for("window.handmesh && window.handmesh.rendered > 30", 60)
            run.web.echoes.clear()
            run.web.publish_costs_s.clear()
            time.sleep(seconds)
            page = json.loads(browser.evaluate("JSON.stringify(window.handmesh)"))
            echoes = list(run.web.echoes)  # the window: these seconds, nothing after
            costs = [c for topic, c in run.web.publish_costs_s if topic == "hands"]
            try:  # for docs/web_viewer.png, of a frozen page (one that draws every frame
                # as it arrives keeps SwiftShader's compositor too busy to hand one out)
                browser.evaluate("window.handmesh.frozen = true")
                time.sleep(0.5)
                screenshot = browser.screenshot(timeout_s=20)
            except (ChromiumError, TimeoutError) as exc:
                print(f"no screenshot: {exc}")
                screenshot = None
    finally:
        run.stop()
    seqs = sorted({s for s, *_ in echoes})
    expected = seqs[-1] - seqs[0] + 1 if seqs else 0
    render_ms = np.array([(tr - tp) * 1000 for _, tr, tp, _ in echoes])
    round_ms = np.array([(te - tp) * 1000 for _, _, tp, te in echoes])
    if screenshot is not None:
        (Path(__file__).resolve().parent.parent / "docs" / "web_viewer.png").write_bytes(
            screenshot)
    return {
        "frames_published": expected, "frames_rendered": len(seqs),
        "published_fps": round(expected / seconds, 2),  # 30 unless the machine is too busy
        "browser_frames_ratio": round(len(seqs) / expected, 4) if expected else 0.0,
        "browser_latency_p50_ms": round(float(np.median(render_ms)), 2),
        "browser_latency_p95_ms": round(float(np.percentile(render_ms, 95)), 2),
        "echo_round_trip_p50_ms": round(float(np.median(round_ms)), 2),
        "gateway_ms": round(statistics.median(costs) * 1000, 4),
        "gateway_p95_ms": round(float(np.percentile(costs, 95)) * 1000, 4),
        "page_errors": page["errors"], "page_received": page["received"],
        "render_ms_all": render_ms,
    }


def stalled_phase(hands: Path, out: Path, seconds: float) -> dict:
    """Unpaced, in the order none, stalled, stalled, none (the shared machine's load drifts:
    a symmetric order cancels a steady drift from the ratio); memory over the stalled
    client's time."""
    run = Run(hands, out / "unpaced", paced=False)
    alone, stalled, growth, costs = [], [], [], []
    clients = 0
    try:
        time.sleep(2.0)  # warm
        for with_client in (False, True, True, False):
            if not with_client:
                alone.append(run.fps_over(seconds / 2))
                continue
            client = stalled_client(run.web.port)
            try:
                time.sleep(1.0)  # its buffers fill up
                rss0 = rss_mb()
                run.web.publish_costs_s.clear()
                stalled.append(run.fps_over(seconds / 2))
                growth.append(rss_mb() - rss0)
                costs += [c for topic, c in run.web.publish_costs_s if topic == "hands"]
                clients = max(clients, run.web.clients)
            finally:
                client.close()
    finally:
        run.stop()
    fps_alone, fps_stalled = float(np.mean(alone)), float(np.mean(stalled))
    return {"fps_no_client": round(fps_alone, 2), "fps_stalled_client": round(fps_stalled, 2),
            "stalled_fps_ratio": round(fps_stalled / fps_alone, 4),
            "stalled_memory_growth_mb": round(float(sum(growth)), 2), "stalled_clients": clients,
            "stalled_gateway_ms": round(statistics.median(costs) * 1000, 4) if costs else None}


def godot_figures(quick: bool) -> dict:
    """The Godot helper's figures (benchmarks/web_godot.py) when that module exists."""
    if importlib.util.find_spec("benchmarks.web_godot") is None:
        return {}
    from benchmarks import web_godot

    return dict(web_godot.run(quick))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="6 s phases")
    p.add_argument("--seconds", type=float, default=None, help="length of each phase")
    p.add_argument("--hands", type=Path, default=None,
                   help="a two-hand hands file to replay (default: made from the sample)")
    a = p.parse_args(argv)
    seconds = a.seconds or (6.0 if a.quick else 20.0)
    import logging

    logging.basicConfig(level="WARNING")
    with tempfile.TemporaryDirectory(prefix="handmesh-web-") as tmp:
        tmp = Path(tmp)
        hands = a.hands or two_hand_recording(tmp)
        t0 = time.monotonic()
        browser = browser_phase(hands, tmp, seconds)
        stalled = stalled_phase(hands, tmp, seconds)
    render_ms = browser.pop("render_ms_all")
    plot_latency(render_ms)
    figures = {**browser, **stalled, **godot_figures(a.quick),
               "seconds_per_phase": seconds, "duration_s": round(time.monotonic() - t0, 1),
               "load_average_1min": round(os.getloadavg()[0], 2)}
    print(f"{'replay frame rate while the browser watched':45s} {browser['published_fps']} "
          f"FPS (the recording is 30 FPS; load average {figures['load_average_1min']})")
    print(f"{'browser frames rendered / published':45s} {browser['frames_rendered']} / "
          f"{browser['frames_published']} = {browser['browser_frames_ratio']} (target >= 0.99)")
    print(f"{'publish -> drawn p50 / p95':45s} {browser['browser_latency_p50_ms']} / "
          f"{browser['browser_latency_p95_ms']} ms (target p50 <= 20); echo round trip p50 "
          f"{browser['echo_round_trip_p50_ms']} ms")
    print(f"{'gateway cost per frame median / p95':45s} {browser['gateway_ms']} / "
          f"{browser['gateway_p95_ms']} ms (target <= 0.3)")
    print(f"{'unpaced fps: no client / stalled client':45s} {stalled['fps_no_client']} / "
          f"{stalled['fps_stalled_client']} = {stalled['stalled_fps_ratio']} (target >= 0.95)")
    print(f"{'gateway cost per frame with the stalled client':45s} "
          f"{stalled['stalled_gateway_ms']} ms (median)")
    print(f"{'memory growth with the stalled client':45s} "
          f"{stalled['stalled_memory_growth_mb']} MB over {seconds:g} s")
    print(json.dumps(figures))
    return 0


def plot_latency(render_ms: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.common import save_figure

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(render_ms, bins=60, color="#3a8ee6")
    ax.axvline(float(np.median(render_ms)), color="k", ls="--",
               label=f"p50 {np.median(render_ms):.1f} ms")
    ax.set_xlabel("publish → drawn in headless Chromium (ms)")
    ax.set_ylabel("frames")
    ax.set_title("Browser viewer latency, 30 FPS two-hand replay")
    ax.legend()
    save_figure(fig, Path(__file__).resolve().parent.parent / "docs" / "web_latency.png")


if __name__ == "__main__":
    raise SystemExit(main())
