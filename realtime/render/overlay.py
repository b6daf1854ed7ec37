"""The AR overlay: hand meshes drawn over the video frame, z-buffered, with skeleton and HUD.

Perspective-correct placement comes from drawing the camera-frame meshes with the camera's
own intrinsics; both hands share one z-buffer so that they occlude each other. Text is
drawn thin over darkened boxes: an anti-aliased outline (thick ``putText``) costs ~0.7 ms
per line, a quarter of the whole overlay budget (``benchmarks/render.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from models.topology import SKELETON_EDGES
from realtime.render.raster import draw_skeleton, new_zbuffer, render_mesh
from realtime.types import HandMesh

# RGB in [0,1]: a cool tint for right hands, a warm one for left hands.
HAND_COLORS = {"right": (0.35, 0.70, 0.95), "left": (0.98, 0.62, 0.30)}
SKELETON_BGR = {"right": (255, 235, 200), "left": (200, 230, 255)}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
#: The shorter image side (px) the HUD, labels and skeleton were drawn for at scale 1
#: (the built-in 640x480 clip); other sizes scale with it, within the bounds below.
REFERENCE_SIDE_PX = 480
MIN_UI_SCALE, MAX_UI_SCALE = 0.4, 4.0


@dataclass(frozen=True)
class OverlayConfig:
    """What the overlay draws.

    ``uncertainty``: colour each vertex by its predicted std (turbo heat map, 0 to
    ``std_max_mm``) instead of the hand's side colour. ``vertex_lighting``: light once per
    vertex and interpolate (``raster.render_mesh``), the live budget's choice.
    ``cull_backfaces``: skip triangles facing away; the hand meshes are closed, so this
    changed no pixel over the built-in clip's 227 regressed hands, and saves a third.
    """

    mesh_alpha: float = 0.65
    draw_mesh: bool = True
    draw_skeleton: bool = True
    draw_labels: bool = True
    uncertainty: bool = False
    std_max_mm: float = 15.0
    vertex_lighting: bool = True  # Gouraud: half the cost, looks alike at hand scale
    cull_backfaces: bool = True  # closed hand meshes: back faces never show; a third faster

    def __post_init__(self) -> None:
        if not 0.0 <= self.mesh_alpha <= 1.0:
            raise ValueError(f"mesh_alpha must be in [0, 1], got {self.mesh_alpha}")
        if not self.std_max_mm > 0.0:
            raise ValueError(f"std_max_mm must be > 0, got {self.std_max_mm}")


@functools.lru_cache(maxsize=1)
def _turbo_lut() -> np.ndarray:
    """(256,3) RGB in [0,1]: OpenCV's turbo colormap (blue = sure, red = unsure)."""
    ramp = np.arange(256, dtype=np.uint8).reshape(-1, 1)
    bgr = cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO).reshape(256, 3)
    lut = bgr[:, ::-1].astype(np.float64) / 255.0
    lut.setflags(write=False)
    return lut


def uncertainty_colors(vertex_std_m: np.ndarray, std_max_mm: float = 15.0) -> np.ndarray:
    """Per-vertex std (V,) in meters -> (V,3) RGB in [0,1] on the turbo scale.

    0 mm maps to the scale's blue end, ``std_max_mm`` and above to its red end; NaN
    (unknown) to the middle.
    """
    std_mm = np.nan_to_num(np.asarray(vertex_std_m, dtype=np.float64) * 1e3,
                           nan=0.5 * std_max_mm)
    idx = np.clip(std_mm * (255.0 / std_max_mm), 0.0, 255.0).astype(np.intp)
    return _turbo_lut()[idx]


def mean_std_mm(hand: HandMesh) -> float:
    """The hand's mean per-vertex uncertainty in millimetres (NaN when unknown)."""
    std = np.asarray(hand.vertex_std, dtype=np.float64)
    return float(np.nanmean(std) * 1e3) if std.size and np.isfinite(std).any() else float("nan")


def hand_color(hand: HandMesh) -> tuple[float, float, float]:
    return HAND_COLORS.get(hand.handedness, HAND_COLORS["right"])


def _fused_or(hand: HandMesh, default: np.ndarray) -> np.ndarray:
    """The hand's fused texture colours (``realtime.mesh.texture``, when ``--texture`` is on),
    else ``default``."""
    colors = hand.vertex_colors
    if colors is not None and len(colors) == len(hand.vertices):
        return np.asarray(colors, dtype=np.float64)
    return default


def ui_scale(shape: tuple[int, ...]) -> float:
    """How big text, lines and dots are drawn on an image of ``shape`` (H, W, ...): its
    shorter side over :data:`REFERENCE_SIDE_PX`, so the HUD covers a like share of a
    224-px photo and a 4K frame (bounded: text stays legible, lines stay thin)."""
    return float(np.clip(min(shape[0], shape[1]) / REFERENCE_SIDE_PX,
                         MIN_UI_SCALE, MAX_UI_SCALE))


def _px(value: float, scale: float) -> int:
    """``value`` reference pixels at ``scale``, at least one pixel."""
    return max(1, round(value * scale))


def draw_hands(
    image: np.ndarray,
    hands: list[HandMesh],
    faces_for: dict[str, np.ndarray],
    K: np.ndarray,  # noqa: N803
    config: OverlayConfig = OverlayConfig(),
) -> np.ndarray:
    """Draw ``hands`` into a copy of ``image`` (BGR) and return it."""
    out = image.copy()
    scale = ui_scale(out.shape)
    if config.draw_mesh and hands:
        zbuf = new_zbuffer(out.shape[0], out.shape[1])
        for hand in hands:
            colors = (uncertainty_colors(hand.vertex_std, config.std_max_mm)
                      if config.uncertainty and len(hand.vertex_std) == len(hand.vertices)
                      else _fused_or(hand, np.array(hand_color(hand))))
            render_mesh(out, hand.vertices, faces_for[hand.handedness], K, colors,
                        alpha=config.mesh_alpha, zbuffer=zbuf,
                        vertex_lighting=config.vertex_lighting,
                        cull_backfaces=config.cull_backfaces)
    for hand in hands:
        if config.draw_skeleton:
            draw_skeleton(out, hand.keypoints_2d, SKELETON_EDGES,
                          SKELETON_BGR.get(hand.handedness, (255, 255, 255)), _px(2, scale),
                          joint_radius=_px(3, scale))
        if config.draw_labels and np.all(np.isfinite(hand.keypoints_2d[0])):
            x, y = hand.keypoints_2d[0]
            _label(out, f"{hand.handedness} #{hand.track_id} {hand.score:.2f}",
                   (int(x) - _px(40, scale), int(y) + _px(26, scale)), scale)
    return out


def hand_hud_lines(hands: list[HandMesh]) -> list[str]:
    """One HUD line per hand: side, track, detector score, mean uncertainty, wrist depth."""
    lines = []
    for hand in hands:
        std = mean_std_mm(hand)
        unc = f"+-{std:4.1f} mm" if np.isfinite(std) else "+- ?"
        lines.append(f"{hand.handedness:>5} #{hand.track_id}  score {hand.score:.2f}  {unc}"
                     f"  {hand.joints[0, 2] * 100.0:3.0f} cm")
    return lines


def _dark_box(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    h, w = image.shape[:2]
    x0, x1, y0, y1 = max(0, x0), min(w, x1), max(0, y0), min(h, y1)
    if x1 > x0 and y1 > y0:
        roi = image[y0:y1, x0:x1]
        np.right_shift(roi, 1, out=roi)  # halve: cheaper than a float blend


def _label(image: np.ndarray, text: str, org: tuple[int, int], scale: float = 1.0) -> None:
    h, w = image.shape[:2]
    font, thick, pad = 0.5 * scale, _px(1, scale), _px(3, scale)
    (tw, th), base = cv2.getTextSize(text, _FONT, font, thick)
    x = int(np.clip(org[0], 2, max(2, w - tw - 4)))
    y = int(np.clip(org[1], th + 4, h - base - 2))
    _dark_box(image, x - pad, y - th - pad, x + tw + pad, y + base + 1)
    cv2.putText(image, text, (x, y), _FONT, font, (255, 255, 255), thick, cv2.LINE_AA)


def draw_hud(image: np.ndarray, lines: list[str]) -> None:
    """A darkened box of status lines in the top-left corner (in place), sized to the
    image (:func:`ui_scale`)."""
    if not lines:
        return
    s = ui_scale(image.shape)
    font, thick, step = 0.5 * s, _px(1, s), 20 * s
    margin, left, first = _px(4, s), _px(10, s), 22 * s
    width = max(cv2.getTextSize(t, _FONT, font, thick)[0][0] for t in lines) + _px(14, s)
    _dark_box(image, margin, margin, margin + width, margin + round(10 * s + step * len(lines)))
    for i, line in enumerate(lines):
        cv2.putText(image, line, (left, round(first + step * i)), _FONT, font, (255, 255, 255),
                    thick, cv2.LINE_AA)
