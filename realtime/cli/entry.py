"""Console-script entry points that exit the way a terminal expects.

Standard library only at import: the Ctrl-C and SIGTERM handler is installed before the
seconds of imports behind the demo (MediaPipe, onnxruntime, Open3D), so a Ctrl-C during
start-up is a quiet interruption (exit 130; SIGTERM: 143) too. After ``main()`` has flushed
and closed every output, the process ends with ``os._exit``: the native runtimes
(LiteRT/XNNPACK, MediaPipe's graph) can abort while their static objects are destroyed at
interpreter exit, which would turn a clean exit or Ctrl-C into a crash code.
"""

from __future__ import annotations

import os
import sys


def demo() -> None:
    """``handmesh``: the demo (``python run_demo.py`` is the same)."""
    from realtime.engine import interrupts  # standard library only: first, before the rest

    interrupts.install()
    try:
        from realtime.cli.demo import main  # seconds of imports: Ctrl-C may land here

        code = main()  # every file is flushed and closed, every socket closed, by now
    except KeyboardInterrupt:  # before main() set anything up: nothing to keep
        print("interrupted", file=sys.stderr)
        code = interrupts.exit_code()
    except ImportError:
        # Ctrl-C inside a native module's initialisation surfaces as "initialization
        # failed": still an interruption; any other import failure is a real error
        if not interrupts.seen():
            raise
        print("interrupted", file=sys.stderr)
        code = interrupts.exit_code()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
