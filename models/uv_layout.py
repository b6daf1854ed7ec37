"""The texture layout of the open hand (``models/assets/open_hand_uv.npz``), read at run time.

Built once by ``python -m models.training.build_uv`` (xatlas); see that module for the layout. Left
hands are mirrored right hands with the same vertex order, so one layout serves both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import AssetError
from models.hand_model import ASSET_DIR, OPEN_HAND_PATH
from models.npz_files import read_npz

UV_PATH = ASSET_DIR / "open_hand_uv.npz"


@dataclass(frozen=True)
class UVLayout:
    """``uv (T,2)`` in [0,1] (v down, as images are indexed), ``uv_faces (F,3)`` into ``uv``,
    ``vmapping (T,)`` the mesh vertex of each UV vertex; ``mesh_sha256`` of its mesh."""

    uv: np.ndarray
    uv_faces: np.ndarray
    vmapping: np.ndarray
    mesh_sha256: str
    resolution: int

    def check_mesh(self, faces: np.ndarray) -> None:
        """Refuse a mesh whose faces this layout was not cut for."""
        faces = np.asarray(faces)
        if faces.shape != self.uv_faces.shape or not np.array_equal(
                self.vmapping[self.uv_faces], faces):
            raise AssetError(f"the UV layout ({len(self.uv_faces)} faces) does not match this "
                             f"mesh ({len(faces)} faces); rebuild it with "
                             "`python -m models.training.build_uv --mesh YOUR_MODEL.npz`")


def load_uv_layout(path: str | Path = UV_PATH, mesh_path: str | Path | None = OPEN_HAND_PATH
                   ) -> UVLayout:
    """Read a layout; with ``mesh_path``, check it was built for that mesh file."""
    path = Path(path)
    z = read_npz(path, "UV layout", "Build it with `python -m models.training.build_uv`")
    try:
        layout = UVLayout(uv=z["uv"].astype(np.float64),
                          uv_faces=z["uv_faces"].astype(np.int64),
                          vmapping=z["vmapping"].astype(np.int64),
                          mesh_sha256=str(z["mesh_sha256"]),
                          resolution=int(z["resolution"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise AssetError(f"{path} is not a UV layout written by models.training.build_uv "
                         f"({exc})") from exc
    if mesh_path is not None:
        digest = hashlib.sha256(Path(mesh_path).read_bytes()).hexdigest()
        if digest != layout.mesh_sha256:
            raise AssetError(f"{path} was built for another mesh (sha256 {layout.mesh_sha256[:12]}"
                             f", this one {digest[:12]}); rebuild it with "
                             "`python -m models.training.build_uv`")
    return layout
