"""Hostile inputs against every surface where bytes become records: crashes, hangs, memory.

Each surface's cases live in ``benchmarks/hostile_cases/`` (``network``: the fusion node,
the topology port, the client decoder, ``handmesh-stream listen``; ``files``: hands.jsonl
and .hmstream replays, appending to a damaged stream file; ``cli``: the demo's calibration
files, images, manifests, key files, output folders and signals). Every case runs against a
real process (real sockets on 127.0.0.1, real files) with a bounded timeout, and counts as

- a **crash** when the attacked process dies or prints a traceback instead of a one-line
  error (exit 2) or skipping the input;
- a **hang** when it runs past its timeout;

and each surface reports its **peak memory growth**: the attacked process's peak RSS
(``VmHWM``) minus the same process idle or on a normal input. Targets (issue #15): 0 crashes,
0 hangs, growth ≤ 100 MB per surface, and the fusion node's fused-frame rate for the
legitimate cameras under a rogue peer's flood ≥ 0.95 of the rate without it.

``python -m benchmarks.hostile [--quick]``: prints a table, then one JSON object (last line).
"""

from __future__ import annotations

import argparse
import importlib
import json
import time

SUITES = ("network", "files", "cli")
GROWTH_TARGET_MB = 100.0
FLOOD_RATE_TARGET = 0.95


def run_suites(quick: bool) -> tuple[list[dict], dict[str, str]]:
    """Every surface's result dicts, and the suites that could not run (name -> why)."""
    surfaces: list[dict] = []
    missing: dict[str, str] = {}
    for name in SUITES:
        try:
            module = importlib.import_module(f"benchmarks.hostile_cases.{name}")
        except ImportError as exc:
            missing[name] = str(exc)
            continue
        t0 = time.monotonic()
        for row in module.run(quick=quick):
            row.setdefault("suite", name)
            row["seconds"] = round(time.monotonic() - t0, 1)
            surfaces.append(row)
    return surfaces, missing


def summarise(surfaces: list[dict]) -> dict:
    """Totals and the targets, from the per-surface rows."""
    growth = [float(s.get("peak_growth_mb") or 0.0) for s in surfaces]
    rates = [s["fused_rate_ratio_under_flood"] for s in surfaces
             if s.get("fused_rate_ratio_under_flood") is not None]
    out = {
        "surfaces": len(surfaces),
        "cases": int(sum(s.get("cases", 0) for s in surfaces)),
        "crashes": int(sum(s.get("crashes", 0) for s in surfaces)),
        "hangs": int(sum(s.get("hangs", 0) for s in surfaces)),
        "max_peak_growth_mb": round(max(growth, default=0.0), 1),
        "fused_rate_ratio_under_flood": round(min(rates), 3) if rates else None,
    }
    out["meets_targets"] = bool(
        out["crashes"] == 0 and out["hangs"] == 0
        and out["max_peak_growth_mb"] <= GROWTH_TARGET_MB
        and (not rates or out["fused_rate_ratio_under_flood"] >= FLOOD_RATE_TARGET))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and smaller cases")
    args = parser.parse_args()

    surfaces, missing = run_suites(args.quick)
    print(f"{'surface':<24} {'cases':>6} {'crashes':>8} {'hangs':>6} {'peak growth MB':>15}")
    for s in surfaces:
        print(f"{s['surface']:<24} {s.get('cases', 0):>6} {s.get('crashes', 0):>8} "
              f"{s.get('hangs', 0):>6} {float(s.get('peak_growth_mb') or 0):>15.1f}")
        extra = {k: v for k, v in s.items() if k not in
                 ("surface", "suite", "cases", "crashes", "hangs", "peak_growth_mb",
                  "seconds", "details")}
        if extra:
            print(f"{'':<24} {json.dumps(extra)}")
        for detail in s.get("details") or []:
            print(f"{'':<26}! {detail}")
    for name, why in missing.items():
        print(f"suite {name}: not run ({why})")
    totals = summarise(surfaces)
    totals["meets_targets"] = totals["meets_targets"] and not missing
    print(f"total: {totals['cases']} cases, {totals['crashes']} crashes, {totals['hangs']} hangs, "
          f"max peak growth {totals['max_peak_growth_mb']} MB (target ≤ {GROWTH_TARGET_MB:g}), "
          f"fusion rate under flood {totals['fused_rate_ratio_under_flood']} "
          f"(target ≥ {FLOOD_RATE_TARGET})")
    per_surface = {s["surface"]: {k: s.get(k) for k in ("cases", "crashes", "hangs",
                                                        "peak_growth_mb")}
                   for s in surfaces}
    print(json.dumps({"benchmark": "hostile", "quick": args.quick, **totals,
                      "per_surface": per_surface, "missing_suites": sorted(missing)}))


if __name__ == "__main__":
    main()
