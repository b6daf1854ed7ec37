"""The fp16 landmark model in its worker process (real model, real child process): the same
outputs as in-process, the GIL free while it computes, clear errors, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.landmark_worker import ProgressCounter, sample_crops
from realtime.detect.landmark_worker import LandmarkWorker, LandmarkWorkerError, _Fp16Landmarks
from realtime.detect.litert_models import (
    fp16_worker,
    mediapipe_model_dir,
    model_path,
)
from realtime.detect.scheduled import ScheduledDetector, ScheduledDetectorConfig
from realtime.engine.gil import switch_interval
from realtime.errors import ModelFileError

ROOT = Path(__file__).resolve().parents[1]
SHM = Path("/dev/shm")


@pytest.fixture(scope="module")
def path() -> Path:
    """The full landmark model; skips the module on a CPU without native fp16."""
    path = model_path(mediapipe_model_dir(), "landmark", "full")
    try:
        _Fp16Landmarks(path, 1, 1)
    except (RuntimeError, ValueError) as exc:
        pytest.skip(f"no native fp16 arithmetic on this CPU (AVX512-FP16 / ARMv8.2): {exc}")
    return path


@pytest.fixture(scope="module")
def crops(path) -> np.ndarray:
    return sample_crops(4)  # the clip's two hands, twice


def _gone(pid: int) -> bool:
    """The process no longer exists (reaped) or is a zombie awaiting its parent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, polls: int = 100) -> bool:
    for _ in range(polls):  # bounded: a failing test ends, it does not hang
        if _gone(pid):
            return True
        time.sleep(0.1)
    return False


def test_worker_outputs_equal_in_process(path, crops):
    local = _Fp16Landmarks(path, 2, 2)
    with LandmarkWorker([(path, 2)], 2) as worker:
        for batch in (crops[:2], crops[1:3]):
            worker.inputs[:] = batch
            local.inputs[:] = batch
            ours, theirs = worker.run(), local.run()
            assert [a.shape for a in ours] == [(2, 63), (2, 1), (2, 1), (2, 63)]
            for a, b in zip(ours, theirs):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
            assert ours[1].min() > 0.5  # hands, really: the comparison is not of noise


def test_worker_call_leaves_the_gil_to_other_threads(path, crops):
    """A Python thread keeps counting while the worker computes; beside the in-process call
    it moves only in the gaps between the call's Python steps (one core each: the worker's
    model on one thread, the counter on the other)."""
    local = _Fp16Landmarks(path, 1, 4)
    local.inputs[:] = crops
    with LandmarkWorker([(path, 4)], 1) as worker, switch_interval(), \
            ProgressCounter() as counter:
        worker.inputs[:] = crops
        in_worker = in_process = 0
        for _ in range(5):
            in_worker += counter.during(worker.run)
            in_process += counter.during(local.run)
    assert in_worker > 3 * in_process


def test_child_that_dies_is_a_clear_error(path, crops):
    worker = LandmarkWorker([(path, 1)], 1)
    names = worker.shm_names
    worker.inputs[:] = crops[:1]
    worker.run()
    os.kill(worker.pid, signal.SIGKILL)
    # the send itself may already fail on the dead child's pipe (a race): either is clear
    with pytest.raises(LandmarkWorkerError, match="died (while running the model|before a call)"):
        worker.run()
    assert not any((SHM / name).exists() for name in names)  # cleaned up on the way out
    with pytest.raises(LandmarkWorkerError, match="closed"):
        worker.run()


def test_close_stops_the_child_and_frees_shared_memory(path):
    worker = LandmarkWorker([(path, 2)], 1)
    names, pid = worker.shm_names, worker.pid
    assert all((SHM / name).exists() for name in names) and worker.alive
    worker.close()
    assert not any((SHM / name).exists() for name in names)
    assert _gone(pid) and not worker.alive
    worker.close()  # twice is fine


def test_child_ignores_ctrl_c(path, crops):
    """Ctrl-C reaches the whole process group; the parent decides, the child keeps serving."""
    with LandmarkWorker([(path, 1)], 1) as worker:
        worker.inputs[:] = crops[:1]
        before = worker.run()
        os.kill(worker.pid, signal.SIGINT)
        after = worker.run()
        assert worker.alive
        np.testing.assert_array_equal(before[0], after[0])


def test_interrupted_parent_leaves_no_orphan_or_shared_memory(path):
    """A program stopped by Ctrl-C without closing anything: its worker and shared memory
    go with it."""
    script = (
        "import sys, time\n"
        "from realtime.detect.landmark_worker import LandmarkWorker\n"
        f"w = LandmarkWorker([({str(path)!r}, 1)], 1)\n"
        "print(w.pid, *w.shm_names, flush=True)\n"
        "time.sleep(60)\n")  # no __main__ guard: the child must not re-run this script
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        pid, *names = proc.stdout.readline().split()
        assert names, "the worker did not start"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) != 0  # KeyboardInterrupt
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_gone(int(pid))
    assert not any((SHM / name).exists() for name in names)


def test_child_tears_its_models_down_quietly(path, crops):
    """LiteRT logs every accelerator it destroys ("DestroyAccelerator"): the child's exit
    must not print those lines into the user's terminal."""
    script = (
        "from benchmarks.landmark_worker import sample_crops\n"
        "from realtime.detect.landmark_worker import LandmarkWorker\n"
        f"with LandmarkWorker([({str(path)!r}, 1), ({str(path)!r}, 2)], 1) as w:\n"
        "    w.inputs[:] = sample_crops(1)\n"
        "    w.run()\n"
        "print('ran', flush=True)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "ran" in done.stdout, done.stderr[-2000:]
    assert "DestroyAccelerator" not in done.stderr, done.stderr[-2000:]


def test_startup_failure_is_reported_not_hung(path, tmp_path):
    bad = tmp_path / "hand_landmark_full.tflite"
    bad.write_bytes(b"not a model" * 100)
    before = set(os.listdir(SHM))
    with pytest.raises(RuntimeError, match="model"):
        LandmarkWorker([(bad, 1)], 1)
    assert set(os.listdir(SHM)) <= before


def test_fp16_detector_runs_all_its_landmarks_in_one_worker_and_close_stops_it(path, crops):
    """One child process for every model of a detector (adaptive: full and lite, batch 1
    and 2), each slot running its own model; close stops it and frees its memory."""
    with pytest.raises(ModelFileError, match="not a readable"):  # checked in the parent first
        fp16_worker([(Path(__file__), 1)], 1)
    det = ScheduledDetector(ScheduledDetectorConfig(precision="fp16", landmarks="adaptive"))
    worker = det._worker
    assert isinstance(worker, LandmarkWorker) and worker.alive and det.precision == "fp16"
    slots = [m._fp16 for v in ("full", "lite") for m in det.landmark_models[v].values()]
    assert [s.index for s in slots] == [0, 1, 2, 3] and all(s.worker is worker for s in slots)
    assert worker.batches == [1, 2, 1, 2]
    outputs = []
    for s in slots:  # each slot runs its own model: full and lite differ, batch 1 = batch 2's first
        s.inputs[:] = crops[:len(s.inputs)]
        outputs.append(s.run())
    assert [o[0].shape for o in outputs] == [(1, 63), (2, 63), (1, 63), (2, 63)]
    np.testing.assert_allclose(outputs[0][0][0], outputs[1][0][0], atol=0.5)
    np.testing.assert_allclose(outputs[2][0][0], outputs[3][0][0], atol=0.5)
    assert np.abs(outputs[1][0] - outputs[3][0]).max() > 0.01  # full != lite
    names = worker.shm_names
    det.close()
    assert not worker.alive and _gone(worker.pid)
    assert not any((SHM / name).exists() for name in names)
    with pytest.raises(LandmarkWorkerError, match="closed"):
        slots[0].run()


def test_start_then_finish_equals_run(path, crops):
    """``LandmarkModel.start`` hands the crops to the worker and returns (the detector
    moves a flow-tracked hand meanwhile); its finisher gives exactly ``run``'s result, as
    a slot's ``submit`` then ``collect`` give ``run``'s."""
    from benchmarks.common import read_frames
    from benchmarks.landmark_worker import TWO_HANDS_FRAME
    from realtime.detect.litert_models import LandmarkModel
    from realtime.io.sample import SAMPLE_VIDEO
    from realtime.types import Frame

    frames = read_frames(SAMPLE_VIDEO, TWO_HANDS_FRAME + 1)
    with ScheduledDetector(ScheduledDetectorConfig(precision="fp16")) as det:
        for i in range(TWO_HANDS_FRAME - 5, TWO_HANDS_FRAME + 1):
            det.process(Frame(frames[i], i, i / 30))
        rects = [hand.rect for hand in det._hands]
        model: LandmarkModel = det.landmark_models["full"][2]
        image = frames[TWO_HANDS_FRAME]
        want = model.run(image, rects)
        finish = model.start(image, rects)
        assert callable(finish)
        got = finish()
        for a, b in zip(want, got, strict=True):
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y)
        slot = model._fp16
        slot.inputs[:] = crops[:2]
        reference = slot.run()
        slot.submit()
        out = slot.collect()
        for x, y in zip(reference, out, strict=True):
            np.testing.assert_array_equal(x, y)
