"""Ctrl-C that leaves a mark, for the demo's entry points.

Python turns Ctrl-C into ``KeyboardInterrupt``, but one that lands inside a native
module's import surfaces as ``ImportError: initialization failed`` (or as our own "not
installed" error around that import), and some libraries swallow it outright (protobuf's
import probe). The handler here raises ``KeyboardInterrupt`` as Python's does and also
records that Ctrl-C was pressed, so the caller can still say "interrupted" (exit 130).
Standard library only: ``run_demo.py`` installs it before the heavy imports.
"""

from __future__ import annotations

import signal
import threading

_seen: list[bool] = []


def _on_sigint(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    _seen.append(True)
    raise KeyboardInterrupt


def install() -> None:
    """Handle Ctrl-C (and SIGTERM) here (main thread only; elsewhere Python allows no
    handler)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
        # SIGTERM (kill, systemd, docker stop) ends the run the same way, outputs finished
        signal.signal(signal.SIGTERM, _on_sigint)


def seen() -> bool:
    """Whether Ctrl-C was pressed since :func:`install` (or the last :func:`clear`)."""
    return bool(_seen)


def clear() -> None:
    _seen.clear()
