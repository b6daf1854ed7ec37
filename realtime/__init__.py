"""handmesh real-time side: sources, detection, fitting, rendering, outputs, the CLI."""

import os as _os

# FFmpeg inside OpenCV prints its own lines (e.g. "moov atom not found") for files it cannot
# decode; we report those ourselves in one clear line, so keep FFmpeg quiet.
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
