"""Render the open hand in a few poses into ``docs/hand_gallery.png`` for people to look at.

    python -m scripts.render_hand_gallery [--out docs/hand_gallery.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from models.geometry import axis_angle_to_matrix
from models.hand_model import HandModel
from models.poses import named_pose
from realtime.render.raster import render_mesh

SKIN = np.array([0.87, 0.66, 0.55])


def render_view(model: HandModel, pose: np.ndarray, yaw_deg: float, size: int = 320) -> np.ndarray:
    """One tile: the hand 45 cm in front of a camera, turned by ``yaw_deg`` about its length."""
    out = model.forward(pose)
    verts = out.vertices[0]
    centre = verts.mean(0)
    rot = axis_angle_to_matrix(np.array([0.0, np.deg2rad(yaw_deg), 0.0]))
    cam = (verts - centre) @ rot.T + np.array([0.0, 0.0, 0.45])
    f = size * 1.6
    k = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    img = np.full((size, size, 3), 235, np.uint8)
    render_mesh(img, cam, model.faces, k, SKIN)
    return img


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/hand_gallery.png"))
    args = parser.parse_args(argv)
    model = HandModel.open_hand()
    names = ("relaxed", "open", "fist", "point", "pinch")
    rows = []
    for yaw in (0.0, 180.0, 70.0):
        tiles = []
        for name in names:
            tile = render_view(model, named_pose(model.data.joint_names, name), yaw)
            if yaw == 0.0:
                cv2.putText(tile, name, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (40, 40, 40), 2,
                            cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.concatenate(rows, axis=0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
