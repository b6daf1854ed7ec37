"""The hand model and everything learned about hands, with no camera and no threads.

Run time (NumPy/Numba, no PyTorch): the open hand model and its skinning
(``hand_model``, ``skinning``, ``topology``, ``limits``, ``poses``, ``mano``), the one
geometry module (``geometry``: rotations, Kabsch, projection), what keypoints and pose
say about a hand (``hand_geometry``: wrist frame, finger flexion), inverse kinematics
(``ik``), two-hand penetration removal (``penetration``), the interaction prior
(``interaction_prior``), the UV layout (``uv_layout``), and the shipped assets and weights.
Training (PyTorch, the ``[train]`` extra) lives in ``models.training``; nothing at run time
imports it.
"""

from pathlib import Path

__handmesh__ = True  # marks this package as handmesh's (realtime checks it at import)

PACKAGE_DIR = Path(__file__).resolve().parent
ASSET_DIR = PACKAGE_DIR / "assets"
"""The open hand model, its UV layout and their NOTICE (shipped in the wheel)."""
WEIGHTS_DIR = PACKAGE_DIR / "weights"
"""The regressor (ONNX + manifest) and the interaction prior (shipped in the wheel)."""
