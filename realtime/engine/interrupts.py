"""Ctrl-C and SIGTERM that leave a mark, for the command-line entry points.

Python turns Ctrl-C into ``KeyboardInterrupt``, but one that lands inside a native
module's import surfaces as ``ImportError: initialization failed`` (or as our own "not
installed" error around that import), and some libraries swallow it outright (protobuf's
import probe). The handler here raises ``KeyboardInterrupt`` as Python's does and also
records which signal arrived, so the caller can still say "interrupted" and exit with
:func:`exit_code`.

SIGTERM (systemd, Docker, a process manager, ``kill``) takes the same path as Ctrl-C:
without a handler Python dies on the spot, leaving an unfinished overlay.mp4 and no
stats.json. A second SIGTERM while the run is finishing is ignored (the outputs are being
written; a manager that cannot wait sends SIGKILL), a second Ctrl-C interrupts as usual.
Exit codes: 130 after Ctrl-C, 143 after SIGTERM (128 + the signal number, what a shell
reports for a process killed by it).

Standard library only: ``run_demo.py`` installs it before the heavy imports.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: The signals that end a run like Ctrl-C does.
SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
_seen: list[int] = []  # signal numbers, in arrival order
_deferring: list[bool] = [False]


def _on_signal(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    repeat = bool(_seen)
    _seen.append(signum)
    if _deferring[0] or (signum == signal.SIGTERM and repeat):
        return  # the run is already finishing: let it write its files
    raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside, a signal is only recorded (:func:`seen`), not raised: for closing and
    renaming the outputs, which a KeyboardInterrupt halfway would leave unfinished."""
    previous, _deferring[0] = _deferring[0], True
    try:
        yield
    finally:
        _deferring[0] = previous


def install() -> None:
    """Handle Ctrl-C and SIGTERM here (main thread only; elsewhere Python allows none)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _on_signal)


def seen() -> bool:
    """Whether Ctrl-C or SIGTERM arrived since :func:`install` (or the last :func:`clear`)."""
    return bool(_seen)


def first() -> int | None:
    """The first signal that arrived (``signal.SIGINT`` or ``signal.SIGTERM``), or None."""
    return _seen[0] if _seen else None


def name(signum: int | None) -> str:
    """``"SIGTERM"`` for a signal number; ``"SIGINT"`` when there was none (a plain
    ``KeyboardInterrupt``, as raised by Ctrl-C without our handler)."""
    return signal.Signals(signum).name if signum else "SIGINT"


def exit_code(signum: int | None = None) -> int:
    """128 + the signal: 130 for Ctrl-C (and a plain ``KeyboardInterrupt``), 143 for
    SIGTERM; ``signum`` defaults to :func:`first`."""
    signum = signum if signum is not None else first()
    return 128 + int(signum or signal.SIGINT)


def clear() -> None:
    _seen.clear()
