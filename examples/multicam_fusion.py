"""Several cameras, one fused hand: camera nodes publish landmarks, a fusion node fuses.

Without cameras (the default) it runs synthetic camera nodes: a rig of 3 calibrated
cameras around a moving hand, each a thread that projects the hand through its lens, adds
MediaPipe-like noise and publishes on its own ZeroMQ port of 127.0.0.1 — the same
``landmarks`` messages a real camera node sends. Camera 0 loses the hand for a second and
camera 2 for another, to show that fusion carries on. The fusion node prints, per
half-second, which views it used and the error against the known truth.

    .venv/bin/python examples/multicam_fusion.py                            # synthetic
    .venv/bin/python examples/multicam_fusion.py --rig rig.json --sources 0 1  # real cameras

With real cameras each source runs as ``handmesh-multiview camera`` (as it
would on its own machine) and this process is the fusion node.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time

import numpy as np

from calibration.multiview import HandView, RigCamera, fit_mesh, fuse_views
from calibration.simulation import synthetic_rig, webcam_calibration
from models.hand_model import HandModel
from models.poses import named_pose
from realtime.cli.multiview import main as multiview_main
from realtime.multiview.landmark_stream import FusionNode, LandmarkPublisher, LandmarkSubscriber
from realtime.types import Detection

FPS = 30.0
NOISE_PX = 1.5


def hand_at(model: HandModel, t: float) -> np.ndarray:
    """The true hand (21,3) at time t: a slow circle 60 cm in front of camera 0."""
    kps = model.forward(named_pose(model.data.joint_names, "spread")).keypoints[0]
    kps = kps - kps.mean(0)
    a = 0.8 * t
    return kps + np.array([0.06 * np.cos(a), 0.04 * np.sin(a), 0.6 + 0.05 * np.sin(0.5 * a)])


def sees_hand(camera: int, t: float) -> bool:
    """Camera 0 is occluded for 1.5-2.5 s, camera 2 for 3-4 s."""
    return not ((camera == 0 and 1.5 <= t < 2.5) or (camera == 2 and 3.0 <= t < 4.0))


def synthetic_camera(cam_id: int, cam: RigCamera, model: HandModel, pub: LandmarkPublisher,
                     t0: float, seconds: float, stop: threading.Event) -> None:
    """One camera node: project the true hand, add noise, publish at 30 FPS."""
    rng = np.random.default_rng(cam_id)
    frame = 0
    while not stop.is_set():
        t = time.monotonic() - t0
        if t > seconds:
            break
        dets = []
        if sees_hand(cam_id, t):
            x = hand_at(model, t)
            uv = cam.calibration.distort_points(cam.project(x)) + rng.normal(0, NOISE_PX,
                                                                              (21, 2))
            rel = x @ cam.R.T
            dets.append(Detection(uv, np.zeros(21), rel - rel.mean(0), "right", 0.95, frame,
                                  time.monotonic()))
        pub.send(frame, time.monotonic(), cam.calibration.size, dets)
        frame += 1
        time.sleep(max(0.0, t0 + frame / FPS - time.monotonic()))


def run_synthetic(seconds: float) -> int:
    model = HandModel.open_hand()
    rig = [RigCamera(webcam_calibration(640, 480, 60 + 3 * i, name=f"cam{i}"), c.R, c.t)
           for i, c in enumerate(synthetic_rig(3, distance_m=0.6))]
    pubs = [LandmarkPublisher("tcp://127.0.0.1:*", i) for i in range(len(rig))]
    sub = LandmarkSubscriber([p.endpoint for p in pubs])
    node = FusionNode(rig, model, max_skew_s=0.05)
    print("camera nodes on " + ", ".join(p.endpoint for p in pubs))
    # Warm the mesh fit (Numba compiles on first use) and let the subscriptions reach the
    # publishers (ZeroMQ's slow joiner) before the clock starts.
    fit_mesh(model, fuse_views(
        [HandView(i, c.project(hand_at(model, 0.0)), np.ones(21), "right") for i, c in
         enumerate(rig)], rig)[0])
    time.sleep(0.3)
    stop = threading.Event()
    t0 = time.monotonic()
    threads = [threading.Thread(target=synthetic_camera, args=(i, cam, model, pubs[i], t0,
                                                               seconds, stop), daemon=True)
               for i, cam in enumerate(rig)]
    for th in threads:
        th.start()
    window: list[tuple[tuple[int, ...], float]] = []
    next_print = t0 + 0.5
    try:
        while time.monotonic() - t0 < seconds + 0.2:
            frames = sub.receive(50)
            for f in frames:
                node.update(f)
            if not frames:
                continue
            t = time.monotonic() - t0
            for hand in node.fuse():
                err = np.linalg.norm(hand.joints - hand_at(model, t), axis=1).mean() * 1000
                window.append((hand.views, err))
            if time.monotonic() >= next_print and window:
                next_print = time.monotonic() + 0.5
                views = max({v for v, _ in window}, key=lambda v: sum(w == v for w, _ in window))
                print(f"t={t:4.1f} s  views {list(views)}  fused {len(window):3d} times, "
                      f"keypoint error {np.median([e for _, e in window]):5.1f} mm")
                window.clear()
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=1.0)
        sub.close()
        for p in pubs:
            p.close()
    return 0


def run_real(rig: str, sources: list[str], seconds: float | None) -> int:
    procs = []
    endpoints = []
    try:
        for i, src in enumerate(sources):
            ep = f"tcp://127.0.0.1:{5601 + i}"
            endpoints.append(ep)
            procs.append(subprocess.Popen([sys.executable, "-m", "realtime.cli.multiview",
                                           "camera", "--source", src, "--camera-id", str(i),
                                           "--publish", ep]))
        args = ["fuse", "--rig", rig, "--print"]
        for ep in endpoints:
            args += ["--connect", ep]
        if seconds:
            args += ["--seconds", str(seconds)]
        return multiview_main(args)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rig", default=None, help="rig file (handmesh-calibrate extrinsics)")
    ap.add_argument("--sources", nargs="*", default=[], help="camera indices, one per rig "
                    "camera in order")
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    if a.rig and a.sources:
        return run_real(a.rig, a.sources, a.seconds)
    print("no --rig/--sources: synthetic cameras (a 3-camera rig, a moving hand)")
    return run_synthetic(a.seconds)


if __name__ == "__main__":
    sys.exit(main())
