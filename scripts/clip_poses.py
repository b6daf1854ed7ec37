"""Hand poses from real footage, for rendering training pairs in natural poses.

Our pipeline (MediaPipe + the shipped regressor, video mode, no smoothing) runs on clips
and every hand's pose ``(J,3)`` (a right hand's; left hands mirrored, root in camera axes)
and shape are stored. ``scripts.make_detector_pairs --set pose_file=...`` then renders
hands in these poses (jittered) instead of sampled ones: MediaPipe errs much less on them
(``docs/regressor.md``, third attempt). The default clips are the licence-clean real ones in
``../shared/data/realhands`` (two Pixabay clips, the Apache-2.0 ASL clip); the file is
written to ``runs/`` and not committed.

    python -m scripts.clip_poses [--clips A.mp4 B.mp4 ...] [--max-frames N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.common import SHARED_DATA
from realtime.errors import RealtimeError
from realtime.io.sources import SourceConfig, open_source
from realtime.mesher import HandMesher, HandMesherConfig

CLIPS = (SHARED_DATA / "videos_nogt" / "pixabay_hand_129422.mp4",
         SHARED_DATA / "videos_nogt" / "pixabay_victory_44639.mp4",
         SHARED_DATA / "mediapipe_reference" / "asl_hand.25fps.mp4")


def clip_poses(clips: list[Path], max_frames: int | None = None) -> dict[str, np.ndarray]:
    """Every hand found in ``clips``: ``pose (N,J,3)``, ``shape (N,S)``, ``source (N,)``."""
    poses, shapes, sources = [], [], []
    for path in clips:
        with open_source(SourceConfig(spec=str(path))) as src, \
                HandMesher(HandMesherConfig(smoothing=None)) as mesher:
            total = src.frame_count
            if max_frames:
                total = min(total or max_frames, max_frames)
            for n, frame in enumerate(tqdm(src, total=total, desc=path.name, unit="frame")):
                if max_frames and n >= max_frames:
                    break
                for hand in mesher.process(frame.image, frame.timestamp):
                    poses.append(hand.pose)
                    shapes.append(hand.shape)
                    sources.append(path.name)
    if not poses:
        raise SystemExit(f"error: no hand found in {', '.join(str(c) for c in clips)}")
    return {"pose": np.asarray(poses, np.float32), "shape": np.asarray(shapes, np.float32),
            "source": np.asarray(sources)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=Path, nargs="+", default=None)
    p.add_argument("--max-frames", type=int, default=None, help="per clip")
    p.add_argument("--out", type=Path, default=Path("runs/clip_poses.npz"))
    args = p.parse_args(argv)
    clips = args.clips or list(CLIPS)
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        print(f"error: clips not found: {', '.join(missing)}"
              + ("" if args.clips else " (shared data absent; pass --clips)"), file=sys.stderr)
        return 2
    try:
        arrays = clip_poses(clips, args.max_frames)
    except RealtimeError as exc:  # a file that is not a readable video
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    counts = {c.name: int((arrays["source"] == c.name).sum()) for c in clips}
    print(json.dumps({"out": str(args.out), "hands": len(arrays["pose"]), "per_clip": counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
