"""Plot one run's per-frame timeline (``realtime.engine.timeline``): where tail frames lose time.

Left: a window of the run around its slowest frame (wide enough to hold all of it), one row per stage thread; each frame's
work is a bar (its colour cycles so neighbouring frames stand apart; tail frames, at or above
the run's p95 capture -> published, are drawn red and outlined), and its wait in the stage's
inbox a thin line before the bar. Right: per stage, the mean wait and work of the tail frames
beside those of all frames, so the stage that eats the tail stands out. Used by
``benchmarks.pipeline``; ``plot_timeline`` only draws (the figures come from the spans).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common import save_figure
from realtime.engine.timeline import Spans, frame_latency, tail_breakdown, tail_frames

ROW_ORDER = ("capture", "detect", "estimate", "smooth", "sinks", "record", "render")
WINDOW_S = 0.5


def _rows(spans: Spans) -> list[str]:
    known = [n for n in ROW_ORDER if n in spans.names]
    return known + [n for n in spans.names if n not in known]


def plot_timeline(spans: Spans, path: Path, title: str, q: float = 95.0,
                  window_s: float = WINDOW_S) -> dict:
    """Draw ``spans`` into ``path``; returns the numbers drawn on the right (tail vs all)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames, seconds = frame_latency(spans)
    if len(frames) == 0:
        raise ValueError("the timeline has no published frame to plot")
    tail = tail_frames(spans, q)
    worst = int(frames[np.argmax(seconds)])
    released = float(np.nanmin(spans.ready[spans.frame == worst]))  # by capture
    window_s = max(window_s, 1.25 * float(seconds.max()) + 0.05)  # the whole slowest frame
    t0 = released - 0.15 * window_s
    rows = _rows(spans)
    tail_set = set(tail.tolist())

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.2),
                                 gridspec_kw={"width_ratios": [2.4, 1]})
    cycle = ("#4c72b0", "#55a868", "#8172b2", "#ccb974", "#64b5cd")
    for r, name in enumerate(rows):
        sel = spans.of(name) & (spans.end >= t0) & (spans.start <= t0 + window_s)
        for f, ready, start, end in zip(spans.frame[sel], spans.ready[sel], spans.start[sel],
                                        spans.end[sel]):
            is_tail = int(f) in tail_set
            x0, x1 = (start - t0) * 1e3, (end - t0) * 1e3
            ax.broken_barh([(x0, max(x1 - x0, 0.15))], (r - 0.35, 0.7),
                           facecolors="#d62728" if is_tail else cycle[int(f) % len(cycle)],
                           edgecolors="black" if is_tail else "none", linewidth=0.6)
            if np.isfinite(ready) and start > ready:
                ax.plot([(ready - t0) * 1e3, x0], [r, r], color="#d62728" if is_tail else
                        "0.55", lw=1.0)
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlim(0, window_s * 1e3)
    ax.set_xlabel("time (ms); bars: work on one frame, lines: waiting in the stage's inbox")
    ax.set_title(f"{title}: {window_s * 1e3:.0f} ms around the slowest frame "
                 f"(#{worst}, {seconds.max() * 1e3:.0f} ms); red: frames >= p{q:g}",
                 fontsize=9)

    everyone, tails = tail_breakdown(spans, frames), tail_breakdown(spans, tail)
    y = np.arange(len(rows))
    h = 0.38
    for off, parts, label, alpha in ((-h / 2, everyone, "all frames", 0.55),
                                     (h / 2, tails, f"frames >= p{q:g}", 1.0)):
        wait = np.array([parts.get(n, {}).get("wait_ms", 0.0) for n in rows])
        work = np.array([parts.get(n, {}).get("work_ms", 0.0) for n in rows])
        bx.barh(y + off, wait, h, color="0.6", alpha=alpha,
                label=f"wait, {label}")
        bx.barh(y + off, work, h, left=wait, color="#d62728" if alpha == 1.0 else "#4c72b0",
                alpha=alpha, label=f"work, {label}")
    bx.set_yticks(y, rows)
    bx.invert_yaxis()
    bx.set_xlabel("mean ms per frame")
    bx.set_title("where the time goes", fontsize=9)
    bx.legend(fontsize=7, loc="upper right")
    save_figure(fig, path)
    return {"tail_frames": len(tail), "frames": len(frames), "all": everyone, "tail": tails}
