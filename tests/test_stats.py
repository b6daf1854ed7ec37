"""Stats for the loop: percentiles against NumPy, windowed rates, atomic JSON, the printer."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest

from realtime.engine.stats import LatencyRecorder, StatsPrinter, format_line, stage

TIMEOUT_S = 2.0  # generous: only guards against hangs
MS_TOL = 1e-9  # percentiles are computed by NumPy itself: agreement is exact up to rounding


class FakeClock:
    """A monotonic clock the test advances by hand, so rates are exact."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_summary_matches_numpy_percentiles():
    rng = np.random.default_rng(0)
    seconds = rng.uniform(0.001, 0.080, size=997)
    rec = LatencyRecorder()
    for s in seconds:
        rec.record("detect", s)
    got = rec.summary()["detect"]
    ms = seconds * 1e3
    assert got["count"] == seconds.size
    assert got["p50_ms"] == pytest.approx(np.percentile(ms, 50), abs=MS_TOL)
    assert got["p95_ms"] == pytest.approx(np.percentile(ms, 95), abs=MS_TOL)
    assert got["max_ms"] == pytest.approx(ms.max(), abs=MS_TOL)
    assert got["mean_ms"] == pytest.approx(ms.mean(), abs=MS_TOL)


def test_ring_buffer_bounds_percentiles_but_totals_cover_run():
    rec = LatencyRecorder(capacity=10)
    rec.record("e2e", 1.0)  # old outlier: falls out of the ring, stays in max and count
    for _ in range(10):
        rec.record("e2e", 0.010)
    got = rec.summary()["e2e"]
    assert got["count"] == 11
    assert got["p95_ms"] == pytest.approx(10.0)
    assert got["max_ms"] == pytest.approx(1000.0)


def test_count_and_unknown_names():
    rec = LatencyRecorder()
    assert rec.count("nothing") == 0 and rec.rate("nothing") == 0.0
    rec.record("smooth", 0.0001)
    assert rec.count("smooth") == 1
    with pytest.raises(ValueError, match="finite"):
        rec.record("smooth", float("nan"))


def test_rate_over_sliding_window():
    clock = FakeClock()
    rec = LatencyRecorder(clock=clock)
    for _ in range(300):  # 30 events per second for 10 s
        rec.mark("capture")
        clock.t += 1 / 30
    assert rec.rate("capture", window_s=5) == pytest.approx(30.0, rel=0.01)
    clock.t += 2.5  # source stalls: half the window is now empty
    assert rec.rate("capture", window_s=5) == pytest.approx(15.0, rel=0.02)
    clock.t += 10
    assert rec.rate("capture", window_s=5) == 0.0


def test_rate_before_a_full_window_is_measured_from_first_event():
    clock = FakeClock()
    rec = LatencyRecorder(clock=clock)
    for _ in range(11):  # 10 intervals of 0.1 s
        rec.record("detect", 0.02)
        clock.t += 0.1
    clock.t -= 0.1
    assert rec.rate("detect", window_s=5) == pytest.approx(10.0)


def test_drops_and_snapshot_is_json():
    rec = LatencyRecorder()
    rec.mark("capture")
    rec.record("detect", 0.025)
    rec.drop("detect", 2)
    rec.drop("detect")
    assert rec.dropped("detect") == 3 and rec.dropped() == 3
    snap = rec.snapshot()
    assert json.loads(json.dumps(snap, allow_nan=False)) == snap
    assert snap["dropped"] == {"detect": 3} and snap["dropped_total"] == 3
    assert snap["stages"]["capture"]["p50_ms"] is None  # events only, no durations
    assert snap["stages"]["detect"]["p50_ms"] == pytest.approx(25.0)
    assert list(snap["stages"]) == ["capture", "detect"]  # first-recorded order


def test_to_json_writes_valid_file_atomically(tmp_path):
    rec = LatencyRecorder()
    rec.record("e2e", 0.041)
    target = tmp_path / "stats.json"
    target.write_text("old")
    assert rec.to_json(target) == target
    data = json.loads(target.read_text())
    assert data["stages"]["e2e"]["count"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"], "temporary file left behind"


def test_to_json_failure_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    rec = LatencyRecorder()
    rec.record("e2e", 0.041)
    target = tmp_path / "stats.json"
    target.write_text('{"old": true}')

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("realtime.engine.stats.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        rec.to_json(target)
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]


def test_stage_context_manager_records_duration():
    rec = LatencyRecorder()
    with stage(rec, "regress"):
        time.sleep(0.002)
    assert rec.count("regress") == 1
    assert rec.summary()["regress"]["p50_ms"] >= 1.0
    with pytest.raises(RuntimeError), stage(rec, "regress"):
        raise RuntimeError("boom")
    assert rec.count("regress") == 1, "a failed block is not recorded"


def test_format_line():
    snap = {
        "stages": {
            "capture": {"p50_ms": None, "p95_ms": None, "rate_hz": 30.0},
            "detect": {"p50_ms": 25.2, "p95_ms": 31.4, "rate_hz": 29.9},
            "smooth": {"p50_ms": 0.1, "p95_ms": 0.12, "rate_hz": 29.9},
            "e2e": {"p50_ms": 41.0, "p95_ms": 55.0, "rate_hz": 29.9},
        },
        "dropped_total": 3,
    }
    assert format_line(snap) == (
        "capture 30.0 fps | detect p50 25 p95 31 ms | smooth 0.1 ms | e2e p50 41 p95 55 ms"
        " | dropped 3"
    )
    rec = LatencyRecorder()
    rec.record("detect", 0.005)
    assert format_line(rec.snapshot()) == "detect p50 5.0 p95 5.0 ms | dropped 0"


def test_stats_printer_prints_and_stops_within_a_second():
    rec = LatencyRecorder()
    rec.record("detect", 0.02)
    stream = io.StringIO()
    printer = StatsPrinter(rec, stream=stream, interval_s=0.01)
    printer.start()
    deadline = time.monotonic() + TIMEOUT_S
    while printer.lines_printed < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    t0 = time.monotonic()
    printer.stop()
    assert not printer.is_alive()
    assert time.monotonic() - t0 < 1.0
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2 and all("detect p50 20 p95 20 ms" in line for line in lines)


def test_stats_printer_stop_is_prompt_with_long_interval():
    printer = StatsPrinter(LatencyRecorder(), stream=io.StringIO(), interval_s=60.0)
    printer.start()
    t0 = time.monotonic()
    printer.stop()
    assert not printer.is_alive() and time.monotonic() - t0 < 1.0


def test_concurrent_recording_counts_add_up():
    rec = LatencyRecorder(capacity=100)
    n_threads, per_thread = 4, 2000
    go = threading.Event()

    def work(k: int) -> None:
        go.wait(TIMEOUT_S)
        for i in range(per_thread):
            rec.record("shared", 0.001)
            rec.record(f"own{k}", 0.001 * (i % 7))
            rec.drop("shared")
            if i % 100 == 0:
                rec.snapshot()  # readers race writers too

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(n_threads)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(TIMEOUT_S * 5)
        assert not t.is_alive()
    assert rec.count("shared") == n_threads * per_thread
    assert rec.dropped("shared") == n_threads * per_thread
    assert all(rec.count(f"own{k}") == per_thread for k in range(n_threads))
    assert rec.summary()["shared"]["count"] == n_threads * per_thread


def test_p99_and_queue_wait_percentiles_match_numpy():
    rng = np.random.default_rng(1)
    service = rng.uniform(0.002, 0.030, size=503)
    wait = rng.exponential(0.004, size=503)
    rec = LatencyRecorder()
    for s, w in zip(service, wait):
        rec.record("detect", s, wait_s=w)
    got = rec.summary()["detect"]
    for prefix, seconds in (("", service), ("wait_", wait)):
        ms = seconds * 1e3
        for q in (50, 95, 99):
            assert got[f"{prefix}p{q}_ms"] == pytest.approx(np.percentile(ms, q), abs=MS_TOL)
        assert got[f"{prefix}max_ms"] == pytest.approx(ms.max(), abs=MS_TOL)
        assert got[f"{prefix}mean_ms"] == pytest.approx(ms.mean(), abs=MS_TOL)


def test_wait_fields_only_for_stages_that_record_waits_and_survive_json():
    rec = LatencyRecorder()
    rec.record("end_to_end", 0.040)
    rec.record("smooth", 0.0001, wait_s=-1e-7)  # a clock step backwards reads as no wait
    snap = json.loads(json.dumps(rec.snapshot(), allow_nan=False))
    assert "wait_p95_ms" not in snap["stages"]["end_to_end"]
    assert snap["stages"]["end_to_end"]["p99_ms"] == pytest.approx(40.0)
    assert snap["stages"]["smooth"]["wait_p99_ms"] == 0.0
    with pytest.raises(ValueError, match="wait"):
        rec.record("smooth", 0.001, wait_s=float("inf"))


def test_wait_ring_is_bounded_like_the_durations():
    rec = LatencyRecorder(capacity=4)
    rec.record("render", 0.001, wait_s=2.0)  # falls out of the ring, stays in wait_max_ms
    for _ in range(4):
        rec.record("render", 0.001, wait_s=0.003)
    got = rec.summary()["render"]
    assert got["wait_p99_ms"] == pytest.approx(3.0)
    assert got["wait_max_ms"] == pytest.approx(2000.0)


def test_skips_are_counted_apart_from_drops():
    rec = LatencyRecorder()
    assert rec.snapshot()["skipped"] == {} and rec.skipped() == 0
    rec.skip("render")
    rec.skip("render", 2)
    rec.drop("dropped_before_detect")
    snap = rec.snapshot()
    assert snap["skipped"] == {"render": 3} and rec.skipped("render") == 3
    assert snap["dropped"] == {"dropped_before_detect": 1} and snap["dropped_total"] == 1
    assert format_line(snap).endswith("dropped 1 | render 3")
    json.dumps(snap)
    with pytest.raises(ValueError, match="skipped"):
        rec.skip("render", -1)
