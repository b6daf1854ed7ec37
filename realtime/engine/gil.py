"""A shorter GIL switch interval while the pipeline runs: a woken stage gets the GIL sooner.

A stage thread that wakes up (its inbox got an item) needs the GIL; while another thread runs
Python code (the render or record branch), CPython lets it wait ``sys.getswitchinterval()``
(5 ms by default) before asking the holder to let go, once per hop (detect -> estimate ->
smooth -> sinks). 1 ms bounds that wait to about a millisecond per hop; the cost is more GIL
hand-overs between busy Python threads, a few microseconds each. Restored on exit.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

RUN_SWITCH_INTERVAL_S = 0.001


@contextlib.contextmanager
def switch_interval(seconds: float | None = RUN_SWITCH_INTERVAL_S) -> Iterator[None]:
    """Set ``sys.setswitchinterval(seconds)`` for the block (None: leave it as it is)."""
    if seconds is None:
        yield
        return
    if not seconds > 0:
        raise ValueError(f"switch interval must be > 0 seconds, got {seconds!r}")
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
