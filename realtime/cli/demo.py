"""``handmesh`` (and ``run_demo.py``): the command line of the demo.

Arguments become an :class:`~realtime.app.AppConfig`; :func:`~realtime.build_pipeline`
builds the run; this module adds only what belongs to a terminal and a screen: the video
window, the 3D viewer, the once-a-second statistics, the printed lines and the exit code
(0 done, 1 a stage failed, 2 bad input, 130 interrupted by Ctrl-C, 143 stopped by SIGTERM;
after either signal every output is finished and written, as at the end of the input).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import cv2

from calibration.errors import CalibrationError
from calibration.intrinsics import DEFAULT_HFOV_DEG
from models.errors import ModelError
from realtime.app import (
    AppConfig,
    HandsPipeline,
    OutputConfig,
    ProfileRecording,
    Sinks,
    build_pipeline,
    resolve_source,
)
from realtime.detect.detector import (
    DEFAULT_MAX_HANDS,
    DETECTOR_KINDS,
    LANDMARK_MODELS,
    LANDMARK_REFRESH,
    MAX_HANDS,
    PHOTO_MAX_HANDS,
    PRECISIONS,
    DetectorConfig,
)
from realtime.detect.recall import RecallConfig
from realtime.engine import interrupts
from realtime.engine.stats import StatsPrinter
from realtime.errors import RealtimeError
from realtime.io.camera import CameraConfig
from realtime.io.sample import is_sample
from realtime.io.sources import SourceConfig, is_photo_spec
from realtime.mesh.convention import NONE, PHOTO_DEFAULT_CONVENTION
from realtime.mesh.estimator import EstimatorConfig
from realtime.mesh.photo_passes import PHOTO_DEFAULT_PASSES, check_passes
from realtime.mesh.pinch import PinchConfig
from realtime.mesh.regressor import RunnerConfig
from realtime.mesh.smoothing import SmootherConfig
from realtime.mesh.texture import TextureConfig
from realtime.mesh.two_hands import TwoHandConfig
from realtime.mesher import HandMesherConfig
from realtime.render.overlay import OverlayConfig
from realtime.stream.publisher import PublisherConfig
from realtime.stream.web_gateway import web_config

log = logging.getLogger(__name__)

WINDOW = "handmesh"


@dataclass(frozen=True)
class DemoOptions:
    """The run (``app``) and how this terminal shows it: ``headless`` (never a window),
    ``viewer`` (the Open3D 3D window; None: whenever a window is shown), ``print_stats``
    (latency and throughput once a second)."""

    app: AppConfig
    headless: bool = False
    viewer: bool | None = None
    print_stats: bool = False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="handmesh",
        description="Live 3D hand meshes from a webcam, a video file or a folder of images "
                    "(or a replay of a recorded hands file). Writes overlay.mp4, hands.jsonl, "
                    "contact_sheet.png and stats.json into --output.")
    src = p.add_argument_group("input")
    src.add_argument("--source", default="auto",
                     help="camera index (0), device path, video file, image or folder of "
                          "images, or a recorded hands .jsonl file (replayed); 'auto' "
                          "(default): webcam 0 if present, else the built-in sample clip")
    src.add_argument("--replay", type=Path, default=None, metavar="FILE",
                     help="replay a recorded hands file (hands.jsonl) instead of a camera: "
                          "publishes the recorded hands without detection")
    src.add_argument("--realtime", action="store_true",
                     help="play a video at its own frame rate as if it were a live camera "
                          "(stale frames are dropped, as with a webcam)")
    src.add_argument("--fast", action="store_true",
                     help="replay as fast as possible, every frame (default: at the recorded "
                          "rate)")
    src.add_argument("--loop", action="store_true",
                     help="replay the hands file endlessly (stop with Ctrl-C or --max-frames)")
    src.add_argument("--smooth-replay", action="store_true",
                     help="smooth replayed hands again (off by default: they were smoothed "
                          "when recorded)")
    src.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    src.add_argument("--width", type=int, default=None, help="camera resolution to request")
    src.add_argument("--height", type=int, default=None, help="camera resolution to request")
    src.add_argument("--fps", type=float, default=None, help="camera frame rate to request")
    src.add_argument("--mirror", action="store_true",
                     help="flip frames horizontally (selfie view); handedness follows")
    cam = p.add_argument_group("camera and hand size")
    cam.add_argument("--calib", type=Path, default=None, metavar="FILE",
                     help="camera calibration (.yaml/.json from `handmesh-calibrate "
                          "intrinsics`); without one K is estimated from --fov")
    cam.add_argument("--fov", type=float, default=DEFAULT_HFOV_DEG,
                     help="horizontal field of view guess in degrees for an uncalibrated "
                          "camera")
    cam.add_argument("--hand-profile", type=Path, default=None, metavar="FILE",
                     help="the user's hand profile (from --calibrate-hand): hands take its "
                          "size, which fixes their depth")
    cam.add_argument("--calibrate-hand", type=Path, default=None, metavar="FILE",
                     help="record a hand profile: hold one hand open towards the camera for "
                          "a few seconds; saved to FILE")
    cam.add_argument("--hand-length-mm", type=float, default=None,
                     help="with --calibrate-hand: your measured wrist-crease to middle-"
                          "fingertip length, which sets the profile's true size")
    hands = p.add_argument_group("finding hands")
    hands.add_argument("--detector", choices=DETECTOR_KINDS, default="scheduled",
                       help="'scheduled' (default): MediaPipe's hand models on our own "
                            "schedule; 'mediapipe': the legacy mediapipe.solutions.hands "
                            "pipeline")
    hands.add_argument("--model-complexity", type=int, choices=(0, 1), default=1,
                       help="MediaPipe's landmark model: 1 full (default), 0 lite")
    hands.add_argument("--landmarks", choices=LANDMARK_MODELS, default=None,
                       help="the scheduled detector's landmark model (default: full, lite "
                            "with --model-complexity 0); adaptive: lite on two hands when "
                            "full does not fit the frame budget")
    hands.add_argument("--landmark-precision", choices=PRECISIONS, default="auto",
                       help="the landmark model's arithmetic: auto (default: fp16 for video "
                            "and camera on a CPU with native fp16, else fp32), fp32 "
                            "(MediaPipe's) or fp16 (~1.3x less detector time, in a worker "
                            "process; docs/detector.md)")
    hands.add_argument("--landmark-refresh", choices=LANDMARK_REFRESH, default=None,
                       help="the scheduled detector's landmark model per tracked hand: "
                            "'every' frame (MediaPipe's), or 'alternate': with two hands one "
                            "per frame in turn, optical flow moves the other (~0.65x the "
                            "detector's CPU; docs/detector.md). Default: alternate for a live "
                            "source above 30 FPS, else every")
    hands.add_argument("--max-hands", type=int, default=None, metavar="N",
                       help=f"most hands per image, 1-{MAX_HANDS} (default: "
                            f"{DEFAULT_MAX_HANDS} for a camera or video, {PHOTO_MAX_HANDS} "
                            "for photos: an image file or a folder of images)")
    hands.add_argument("--recall", action="store_true",
                       help="photos only: find more hands by also running the detector on "
                            "a flipped, a padded and four quarter copies of each image "
                            "(7 passes; a hand only a quarter finds must be found again "
                            "by one more pass framed by it; docs/more_hands.md)")
    hands.add_argument("--joint-convention", default=None, metavar="photo|none|FILE.npz",
                       help="where the output keypoints sit: 'photo', where people who "
                            "annotate photos put them (10 named moves; the default for "
                            "photos), 'none', the hand model's joints (the default for a "
                            "camera or video), or a .npz you fitted on annotated photos "
                            "(python -m scripts.fit_photo_convention); the mesh stays; "
                            "docs/regressor.md")
    hands.add_argument("--photo-passes", type=int, default=None, metavar="N",
                       help="photos only: 1, 2 or 4 detector passes per photo (the photo; "
                            "also flipped; also bordered and flipped bordered) whose meshes "
                            "are combined per hand: a more accurate 3D hand for 2-4x the "
                            f"detector's time (default: {PHOTO_DEFAULT_PASSES} for photos; "
                            "docs/regressor.md)")
    hands.add_argument("--regressor", default="auto",
                       help="'auto' (default): the shipped learned regressor; 'fit': the "
                            "fitting baseline (inverse kinematics); or the path of a "
                            "regressor manifest")
    hands.add_argument("--no-smoothing", action="store_true", help="raw per-frame hands")
    hands.add_argument("--two-hand-fix", choices=("on", "off"), default="off",
                       help="correct the two hands' poses so they do not interpenetrate, with "
                            "the interaction prior where the image is uncertain")
    hands.add_argument("--texture", action="store_true",
                       help="fuse an occlusion-aware texture per hand (colours on the meshes)")
    hands.add_argument("--pinch", default="15,30", metavar="ENGAGE,RELEASE",
                       help="thumb-index pinch thresholds in mm (default 15,30: engage below "
                            "15, release above 30; docs/pinch.md), or 'off'")
    hands.add_argument("--pinch-distance", choices=("learned", "joints"), default="learned",
                       help="how the thumb-index distance is measured: the learned pinch head "
                            "near a pinch (default) or the joints' own tips (docs/pinch.md)")
    out = p.add_argument_group("output")
    out.add_argument("--output", type=Path, default=Path("demo_output"),
                     help="folder for overlay.mp4, hands.jsonl, contact_sheet.png and "
                          "stats.json")
    out.add_argument("--no-video", action="store_true", help="do not write overlay.mp4")
    out.add_argument("--joints-only", action="store_true",
                     help="hands.jsonl without vertices (much smaller)")
    out.add_argument("--save-texture", type=Path, default=None, metavar="FILE.png",
                     help="write each hand's fused texture atlas here at the end (implies "
                          "--texture)")
    out.add_argument("--stats", action="store_true",
                     help="print per-stage latency and throughput once a second")
    out.add_argument("--stats-json", type=Path, default=None,
                     help="write the latency statistics as JSON to this file at exit")
    show = p.add_argument_group("display")
    show.add_argument("--headless", action="store_true",
                      help="no window (automatic when there is no display)")
    show.add_argument("--viewer", action=argparse.BooleanOptionalAction, default=None,
                      help="the Open3D 3D view of the hands and the camera (default: on "
                           "whenever the video window is shown; keys in docs/rendering.md)")
    show.add_argument("--uncertainty", action="store_true",
                      help="colour the overlay's meshes by their predicted uncertainty")
    pub = p.add_argument_group("streaming (docs/streaming.md)")
    pub.add_argument("--publish", default=None, metavar="ENDPOINT",
                     help="stream the hands over ZeroMQ (docs/protocol.md), e.g. "
                          "tcp://127.0.0.1:5555; topology requests on the next port")
    pub.add_argument("--publish-mode", choices=("mesh", "rigged"), default="mesh",
                     help="mesh: vertices every frame; rigged: joint rotations, wrist pose and "
                          "shape every frame, rest mesh and skin weights on 'topology'")
    pub.add_argument("--insecure", action="store_true",
                     help="allow --publish on a non-loopback address without encryption")
    pub.add_argument("--curve-keys", type=Path, default=None, metavar="SERVER_SECRET_FILE",
                     help="encrypt and authenticate --publish with CURVE: the server's "
                          ".key_secret (handmesh-stream keys DIR)")
    pub.add_argument("--allowed-clients", type=Path, default=None, metavar="FILE_OR_DIR",
                     help="with --curve-keys: a directory of client .key files, or a file of "
                          "client public keys (one per line); only these may connect")
    pub.add_argument("--web", default=None, metavar="[HOST:]PORT",
                     help="serve the stream over WebSocket and the browser viewer over HTTP "
                          "(docs/streaming.md), e.g. 8080 (binds 127.0.0.1); works with or "
                          "without --publish")
    pub.add_argument("--web-token", default=None, metavar="TOKEN",
                     help="a secret the browser must give (?token=...); required for a "
                          "non-loopback --web host")
    ros = p.add_argument_group("ROS 2 (docs/ros2.md; no ROS install needed)")
    ros.add_argument("--ros2", action="store_true",
                     help="publish the hands as ROS 2 topics over DDS (JointState, PoseStamped, "
                          "PoseArray, /tf, MarkerArray, pinch); loopback only unless --ros2-lan")
    ros.add_argument("--ros2-namespace", default="/handmesh", metavar="NS",
                     help="prefix of the topics (default /handmesh)")
    ros.add_argument("--ros2-domain", type=int, default=0, metavar="ID",
                     help="DDS domain id, as ROS_DOMAIN_ID (default 0)")
    ros.add_argument("--ros2-frame", default="handmesh_camera", metavar="FRAME",
                     help="frame_id of the camera the poses are in (default handmesh_camera)")
    ros.add_argument("--ros2-lan", action="store_true",
                     help="let DDS use the network (multicast discovery) instead of loopback")
    ros.add_argument("--record-mcap", type=Path, default=None, metavar="FILE.mcap",
                     help="record the same ROS 2 messages to an MCAP file (Foxglove, ros2 bag)")
    p.add_argument("--log-level", default="WARNING")
    return p


def pinch_config(text: str, distance: str = "learned") -> PinchConfig | None:
    """``--pinch ENGAGE,RELEASE`` (mm) or ``off`` and ``--pinch-distance`` -> the pinch
    stage's config."""
    if text.strip().lower() == "off":
        return None
    try:
        engage, release = (float(v) / 1000.0 for v in text.split(","))
        return PinchConfig(engage_m=engage, release_m=release, distance=distance)
    except ValueError as exc:
        raise ValueError(f"--pinch {text!r}: expected ENGAGE,RELEASE in mm with ENGAGE < "
                         f"RELEASE (e.g. 15,30), or 'off' ({exc})") from exc


def max_hands_for(value: int | None, photos: bool) -> int:
    """``--max-hands``: the value given (checked), else the default for the source kind."""
    if value is None:
        return PHOTO_MAX_HANDS if photos else DEFAULT_MAX_HANDS
    if not 1 <= value <= MAX_HANDS:
        raise ValueError(f"--max-hands must be 1-{MAX_HANDS}, got {value} (more than "
                         f"{MAX_HANDS} hands per image is beyond what a hands file holds)")
    return value


def parse_args(argv: list[str] | None = None) -> DemoOptions:
    """Command-line arguments -> :class:`DemoOptions`; bad combinations raise ValueError."""
    a = parser().parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if a.replay is not None and a.source != "auto":
        raise ValueError(f"pass either --source {a.source} or --replay {a.replay}, not both")
    if a.realtime and a.fast:
        raise ValueError("pass either --realtime (paced like a camera) or --fast, not both")
    if a.max_frames is not None and a.max_frames < 1:
        raise ValueError(f"--max-frames must be at least 1, got {a.max_frames}")
    if a.save_texture is not None and a.save_texture.suffix.lower() != ".png":
        raise ValueError(f"--save-texture needs a .png file name, got {a.save_texture}")
    spec = str(a.replay) if a.replay is not None else a.source
    photos = is_photo_spec(spec)
    max_hands = max_hands_for(a.max_hands, photos)
    if a.recall and not photos:
        raise ValueError(f"--recall is for photos (an image file or a folder of images), not "
                         f"{spec!r}: a camera or video is tracked frame to frame, where the "
                         "extra detector passes would cost real time")
    if a.photo_passes is not None and not photos:
        raise ValueError(f"--photo-passes is for photos (an image file or a folder of "
                         f"images), not {spec!r}: a camera or video is tracked frame to "
                         "frame, where the extra detector passes would cost real time")
    photo_passes = check_passes(a.photo_passes if a.photo_passes is not None
                                else PHOTO_DEFAULT_PASSES if photos else 1)
    convention = (a.joint_convention if a.joint_convention is not None
                  else PHOTO_DEFAULT_CONVENTION if photos else NONE)
    convention = None if convention == NONE else convention
    if a.regressor == "fit":
        estimator = EstimatorConfig(kind="fit", hand_profile=a.hand_profile,
                                    joint_convention=convention)
    elif a.regressor == "auto":
        estimator = EstimatorConfig(hand_profile=a.hand_profile,
                                    joint_convention=convention)
    else:
        estimator = EstimatorConfig(regressor=RunnerConfig(manifest=Path(a.regressor)),
                                    hand_profile=a.hand_profile,
                                    joint_convention=convention)
    texture = a.texture or a.save_texture is not None
    mesher = HandMesherConfig(
        detector=DetectorConfig(kind=a.detector, model_complexity=a.model_complexity,
                                landmarks=a.landmarks, mirrored=a.mirror,
                                max_num_hands=max_hands, precision=a.landmark_precision,
                                landmark_refresh=a.landmark_refresh,
                                recall=RecallConfig() if a.recall else None),
        estimator=estimator,
        smoothing=None if a.no_smoothing else SmootherConfig(),
        camera=CameraConfig(calibration=a.calib, hfov_deg=a.fov),
        two_hands=TwoHandConfig() if a.two_hand_fix == "on" else None,
        texture=TextureConfig() if texture else None,
        pinch=pinch_config(a.pinch, a.pinch_distance),
        photo_passes=photo_passes,
    )
    publish = None
    web = web_config(a.web, a.web_token)
    if a.publish:
        try:
            publish = PublisherConfig.for_endpoint(
                a.publish, insecure=a.insecure, curve_secret_key_file=a.curve_keys,
                curve_allowed_clients_file=a.allowed_clients, mode=a.publish_mode, web=web)
        except ValueError as exc:
            raise ValueError(f"--publish {exc}") from exc
    elif web is not None:
        if a.curve_keys is not None or a.allowed_clients is not None:
            raise ValueError("--curve-keys/--allowed-clients secure --publish; the web "
                             "gateway uses --web-token")
        publish = PublisherConfig(endpoint=None, topology_endpoint=None,
                                  mode=a.publish_mode, web=web)
    ros2, record_mcap = _ros2_configs(a)
    app = AppConfig(
        source=SourceConfig(spec=spec,
                            width=a.width, height=a.height, fps=a.fps, mirror=a.mirror,
                            loop=a.loop),
        mesher=mesher,
        output=OutputConfig(folder=a.output, video=not a.no_video,
                            vertices=not a.joints_only, stats_json=a.stats_json,
                            save_texture=a.save_texture,
                            overlay=OverlayConfig(uncertainty=a.uncertainty)),
        publish=publish,
        realtime=True if a.realtime else (False if a.fast else None),
        max_frames=a.max_frames,
        smooth_replay=a.smooth_replay,
        calibrate_hand=(ProfileRecording(a.calibrate_hand, a.hand_length_mm)
                        if a.calibrate_hand is not None else None),
        ros2=ros2,
        record_mcap=record_mcap,
    )
    return DemoOptions(app=app, headless=a.headless, viewer=a.viewer, print_stats=a.stats)


def _ros2_configs(a: argparse.Namespace):
    """``--ros2*`` and ``--record-mcap`` -> (Ros2Config or None, McapConfig or None)."""
    if not (a.ros2 or a.record_mcap is not None):
        return None, None
    from realtime.ros2 import McapConfig, Ros2Config

    try:
        config = Ros2Config(namespace=a.ros2_namespace, domain_id=a.ros2_domain,
                            frame_id=a.ros2_frame, lan=a.ros2_lan)
    except ValueError as exc:
        raise ValueError(f"--ros2: {exc}") from exc
    mcap = McapConfig(a.record_mcap, config) if a.record_mcap is not None else None
    return (config if a.ros2 else None), mcap


def display_available() -> bool:
    """A window can open: an X/Wayland display on Linux; assumed elsewhere."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def run(options: DemoOptions) -> dict:
    """Run the demo; returns the statistics also written to ``stats.json``."""
    app = options.app
    spec, why = resolve_source(app.source.spec)
    if why:
        print(why)
    headless = options.headless or not display_available()
    if headless and not options.headless:
        print("no display: running headless (results are written to files)")
    # The built-in sample stands in for a webcam: on screen it plays in real time, like a
    # camera; headless it is processed losslessly into complete files.
    realtime = app.realtime
    if realtime is None and app.source.spec == "auto" and not headless and is_sample(spec):
        realtime = True
    app = replace(app, source=replace(app.source, spec=spec), realtime=realtime)
    feed = None
    if options.viewer is not False and headless:
        print("3D viewer skipped: " + ("--headless" if options.headless else
                                       "no display (DISPLAY unset)"))
    elif options.viewer is not False:
        from realtime.render.viewer import ViewerFeed

        feed = ViewerFeed()
    with build_pipeline(app, Sinks(render=[feed] if feed else [])) as built, \
            contextlib.ExitStack() as stack:
        for note in built.notes:
            print(note)
        shown = len(built.notes)
        video_at, viewer_at = window_layout(built.source.size)
        on_poll = None if headless else _window_poller(built, video_at)
        if feed is not None:
            from realtime.render.viewer import ViewerConfig, open_viewer, viewer_poller

            viewer = open_viewer(ViewerConfig(screenshot_dir=app.output.folder,
                                              texture=app.mesher.texture is not None,
                                              left=viewer_at[0], top=viewer_at[1]),
                                 built.faces_for, built.camera.K, built.source.size)
            if viewer is not None:
                stack.callback(viewer.close)
                on_poll = viewer_poller(viewer, feed, built.pipeline.stop, then=on_poll)
        printer = StatsPrinter(built.recorder, sys.stdout) if options.print_stats else None
        if printer:
            printer.start()
            stack.callback(printer.stop)
        if not headless:
            stack.callback(cv2.destroyAllWindows)
        stats = built.run(on_poll=on_poll, poll_s=0.05 if headless else 1 / 60)
        for note in built.notes[shown:]:  # what the end of the run wrote
            print(note)
    return stats


def window_layout(video_size: tuple[int, int], origin: tuple[int, int] = (40, 40),
                  gap: int = 16) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where the video window and the 3D viewer open (top-left corners, screen pixels):
    side by side, the viewer right of a video of ``video_size`` (w, h), never on top."""
    x, y = origin
    return (x, y), (x + video_size[0] + gap, y)


def _window_poller(built: HandsPipeline, at: tuple[int, int] = (40, 40)):
    """Show the newest overlay in a window from the main thread (its top-left corner at
    ``at``); q, Esc or closing it stops."""
    shown = [False]

    def poll() -> None:
        image = built.overlay.latest()
        if image is not None:
            if not shown[0]:
                cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
                cv2.moveWindow(WINDOW, *at)
            cv2.imshow(WINDOW, image)
            shown[0] = True
        key = cv2.waitKey(1) & 0xFF
        if key in (27, ord("q")):
            built.pipeline.stop("key pressed")
        elif shown[0] and cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
            built.pipeline.stop("window closed")

    return poll


#: What each output is, for the final line (only those the run wrote are listed).
OUTPUT_NOTES = {"video": "(video with meshes)", "overlays": "({overlay_files} images, one per "
                "photo)", "contact_sheet": "(12 frames)", "hands": "(one record per hand per "
                "frame)"}


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code (0 ok, 1 a stage failed, 2 bad input,
    130 Ctrl-C, 143 SIGTERM)."""
    interrupts.install()
    try:
        options = parse_args(argv)
        stats = run(options)
        signum = interrupts.first()
    except (RealtimeError, CalibrationError, ModelError, ValueError) as exc:
        if interrupts.seen():  # e.g. "mediapipe is not installed": Ctrl-C broke the import
            print("interrupted", file=sys.stderr)
            return interrupts.exit_code()
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a stage's unexpected failure, said in one line
        if interrupts.seen():
            print("interrupted", file=sys.stderr)
            return interrupts.exit_code()
        print(f"error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return interrupts.exit_code()
    finally:
        interrupts.clear()  # this run has answered for it
    print(f"{stats['frames']} frames, hands in {stats['frames_with_hands']} "
          f"({100 * stats['hand_rate']:.0f}%), {stats['fps']} FPS")
    written = [f"{Path(stats['outputs'][key]).name}{'/' * (key == 'overlays')} "
               f"{note.format(**stats)}"
               for key, note in OUTPUT_NOTES.items() if stats["outputs"].get(key)]
    print(f"results in {options.app.output.folder}/: {', '.join(written + ['stats.json'])}")
    return interrupts.exit_code(signum) if stats["interrupted"] else 0


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a library's message may span several)."""
    return " ".join(str(exc).split())
