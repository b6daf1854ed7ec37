"""Export the trained regressor to ONNX (FP32 and FP16 weights) with its manifest.

The FP16 file stores every weight as float16 followed by a Cast to float32, so it is half
the size and computes in FP32 on the CPU execution provider, where onnxruntime has no fast
FP16 kernels (measured: FP16 compute brings no speed there); the graph is otherwise the
same as the FP32 twin. ``torch.onnx.export`` uses the TorchScript exporter with a batch-2
example and a dynamic batch axis (the dynamo exporter in torch 2.13 fixes the batch size).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from models import WEIGHTS_DIR
from models.hand_model import HandModelData
from models.training.regressor import WORLD_SCALE_M, MeshRegressor

INPUTS = ("world", "image", "handedness")
OUTPUTS = ("vertices", "vertex_std", "joints", "pose6d", "shape")
MANIFEST_VERSION = 1


class _Exported(torch.nn.Module):
    """Only the outputs the runtime uses, in a fixed order."""

    def __init__(self, net: MeshRegressor) -> None:
        super().__init__()
        self.net = net

    def forward(self, world, image, handedness):
        out = self.net(world, image, handedness)
        return tuple(out[k] for k in OUTPUTS)


def export_fp32(net: MeshRegressor, path: Path) -> None:
    net = net.eval()
    example = (torch.zeros(2, 21, 3), torch.zeros(2, 21, 3), torch.ones(2, 1))
    example[1][..., :2] = torch.rand(2, 21, 2)
    dynamic = {name: {0: "batch"} for name in INPUTS + OUTPUTS}
    torch.onnx.export(_Exported(net), example, str(path), input_names=list(INPUTS),
                      output_names=list(OUTPUTS), dynamic_axes=dynamic, opset_version=17,
                      dynamo=False)


def to_fp16_weights(src: Path, dst: Path, min_elements: int = 16) -> None:
    """Store float32 initializers of at least ``min_elements`` as float16 + a Cast node."""
    model = onnx.load(str(src))
    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < min_elements:
            continue
        half_name = init.name + "__fp16"
        graph.initializer.remove(init)
        graph.initializer.append(numpy_helper.from_array(arr.astype(np.float16), half_name))
        casts.append(helper.make_node("Cast", [half_name], [init.name],
                                      to=onnx.TensorProto.FLOAT, name=init.name + "__cast"))
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(
    path: Path, model_file: Path, fp32_file: Path, data: HandModelData, net: MeshRegressor,
    training: dict,
) -> dict:
    v = int(data.template.shape[0])
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "kind": "handmesh.mesh_regressor",
        "model_file": model_file.name,
        "model_sha256": sha256(model_file),
        "fp32_model_file": fp32_file.name,
        "torch_state_file": "regressor.pt",
        "fp32_model_sha256": sha256(fp32_file),
        "weights_dtype": "float16 (cast to float32 in the graph)",
        "inputs": {
            "world": {"shape": ["batch", 21, 3], "dtype": "float32",
                      "meaning": "MediaPipe world landmarks of a RIGHT hand (mirror x of left "
                                 "hands), meters, camera axes, centred on their mean"},
            "image": {"shape": ["batch", 21, 3], "dtype": "float32",
                      "meaning": "MediaPipe image landmarks as (u/W, v/W, z) with u, v in "
                                 "pixels and W the image width; left hands mirrored "
                                 "(u -> W - u)"},
            "handedness": {"shape": ["batch", 1], "dtype": "float32",
                           "meaning": "1 for a right hand, 0 for a mirrored left hand "
                                      "(unused unless network.use_handedness)"},
        },
        "outputs": {
            "vertices": {"shape": ["batch", v, 3], "dtype": "float32",
                         "meaning": "mesh of the right hand, meters, camera axes, centred on "
                                    "the mean of its 21 keypoints"},
            "vertex_std": {"shape": ["batch", v], "dtype": "float32",
                           "meaning": "per-vertex standard deviation, meters"},
            "joints": {"shape": ["batch", 21, 3], "dtype": "float32",
                       "meaning": "21 keypoints, MediaPipe order, same frame as vertices"},
            "pose6d": {"shape": ["batch", int(data.joints.shape[0]), 6], "dtype": "float32",
                       "meaning": "per-joint rotations (6D, Zhou et al. 2019) in each joint's "
                                  "anatomical frame; root in camera axes"},
            "shape": {"shape": ["batch", int(data.shapedirs.shape[-1])], "dtype": "float32",
                      "meaning": "shape coefficients of the hand model"},
        },
        "normalisation": {"world_scale_m": WORLD_SCALE_M,
                          "image": "hand-relative and size-normalised inside the graph"},
        "vertex_count": v,
        "hand_model": {"name": data.name, "sha256": data.sha256},
        "network": net.config.to_dict(),
        "training": {**training, "commit": git_commit()},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def export_all(net: MeshRegressor, info: dict, weights_dir: Path) -> Path:
    """Write regressor.onnx (FP16 weights), regressor_fp32.onnx, regressor.pt and the manifest."""
    from models.hand_model import HandModel

    weights_dir.mkdir(parents=True, exist_ok=True)
    fp32, fp16 = weights_dir / "regressor_fp32.onnx", weights_dir / "regressor.onnx"
    export_fp32(net, fp32)
    to_fp16_weights(fp32, fp16)
    # The torch weights too, so tests can hold the shipped ONNX files to the network.
    torch.save({"state_dict": net.state_dict(), "config": net.config.to_dict()},
               weights_dir / "regressor.pt")
    manifest = weights_dir / "regressor.json"
    write_manifest(manifest, fp16, fp32, HandModel.open_hand().data, net, info)
    return manifest


def main(argv: list[str] | None = None) -> None:
    """Re-export a training checkpoint:
    ``python -m models.training.export --checkpoint last.pt``."""
    import argparse

    from models.hand_model import HandModel
    from models.training.regressor import RegressorConfig

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--checkpoint", type=Path, default=Path("runs/regressor/last.pt"))
    p.add_argument("--weights-dir", type=Path,
                   default=WEIGHTS_DIR)
    args = p.parse_args(argv)
    ck = torch.load(args.checkpoint, weights_only=False, map_location="cpu")
    net = MeshRegressor(HandModel.open_hand().data,
                        RegressorConfig(**ck.get("net_config", {})))
    net.load_state_dict(ck["net"])
    info = {"config": ck.get("config"), "history": ck.get("history"), "steps": ck.get("step"),
            **ck.get("extra", {})}
    print(f"wrote {export_all(net, info, args.weights_dir)}")


if __name__ == "__main__":
    main()
