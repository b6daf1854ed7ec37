#!/usr/bin/env python3
"""handmesh demo: webcam (or a video, or images) -> live 3D hand meshes. See README.md."""

import os
import sys

from realtime.demo import main

if __name__ == "__main__":
    code = main()  # every file is flushed and closed, every socket closed, by now
    # Skip the interpreter's teardown: the native runtimes (LiteRT/XNNPACK, MediaPipe's
    # graph) can abort while their static objects are destroyed at exit, which would turn
    # a clean Ctrl-C (130) into a crash code. Nothing is left to flush but stdio.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
