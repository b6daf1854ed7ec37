#!/usr/bin/env python3
"""handmesh demo: webcam (or a video, or images) -> live 3D hand meshes (docs/demo.md).

The same as the ``handmesh`` command; kept so that ``python run_demo.py`` works in a
checkout without installing the package's scripts.
"""

if __name__ == "__main__":
    from realtime.cli.entry import demo

    demo()
