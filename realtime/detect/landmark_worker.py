"""The fp16 landmark model in a worker process, so that its call does not hold our GIL.

LiteRT's ``CompiledModel.run_by_index`` (the only API that takes XNNPACK's FORCE_FP16 flag)
keeps the GIL while it computes, which stalls every other Python thread of the pipeline for
the whole call. Here a child process (``spawn``) runs :class:`_Fp16Landmarks`; the crops go in
and the four outputs come out through shared memory, two bytes go in and one comes out on a
pipe per call, and the parent waits in ``poll`` (GIL released), checking now and then that the
child lives. One child serves all of a detector's landmark models (each variant and batch
size): a detector starts one process, not four (~1.3 s and ~100 MB each).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from realtime.errors import DetectorError

INPUT = 224  # hand_rois.LANDMARK_INPUT (not imported: the child stays light, no numba/cv2)
OUTPUTS = (63, 1, 1, 63)  # landmarks, hand flag, handedness, world landmarks per crop
_RUN, _PING, _QUIT, _OK, _FAILED = b"r", b"p", b"q", b"k", b"E"
_START_LOCK = threading.Lock()  # one start at a time: each hides __main__'s origin briefly


XNNPACK_FORCE_FP16 = 4  # TFLITE_XNNPACK_DELEGATE_FLAG_FORCE_FP16


class _Fp16Landmarks:
    """The landmark model run by LiteRT's CompiledModel with XNNPACK forced to half-precision
    arithmetic (the weights are already fp16 in the wheel's file; activations become fp16
    too). Only CPUs with native fp16 arithmetic (x86 AVX512-FP16, ARMv8.2) run it; creation
    fails elsewhere. Our crops are written into ``inputs``, copied into LiteRT's buffer by
    ``run`` (~0.6 MB: this API registers no host buffer of the input's shape)."""

    def __init__(self, path: Path, num_threads: int, batch: int) -> None:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import Options

        n = INPUT
        options = Options(hardware_accelerators=HardwareAccelerator.CPU,
                          cpu_options=CpuOptions(num_threads=num_threads,
                                                 xnnpack_flags=XNNPACK_FORCE_FP16))
        model = CompiledModel.from_file(str(path), options=options)
        if batch != 1:
            model.resize_input_tensor(0, [batch, n, n, 3], strict=False)
        self.inputs = np.zeros((batch, n, n, 3), np.float32)
        self._in = model.create_input_buffers(0)
        self._out = model.create_output_buffers(0)
        self._sizes = [batch * k for k in OUTPUTS]
        self._model = model
        self.run()  # fails here, not on frame one, if the CPU cannot run it

    def run(self) -> list[np.ndarray]:
        """The four outputs (landmarks, hand flag, handedness, world), ``(batch, k)`` each."""
        self._in[0].write(self.inputs)
        self._model.run_by_index(0, self._in, self._out)
        batch = self.inputs.shape[0]
        return [b.read(size, np.float32).reshape(batch, -1)
                for b, size in zip(self._out, self._sizes)]


class LandmarkWorkerError(DetectorError):
    """The fp16 landmark worker process died, hung, failed, or was closed."""


@dataclass(frozen=True)
class LandmarkWorkerConfig:
    """Waits of the parent: a dead or stuck child is an error after these, never a hang."""

    start_timeout_s: float = 120.0  # spawn + imports + building the model
    call_timeout_s: float = 30.0  # one batch (~12 ms quiet; far more under heavy load)
    alive_check_s: float = 0.25  # while waiting, how often the child's liveness is checked


def _quiet_stderr():
    """LiteRT prints harmless "could not load … plugin" lines on stderr while it builds a
    model (no NPU, no OpenVINO here): the child builds its models with stderr closed; a
    real failure still reaches the parent as the exception's text."""
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    return saved


def _serve(conn, specs: list[tuple[str, int]], num_threads: int, in_name: str,
           out_name: str) -> None:
    """The child: build every model on the shared memory, then run model ``i`` per
    ``_RUN + bytes([i])`` message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    saved = _quiet_stderr()
    try:
        shm_in = shared_memory.SharedMemory(name=in_name)
        shm_out = shared_memory.SharedMemory(name=out_name)
        top = max(batch for _, batch in specs)
        inputs = np.ndarray((top, INPUT, INPUT, 3), np.float32, buffer=shm_in.buf)
        outputs = np.ndarray((top, sum(OUTPUTS)), np.float32, buffer=shm_out.buf)
        models = []
        for path, batch in specs:
            model = _Fp16Landmarks(Path(path), num_threads, batch)
            model.inputs = inputs[:batch]
            models.append(model)
    except Exception as exc:  # noqa: BLE001 - every start-up failure goes to the parent
        conn.send_bytes(_FAILED + f"{type(exc).__name__}: {exc}".encode())
        return
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    conn.send_bytes(_OK)
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):  # the parent is gone: nothing left to serve
            break
        if message == _PING:
            conn.send_bytes(_OK)
            continue
        if len(message) != 2 or message[:1] != _RUN or message[1] >= len(models):
            break
        model = models[message[1]]
        try:
            np.concatenate(model.run(), axis=1, out=outputs[:len(model.inputs)])
        except Exception as exc:  # noqa: BLE001
            conn.send_bytes(_FAILED + f"{type(exc).__name__}: {exc}".encode())
            continue
        conn.send_bytes(_OK)
    _quiet_stderr()  # tearing the models down, LiteRT logs each accelerator it destroys
    del models, model, inputs, outputs
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
    """``_Fp16Landmarks`` models in one child process. ``models``: ``(path, batch)`` per
    model; ``slot(i)`` has model ``i``'s face (write the crops into its ``inputs``, call its
    ``run()`` for the four ``(batch, k)`` outputs); ``inputs`` and ``run()`` here are model
    0's. The models share one input and one output area, so one call at a time (a detector
    runs its landmark calls one after another). ``close()`` (or garbage collection, or
    interpreter exit) stops the child and frees the shared memory; the child is a daemon
    that ignores SIGINT and quits when the parent's end of the pipe closes, so Ctrl-C or a
    killed parent leaves no orphan."""

    def __init__(self, models: Sequence[tuple[Path, int]], num_threads: int,
                 config: LandmarkWorkerConfig = LandmarkWorkerConfig()) -> None:
        specs = [(str(path), int(batch)) for path, batch in models]
        if not 1 <= len(specs) <= 255 or min(b for _, b in specs) < 1:
            raise ValueError(f"models must be 1-255 (path, batch >= 1) pairs, got {models!r}")
        self.batches = [b for _, b in specs]
        self.batch = self.batches[0]
        self.config = config
        ctx = mp.get_context("spawn")
        top = max(self.batches)
        in_shape, out_shape = (top, INPUT, INPUT, 3), (top, sum(OUTPUTS))
        shm_in = shared_memory.SharedMemory(create=True, size=4 * int(np.prod(in_shape)))
        try:
            shm_out = shared_memory.SharedMemory(create=True, size=4 * int(np.prod(out_shape)))
        except BaseException:
            shm_in.close()
            shm_in.unlink()
            raise
        self._inputs = np.ndarray(in_shape, np.float32, buffer=shm_in.buf)
        self._outputs = np.ndarray(out_shape, np.float32, buffer=shm_out.buf)
        self.shm_names = (shm_in.name, shm_out.name)
        conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, name="fp16-landmarks", daemon=True,
                                 args=(child_conn, specs, num_threads,
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

    @property
    def inputs(self) -> np.ndarray | None:
        """Model 0's input crops ``(batch, 224, 224, 3)`` (shared memory)."""
        return None if self._inputs is None else self._inputs[:self.batch]

    def slot(self, index: int) -> WorkerSlot:
        """Model ``index`` of this worker, with a model's face (``inputs``, ``run()``)."""
        if not 0 <= index < len(self.batches):
            raise IndexError(f"this worker has {len(self.batches)} models, not {index + 1}")
        return WorkerSlot(self, index)

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

    def run(self, index: int = 0) -> list[np.ndarray]:
        """The four outputs (landmarks, hand flag, handedness, world), ``(batch, k)`` each,
        of model ``index`` for the crops now in its inputs: copies, since the next call
        overwrites them."""
        self.submit(index)
        return self.collect(index)

    def submit(self, index: int = 0) -> None:
        """Start model ``index`` on the crops now in its inputs, without waiting: the
        caller works meanwhile, then :meth:`collect` (once, before the next ``submit``)."""
        if not self._finalizer.alive:
            raise LandmarkWorkerError("the fp16 landmark worker is closed")
        try:
            self._conn.send_bytes(_RUN + bytes([index]))
        except OSError:
            self._broken("died before a call")

    def collect(self, index: int = 0) -> list[np.ndarray]:
        """The outputs of the call :meth:`submit` started (as :meth:`run`'s)."""
        if not self._finalizer.alive:
            raise LandmarkWorkerError("the fp16 landmark worker is closed")
        reply = self._wait(self.config.call_timeout_s, "running the model")
        if reply != _OK:
            raise LandmarkWorkerError("the fp16 landmark worker failed: "
                                      + reply[len(_FAILED):].decode(errors="replace"))
        out = self._outputs[:self.batches[index]]
        bounds = np.cumsum((0, *OUTPUTS))
        # each a contiguous copy, as the in-process model's outputs are: a column slice of
        # one copy made the compiled decoder (roi_kernels) compile a second, strided version;
        # .copy(), not ascontiguousarray, which returns a view of the shared memory when a
        # batch of one's slice is already contiguous (the next call would overwrite it)
        return [out[:, a:b].copy() for a, b in itertools.pairwise(bounds)]

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
        self._inputs = self._outputs = None  # our views, so the mappings can close
        self._finalizer()

    def __enter__(self) -> LandmarkWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class WorkerSlot:
    """One of a :class:`LandmarkWorker`'s models, with the face of a model: ``inputs``,
    ``run()``. Closing a slot is the worker owner's business (``LandmarkWorker.close``)."""

    worker: LandmarkWorker
    index: int

    @property
    def inputs(self) -> np.ndarray:
        shared = self.worker._inputs
        if shared is None:
            raise LandmarkWorkerError("the fp16 landmark worker is closed")
        return shared[:self.worker.batches[self.index]]

    def run(self) -> list[np.ndarray]:
        return self.worker.run(self.index)

    def submit(self) -> None:
        self.worker.submit(self.index)

    def collect(self) -> list[np.ndarray]:
        return self.worker.collect(self.index)
