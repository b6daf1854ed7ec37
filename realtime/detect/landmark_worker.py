"""The fp16 landmark model in a worker process, so that its call does not hold our GIL.

LiteRT's ``CompiledModel.run_by_index`` (the only API that takes XNNPACK's FORCE_FP16 flag)
keeps the GIL while it computes, which stalls every other Python thread of the pipeline for
the whole call. Here a child process (``spawn``) runs :class:`_Fp16Landmarks`; the crops go in
and the four outputs come out through shared memory, one byte goes each way on a pipe per call,
and the parent waits in ``poll`` (GIL released), checking now and then that the child lives.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import signal
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from realtime.errors import DetectorError

INPUT = 224  # hand_rois.LANDMARK_INPUT (not imported: the child stays light)
OUTPUTS = (63, 1, 1, 63)  # landmarks, hand flag, handedness, world landmarks per crop
_RUN, _PING, _QUIT, _OK, _FAILED = b"r", b"p", b"q", b"k", b"E"
_START_LOCK = threading.Lock()  # one start at a time: each hides __main__'s origin briefly


class LandmarkWorkerError(DetectorError):
    """The fp16 landmark worker process died, hung, failed, or was closed."""


@dataclass(frozen=True)
class LandmarkWorkerConfig:
    """Waits of the parent: a dead or stuck child is an error after these, never a hang."""

    start_timeout_s: float = 120.0  # spawn + imports + building the model
    call_timeout_s: float = 30.0  # one batch (~12 ms quiet; far more under heavy load)
    alive_check_s: float = 0.25  # while waiting, how often the child's liveness is checked


def _serve(conn, path: str, num_threads: int, batch: int, in_name: str,
           out_name: str) -> None:
    """The child: build the model on the shared input, then one run per ``_RUN`` message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        from realtime.detect.litert_models import _Fp16Landmarks

        shm_in = shared_memory.SharedMemory(name=in_name)
        shm_out = shared_memory.SharedMemory(name=out_name)
        model = _Fp16Landmarks(Path(path), num_threads, batch)
        model.inputs = np.ndarray((batch, INPUT, INPUT, 3), np.float32, buffer=shm_in.buf)
        outputs = np.ndarray((batch, sum(OUTPUTS)), np.float32, buffer=shm_out.buf)
    except Exception as exc:  # noqa: BLE001 - every start-up failure goes to the parent
        conn.send_bytes(_FAILED + f"{type(exc).__name__}: {exc}".encode())
        return
    conn.send_bytes(_OK)
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):  # the parent is gone: nothing left to serve
            break
        if message == _PING:
            conn.send_bytes(_OK)
            continue
        if message != _RUN:
            break
        try:
            np.concatenate(model.run(), axis=1, out=outputs)
        except Exception as exc:  # noqa: BLE001
            conn.send_bytes(_FAILED + f"{type(exc).__name__}: {exc}".encode())
            continue
        conn.send_bytes(_OK)
    del model, outputs
    conn.close()


def _shutdown(proc, conn, memories: list) -> None:
    """Stop the child (ask, then terminate, then kill) and unlink the shared memory."""
    try:
        conn.send_bytes(_QUIT)
    except (OSError, ValueError):
        pass
    if proc.pid is not None:  # started
        proc.join(2.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)
    conn.close()
    for shm in memories:
        try:
            shm.close()
        except BufferError:  # a view still lives: the mapping goes with it, the name now
            pass
        try:
            shm.unlink()
        except FileNotFoundError:
            pass


class LandmarkWorker:
    """``_Fp16Landmarks`` in a child process, with the same face: write the crops into
    ``inputs`` (shared memory), call ``run()`` for the four ``(batch, k)`` outputs.
    ``close()`` (or garbage collection, or interpreter exit) stops the child and frees the
    shared memory; the child is a daemon that ignores SIGINT and quits when the parent's
    end of the pipe closes, so Ctrl-C or a killed parent leaves no orphan."""

    def __init__(self, path: Path, num_threads: int, batch: int,
                 config: LandmarkWorkerConfig = LandmarkWorkerConfig()) -> None:
        self.batch = batch
        self.config = config
        ctx = mp.get_context("spawn")
        in_shape, out_shape = (batch, INPUT, INPUT, 3), (batch, sum(OUTPUTS))
        shm_in = shared_memory.SharedMemory(create=True, size=4 * int(np.prod(in_shape)))
        try:
            shm_out = shared_memory.SharedMemory(create=True, size=4 * int(np.prod(out_shape)))
        except BaseException:
            shm_in.close()
            shm_in.unlink()
            raise
        self.inputs = np.ndarray(in_shape, np.float32, buffer=shm_in.buf)
        self._outputs = np.ndarray(out_shape, np.float32, buffer=shm_out.buf)
        self.shm_names = (shm_in.name, shm_out.name)
        conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, name="fp16-landmarks", daemon=True,
                                 args=(child_conn, str(path), num_threads, batch,
                                       shm_in.name, shm_out.name))
        self._conn = conn
        self.pid: int | None = None
        self._cpu_clock: int | None = None
        self._finalizer = weakref.finalize(self, _shutdown, self._proc, conn,
                                           [shm_in, shm_out])
        try:
            self._start()
        finally:
            child_conn.close()  # ours closed: the child's death reads as EOF here
        self.pid = self._proc.pid
        try:
            reply = self._wait(config.start_timeout_s, "starting")
        except BaseException:
            self.close()
            raise
        if reply != _OK:
            self.close()
            # the model's own error (e.g. no native fp16 on this CPU), for the caller to word
            raise RuntimeError(reply[len(_FAILED):].decode(errors="replace"))

    def _start(self) -> None:
        """Start the child with SIGINT ignored from its first instruction (a spawned Python
        keeps an inherited SIG_IGN), so a Ctrl-C during its imports cannot kill it halfway.

        The child needs nothing from ``__main__``, so spawn is kept from re-running the
        parent's main script or module there: a script without the ``if __name__ ==
        "__main__"`` guard would otherwise start itself again (and spawn fails), and a
        benchmark's imports would slow the start."""
        main = sys.modules["__main__"]
        in_main = threading.current_thread() is threading.main_thread()
        with _START_LOCK:
            hidden = {k: main.__dict__.pop(k) for k in ("__spec__", "__file__")
                      if k in main.__dict__}
            main.__spec__ = None  # spawn reads it (a script's is None too)
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
            try:
                self._proc.start()
            finally:
                del main.__spec__
                main.__dict__.update(hidden)
                if previous is not None:  # (None: a handler not set from Python)
                    signal.signal(signal.SIGINT, previous)

    def _wait(self, timeout_s: float, doing: str) -> bytes:
        """The child's reply, waiting without the GIL; a dead or silent child raises."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if self._conn.poll(max(0.0, min(self.config.alive_check_s, left))):
                try:
                    return self._conn.recv_bytes()
                except (EOFError, OSError):
                    self._broken(f"died while {doing}")
            if not self._proc.is_alive():
                self._broken(f"died while {doing}")
            if left <= 0:
                self._broken(f"did not answer within {timeout_s:g} s while {doing}")

    def _broken(self, what: str) -> None:
        self._proc.join(0.5)
        code = self._proc.exitcode
        self.close()
        raise LandmarkWorkerError(
            f"the fp16 landmark worker process (pid {self.pid}) "
            f"{what} (exit code {code}); the detector cannot go on: restart it, or use "
            "precision='fp32'")

    def run(self) -> list[np.ndarray]:
        """The four outputs (landmarks, hand flag, handedness, world), ``(batch, k)`` each,
        for the crops now in ``inputs``: copies, since the next call overwrites them."""
        if not self._finalizer.alive:
            raise LandmarkWorkerError("the fp16 landmark worker is closed")
        try:
            self._conn.send_bytes(_RUN)
        except OSError:
            self._broken("died before a call")
        reply = self._wait(self.config.call_timeout_s, "running the model")
        if reply != _OK:
            raise LandmarkWorkerError("the fp16 landmark worker failed: "
                                      + reply[len(_FAILED):].decode(errors="replace"))
        out = self._outputs.copy()
        bounds = np.cumsum((0, *OUTPUTS))
        return [out[:, a:b] for a, b in itertools.pairwise(bounds)]

    def ping(self) -> None:
        """One round trip without the model: the per-call overhead (benchmarks)."""
        if not self._finalizer.alive:
            raise LandmarkWorkerError("the fp16 landmark worker is closed")
        self._conn.send_bytes(_PING)
        self._wait(self.config.call_timeout_s, "answering a ping")

    def cpu_seconds(self) -> float:
        """CPU time the child has used so far (all its threads), which the parent's
        ``time.process_time()`` does not count: for benchmarks of the whole detector's CPU."""
        if self._cpu_clock is None:
            import ctypes

            clock = ctypes.c_int()
            err = ctypes.CDLL(None, use_errno=True).clock_getcpuclockid(self.pid,
                                                                       ctypes.byref(clock))
            if err:
                raise OSError(err, f"clock_getcpuclockid({self.pid}) failed")
            self._cpu_clock = clock.value
        return time.clock_gettime(self._cpu_clock)

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self._proc.is_alive()

    def close(self) -> None:
        """Stop the child and unlink the shared memory; safe to call twice."""
        self.inputs = self._outputs = None  # our views, so the mappings can close
        self._finalizer()

    def __enter__(self) -> LandmarkWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
