"""The command line behind ``run_demo.py``: source -> MediaPipe -> hand model -> outputs.

This first end-to-end loop runs the stages one after another in the main thread; the
threaded real-time engine replaces the loop, not the stages.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from calibration.errors import CalibrationError
from calibration.intrinsics import DEFAULT_HFOV_DEG, CameraIntrinsics, guess_intrinsics
from models.errors import ModelError
from models.hand_model import HandModel
from realtime.detector import DetectorConfig, MediaPipeDetector
from realtime.errors import RealtimeError
from realtime.fitting import FitterConfig, HandFitter
from realtime.overlay import OverlayConfig, draw_hands, draw_hud
from realtime.records import HandsWriter
from realtime.sources import ImageFolderSource, SourceConfig, camera_available, open_source
from realtime.tracking import SimpleTracker

log = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).resolve().parent / "assets" / "sample"
SAMPLE_VIDEO = SAMPLE_DIR / "sample.mp4"
SAMPLE_GT = SAMPLE_DIR / "sample_gt.npz"
WINDOW = "handmesh"


@dataclass(frozen=True)
class DemoConfig:
    """What to read, where to write, and how to show it."""

    source: str = "auto"
    output_dir: Path = Path("demo_output")
    headless: bool = False
    max_frames: int | None = None
    hfov_deg: float = DEFAULT_HFOV_DEG
    mirror: bool = False
    write_video: bool = True
    write_vertices: bool = True
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    fitter: FitterConfig = field(default_factory=FitterConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"--max-frames must be at least 1, got {self.max_frames}")


def parse_args(argv: list[str] | None = None) -> DemoConfig:
    p = argparse.ArgumentParser(
        prog="run_demo.py",
        description="Live 3D hand meshes from a webcam, a video file or a folder of images.",
    )
    p.add_argument("--source", default="auto",
                   help="camera index (0), device path, video file, image or folder of "
                        "images; 'auto' (default): webcam 0 if present, else the built-in "
                        "sample clip")
    p.add_argument("--output", type=Path, default=Path("demo_output"),
                   help="folder for overlay.mp4, hands.jsonl and stats.json")
    p.add_argument("--headless", action="store_true",
                   help="no window (automatic when there is no display)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.add_argument("--fov", type=float, default=DEFAULT_HFOV_DEG,
                   help="horizontal field of view guess in degrees for an uncalibrated camera")
    p.add_argument("--mirror", action="store_true",
                   help="flip frames horizontally (selfie view); handedness follows")
    p.add_argument("--no-video", action="store_true", help="do not write overlay.mp4")
    p.add_argument("--joints-only", action="store_true",
                   help="hands.jsonl without vertices (much smaller)")
    p.add_argument("--model-complexity", type=int, choices=(0, 1), default=1)
    p.add_argument("--log-level", default="WARNING")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return DemoConfig(
        source=a.source, output_dir=a.output, headless=a.headless, max_frames=a.max_frames,
        hfov_deg=a.fov, mirror=a.mirror, write_video=not a.no_video,
        write_vertices=not a.joints_only,
        detector=DetectorConfig(model_complexity=a.model_complexity, mirrored=a.mirror),
    )


def display_available() -> bool:
    """A window can open: an X/Wayland display on Linux; assumed elsewhere."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def resolve_source(spec: str) -> tuple[str, str]:
    """``(spec, why)``: 'auto' becomes webcam 0 when there is one, else the built-in sample."""
    if spec != "auto":
        return spec, ""
    if camera_available(0):
        return "0", "webcam 0"
    if not SAMPLE_VIDEO.is_file():
        raise RealtimeError(f"no webcam found and the built-in sample {SAMPLE_VIDEO} is missing;"
                            " pass --source with a video file or a folder of images")
    return str(SAMPLE_VIDEO), "no webcam found: playing the built-in sample clip"


def sample_intrinsics(spec: str) -> CameraIntrinsics | None:
    """The built-in sample ships its true camera; use it instead of a guess."""
    try:
        if Path(spec).resolve() == SAMPLE_VIDEO.resolve() and SAMPLE_GT.is_file():
            with np.load(SAMPLE_GT) as gt:
                return CameraIntrinsics.from_matrix(gt["K"], int(gt["width"]), int(gt["height"]))
    except OSError:
        return None
    return None


@dataclass
class StageTimes:
    """Per-stage wall time in milliseconds, one entry per frame."""

    ms: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.ms.setdefault(stage, []).append(seconds * 1000.0)

    def summary(self) -> dict[str, dict[str, float]]:
        return {k: {"mean_ms": round(float(np.mean(v)), 2),
                    "p50_ms": round(float(np.percentile(v, 50)), 2),
                    "p95_ms": round(float(np.percentile(v, 95)), 2)}
                for k, v in self.ms.items() if v}


def run(config: DemoConfig) -> dict:
    """Run the demo; returns the stats also written to ``stats.json``."""
    spec, why = resolve_source(config.source)
    if why:
        print(why)
    headless = config.headless or not display_available()
    if headless and not config.headless:
        print("no display: running headless (results are written to files)")
    source = open_source(SourceConfig(spec=spec, mirror=config.mirror))
    out_dir = config.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    video_path, hands_path, stats_path = (out_dir / "overlay.mp4", out_dir / "hands.jsonl",
                                          out_dir / "stats.json")
    model = HandModel.open_hand()
    fitter = HandFitter(model, config.fitter)
    faces_for = {"right": fitter.faces("right"), "left": fitter.faces("left")}
    tracker = SimpleTracker()
    times = StageTimes()
    frames = frames_with_hands = hands_total = 0
    fit_failures = 0
    interrupted = False
    writer = None
    start = time.perf_counter()
    with source:
        det_cfg = config.detector
        if isinstance(source, ImageFolderSource):
            det_cfg = DetectorConfig(**{**det_cfg.__dict__, "static_image_mode": True})
        width, height = source.size
        intrinsics = sample_intrinsics(spec) or guess_intrinsics(width, height, config.hfov_deg)
        if intrinsics.estimated:
            log.info("no calibration: intrinsics estimated from a %.0f degree field of view",
                     config.hfov_deg)
        K = intrinsics.K  # noqa: N806
        with MediaPipeDetector(det_cfg) as detector, HandsWriter(
            hands_path, config.write_vertices
        ) as hands_file:
            try:
                for frame in source:
                    if config.max_frames is not None and frames >= config.max_frames:
                        break
                    if frame.size != (width, height):  # image folders may mix sizes
                        width, height = frame.size
                        intrinsics = guess_intrinsics(width, height, config.hfov_deg)
                        K = intrinsics.K  # noqa: N806
                    t0 = time.perf_counter()
                    detections = detector.process(frame)
                    t1 = time.perf_counter()
                    ids = tracker.assign(detections, frame.size)
                    hands = []
                    for det, tid in zip(detections, ids):
                        try:
                            hands.append(fitter.fit(det, intrinsics, tid))
                        except (ValueError, np.linalg.LinAlgError) as exc:
                            fit_failures += 1
                            log.warning("frame %d: hand not fitted (%s)", frame.index, exc)
                    t2 = time.perf_counter()
                    hands_file.write_frame(hands)
                    frames += 1  # counted together with what was written
                    frames_with_hands += bool(hands)
                    hands_total += len(hands)
                    image = draw_hands(frame.image, hands, faces_for, K, config.overlay)
                    fps = frames / max(time.perf_counter() - start, 1e-6)
                    draw_hud(image, [f"{fps:4.1f} FPS  frame {frame.index}",
                                     f"detect {1e3 * (t1 - t0):.0f} ms  fit {1e3 * (t2 - t1):.0f} ms",
                                     f"hands {len(hands)}"])
                    t3 = time.perf_counter()
                    if config.write_video:
                        if writer is None:
                            writer = _open_writer(video_path, source.fps, image.shape)
                        writer.write(image)
                    if not headless:
                        cv2.imshow(WINDOW, image)
                        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                            break
                    times.add("detect", t1 - t0)
                    times.add("fit", t2 - t1)
                    times.add("render", t3 - t2)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                if writer is not None:
                    writer.release()
                if not headless:
                    cv2.destroyAllWindows()
    elapsed = time.perf_counter() - start
    stats = {
        "source": spec,
        "frames": frames,
        "frames_with_hands": frames_with_hands,
        "hand_rate": round(frames_with_hands / frames, 4) if frames else 0.0,
        "hands": hands_total,
        "fit_failures": fit_failures,
        "seconds": round(elapsed, 3),
        "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
        "stages": times.summary(),
        "intrinsics": {"fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx,
                       "cy": intrinsics.cy, "estimated": intrinsics.estimated},
        "hand_model": model.data.name,
        "interrupted": interrupted,
        "outputs": {"hands": str(hands_path),
                    "video": str(video_path) if config.write_video and frames else None},
    }
    stats_path.write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def _open_writer(path: Path, fps: float, shape: tuple[int, ...]) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps or 30.0),
                             (shape[1], shape[0]))
    if not writer.isOpened():
        raise RealtimeError(f"cannot write video {path}: check the folder is writable")
    return writer


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code (0 ok, 2 bad input, 130 interrupted)."""
    try:
        config = parse_args(argv)
        stats = run(config)
    except (RealtimeError, CalibrationError, ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"{stats['frames']} frames, hands in {stats['frames_with_hands']} "
          f"({100 * stats['hand_rate']:.0f}%), {stats['fps']} FPS")
    out = config.output_dir
    print(f"results in {out}/: overlay.mp4 (video with meshes), hands.jsonl (one record per "
          f"hand per frame), stats.json")
    return 130 if stats["interrupted"] else 0
