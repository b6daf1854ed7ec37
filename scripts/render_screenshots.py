"""The README's rendering pictures from a demo run on the built-in sample.

    bash scripts/demo.sh --headless --output demo_output          # the run (any source)
    DISPLAY=:1 .venv/bin/python -m scripts.render_screenshots demo_output --frame 400

Writes docs/overlay_frame.png (that frame of overlay.mp4), docs/viewer.png (the 3D viewer
with the run's hands of that frame, the video on the image plane) and
docs/viewer_uncertainty.png (the viewer from the camera, uncertainty heat map). Needs a
display (Xvfb works) for the viewer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from models.hand_model import HandModel, flip_faces
from realtime.io.hands_file import read_hands, record_camera, record_to_hand
from realtime.render.viewer import HandViewer, ViewerConfig

DOCS = Path(__file__).resolve().parent.parent / "docs"


def frame_of(video: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"{video} has no frame {index}")
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a demo output folder (overlay.mp4, hands.jsonl)")
    parser.add_argument("--frame", type=int, default=400)
    parser.add_argument("--source", type=Path,
                        default=Path("realtime/assets/sample/sample.mp4"),
                        help="the run's input video (for the image plane)")
    args = parser.parse_args()

    records = [r for r in read_hands(args.run / "hands.jsonl")
               if r["frame_index"] == args.frame]
    if not records:
        raise SystemExit(f"no hands in frame {args.frame} of {args.run / 'hands.jsonl'}")
    hands = [record_to_hand(r) for r in records]
    camera = record_camera(records[0])
    overlay = frame_of(args.run / "overlay.mp4", args.frame)
    _write_small(DOCS / "overlay_frame.png", overlay[:330])  # the hands and the HUD
    faces = HandModel.open_hand().faces
    viewer = HandViewer(ViewerConfig(width=800, height=600), {"right": faces,
                                                             "left": flip_faces(faces)},
                        camera.K, (camera.width, camera.height)).open()
    try:
        video = frame_of(args.source, args.frame)
        viewer.texture = True
        for _ in range(6):  # a few samples fuse the texture
            viewer.show(hands, video)
            viewer.poll()
        viewer.screenshot(DOCS / "viewer.png")
        viewer.texture, viewer.uncertainty = False, True
        viewer.view_from_camera()
        viewer.show(hands, video)
        viewer.poll()
        viewer.screenshot(DOCS / "viewer_uncertainty.png")
    finally:
        viewer.close()
    for name in ("overlay_frame.png", "viewer.png", "viewer_uncertainty.png"):
        if name != "overlay_frame.png":
            _write_small(DOCS / name, cv2.imread(str(DOCS / name)))
        print(f"{DOCS / name}: {(DOCS / name).stat().st_size // 1024} kB")


def _write_small(path: Path, image: np.ndarray, max_kb: int = 280) -> None:
    """PNG at full compression, shrunk until it is under ``max_kb`` (the repo's limit)."""
    while True:
        ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise SystemExit(f"cannot encode {path}")
        if len(data) <= max_kb * 1024:
            path.write_bytes(data.tobytes())
            return
        image = cv2.resize(image, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA)


if __name__ == "__main__":
    main()
