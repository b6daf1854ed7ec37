"""``handmesh-multiview``: camera nodes and a fusion node, cameras on several machines.

::

    handmesh-multiview camera --source 0 --camera-id 0 --publish tcp://0.0.0.0:5601 --insecure
    handmesh-multiview fuse --rig rig.json --connect tcp://cam0:5601 --connect tcp://cam1:5601 \
        --publish tcp://127.0.0.1:5555 --print

The nodes and the ``landmarks`` message are :mod:`realtime.multiview.landmark_stream`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

from calibration.errors import CalibrationError
from calibration.multiview import RigCamera
from calibration.profile import ProfileRecorder, save_profile
from realtime.multiview.landmark_stream import (
    FusionNode,
    LandmarkPublisher,
    LandmarkSubscriber,
    fused_to_mesh,
)
from realtime.types import Frame, Packet


def run_camera(a: argparse.Namespace) -> int:
    from realtime.detect.detector import DetectorConfig
    from realtime.detect.mediapipe_legacy import MediaPipeDetector
    from realtime.engine.pipeline import Pipeline, PipelineConfig
    from realtime.engine.stages import DetectStage
    from realtime.io.sources import SourceConfig, open_source

    source = open_source(SourceConfig(spec=a.source))
    pub = LandmarkPublisher(a.publish, a.camera_id, a.insecure)
    print(f"camera {a.camera_id}: publishing landmarks on {pub.endpoint}")
    with source, MediaPipeDetector(DetectorConfig(kind="mediapipe")) as detector:
        count = [0]

        def read():
            if a.max_frames is not None and count[0] >= a.max_frames:
                return None
            count[0] += 1
            return source.read()

        pipeline = Pipeline(read, [("detect", DetectStage(detector))], [pub],
                            PipelineConfig(live=source.is_live, pace=source.is_live),
                            fps=source.fps)
        try:
            pipeline.run()
        except KeyboardInterrupt:
            pass
    pub.close()
    print(f"camera {a.camera_id}: {pub.sent} frames sent, {pub.dropped} dropped")
    return 0


def run_fuse(a: argparse.Namespace) -> int:
    from calibration.extrinsics import load_rig
    from calibration.profile import load_profile
    from models.hand_model import HandModel

    calibs, poses = load_rig(a.rig)
    rig = [RigCamera(c, r, t) for c, (r, t) in zip(calibs, poses)]
    model = HandModel.open_hand()
    profile = load_profile(a.hand_profile) if a.hand_profile else None
    recorder = ProfileRecorder() if a.record_profile else None
    node = FusionNode(rig, model, profile, a.max_skew_ms / 1000.0, fit=not a.no_fit,
                      recorder=recorder)
    sub = LandmarkSubscriber(a.connect, image_sizes=[c.calibration.size for c in rig])
    publisher = None
    if a.publish:
        from realtime.stream.publisher import Publisher, PublisherConfig

        publisher = Publisher(PublisherConfig.for_endpoint(a.publish), model)
    w, h = rig[0].calibration.size
    blank = np.broadcast_to(np.zeros(1, np.uint8), (h, w, 3))
    fused_frames = 0
    deadline = None if a.seconds is None else time.monotonic() + a.seconds
    every = a.stats_every if a.stats_every is not None else (5.0 if a.print else None)
    next_stats = None if not every else time.monotonic() + every

    def stats() -> str:
        """One JSON line: the node's counts and, per camera node, accepted/dropped."""
        return "stats " + json.dumps({"t": round(time.monotonic(), 3),
                                      **node.stats.as_dict(), "sources": {
            ep: st.as_dict() for ep, st in sub.sources.items()}})

    try:
        while deadline is None or time.monotonic() < deadline:
            if next_stats is not None and time.monotonic() >= next_stats:
                next_stats += every
                print(stats(), flush=True)
            frames = sub.receive(100)
            for f in frames:
                node.update(f)
            if not frames:
                continue
            hands = node.fuse()
            fused_frames += 1
            now = time.monotonic()
            meshes = [fused_to_mesh(hd, fused_frames, now, rig[0], i)
                      for i, hd in enumerate(hands)]
            if publisher is not None:
                frame = Frame(blank, fused_frames, now, "fused", rig[0].calibration)
                publisher.write(Packet(frame, now, hands=tuple(meshes)))
            if a.print:
                print(" | ".join(f"{hd.handedness} views {list(hd.views)} wrist "
                                 f"{np.round(hd.joints[0] * 100, 1).tolist()} cm"
                                 for hd in hands) or "no hands", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        print(stats(), flush=True)
        sub.close()
        if publisher is not None:
            publisher.close()
    if recorder is not None:
        prof = recorder.profile(source="multi-view")
        save_profile(a.record_profile, prof)
        print(f"metric hand profile from {prof.samples} triangulated open hands: hand length "
              f"{prof.hand_length_mm:.0f} mm, saved to {a.record_profile}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="handmesh-multiview",
                                description="camera nodes and a multi-view fusion node")
    sp = p.add_subparsers(dest="cmd", required=True)
    c = sp.add_parser("camera", help="detect hands and publish their landmarks")
    c.add_argument("--source", default="0")
    c.add_argument("--camera-id", type=int, required=True)
    c.add_argument("--publish", default="tcp://127.0.0.1:5601")
    c.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback address (landmarks travel unencrypted)")
    c.add_argument("--max-frames", type=int, default=None)
    f = sp.add_parser("fuse", help="fuse the landmarks of several camera nodes")
    f.add_argument("--rig", required=True, help="rig file from `handmesh-calibrate "
                   "extrinsics`")
    f.add_argument("--connect", action="append", default=[], help="a camera node endpoint")
    f.add_argument("--publish", default=None, help="re-publish fused hands (hands/joints)")
    f.add_argument("--hand-profile", default=None)
    f.add_argument("--record-profile", default=None, metavar="FILE",
                   help="save a metric hand profile from triangulated open hands (use it "
                        "with handmesh --hand-profile on a single camera)")
    f.add_argument("--max-skew-ms", type=float, default=50.0)
    f.add_argument("--seconds", type=float, default=None)
    f.add_argument("--print", action="store_true", help="print each fused frame")
    f.add_argument("--stats-every", type=float, default=None, metavar="S",
                   help="print the counts (fused frames, per camera node messages accepted "
                        "and dropped) as a 'stats {json}' line every S seconds (with --print: "
                        "every 5 s by default); always at exit")
    f.add_argument("--no-fit", action="store_true",
                   help="keypoints only: skip the mesh fit in the world frame")
    from realtime.engine import interrupts

    interrupts.install()  # SIGTERM ends a node like Ctrl-C (the fuse node saves its profile)
    a = p.parse_args(argv)
    logging.basicConfig(level="WARNING")
    try:
        return run_camera(a) if a.cmd == "camera" else run_fuse(a)
    except (ValueError, OSError, CalibrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return interrupts.exit_code()


def entry() -> None:
    """Console script: exit without the native runtimes' teardown (see ``cli.entry``)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
