#!/usr/bin/env python3
"""handmesh demo: webcam (or a video, or images) -> live 3D hand meshes. See README.md."""

import os
import sys

if __name__ == "__main__":
    try:
        from realtime.engine import interrupts  # standard library only: first, before the rest

        interrupts.install()
        from realtime.cli.demo import main  # seconds of imports: Ctrl-C may land here

        code = main()  # every file is flushed and closed, every socket closed, by now
    except KeyboardInterrupt:  # before main() set anything up: nothing to keep
        print("interrupted", file=sys.stderr)
        code = 130
    except ImportError:
        # Ctrl-C inside a native module's initialisation surfaces as "initialization
        # failed": still an interruption; any other import failure is a real error
        if not interrupts.seen():
            raise
        print("interrupted", file=sys.stderr)
        code = 130
    # Skip the interpreter's teardown: the native runtimes (LiteRT/XNNPACK, MediaPipe's
    # graph) can abort while their static objects are destroyed at exit, which would turn
    # a clean Ctrl-C (130) into a crash code. Nothing is left to flush but stdio.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
