"""handmesh: live, metric 3D hand meshes from a webcam, as a library.

::

    from realtime import HandMesher, HandMesherConfig

    with HandMesher(HandMesherConfig()) as mesher:
        hands = mesher.process(bgr)  # list[HandMesh]: tracked, smoothed, camera frame, meters

The sub-packages follow the loop: ``io`` (sources, the camera, hands files) -> ``detect``
-> ``mesh`` (estimators, tracking, smoothing, two hands, texture) -> ``render`` and
``stream``; ``engine`` runs them in threads, ``app`` builds the whole run
(:func:`build_pipeline`), ``multiview`` fuses cameras, ``cli`` holds the commands.

The names below are loaded on first use, so ``import realtime`` stays cheap (the demo
installs its Ctrl-C handler before the heavy imports).
"""

from __future__ import annotations

import importlib
import os as _os
import sys as _sys

# FFmpeg inside OpenCV prints its own lines (e.g. "moov atom not found") for files it cannot
# decode; we report those ourselves in one clear line, so keep FFmpeg quiet.
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def _check_siblings() -> None:
    """handmesh's top-level packages are ``models``, ``realtime`` and ``calibration``: generic
    names. If another package of one of those names is importable first (a ``models/``
    folder in the working directory, another project's package), say so plainly instead of
    failing later with a puzzling ``ModuleNotFoundError``."""
    for name in ("models", "calibration"):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"handmesh needs its '{name}' package, which cannot be imported "
                              f"({exc}); reinstall handmesh") from exc
        if not getattr(module, "__handmesh__", False):
            where = getattr(module, "__file__", None) or list(getattr(module, "__path__", []))
            raise ImportError(
                f"another package named '{name}' ({where}) shadows handmesh's '{name}': "
                "handmesh's top-level packages are models, realtime and calibration. Run "
                "from another folder, or install handmesh in its own virtual environment.")


_check_siblings()

#: public name -> the module that defines it
_EXPORTS = {
    "HandMesher": "realtime.mesher",
    "HandMesherConfig": "realtime.mesher",
    "HandMesh": "realtime.types",
    "Frame": "realtime.types",
    "Detection": "realtime.types",
    "Packet": "realtime.types",
    "Side": "realtime.types",
    "Keypoint": "models.topology",
    "Camera": "calibration.camera",
    "CameraConfig": "realtime.io.camera",
    "DetectorConfig": "realtime.detect.detector",
    "RecallConfig": "realtime.detect.recall",
    "EstimatorConfig": "realtime.mesh.estimator",
    "HandEstimator": "realtime.mesh.estimator",
    "SmootherConfig": "realtime.mesh.smoothing",
    "TrackerConfig": "realtime.mesh.tracking",
    "open_source": "realtime.io.sources",
    "SourceConfig": "realtime.io.sources",
    "HandClient": "realtime.stream.client",
    "PublisherConfig": "realtime.stream.publisher",
    "AppConfig": "realtime.app",
    "OutputConfig": "realtime.app",
    "Sinks": "realtime.app",
    "build_pipeline": "realtime.app",
    "RealtimeError": "realtime.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'realtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    setattr(_sys.modules[__name__], name, value)  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
