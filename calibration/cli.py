"""``handmesh-calibrate`` (or ``python -m calibration``): print a board, calibrate cameras,
make hand profiles.

    handmesh-calibrate board --out board.pdf            # print at 100%, measure a square
    handmesh-calibrate intrinsics --camera 0 --out cam0.yaml --square-mm 35.2
    handmesh-calibrate intrinsics --images shots/ --out cam0.yaml
    handmesh-calibrate extrinsics --images cam0_dir cam1_dir --calib cam0.yaml cam1.yaml \
        --out rig.json
    handmesh-calibrate hand-profile --hands demo_output/hands.jsonl --out me.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from calibration.board import BoardDetector, BoardSpec, save_board
from calibration.calibrate import SelectorConfig, ViewSelector, calibrate_views
from calibration.camera_file import load_calibration, save_calibration
from calibration.errors import CalibrationError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _board_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=("charuco", "chessboard"), default="charuco")
    p.add_argument("--squares-x", type=int, default=7)
    p.add_argument("--squares-y", type=int, default=5)
    p.add_argument("--square-mm", type=float, default=35.0,
                   help="printed square size; measure it on the printout")
    p.add_argument("--marker-mm", type=float, default=26.0)
    p.add_argument("--dictionary", default="5x5_100")


def _spec(a) -> BoardSpec:
    return BoardSpec(a.kind, a.squares_x, a.squares_y, a.square_mm / 1000, a.marker_mm / 1000,
                     a.dictionary)


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CalibrationError(f"{folder} is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise CalibrationError(f"{folder} has no images ({', '.join(sorted(IMAGE_EXTS))})")
    return files


def _display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
        or not sys.platform.startswith("linux")


def draw_feedback(image: np.ndarray, selector: ViewSelector, view, status: str,
                  target: int) -> np.ndarray:
    """The live window: coverage cells (green: seen), the current corners, the verdict."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    h, w = out.shape[:2]
    gy, gx = selector.coverage.shape
    shade = out.copy()
    for j in range(gy):
        for i in range(gx):
            if selector.coverage[j, i]:
                cv2.rectangle(shade, (i * w // gx, j * h // gy),
                              ((i + 1) * w // gx, (j + 1) * h // gy), (0, 160, 0), -1)
    out = cv2.addWeighted(shade, 0.25, out, 0.75, 0)
    if view is not None:
        for x, y in view.corners:
            cv2.circle(out, (int(x), int(y)), 3, (0, 0, 255), -1)
    cv2.putText(out, f"{len(selector.views)}/{target} views, coverage "
                f"{selector.coverage_fraction:.0%}: {status}", (10, 25),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)
    return out


def cmd_board(a) -> int:
    path = save_board(_spec(a), a.out, a.dpi)
    print(f"board written to {path}: print at 100% (no scaling), measure one square and "
          "pass it as --square-mm")
    return 0


def cmd_intrinsics(a) -> int:
    spec = _spec(a)
    det = BoardDetector(spec)
    cfg = SelectorConfig(min_sharpness=a.min_sharpness)
    selector: ViewSelector | None = None
    size = None
    if a.images:
        for path in _images(a.images):
            img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if img is None:
                print(f"{path.name}: not readable, skipped")
                continue
            if size is None:
                size = (img.shape[1], img.shape[0])
                selector = ViewSelector(size, cfg)
            elif (img.shape[1], img.shape[0]) != size:
                raise CalibrationError(f"{path}: {img.shape[1]}x{img.shape[0]}, the first "
                                       f"image was {size[0]}x{size[1]}: one resolution only")
            verdict = selector.offer(img, det.detect(img))
            print(f"{path.name}: {verdict}")
    else:
        cam = int(a.camera) if a.camera.isdigit() else a.camera
        if isinstance(cam, int) and cam > 9999:  # OpenCV's own error: a multi-line overload list
            raise CalibrationError(f"camera index {cam} is out of range (0-9999): pass a "
                                   "camera index such as 0, or a video file")
        cap = cv2.VideoCapture(cam)
        if not cap.isOpened():
            raise CalibrationError(f"camera {a.camera} cannot be opened (busy, missing, or "
                                   "not a video file)")
        if a.width and a.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, a.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, a.height)
        show = _display() and not a.headless
        t_end = time.monotonic() + a.seconds
        try:
            while time.monotonic() < t_end:
                ok, frame = cap.read()
                if not ok:
                    break
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                if selector is None:
                    size = (gray.shape[1], gray.shape[0])
                    selector = ViewSelector(size, cfg)
                view = det.detect(gray)
                verdict = selector.offer(gray, view)
                if show:
                    cv2.imshow("calibration", draw_feedback(frame, selector, view, verdict,
                                                            a.views))
                    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                        break
                if len(selector.views) >= a.views:
                    break
        finally:
            cap.release()
            if show:
                cv2.destroyAllWindows()
    if selector is None:
        raise CalibrationError("no images read")
    print(f"{len(selector.views)} views accepted, rejected {selector.rejected}, coverage "
          f"{selector.coverage_fraction:.0%}")
    result = calibrate_views(spec, selector.views, size, a.name, a.rational)
    c = result.calibration
    print(f"RMS reprojection error {result.rms_px:.3f} px (worst view "
          f"{result.per_view_rms_px.max():.3f} px)")
    print(f"fx {c.intrinsics.fx:.2f} fy {c.intrinsics.fy:.2f} cx {c.intrinsics.cx:.2f} "
          f"cy {c.intrinsics.cy:.2f}, distortion {np.round(c.dist, 5).tolist()}")
    if selector.coverage_fraction < 0.6:
        print("warning: the board covered under 60% of the image; distortion at the edges "
              "is extrapolated. Show the board near the corners too.")
    save_calibration(a.out, c)
    print(f"saved {a.out}; use it with: run_demo.py --calib {a.out}")
    return 0


def cmd_extrinsics(a) -> int:
    from calibration.extrinsics import calibrate_extrinsics, save_rig

    if len(a.images) != len(a.calib):
        raise CalibrationError(f"{len(a.images)} image folders but {len(a.calib)} calibration "
                               "files: give one of each per camera, in the same order")
    spec = _spec(a)
    det = BoardDetector(spec)
    calibs = [load_calibration(p) for p in a.calib]
    by_name = [{p.name: p for p in _images(d)} for d in a.images]
    names = sorted(set().union(*by_name))
    frames = []
    for name in names:
        views = []
        for cam in by_name:
            img = cv2.imread(str(cam[name]), cv2.IMREAD_GRAYSCALE) if name in cam else None
            views.append(det.detect(img) if img is not None else None)
        frames.append(views)
    result = calibrate_extrinsics(spec, calibs, frames)
    for (i, j), n in sorted(result.pair_views.items()):
        print(f"cameras {i}-{j}: {n} shared views, spread "
              f"{result.pair_spread_mm.get((i, j), float('nan')):.1f} mm")
    for c, (r, t) in enumerate(result.poses):
        centre = -r.T @ t
        print(f"camera {c}: centre {np.round(centre * 100, 1).tolist()} cm in camera 0's frame")
    save_rig(a.out, calibs, list(result.poses))
    print(f"saved {a.out}")
    return 0


def cmd_hand_profile(a) -> int:
    from calibration.profile import ProfileRecorder, save_profile

    rec = ProfileRecorder(target_samples=10**9)
    path = Path(a.hands)
    if not path.is_file():
        raise CalibrationError(f"{path} not found: record one with run_demo.py (hands.jsonl)")
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and "joints" in r:
            rec.add(np.asarray(r["joints"], dtype=np.float64).reshape(-1, 3),
                    float(r.get("score", 1.0)),
                    np.asarray(r["shape"], dtype=np.float64) if "shape" in r else None)
    profile = rec.profile(name=a.name)
    if a.hand_length_mm:
        profile = profile.with_hand_length(a.hand_length_mm)
    save_profile(a.out, profile)
    print(f"hand profile from {profile.samples} open-hand frames of {rec.seen}: hand length "
          f"{profile.hand_length_mm:.0f} mm ({profile.source}), saved to {a.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="handmesh-calibrate",
                                description="print a board, calibrate cameras, make hand "
                                            "profiles")
    sp = p.add_subparsers(dest="cmd", required=True)
    b = sp.add_parser("board", help="write the board to print (.pdf true size, or .png)")
    _board_args(b)
    b.add_argument("--out", type=Path, default=Path("board.pdf"))
    b.add_argument("--dpi", type=int, default=300)
    i = sp.add_parser("intrinsics", help="calibrate one camera from board views")
    _board_args(i)
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", type=Path, help="a folder of board photos")
    src.add_argument("--camera", help="a live camera index (0), or a video file of the "
                     "board being moved around")
    i.add_argument("--out", type=Path, required=True, help=".yaml (OpenCV) or .json")
    i.add_argument("--name", default="camera")
    i.add_argument("--views", type=int, default=25, help="live: stop after this many views")
    i.add_argument("--seconds", type=float, default=120.0, help="live: stop after this long")
    i.add_argument("--width", type=int, default=None)
    i.add_argument("--height", type=int, default=None)
    i.add_argument("--headless", action="store_true", help="live: no feedback window")
    i.add_argument("--min-sharpness", type=float, default=SelectorConfig.min_sharpness)
    i.add_argument("--rational", action="store_true", help="8-coefficient distortion model")
    e = sp.add_parser("extrinsics", help="place 2-8 cameras in camera 0's frame")
    _board_args(e)
    e.add_argument("--images", type=Path, nargs="+", required=True,
                   help="one folder per camera; same file name = same moment")
    e.add_argument("--calib", type=Path, nargs="+", required=True)
    e.add_argument("--out", type=Path, default=Path("rig.json"))
    h = sp.add_parser("hand-profile", help="a hand profile from a recorded hands.jsonl")
    h.add_argument("--hands", required=True)
    h.add_argument("--out", type=Path, required=True)
    h.add_argument("--name", default="user")
    h.add_argument("--hand-length-mm", type=float, default=None)
    with contextlib.suppress(ValueError):  # (only the main thread may set a handler)
        signal.signal(signal.SIGTERM, _on_sigterm)  # like Ctrl-C: a quiet stop
    a = p.parse_args(argv)
    try:
        return {"board": cmd_board, "intrinsics": cmd_intrinsics, "extrinsics": cmd_extrinsics,
                "hand-profile": cmd_hand_profile}[a.cmd](a)
    except CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 128 + (_signals[0] if _signals else signal.SIGINT)  # 130 Ctrl-C, 143 SIGTERM


_signals: list[int] = []


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    """SIGTERM (a process manager) ends a command as Ctrl-C does (``calibration`` does not
    import ``realtime``, whose ``engine.interrupts`` the other commands use)."""
    _signals.append(signum)
    raise KeyboardInterrupt
