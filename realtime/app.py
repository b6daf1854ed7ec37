"""The application: a source, the mesher's stages and the outputs, built into one pipeline.

::

    from realtime import AppConfig, build_pipeline
    from realtime.io.sources import SourceConfig

    with build_pipeline(AppConfig(source=SourceConfig("clip.mp4"))) as run:
        stats = run.run()          # overlay.mp4, hands.jsonl, contact_sheet.png, stats.json

Photos (one image or a folder of them) get ``overlays/<stem>.png``, one per photo at its
own size, instead of the video.

:func:`build_pipeline` is the one place the real-time loop is assembled: the ``handmesh``
command, ``benchmarks/pipeline.py`` and the tests all call it, with their own extra
sinks (a publisher, a latency probe, the 3D viewer's feed). The stages are the
:class:`~realtime.HandMesher`'s, run by :class:`~realtime.engine.pipeline.Pipeline` in
threads; a hands file as the source brings its own hands, so it runs with no detector.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from calibration.camera import Camera
from models.hand_model import HandModel
from realtime.detect.detector import DetectorConfig
from realtime.engine import interrupts
from realtime.engine.pipeline import Pipeline, PipelineConfig, PipelineResult, Sink
from realtime.engine.stages import PinchStage, SmoothStage
from realtime.engine.stats import LatencyRecorder
from realtime.errors import RealtimeError
from realtime.io.camera import CameraConfig
from realtime.io.contact_sheet import ContactSheet
from realtime.io.hands_file import HandsFileSink
from realtime.io.outputs import OutputSet, prepare_file, prepare_folder
from realtime.io.photo_overlays import PhotoOverlays, overlay_names
from realtime.io.sample import SAMPLE_VIDEO
from realtime.io.sources import Source, SourceConfig, camera_available, open_source
from realtime.mesh.pinch import PinchTracker
from realtime.mesh.smoothing import HandSmoother
from realtime.mesher import HandMesher, HandMesherConfig
from realtime.render.overlay import OverlayConfig
from realtime.render.overlay_sink import OverlaySink, hud_lines
from realtime.stream.publisher import PublisherConfig
from realtime.types import SIDES, Frame

if TYPE_CHECKING:
    from realtime.ros2 import McapConfig, Ros2Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputConfig:
    """What a run writes into ``folder``: ``overlay.mp4`` (``video``; for photos
    ``overlays/<stem>.png`` instead, one per photo), ``hands.jsonl`` (with vertices unless
    ``vertices=False``), ``contact_sheet.png`` and ``stats.json``;
    ``stats_json``: the latency statistics again, to a file of your choice;
    ``save_texture``: each hand's fused texture atlas (a ``.png`` name; needs texture on)."""

    folder: Path = Path("demo_output")
    video: bool = True
    vertices: bool = True
    stats_json: Path | None = None
    save_texture: Path | None = None
    overlay: OverlayConfig = field(default_factory=OverlayConfig)

    def __post_init__(self) -> None:
        if self.save_texture is not None and Path(self.save_texture).suffix.lower() != ".png":
            raise ValueError(f"save_texture needs a .png file name, got {self.save_texture}")


@dataclass(frozen=True)
class ProfileRecording:
    """Record a hand profile (the user's hand size) into ``path`` during the run;
    ``hand_length_mm``: the measured wrist-crease to middle-fingertip length."""

    path: Path
    hand_length_mm: float | None = None


@dataclass(frozen=True)
class AppConfig:
    """A whole run: where frames come from, the mesher, the outputs, the stream.

    ``source.spec`` "auto": webcam 0 when there is one, else the built-in sample clip.
    ``realtime``: True plays files at their own rate, dropping stale frames like a camera;
    False processes every frame as fast as possible; None: cameras live, hands files at
    their recorded rate, videos and images every frame. The camera is given once, in
    ``mesher.camera`` (or in ``source.camera``). ``smooth_replay``: smooth a replayed hands
    file again (it was smoothed when recorded).
    """

    source: SourceConfig = field(default_factory=lambda: SourceConfig("auto"))
    mesher: HandMesherConfig = field(default_factory=HandMesherConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    publish: PublisherConfig | None = None
    realtime: bool | None = None
    max_frames: int | None = None
    smooth_replay: bool = False
    calibrate_hand: ProfileRecording | None = None
    ros2: Ros2Config | None = None  # --ros2: ROS 2 topics over DDS (docs/ros2.md)
    record_mcap: McapConfig | None = None  # --record-mcap: the same messages in an MCAP file

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {self.max_frames}")
        if (self.output.save_texture is not None and self.mesher.texture is None):
            raise ValueError("save_texture needs the texture on (HandMesherConfig.texture)")


@dataclass
class Sinks:
    """Extra sinks for :func:`build_pipeline`, by branch: ``publish`` on the latency path
    (every final packet, in order), ``render`` in the drawing thread (may skip packets
    when live), ``record`` in the recording thread (never drops)."""

    publish: Sequence[Sink] = ()
    render: Sequence[Sink] = ()
    record: Sequence[Sink] = ()


def resolve_source(spec: str) -> tuple[str, str]:
    """``(spec, why)``: 'auto' becomes webcam 0 when there is one, else the built-in sample."""
    if spec != "auto":
        return spec, ""
    if camera_available(0):
        return "0", "webcam 0"
    if not SAMPLE_VIDEO.is_file():
        raise RealtimeError(f"no webcam found and the built-in sample {SAMPLE_VIDEO} is missing;"
                            " pass a video file or a folder of images as the source")
    return str(SAMPLE_VIDEO), "no webcam found: playing the built-in sample clip"


def build_pipeline(config: AppConfig = AppConfig(),
                   sinks: Sinks | Sequence[Sink] = ()) -> HandsPipeline:
    """Open the source, load the mesher, make the outputs, and connect them in threads.

    ``sinks``: extra sinks (a plain sequence goes on the publish path). Raises
    :class:`~realtime.errors.RealtimeError` (or ``CalibrationError``/``ModelError``) for
    a source, file or model that cannot be used, with nothing left open. Run the result
    with ``run()``; use it as a context manager (or ``close()`` it) to release the source
    and the models.
    """
    extra = sinks if isinstance(sinks, Sinks) else Sinks(publish=tuple(sinks))
    return HandsPipeline(config, extra)


class HandsPipeline:
    """A built run (see :func:`build_pipeline`): ``run()`` once, then ``close()``.

    Attributes for the caller: ``source``, ``mesher`` (None for a hands file), ``camera``
    (the first frame's), ``faces_for`` (side -> triangles), ``live``, ``overlay`` (the
    overlay sink: its ``latest()`` image feeds a window), ``pipeline`` (the engine:
    ``stop(reason)`` from any thread), ``recorder`` (latency statistics), ``notes`` (what
    the user should be told).
    """

    def __init__(self, config: AppConfig, sinks: Sinks) -> None:
        self.config = config
        self.notes: list[str] = []
        spec, why = resolve_source(config.source.spec)
        if why:
            self.notes.append(why)
        self.spec = spec
        source_config = replace(config.source, spec=spec,
                                camera=_one_camera(config.source.camera, config.mesher.camera))
        out = config.output.folder
        # stats.json last: renamed into place after the files it describes
        self.paths = {"video": out / "overlay.mp4", "overlays": out / "overlays",
                      "hands": out / "hands.jsonl", "contact_sheet": out / "contact_sheet.png",
                      "stats": out / "stats.json"}
        self.outputs = OutputSet(self.paths)
        self._stack = contextlib.ExitStack()
        try:
            self.source: Source = open_source(source_config)
            self._check_not_overwriting(spec)
            self._stack.enter_context(self.source)
            prepare_folder(config.output.folder)  # refused now, not after loading models
            if config.calibrate_hand is not None:
                prepare_file(config.calibrate_hand.path, "--calibrate-hand")
            if config.output.save_texture is not None:
                prepare_file(config.output.save_texture, "--save-texture")
            if config.output.stats_json is not None:
                prepare_file(config.output.stats_json, "--stats-json")
            self._build(config, sinks)
        except BaseException:
            self._stack.close()
            raise

    # -- building ------------------------------------------------------------------------
    def _check_not_overwriting(self, spec: str) -> None:
        if self.source.provides_hands and (Path(spec).expanduser().resolve()
                                           == self.paths["hands"].resolve()):
            raise RealtimeError(f"replaying {spec} into {self.config.output.folder} would "
                                "overwrite it with its own replay: write to another folder")

    def _build(self, config: AppConfig, sinks: Sinks) -> None:
        """The stages, the outputs and the engine, in that order."""
        self.camera: Camera = self.source.camera
        pace = self._pacing(config)
        self.model = HandModel.open_hand()
        stages = self._stages(config)
        from realtime.render.raster import warmup as render_warmup

        render_warmup()  # compile (or load from Numba's cache) before the first frame
        engine = PipelineConfig(live=self.live, pace=pace)
        # a live source faster than the render cap is drawn every k-th frame: the overlay
        # video's rate is the drawn rate, so it plays at the right speed
        self._outputs(config.output, self.source.fps / engine.render_stride(self.source.fps))
        publish = [*self._publishers(config.publish), *self._ros2(config), *sinks.publish]
        record = [self.hands_sink, *self._mcap(config), *sinks.record]
        self.result: PipelineResult | None = None
        self.pipeline = Pipeline(
            self._read, stages, publish, engine, self.recorder, self.source.fps,
            render_sinks=[self.overlay, *sinks.render],
            record_sinks=record)
        self._frames_read = 0
        self._ran = False

    def _pacing(self, config: AppConfig) -> bool:
        """Whether frames are released at their timestamps (sets ``live``); notes the camera."""
        source = self.source
        if source.provides_hands:  # a replay plays at the recorded rate unless told not to
            self.live = config.realtime is not False
            return self.live
        pace = bool(config.realtime) and not source.is_live
        self.live = source.is_live or pace
        camera, wanted = self.camera, config.mesher.camera
        if camera.estimated:
            self.notes.append(f"no calibration: estimating K from image size with hfov="
                              f"{wanted.hfov_deg:g}° (pass --calib FILE for metric accuracy)")
        elif wanted.calibration is not None:
            self.notes.append(
                f"calibration {wanted.calibration} ({camera.camera_name}, {camera.size[0]}x"
                f"{camera.size[1]}{', undistorting landmarks' if camera.has_distortion else ''})")
        return pace

    def _stages(self, config: AppConfig) -> list:
        """The mesher's stages; for a hands file (which brings its hands) only smoothing,
        and that only when asked to smooth the replay again, and the pinch state of hands
        recorded without one (all hands when smoothed again)."""
        self.mesher: HandMesher | None = None
        self.profile_recorder = None
        if self.source.provides_hands:
            self.estimated_by = type(self.source).__name__
            pinch = config.mesher.pinch
            resmooth = config.smooth_replay and config.mesher.smoothing is not None
            if not resmooth:
                return [] if pinch is None else [
                    ("pinch", PinchStage(PinchTracker(pinch), keep_recorded=True))]
            smoother = HandSmoother(config.mesher.smoothing, self.model)
            smoother.warmup()
            return [("smooth", SmoothStage(
                smoother, None if pinch is None else PinchStage(PinchTracker(pinch))))]
        if config.calibrate_hand is not None:
            from calibration.profile import ProfileRecorder

            self.profile_recorder = ProfileRecorder()
            self.notes.append(
                "hand calibration: hold one hand open, fingers straight, towards the camera; "
                f"{self.profile_recorder.target_samples} open-hand frames are needed")
        mesher_config = config.mesher
        detector = detector_for_rate(mesher_config.detector, self.source.fps, self.live)
        before = mesher_config.detector
        if detector != before:
            mesher_config = replace(mesher_config, detector=detector)
            if detector.landmarks != before.landmarks:
                self.notes.append(
                    f"{self.source.fps:g} FPS live: adaptive landmarks (lite on two-hand frames "
                    f"while full costs more than {detector.frame_budget_ms:.1f} ms; --landmarks "
                    "full keeps full)")
            if detector.landmark_refresh != before.landmark_refresh:
                self.notes.append(
                    f"{self.source.fps:g} FPS live: alternate landmark refresh (two hands: the "
                    "model on one per frame, optical flow on the other; --landmark-refresh "
                    "every refreshes both)")
        if _is_image_folder(self.source):  # unrelated photos: nothing carried between them
            mesher_config = replace(mesher_config, stills=True)
        self.mesher = HandMesher(mesher_config, model=self.model,
                                 profile_recorder=self.profile_recorder)
        self._stack.callback(self.mesher.close)
        self.estimated_by = type(self.mesher.estimator).__name__
        return list(self.mesher.stages)

    def _outputs(self, out: OutputConfig, video_fps: float) -> None:
        """The hands file (record thread), the overlay video (or, for photos, one overlay
        image per photo) and contact sheet (render).

        Each is written under a partial name and renamed into place when the run ends
        (:mod:`realtime.io.outputs`): a run that fails leaves the previous run's files.
        """
        self._stack.callback(self.outputs.discard)  # unless committed by then
        self.recorder = LatencyRecorder()
        from realtime.stream.openxr import openxr_tracker

        self.hands_sink = HandsFileSink(self.outputs.partial("hands"), out.vertices,
                                        xr=openxr_tracker(self.model))
        self.contact_sheet = ContactSheet()
        overlay_config = (_replay_overlay(out.overlay, self.source, self.model)
                          if self.source.provides_hands else out.overlay)
        self.faces_for = {side: self.model.faces_for(side) for side in SIDES}
        self.photos = None
        hud = hud_lines(self.recorder, lambda: self.hands_sink.records, self.live)
        if _is_image_folder(self.source):  # photos: each its own image, never a video
            names = overlay_names(self.source.files)
            file_of = self.source.file_of
            self.photos = PhotoOverlays(self.outputs.partial("overlays"),
                                        lambda index: names[file_of(index)])
            hud = list  # the photo's own hands only: no run rate or running count on it
        self.overlay = OverlaySink(self.faces_for, overlay_config,
                                   self.outputs.partial("video")
                                   if out.video and self.photos is None else None,
                                   video_fps, hud, contact_sheet=self.contact_sheet,
                                   photos=self.photos)

    def _publishers(self, config: PublisherConfig | None) -> list[Sink]:
        """The ZeroMQ publisher, and the texture topic beside it when texture is on."""
        if config is None:
            return []
        from realtime.stream.publisher import Publisher

        publisher = Publisher(config, self.model, camera=self.camera.intrinsics)
        self._stack.callback(publisher.close)  # closed by the pipeline too; idempotent
        if config.endpoint is not None:
            self.notes.append(f"publishing hands on {config.endpoint} (topology requests on "
                              f"{config.topology_endpoint})"
                              + (" with CURVE encryption, allowed clients only" if config.curve
                                 else ""))
        if publisher.web is not None:
            self.notes.append(f"live in the browser: open {publisher.web.url} (WebSocket "
                              f"ws://{publisher.web.url.split('//')[1].split('/')[0]}/ws)")
        fuser = self.mesher.texture_fuser if self.mesher is not None else None
        if fuser is None:
            return [publisher]
        from realtime.stream.texture_topic import TextureSink

        return [publisher, TextureSink(fuser, publisher.send_raw)]

    def _ros2(self, config: AppConfig) -> list[Sink]:
        """The ROS 2 output; when DDS cannot start, a note and the run goes on without it."""
        if config.ros2 is None:
            return []
        from realtime.ros2.dds import dds_unavailable

        why, sink = dds_unavailable(), None
        if why is None:
            from realtime.ros2 import Ros2Sink

            try:
                sink = Ros2Sink(config.ros2, self.model, self.faces_for)
            except Exception as exc:  # noqa: BLE001 - e.g. no loopback interface
                why = f"DDS failed to start ({type(exc).__name__}: {exc})"
        if sink is None:
            self.notes.append(f"ROS 2 output off: {why} (the other outputs go on)")
            return []
        self._stack.callback(sink.close)  # closed by the pipeline too; idempotent
        r = config.ros2
        self.notes.append(f"ROS 2: publishing on {r.namespace}/... and {r.tf_topic} (frame "
                          f"{r.frame_id}, DDS domain {r.domain_id}, "
                          f"{'LAN' if r.lan else 'loopback only'})")
        return [sink]

    def _mcap(self, config: AppConfig) -> list[Sink]:
        """The MCAP recording (in the record thread: every frame, never dropped)."""
        if config.record_mcap is None:
            return []
        from realtime.ros2 import McapSink

        sink = McapSink(config.record_mcap, self.model, self.faces_for)
        self._stack.callback(sink.close)  # finishes the file even if the run fails
        self.notes.append(f"recording ROS 2 messages to {config.record_mcap.path}")
        return [sink]

    def _read(self) -> Frame | None:
        limit = self.config.max_frames
        if limit is not None and self._frames_read >= limit:
            return None
        if self.profile_recorder is not None and self.profile_recorder.done:
            return None
        frame = self.source.read()
        self._frames_read += frame is not None
        return frame

    # -- running -------------------------------------------------------------------------
    def run(self, on_poll=None, poll_s: float = 0.05) -> dict:
        """Run to the end of the input (or ``pipeline.stop``, or Ctrl-C), then write the
        outputs; returns the statistics also written to ``stats.json``.

        ``on_poll`` runs in this thread every ``poll_s`` (a window's event loop). Ctrl-C
        (``KeyboardInterrupt``) ends the run like a stop: everything written so far is
        kept, and the statistics say ``"interrupted": true``. A stage's exception is raised
        after the outputs are closed.
        """
        if self._ran:
            raise RealtimeError("a built pipeline runs once: call build_pipeline() again")
        self._ran = True
        interrupted, result = False, None
        t_start = time.perf_counter()
        try:
            if interrupts.seen():  # a Ctrl-C during start-up that a library swallowed
                raise KeyboardInterrupt
            result = self.pipeline.run(on_poll=on_poll, poll_s=poll_s)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (realtime.engine.interrupts)
            interrupted = True
        elapsed = time.perf_counter() - t_start
        self.result = result  # the engine's view: frames in/out, why it ended, its stats
        if result is not None and result.error is not None:
            self.outputs.discard()  # the previous run's files stay, untouched
            raise result.error
        with interrupts.deferred():  # Ctrl-C/SIGTERM now: the files are finished first
            return self._finish(result, interrupted, elapsed)

    def _finish(self, result: PipelineResult | None, interrupted: bool, elapsed: float) -> dict:
        config = self.config
        if self.profile_recorder is not None and config.calibrate_hand is not None:
            from calibration.profile import save_profile

            profile = self.profile_recorder.profile()
            if config.calibrate_hand.hand_length_mm is not None:
                profile = profile.with_hand_length(config.calibrate_hand.hand_length_mm)
            save_profile(config.calibrate_hand.path, profile)
            self.notes.append(
                f"hand profile from {profile.samples} open-hand frames ({profile.source}): "
                f"hand length {profile.hand_length_mm:.0f} mm, saved to "
                f"{config.calibrate_hand.path}")
        fuser = self.mesher.texture_fuser if self.mesher is not None else None
        if fuser is not None and config.output.save_texture is not None:
            from models.uv_layout import load_uv_layout

            for path in fuser.save(config.output.save_texture, load_uv_layout()):
                self.notes.append(f"texture written to {path}")
        snapshot = self.recorder.snapshot()
        sheet_written = self.contact_sheet.save(self.outputs.partial("contact_sheet"))
        video_written = self.overlay.video_path is not None and self.overlay.frames_written > 0
        overlay_files = self.photos.files_written if self.photos is not None else 0
        sink = self.hands_sink
        intr = self.camera.intrinsics
        stats = {
            "source": self.spec,
            "frames": sink.frames,
            "frames_with_hands": sink.frames_with_hands,
            "hand_rate": round(sink.frames_with_hands / sink.frames, 4) if sink.frames else 0.0,
            "hands": sink.records,
            "estimate_failures": (self.mesher.estimate_stage.failures
                                  if self.mesher is not None else 0),
            "seconds": round(elapsed, 3),
            "fps": round(sink.frames / elapsed, 2) if elapsed > 0 else 0.0,
            "live": self.live,
            "latency": snapshot,
            "intrinsics": {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy,
                           "estimated": intr.estimated},
            "hand_model": self.model.data.name,
            "hands_from": self.estimated_by,
            "interrupted": interrupted,
            "signal": interrupts.name(interrupts.first()) if interrupted else None,
            "stopped_by": "interrupted" if interrupted else (result.reason if result else ""),
            "outputs": {"hands": str(self.paths["hands"]),
                        "video": str(self.paths["video"]) if video_written else None,
                        "overlays": str(self.paths["overlays"]) if overlay_files else None,
                        "contact_sheet": str(self.paths["contact_sheet"])
                        if sheet_written else None},
            "overlay_files": overlay_files,
            "video_frames_fitted": self.overlay.frames_fitted,
            # the overlay left SCHED_IDLE: other programs kept the cores busy
            "render_fallback": self.pipeline.render_fell_back,
        }
        if self.source.provides_hands:
            replay = self.source
            stats["replay"] = {"passes": replay.passes + 1, "fps": round(replay.fps, 3),
                               "truncated_line": replay.truncated_line,
                               "skipped_hands": replay.skipped_hands,
                               "skipped_gaps": replay.skipped_gaps}
        self.outputs.partial("stats").write_text(json.dumps(stats, indent=2) + "\n")
        self.outputs.commit(["hands", "stats"] + ["video"] * video_written
                            + ["overlays"] * bool(overlay_files)
                            + ["contact_sheet"] * sheet_written)
        if config.output.stats_json is not None:
            self.recorder.to_json(config.output.stats_json)
        return stats

    def close(self) -> None:
        """Release the source, the models and the publisher; safe to call twice."""
        self._stack.close()

    def __enter__(self) -> HandsPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


FAST_FPS = 30.0  # above this a live source gets adaptive landmarks, alternating, by default


def detector_for_rate(config: DetectorConfig, fps: float, live: bool) -> DetectorConfig:
    """The default landmark model and refresh for a live source faster than
    :data:`FAST_FPS`: "adaptive", with half a frame period as the budget of the landmark
    call, and "alternate" refresh (two hands: the model on one per frame, in turn, optical
    flow on the other).

    Why: at 60 FPS two cores give 33 ms of CPU per frame, and full landmarks on two hands
    take ~22 ms of it (both cores) before the regressor, drawing, recording and decoding;
    lite takes about half. Half a frame period (8.3 ms at 60 FPS) keeps full on a CPU fast
    enough for it; a source of 30 FPS or less keeps full on every hand. Alternating cuts the
    detector's CPU to ~0.65x for ~0.1 px more 2D error on the 60 FPS sample (docs/detector.md,
    "Alternate landmark refresh"). Each only when left to the default (``landmarks`` None
    with model complexity 1; ``landmark_refresh`` None)."""
    if (not live or config.kind != "scheduled" or config.static_image_mode
            or not fps or fps <= FAST_FPS):
        return config
    if config.landmark_refresh is None:
        config = replace(config, landmark_refresh="alternate")
    if config.landmarks is not None or config.model_complexity != 1:
        return config
    budget = config.frame_budget_ms if config.frame_budget_ms is not None else 500.0 / fps
    return replace(config, landmarks="adaptive", frame_budget_ms=budget)


def _one_camera(in_source: CameraConfig, in_mesher: CameraConfig) -> CameraConfig:
    """The camera is said once: in the mesher's config (the usual place) or the source's."""
    default = CameraConfig()
    if in_source != default and in_mesher != default and in_source != in_mesher:
        raise ValueError("the camera is given twice (source.camera and mesher.camera) and "
                         "the two differ: give it once, in mesher.camera")
    return in_mesher if in_mesher != default else in_source


def _is_image_folder(source: Source) -> bool:
    from realtime.io.sources import ImageFolderSource

    return isinstance(source, ImageFolderSource)


def _replay_overlay(config: OverlayConfig, source, model: HandModel) -> OverlayConfig:
    """Skeletons only when the file has no meshes to draw (joints-only, another hand model)."""
    if source.vertex_count == 0:
        log.info("%s has no vertices (joints only): drawing skeletons", source.name)
        return replace(config, draw_mesh=False)
    if source.vertex_count <= int(model.faces.max()):
        log.warning("%s: %d vertices per hand do not match the hand model %s: drawing "
                    "skeletons only", source.name, source.vertex_count, model.data.name)
        return replace(config, draw_mesh=False)
    return config
