"""MediaPipe's hand landmark model run by onnxruntime instead of LiteRT.

The same ``.tflite`` file of the installed mediapipe wheel, converted once at setup time by
``tflite2onnx`` (``python -m realtime.onnx_landmarks``, which scripts/setup_env.sh runs):
nothing is downloaded at run time. onnxruntime runs it ~15-20% faster than LiteRT's XNNPACK on
a laptop CPU (measured 6.4 vs 7.6 ms per crop on 2 cores) with the same outputs (< 1e-3 tensor
pixels apart), and it is already a dependency. Without the converted file the detector keeps
LiteRT (:class:`realtime.litert_models.LandmarkModel`).

    .venv/bin/python -m realtime.onnx_landmarks [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from realtime import hand_rois as hr
from realtime.errors import ModelFileError
from realtime.litert_models import LandmarkModel, mediapipe_model_dir, model_path

log = logging.getLogger(__name__)

# next to the package (an editable checkout) so each checkout converts its own; git-ignored
ONNX_DIR = Path(__file__).resolve().parents[1] / ".cache" / "hand_models"
# the lite model converts too, but its world landmarks drift up to 6 mm from LiteRT's in
# tracking (the full model's stay within MediaPipe's own tolerance): lite stays on LiteRT
ONNX_VARIANTS = ("full",)
MAX_CONVERSION_ERROR = 1e-2  # largest output difference allowed against LiteRT (any unit)


def onnx_path(variant: str, out_dir: Path = ONNX_DIR) -> Path:
    return Path(out_dir) / f"hand_landmark_{variant}.onnx"


def convert(variant: str, out_dir: Path = ONNX_DIR, model_dir: Path | None = None) -> Path:
    """Convert the wheel's landmark model ``variant`` ("full"/"lite") to ONNX, check that
    it gives LiteRT's outputs on random crops, and only then put it in place."""
    try:
        import tflite2onnx
    except ImportError as exc:
        raise ModelFileError("tflite2onnx is missing: pip install tflite2onnx==0.4.1 "
                             "tflite==2.18.0 (scripts/setup_env.sh installs them)") from exc
    src = model_path(Path(model_dir) if model_dir else mediapipe_model_dir(), "landmark",
                     variant)
    out = onnx_path(variant, out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(out.with_name(f".{out.stem}.{os.getpid()}.tmp.onnx"))
    try:
        tflite2onnx.convert(str(src), tmp)
        reference = LandmarkModel(src, 1)
        candidate = OnnxLandmarkModel(Path(tmp), 1)
        x = np.random.default_rng(0).random((2, hr.LANDMARK_INPUT, hr.LANDMARK_INPUT, 3),
                                            dtype=np.float32)
        for crop in x:
            want, got = reference.infer(crop), candidate.infer(crop)
            err = max(float(np.abs(a - b).max()) for a, b in zip(want, got))
            if not err < MAX_CONVERSION_ERROR:
                raise ModelFileError(f"{src} converted to ONNX differs from LiteRT by {err} "
                                     "(tflite2onnx version?): keeping LiteRT")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out


class OnnxLandmarkModel(LandmarkModel):
    """:class:`LandmarkModel` (same crops, same post-processing) on onnxruntime; one crop
    per call (the converted model has batch 1 and NCHW input)."""

    def __init__(self, path: Path, num_threads: int, batch: int = 1) -> None:
        if batch != 1:
            raise ValueError("the ONNX landmark model runs one crop per call (batch 1)")
        if not Path(path).is_file():
            raise ModelFileError(f"converted landmark model not found: {path}; run "
                                 "python -m realtime.onnx_landmarks (scripts/setup_env.sh)")
        import onnxruntime as ort

        self.path = Path(path)
        self.batch = 1
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelFileError(f"{path} is not a readable ONNX model ({exc}): delete it "
                                 "and run python -m realtime.onnx_landmarks") from exc
        n = hr.LANDMARK_INPUT
        inp = self._session.get_inputs()[0]
        if list(inp.shape) != [1, 3, n, n] or len(self._session.get_outputs()) != 4:
            raise ModelFileError(f"{path} has input {inp.shape}, expected [1, 3, {n}, {n}] "
                                 "and 4 outputs: delete it and run "
                                 "python -m realtime.onnx_landmarks")
        self._name = inp.name
        self._hwc = np.empty((1, n, n, 3), np.float32)
        self._pool = None

    def infer(self, crop: np.ndarray) -> list[np.ndarray]:
        """Raw outputs (landmarks, hand flag, handedness, world) of one HWC crop."""
        chw = np.ascontiguousarray(crop.transpose(2, 0, 1))[None]
        return self._session.run(None, {self._name: chw})

    def run(self, image: np.ndarray, rects: list[np.ndarray]) -> list[tuple]:
        h, w = image.shape[:2]
        matrix = hr.crop_matrix(hr.rect_to_px(rects[0], w, h), hr.LANDMARK_INPUT)
        hr.to_tensor(image, matrix, hr.LANDMARK_INPUT, zero_border=False, out=self._hwc[0])
        lm, flag, hand, world = self.infer(self._hwc[0])
        return [(hr.project_landmarks(lm[0], rects[0]),
                 hr.project_world(world[0], float(rects[0][4])),
                 float(flag[0, 0]), float(hand[0, 0]))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", type=Path, default=ONNX_DIR)
    args = p.parse_args(argv)
    for variant in ONNX_VARIANTS:
        print(f"converted {convert(variant, args.out_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
