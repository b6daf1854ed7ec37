"""The command line behind ``run_demo.py``: source -> MediaPipe -> hand model -> outputs.

This first end-to-end loop runs the stages one after another in the main thread; the
threaded real-time engine replaces the loop, not the stages.

A recorded ``hands.jsonl`` as the source (``--source run/hands.jsonl`` or ``--replay``)
skips detection and regression: the recorded hands are published again at the recorded rate
(``--fast``: as fast as the sinks go), drawn over a canvas with the recorded camera.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2

from calibration.errors import CalibrationError
from calibration.intrinsics import DEFAULT_HFOV_DEG, CameraIntrinsics
from models.errors import ModelError
from models.hand_model import HandModel
from realtime.detect.mediapipe_legacy import DetectorConfig
from realtime.detect.scheduled import DETECTOR_KINDS, open_detector
from realtime.engine import interrupts
from realtime.engine.pipeline import Pipeline, PipelineConfig
from realtime.engine.stages import DetectStage, IntrinsicsFor, RegressStage, SmoothStage, hud_lines
from realtime.engine.stats import LatencyRecorder, StatsPrinter
from realtime.errors import RealtimeError
from realtime.io.contact_sheet import ContactSheet
from realtime.io.hands_file import HandsFileSink
from realtime.io.hands_replay import HandsReplay
from realtime.io.sample import SAMPLE_VIDEO, is_sample
from realtime.io.sample import sample_intrinsics as _sample_camera
from realtime.io.sources import (
    ImageFolderSource,
    Source,
    SourceConfig,
    camera_available,
    open_source,
)
from realtime.mesh.ik_fit import FitterConfig, HandFitter
from realtime.mesh.smoothing import HandSmoother, SmootherConfig
from realtime.mesh.tracking import SimpleTracker
from realtime.render.overlay import OverlayConfig
from realtime.render.overlay_sink import OverlaySink
from realtime.render.raster import warmup as render_warmup
from realtime.render.viewer import ViewerConfig, ViewerFeed, open_viewer, viewer_poller
from realtime.types import Frame, Packet

log = logging.getLogger(__name__)

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
    regressor: str = "auto"  # "auto", "fit" (the baseline) or a manifest path
    camera_width: int | None = None
    camera_height: int | None = None
    camera_fps: float | None = None
    realtime: bool = False  # play files at their frame rate, dropping stale frames like a camera
    replay: bool = False  # the source is a recorded hands file (also implied by ".jsonl")
    fast: bool = False  # replay as fast as possible, every frame (default: at the recorded rate)
    loop: bool = False  # replay the hands file again and again, until stopped
    smooth_replay: bool = False  # smooth replayed hands again (they were smoothed when recorded)
    print_stats: bool = False
    publish: str | None = None  # a ZeroMQ endpoint to stream the hands to (realtime.stream.publisher)
    insecure: bool = False  # allow publishing unencrypted on a non-loopback address
    curve_keys: Path | None = None  # the publisher's server.key_secret (CURVE)
    allowed_clients: Path | None = None  # allowed client public keys: a dir or a key list
    publish_mode: str = "mesh"  # "rigged": bone rotations per frame, mesh and weights once
    stats_json: Path | None = None
    calib: Path | None = None  # a camera calibration file (python -m calibration intrinsics)
    hand_profile: Path | None = None  # a hand shape profile: the user's hand size
    calibrate_hand: Path | None = None  # record a hand profile into this file
    hand_length_mm: float | None = None  # measured wrist-to-middle-fingertip length
    two_hand_fix: bool = False  # remove interpenetration (and apply the interaction prior)
    texture: bool = False  # fuse an occlusion-aware texture per hand (vertex_colors)
    save_texture: Path | None = None  # write each hand's texture atlas (PNG) at the end
    smoothing: SmootherConfig | None = field(default_factory=SmootherConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    detector_kind: str = "ours"  # ours (scheduled bundled models) | mediapipe (legacy)
    landmarks: str | None = None  # ours: full | lite | adaptive; None: from model complexity
    fitter: FitterConfig = field(default_factory=FitterConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    viewer: bool | None = None  # the Open3D 3D window; None: whenever a window is shown

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"--max-frames must be at least 1, got {self.max_frames}")
        if self.save_texture is not None and self.save_texture.suffix.lower() != ".png":
            raise ValueError(f"--save-texture needs a .png file name, got {self.save_texture}")

    @property
    def is_replay(self) -> bool:
        """Whether the source is a recorded hands file rather than images."""
        return self.replay or self.source.strip().lower().endswith(".jsonl")


def parse_args(argv: list[str] | None = None) -> DemoConfig:
    p = argparse.ArgumentParser(
        prog="run_demo.py",
        description="Live 3D hand meshes from a webcam, a video file or a folder of images "
                    "(or a replay of a recorded hands.jsonl).",
    )
    p.add_argument("--source", default="auto",
                   help="camera index (0), device path, video file, image or folder of "
                        "images, or a recorded hands .jsonl file (replayed); 'auto' (default): "
                        "webcam 0 if present, else the built-in sample clip")
    p.add_argument("--replay", type=Path, default=None, metavar="FILE",
                   help="replay a recorded hands file (hands.jsonl) instead of a camera: "
                        "publishes the recorded hands without detection")
    p.add_argument("--fast", action="store_true",
                   help="replay as fast as possible, every frame (default: at the recorded rate)")
    p.add_argument("--loop", action="store_true",
                   help="replay the hands file endlessly (stop with Ctrl-C or --max-frames)")
    p.add_argument("--smooth-replay", action="store_true",
                   help="smooth replayed hands again (off by default: they were smoothed "
                        "when recorded)")
    p.add_argument("--output", type=Path, default=Path("demo_output"),
                   help="folder for overlay.mp4, hands.jsonl and stats.json")
    p.add_argument("--headless", action="store_true",
                   help="no window (automatic when there is no display)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.add_argument("--width", type=int, default=None, help="camera resolution to request")
    p.add_argument("--height", type=int, default=None, help="camera resolution to request")
    p.add_argument("--fps", type=float, default=None, help="camera frame rate to request")
    p.add_argument("--fov", type=float, default=DEFAULT_HFOV_DEG,
                   help="horizontal field of view guess in degrees for an uncalibrated camera")
    p.add_argument("--mirror", action="store_true",
                   help="flip frames horizontally (selfie view); handedness follows")
    p.add_argument("--no-video", action="store_true", help="do not write overlay.mp4")
    p.add_argument("--joints-only", action="store_true",
                   help="hands.jsonl without vertices (much smaller)")
    p.add_argument("--model-complexity", type=int, choices=(0, 1), default=1)
    p.add_argument("--detector", choices=DETECTOR_KINDS, default="ours",
                   help="'ours' (default): MediaPipe's hand models on our schedule; "
                        "'mediapipe': the legacy mediapipe.solutions.hands pipeline")
    p.add_argument("--landmarks", choices=("full", "lite", "adaptive"), default=None,
                   help="our detector's landmark model (default: full, lite with "
                        "--model-complexity 0); adaptive: lite on two hands when full "
                        "does not fit the frame budget")
    p.add_argument("--regressor", default="auto",
                   help="'auto' (default): the shipped learned regressor; 'fit': the fitting "
                        "baseline (inverse kinematics); or the path of a regressor manifest")
    p.add_argument("--realtime", action="store_true",
                   help="play a video at its own frame rate as if it were a live camera "
                        "(stale frames are dropped, as with a webcam)")
    p.add_argument("--no-smoothing", action="store_true", help="raw per-frame hands")
    p.add_argument("--stats", action="store_true",
                   help="print per-stage latency and throughput once a second")
    p.add_argument("--stats-json", type=Path, default=None,
                   help="write the latency statistics as JSON to this file at exit")
    p.add_argument("--publish", default=None, metavar="ENDPOINT",
                   help="stream the hands over ZeroMQ (docs/protocol.md), e.g. "
                        "tcp://127.0.0.1:5555; topology requests on the next port")
    p.add_argument("--insecure", action="store_true",
                   help="allow --publish on a non-loopback address without encryption")
    p.add_argument("--curve-keys", type=Path, default=None, metavar="SERVER_SECRET_FILE",
                   help="encrypt and authenticate --publish with CURVE: the server's "
                        ".key_secret (python -m realtime.stream.keys generate DIR)")
    p.add_argument("--allowed-clients", type=Path, default=None, metavar="FILE_OR_DIR",
                   help="with --curve-keys: a directory of client .key files, or a file of "
                        "client public keys (one per line); only these may connect")
    p.add_argument("--calib", type=Path, default=None, metavar="FILE",
                   help="camera calibration (.yaml/.json from `python -m calibration "
                        "intrinsics`); without one K is estimated from --fov")
    p.add_argument("--hand-profile", type=Path, default=None, metavar="FILE",
                   help="the user's hand profile (from --calibrate-hand): hands take its "
                        "size, which fixes their depth")
    p.add_argument("--calibrate-hand", type=Path, default=None, metavar="FILE",
                   help="record a hand profile: hold one hand open towards the camera for a "
                        "few seconds; saved to FILE")
    p.add_argument("--hand-length-mm", type=float, default=None,
                   help="with --calibrate-hand: your measured wrist-crease to middle-"
                        "fingertip length, which sets the profile's true size")
    # -- rendering (issue 5) --
    p.add_argument("--viewer", action=argparse.BooleanOptionalAction, default=None,
                   help="the Open3D 3D view of the hands and the camera (default: on whenever "
                        "the video window is shown; keys in README 'Rendering')")
    p.add_argument("--uncertainty", action="store_true",
                   help="colour the overlay's meshes by their predicted uncertainty")
    p.add_argument("--publish-mode", choices=("mesh", "rigged"), default="mesh",
                   help="mesh: vertices every frame; rigged: joint rotations, wrist pose and "
                        "shape every frame, rest mesh and skin weights on 'topology'")
    p.add_argument("--two-hand-fix", choices=("on", "off"), default="off",
                   help="correct the two hands' poses so they do not interpenetrate, with the "
                        "interaction prior where the image is uncertain")
    p.add_argument("--texture", action="store_true",
                   help="fuse an occlusion-aware texture per hand (colours on the meshes)")
    p.add_argument("--save-texture", type=Path, default=None, metavar="FILE.png",
                   help="write each hand's fused texture atlas here at the end (implies "
                        "--texture)")
    p.add_argument("--log-level", default="WARNING")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if a.detector == "mediapipe" and a.landmarks is not None:
        raise ValueError(f"--landmarks {a.landmarks} applies to --detector ours; for "
                         "mediapipe pick the model with --model-complexity")
    if a.replay is not None and a.source != "auto":
        raise ValueError(f"pass either --source {a.source} or --replay {a.replay}, not both")
    return DemoConfig(
        source=str(a.replay) if a.replay is not None else a.source,
        replay=a.replay is not None, fast=a.fast, loop=a.loop, smooth_replay=a.smooth_replay,
        output_dir=a.output, headless=a.headless, max_frames=a.max_frames,
        hfov_deg=a.fov, mirror=a.mirror, write_video=not a.no_video,
        write_vertices=not a.joints_only, regressor=a.regressor, realtime=a.realtime,
        camera_width=a.width, camera_height=a.height, camera_fps=a.fps,
        print_stats=a.stats, stats_json=a.stats_json, publish=a.publish, insecure=a.insecure,
        curve_keys=a.curve_keys, allowed_clients=a.allowed_clients, publish_mode=a.publish_mode,
        calib=a.calib, hand_profile=a.hand_profile, calibrate_hand=a.calibrate_hand,
        hand_length_mm=a.hand_length_mm,
        two_hand_fix=a.two_hand_fix == "on", texture=a.texture or a.save_texture is not None,
        save_texture=a.save_texture,
        smoothing=None if a.no_smoothing else SmootherConfig(),
        detector=DetectorConfig(model_complexity=a.model_complexity, mirrored=a.mirror),
        viewer=a.viewer, overlay=OverlayConfig(uncertainty=a.uncertainty),
        detector_kind=a.detector, landmarks=a.landmarks,
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
    return _sample_camera() if is_sample(spec) else None


def make_fitter(model: HandModel, config: DemoConfig):
    """The learned regressor by default; the fitting baseline on request or as a fallback."""
    if config.regressor == "fit":
        return HandFitter(model, config.fitter)
    from realtime.mesh.regressor import DEFAULT_MANIFEST, RegressorFitter, RunnerConfig

    manifest = DEFAULT_MANIFEST if config.regressor == "auto" else Path(config.regressor)
    if config.regressor == "auto" and not manifest.is_file():
        print(f"no learned regressor at {manifest}: using the fitting baseline")
        return HandFitter(model, config.fitter)
    return RegressorFitter(model, RunnerConfig(manifest=manifest))


def calibrate_fitter(fitter, config: DemoConfig, size: tuple[int, int]):
    """``(fitter, calibration, recorder)``: the fitter wrapped for --calib, --hand-profile
    and --calibrate-hand (unchanged when none is given)."""
    from calibration.camera_file import load_calibration
    from calibration.profile import ProfileRecorder, load_profile
    from realtime.mesh.profiled import CalibratedFitter

    calib = load_calibration(config.calib).rescaled(*size) if config.calib else None
    if calib is not None:
        print(f"calibration {config.calib} ({calib.camera_name}, {size[0]}x{size[1]}"
              f"{', undistorting landmarks' if calib.has_distortion else ''})")
    profile = load_profile(config.hand_profile) if config.hand_profile else None
    recorder = ProfileRecorder() if config.calibrate_hand else None
    if recorder is not None:
        print(f"hand calibration: hold one hand open, fingers straight, towards the camera; "
              f"{recorder.target_samples} open-hand frames are needed")
    if calib is None and profile is None and recorder is None:
        return fitter, None, None
    return CalibratedFitter(fitter, calib, profile, recorder), calib, recorder


def save_hand_profile(recorder, config: DemoConfig) -> None:
    """Average the recorded open hands into the --calibrate-hand file."""
    from calibration.profile import save_profile

    profile = recorder.profile()
    if config.hand_length_mm is not None:
        profile = profile.with_hand_length(config.hand_length_mm)
    save_profile(config.calibrate_hand, profile)
    print(f"hand profile from {profile.samples} open-hand frames ({profile.source}): hand "
          f"length {profile.hand_length_mm:.0f} mm, saved to {config.calibrate_hand}")


def _replay_overlay(config: OverlayConfig, replay: HandsReplay, model: HandModel) -> OverlayConfig:
    """Skeletons only when the file has no meshes to draw (joints-only, another hand model)."""
    if replay.vertex_count == 0:
        log.info("%s has no vertices (joints only): drawing skeletons", replay.name)
        return replace(config, draw_mesh=False)
    if replay.vertex_count <= int(model.faces.max()):
        log.warning("%s: %d vertices per hand do not match the hand model %s: drawing "
                    "skeletons only", replay.name, replay.vertex_count, model.data.name)
        return replace(config, draw_mesh=False)
    return config


def run(config: DemoConfig) -> dict:
    """Run the demo; returns the stats also written to ``stats.json``."""
    spec, why = resolve_source(config.source)
    if why:
        print(why)
    headless = config.headless or not display_available()
    if headless and not config.headless:
        print("no display: running headless (results are written to files)")
    replaying = config.is_replay
    if replaying:
        source: Source | HandsReplay = HandsReplay(spec, loop=config.loop)
        if config.mirror:
            log.info("--mirror does not apply to a replay: the hands are replayed as recorded")
    else:
        source = open_source(SourceConfig(spec=spec, mirror=config.mirror,
                                          width=config.camera_width,
                                          height=config.camera_height, fps=config.camera_fps))
    out_dir = config.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    video_path, hands_path, stats_path = (out_dir / "overlay.mp4", out_dir / "hands.jsonl",
                                          out_dir / "stats.json")
    if replaying and Path(spec).expanduser().resolve() == hands_path.resolve():
        raise RealtimeError(f"replaying {spec} into {out_dir} would overwrite it with its own "
                            "replay: pass --output another folder")
    model = HandModel.open_hand()
    # A replay needs no detector or regressor, only the faces of the hand model to draw.
    fitter = HandFitter(model, config.fitter) if replaying else make_fitter(model, config)
    calib, hand_recorder = None, None
    faces_for = {"right": fitter.faces("right"), "left": fitter.faces("left")}
    tracker = SimpleTracker()
    smoothing = config.smoothing if not replaying or config.smooth_replay else None
    smoother = HandSmoother(smoothing, model) if smoothing else None
    recorder = LatencyRecorder()
    regress = None
    interrupted = False
    result = None
    with source, contextlib.ExitStack() as stack:
        if isinstance(source, HandsReplay):
            live = pace = not config.fast
            overlay_cfg = _replay_overlay(config.overlay, source, model)
            fixed = None
        else:
            # The built-in sample stands in for a webcam: on screen it plays in real time,
            # like a camera; headless it is processed losslessly into complete files.
            as_camera = config.realtime or (config.source == "auto" and not headless
                                            and not source.is_live)
            live, pace = source.is_live or as_camera, as_camera
            overlay_cfg = config.overlay
            fitter, calib, hand_recorder = calibrate_fitter(fitter, config, source.size)
            fixed = calib.intrinsics if calib is not None else sample_intrinsics(spec)
        known = IntrinsicsFor(fixed, config.hfov_deg)

        def intrinsics_for(size: tuple[int, int]) -> CameraIntrinsics:
            if isinstance(source, HandsReplay):
                return source.camera_for(size)
            return known(size)

        intrinsics = intrinsics_for(source.size)
        if intrinsics.estimated and not replaying:
            print(f"no calibration: estimating K from image size with hfov="
                  f"{config.hfov_deg:g}° (pass --calib FILE for metric accuracy)")
        frames_read = [0]

        def read() -> Frame | None:
            if config.max_frames is not None and frames_read[0] >= config.max_frames:
                return None
            if hand_recorder is not None and hand_recorder.done:
                return None
            if isinstance(source, HandsReplay):
                item = source.read()
                frame = item[0] if item is not None else None
            else:
                frame = source.read()
            frames_read[0] += frame is not None
            return frame

        def replay(p: Packet) -> Packet:
            return replace(p, hands=p.frame.hands)  # a ReplayFrame carries its hands

        if isinstance(source, HandsReplay):
            processors = [("replay", replay)]
        else:
            det_cfg = config.detector
            if isinstance(source, ImageFolderSource):
                det_cfg = replace(det_cfg, static_image_mode=True)
            detector = stack.enter_context(
                open_detector(config.detector_kind, det_cfg, config.landmarks))
            regress = RegressStage(fitter, intrinsics_for, tracker)
            processors = [("detect", DetectStage(detector)), ("regress", regress)]
            if config.two_hand_fix:
                from realtime.mesh.two_hands import TwoHandCorrector, TwoHandStage

                processors.append(("two_hands", TwoHandStage(
                    TwoHandCorrector(model), lambda size: intrinsics_for(size).K)))
        if smoother is not None:
            smoother.warmup()
            processors.append(("smooth", SmoothStage(smoother)))
        fuser = None
        if config.texture:
            from realtime.mesh.texture import TextureFuser, TextureStage

            fuser = TextureFuser(lambda side: faces_for[side])
            processors.append(("texture", TextureStage(fuser,
                                                       lambda size: intrinsics_for(size).K)))
        render_warmup()  # compile (or load from Numba's cache) before the first frame
        hands_sink = HandsFileSink(hands_path, config.write_vertices, intrinsics_for)

        hud = hud_lines(recorder, lambda: hands_sink.records, live)

        sheet = ContactSheet()
        overlay = OverlaySink(faces_for, lambda p: intrinsics_for(p.frame.size).K, overlay_cfg,
                              video_path if config.write_video else None, source.fps, hud,
                              contact_sheet=sheet)
        # -- the 3D viewer (issue 5): polled from this thread, fed the newest packet --
        feed, viewer = ViewerFeed(), None
        if config.viewer is not False and headless:
            print("3D viewer skipped: " + ("--headless" if config.headless else
                                           "no display (DISPLAY unset)"))
        elif config.viewer is not False:
            viewer = open_viewer(ViewerConfig(screenshot_dir=out_dir, texture=config.texture),
                                 faces_for, intrinsics.K, source.size)
            if viewer is not None:
                stack.callback(viewer.close)
        # Publish sinks (the ZeroMQ publisher) go on the latency path; recording and
        # drawing run in their own threads beside it.
        publish_sinks = []
        if config.publish:
            publish_sinks.append(make_publisher(config.publish, config.insecure, model,
                                                config.curve_keys, config.allowed_clients,
                                                config.publish_mode))
            stack.callback(publish_sinks[-1].close)  # closed by the pipeline; idempotent
            if fuser is not None:  # the fused texture on its own topic, on change (issue 9)
                from realtime.stream.texture_topic import TextureSink

                publish_sinks.append(TextureSink(fuser, publish_sinks[0]._send))
        pipeline = Pipeline(read, processors, publish_sinks,
                            PipelineConfig(live=live, pace=pace),
                            recorder, source.fps,
                            render_sinks=[overlay] + ([feed] if viewer else []),
                            record_sinks=[hands_sink])
        printer = StatsPrinter(recorder, sys.stdout) if config.print_stats else None
        if printer:
            printer.start()
        on_poll = None if headless else _window_poller(overlay, pipeline)
        if viewer is not None:
            on_poll = viewer_poller(viewer, feed, pipeline.stop, then=on_poll)
        t_start = time.perf_counter()
        try:
            if interrupts.seen():  # a Ctrl-C during start-up that a library swallowed
                raise KeyboardInterrupt
            result = pipeline.run(on_poll=on_poll, poll_s=0.05 if headless else 1 / 60)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if printer:
                printer.stop()
            if not headless:
                cv2.destroyAllWindows()
    elapsed = time.perf_counter() - t_start
    if result is not None and result.error is not None:
        raise result.error
    if hand_recorder is not None:
        save_hand_profile(hand_recorder, config)
    if fuser is not None and config.save_texture is not None:
        from models.uv_layout import load_uv_layout

        for path in fuser.save(config.save_texture, load_uv_layout()):
            print(f"texture written to {path}")
    snapshot = recorder.snapshot()
    sheet_path = out_dir / "contact_sheet.png"
    sheet_written = sheet.save(sheet_path)
    stats = {
        "source": spec,
        "frames": hands_sink.frames,
        "frames_with_hands": hands_sink.frames_with_hands,
        "hand_rate": round(hands_sink.frames_with_hands / hands_sink.frames, 4)
        if hands_sink.frames else 0.0,
        "hands": hands_sink.records,
        "fit_failures": regress.failures if regress is not None else 0,
        "seconds": round(elapsed, 3),
        "fps": round(hands_sink.frames / elapsed, 2) if elapsed > 0 else 0.0,
        "live": live,
        "latency": snapshot,
        "intrinsics": {"fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx,
                       "cy": intrinsics.cy, "estimated": intrinsics.estimated},
        "hand_model": model.data.name,
        "hands_from": type(source if replaying else fitter).__name__,
        "interrupted": interrupted,
        "stopped_by": "interrupted" if interrupted else (result.reason if result else ""),
        "outputs": {"hands": str(hands_path),
                    "video": str(video_path) if config.write_video else None,
                    "contact_sheet": str(sheet_path) if sheet_written else None},
    }
    if isinstance(source, HandsReplay):
        stats["replay"] = {"passes": source.passes + 1, "fps": round(source.fps, 3),
                           "truncated_line": source.truncated_line}
    stats_path.write_text(json.dumps(stats, indent=2) + "\n")
    if config.stats_json is not None:
        recorder.to_json(config.stats_json)
    return stats


def topology_endpoint_for(endpoint: str) -> str:
    """The REP endpoint for topology requests: the next tcp port, or ``<path>.topology``."""
    from realtime.stream.protocol import topology_endpoint_for as for_endpoint

    try:
        return for_endpoint(endpoint)
    except ValueError as exc:
        raise ValueError(f"--publish {exc}") from exc


def make_publisher(endpoint: str, insecure: bool, model: HandModel,
                   curve_keys: Path | None = None, allowed_clients: Path | None = None,
                   mode: str = "mesh"):
    """The ZeroMQ publish sink of ``--publish`` (imported only when asked for)."""
    from realtime.stream.publisher import Publisher, PublisherConfig

    config = PublisherConfig(endpoint=endpoint, topology_endpoint=topology_endpoint_for(endpoint),
                             insecure=insecure, curve_secret_key_file=curve_keys,
                             curve_allowed_clients_file=allowed_clients, mode=mode)
    print(f"publishing hands on {endpoint} (topology requests on {config.topology_endpoint})"
          + (" with CURVE encryption, allowed clients only" if config.curve else ""))
    return Publisher(config, model)


def _window_poller(overlay: OverlaySink, pipeline: Pipeline):
    """Show the newest overlay in a window from the main thread; q, Esc or closing it stops."""
    shown = [False]

    def poll() -> None:
        image = overlay.latest()
        if image is not None:
            cv2.imshow(WINDOW, image)
            shown[0] = True
        key = cv2.waitKey(1) & 0xFF
        if key in (27, ord("q")):
            pipeline.stop("key pressed")
        elif shown[0] and cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
            pipeline.stop("window closed")

    return poll


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code (0 ok, 2 bad input, 130 interrupted)."""
    interrupts.install()
    try:
        config = parse_args(argv)
        stats = run(config)
    except (RealtimeError, CalibrationError, ModelError, ValueError) as exc:
        if interrupts.seen():  # e.g. "mediapipe is not installed": Ctrl-C broke the import
            print("interrupted", file=sys.stderr)
            return 130
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a stage's unexpected failure, said in one line
        if interrupts.seen():
            print("interrupted", file=sys.stderr)
            return 130
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        interrupts.clear()  # this run has answered for it
    print(f"{stats['frames']} frames, hands in {stats['frames_with_hands']} "
          f"({100 * stats['hand_rate']:.0f}%), {stats['fps']} FPS")
    out = config.output_dir
    print(f"results in {out}/: overlay.mp4 (video with meshes), contact_sheet.png (12 frames), "
          f"hands.jsonl (one record per hand per frame), stats.json")
    return 130 if stats["interrupted"] else 0
