#!/usr/bin/env python3
"""handmesh demo: webcam (or a video, or images) -> live 3D hand meshes. See README.md."""

import sys

from realtime.demo import main

if __name__ == "__main__":
    sys.exit(main())
