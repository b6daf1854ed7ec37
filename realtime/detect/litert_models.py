"""MediaPipe's bundled hand models (palm detector, landmark regressor) run by LiteRT.

The ``.tflite`` files come from the installed mediapipe wheel (``mediapipe/modules/``), so
nothing is downloaded or converted. LiteRT (``ai-edge-litert``) runs them with XNNPACK and
releases the GIL while it computes, so the other pipeline threads keep running (its fp16
path does not, so that one runs in a worker process: :mod:`realtime.detect.landmark_worker`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from realtime.detect import hand_rois as hr
from realtime.detect import roi_kernels
from realtime.detect.landmark_worker import LandmarkWorker, WorkerSlot
from realtime.detect.roi_kernels import ROI_INDEX, landmark_outputs
from realtime.errors import ModelFileError

log = logging.getLogger(__name__)


def mediapipe_model_dir() -> Path:
    """``site-packages/mediapipe/modules`` of the installed wheel."""
    try:
        import mediapipe
    except ImportError as exc:
        raise ModelFileError(
            "mediapipe is not installed, and its wheel carries the hand models: install "
            "mediapipe==0.10.21 (scripts/setup_env.sh) or pass model_dir=") from exc
    return Path(mediapipe.__file__).parent / "modules"


def model_path(model_dir: Path, kind: str, variant: str) -> Path:
    """The file of ``kind`` ("palm" or "landmark") and ``variant`` ("full" or "lite")."""
    if kind == "palm":
        return model_dir / "palm_detection" / f"palm_detection_{variant}.tflite"
    return model_dir / "hand_landmark" / f"hand_landmark_{variant}.tflite"


def _interpreter(path: Path, num_threads: int, input_shape: tuple, output_shapes: list,
                 batch: int = 1):
    """A LiteRT interpreter for ``path`` whose input/outputs have the shapes expected (checked
    at batch 1), resized to ``batch``."""
    if not path.is_file():
        raise ModelFileError(
            f"hand model file not found: {path}. It ships inside the mediapipe==0.10.21 wheel "
            "(reinstall it with scripts/setup_env.sh) or point model_dir at a copy.")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ModelFileError(
            "the LiteRT runtime is missing: pip install ai-edge-litert==2.3.0 "
            "(scripts/setup_env.sh installs it)") from exc
    try:
        interp = Interpreter(model_path=str(path), num_threads=num_threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"hand model file {path} is not a readable TFLite model ({exc}); it may be "
            "truncated or corrupt: reinstall mediapipe==0.10.21") from exc
    got_in = tuple(int(v) for v in interp.get_input_details()[0]["shape"])
    got_out = [tuple(int(v) for v in d["shape"]) for d in interp.get_output_details()]
    if got_in != input_shape or got_out != output_shapes:
        raise ModelFileError(
            f"hand model file {path} has input {got_in} and outputs {got_out}, expected "
            f"{input_shape} and {output_shapes}: not the model of mediapipe 0.10.21")
    if batch != 1:
        interp.resize_tensor_input(interp.get_input_details()[0]["index"],
                                   [batch, *input_shape[1:]])
        interp.allocate_tensors()
    return interp


_LANDMARK_SHAPES = ((1, hr.LANDMARK_INPUT, hr.LANDMARK_INPUT, 3),
                    [(1, 63), (1, 1), (1, 1), (1, 63)])  # input; landmarks, flag, side, world


def native_fp16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has native half-precision arithmetic (x86 AVX512-FP16; ARMv8.2's
    FP16, which every Apple silicon Mac has): where XNNPACK's fp16 path runs and pays.
    Read from ``/proc/cpuinfo`` on Linux (or the ``cpuinfo`` text given); elsewhere only
    Apple silicon counts. False when unsure (the fp32 model then runs, as MediaPipe's)."""
    import platform
    import sys

    if cpuinfo is None:
        if sys.platform == "darwin":
            return platform.machine() == "arm64"
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            return "avx512_fp16" in flags or {"fphp", "asimdhp"} <= flags
    return False


def fp16_worker(models: list[tuple[Path, int]], num_threads: int) -> LandmarkWorker:
    """One worker process running every ``(path, batch)`` landmark model in fp16; a CPU
    that cannot is a :class:`ModelFileError` that says what to use instead (as is a file
    that is not a landmark model: checked here first, in this process)."""
    for path in {path for path, _ in models}:
        _interpreter(path, 1, *_LANDMARK_SHAPES)
    try:
        return LandmarkWorker(models, num_threads)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelFileError(
            f"fp16 landmarks could not run on this CPU ({exc}); it needs native fp16 "
            "arithmetic (x86 AVX512-FP16 or ARMv8.2): use precision='fp32' (or 'auto')"
        ) from exc


class PalmModel:
    """The palm detector: a BGR frame in, palms (boxes, keypoints, scores) out."""

    def __init__(self, path: Path, num_threads: int) -> None:
        self.path = path
        self._interp = _interpreter(path, num_threads, (1, hr.PALM_INPUT, hr.PALM_INPUT, 3),
                                    [(1, hr.NUM_BOXES, 18), (1, hr.NUM_BOXES, 1)])
        self._input = self._interp.get_input_details()[0]["index"]
        out = self._interp.get_output_details()
        self._boxes, self._scores = out[0]["index"], out[1]["index"]
        self._anchors = hr.ssd_anchors()

    def detect(self, image: np.ndarray, min_score: float, weak_score: float | None = None):
        """Palms in image-normalised units: boxes ``(K, 4)``, keypoints ``(K, 7, 2)``,
        scores ``(K,)``, best first (PalmDetectionCpu), and the centres ``(M, 2)`` of the
        weaker boxes (``weak_score <= score < min_score``): hints that a hand is coming
        into view. They do not enter the NMS, so the palms stay exactly MediaPipe's."""
        h, w = image.shape[:2]
        matrix, padding = hr.letterbox(w, h)
        buffer = self._interp.tensor(self._input)()  # the input itself, no copies
        hr.to_tensor(image, matrix, hr.PALM_INPUT, zero_border=True, out=buffer[0])
        del buffer  # LiteRT refuses to invoke while a view of its memory is alive
        self._interp.invoke()
        raw_boxes = self._interp.get_tensor(self._boxes)[0]
        raw_scores = self._interp.get_tensor(self._scores)[0, :, 0]
        low = min_score if weak_score is None else min(weak_score, min_score)
        boxes, kps, scores = hr.decode_palms(raw_boxes, raw_scores, self._anchors, low)
        strong = scores >= min_score
        weak_boxes, _ = hr.remove_letterbox(boxes[~strong], kps[~strong], padding)
        boxes, kps, scores = hr.weighted_nms(boxes[strong], kps[strong], scores[strong])
        boxes, kps = hr.remove_letterbox(boxes, kps, padding)
        return boxes, kps, scores, (weak_boxes[:, :2] + weak_boxes[:, 2:]) / 2


class LandmarkModel:
    """The hand landmark model on ``batch`` rotated crops at once: landmarks, world
    landmarks, presence, handedness (HandLandmarkCpu).

    Two ways to spread the crops over the cores (``split``):

    - batched (``split=False``): the wheel's batch-1 model resized to ``batch`` by LiteRT, one
      call on ``num_threads`` threads; XNNPACK splits every layer between the threads, so the
      threads meet once per layer (~60 times per call).
    - split (``split=True``): one batch-1 interpreter per crop, on
      ``max(1, num_threads // batch)`` threads each; every crop is cut and run on its own
      thread (the caller's thread takes the first), so the threads meet once per frame.
      Each interpreter sees one crop, as in a batch-1 call, so the numbers are the same.

    ``fp16``: batched, in half-precision arithmetic
    (:class:`~realtime.detect.landmark_worker._Fp16Landmarks`): ~1.5x less compute on a CPU
    with native fp16, landmarks ~0.3 px from the fp32 ones. LiteRT's CompiledModel keeps the
    GIL while it runs (the Interpreter's invoke releases it), so it runs in a worker process:
    ``fp16`` is this model's slot there (:func:`fp16_worker`, which has checked the file),
    and the crops are cut straight into its shared memory. The worker's owner stops it.
    """

    def __init__(self, path: Path, num_threads: int, batch: int = 1,
                 split: bool = False, fp16: WorkerSlot | None = None) -> None:
        if split and fp16 is not None:
            raise ValueError("fp16 landmarks run batched: split and fp16 exclude each other")
        self.path = path
        self.batch = batch
        self.split = split and batch > 1
        shapes = _LANDMARK_SHAPES
        self._fp16 = fp16  # in its own process: LiteRT's fp16 call would hold our GIL
        if fp16 is not None:
            if len(fp16.inputs) != batch:
                raise ValueError(f"the fp16 worker's model takes {len(fp16.inputs)} crops, "
                                 f"not {batch}")
            self._interps = []
        elif self.split:
            threads = max(1, num_threads // batch)
            self._interps = [_interpreter(path, threads, *shapes) for _ in range(batch)]
        else:
            self._interps = [_interpreter(path, num_threads, *shapes, batch)]
        self._interp = self._interps[0] if self._interps else None
        if self._interp is not None:
            self._input = self._interp.get_input_details()[0]["index"]
            # MediaPipe's SplitTensorVector: landmarks, hand flag, handedness, world landmarks
            self._outputs = [d["index"] for d in self._interp.get_output_details()]
        # the crops of a batch are cut side by side (cv2.warpAffine releases the GIL), and
        # in split mode run side by side too (LiteRT releases it in invoke)
        self._pool = ThreadPoolExecutor(batch - 1, "crops") if batch > 1 else None
        roi_kernels.warmup()  # numba: compiled or loaded from disk now, not on frame one

    def run(self, image: np.ndarray, rects: list[np.ndarray]) -> list[tuple]:
        """Per rect ``(landmarks (21,3) image-normalised, world (21,3) m, presence,
        p_left_label, landmarks (21,2) px, next rect (5,), pixel box (4,))``;
        ``len(rects) == batch``.

        ``p_left_label`` is the model's score for MediaPipe's "Left" label (its selfie
        convention: the anatomical right hand in a non-mirrored frame). The next rect is
        the crop these landmarks predict for the next frame (HandLandmarkLandmarksToRoi).
        """
        return self.start(image, rects)()

    def start(self, image: np.ndarray, rects: list[np.ndarray]) -> Callable[[], list[tuple]]:
        """:meth:`run` in two halves: the crops are cut and the model started now, and the
        returned function waits for it and gives ``run``'s result. Why: the fp16 model
        computes in its worker process, so the caller can do other work meanwhile (the
        detector moves a flow-tracked hand then); elsewhere the model runs here, now."""
        h, w = image.shape[:2]
        # the matrices here, so that the crop threads run only GIL-free OpenCV/NumPy work
        matrices = [hr.crop_matrix(hr.rect_to_px(rect, w, h), hr.LANDMARK_INPUT)
                    for rect in rects]

        if self.split:
            def crop(k: int) -> None:  # cut and run crop k on its own interpreter
                interp = self._interps[k]
                hr.to_tensor(image, matrices[k], hr.LANDMARK_INPUT, zero_border=False,
                             out=interp.tensor(self._input)()[0])
                interp.invoke()  # (LiteRT refuses while a view of its memory is alive)
        elif self._fp16 is not None:
            def crop(k: int) -> None:  # into the array run() hands to LiteRT
                hr.to_tensor(image, matrices[k], hr.LANDMARK_INPUT, zero_border=False,
                             out=self._fp16.inputs[k])
        else:
            def crop(k: int) -> None:  # straight into the interpreter's input (no copies)
                hr.to_tensor(image, matrices[k], hr.LANDMARK_INPUT, zero_border=False,
                             out=self._interp.tensor(self._input)()[k])

        if self._pool is None:
            for k in range(len(rects)):
                crop(k)
        else:
            others = [self._pool.submit(crop, k) for k in range(1, len(rects))]
            crop(0)
            for job in others:
                job.result()
        if self._fp16 is not None:
            self._fp16.submit()
            return lambda: self._outputs_of(self._fp16.collect(), rects, w, h)
        if self.split:
            lm, flag, hand, world = (
                np.concatenate([interp.get_tensor(i) for interp in self._interps])
                for i in self._outputs)
        else:
            self._interp.invoke()
            lm, flag, hand, world = (self._interp.get_tensor(i) for i in self._outputs)
        result = self._outputs_of((lm, flag, hand, world), rects, w, h)
        return lambda: result

    @staticmethod
    def _outputs_of(outputs, rects: list[np.ndarray], w: int, h: int) -> list[tuple]:
        """The model's four outputs as :meth:`run`'s per-rect tuples."""
        lm, flag, hand, world = outputs
        n = len(rects)
        out = (np.empty((n, 21, 3)), np.empty((n, 21, 2)), np.empty((n, 21, 3)),
               np.empty((n, 5)), np.empty((n, 4)))
        # every crop's projections, next rect and box in one compiled call (roi_kernels)
        landmark_outputs(lm, world, np.asarray(rects, dtype=np.float64), w, h, ROI_INDEX, *out)
        image_lm, px, world_lm, next_rects, boxes = out
        return [(image_lm[k], world_lm[k], float(flag[k, 0]), float(hand[k, 0]), px[k],
                 next_rects[k], boxes[k]) for k in range(n)]

    def close(self) -> None:
        """Stop the crop threads (the fp16 worker is its owner's to stop); safe twice."""
        self._fp16 = None
        if self._pool is not None:
            self._pool.shutdown()

