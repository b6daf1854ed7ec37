"""Procedural, photo-like backgrounds for synthetic hand videos.

Why: we cannot ship photographs, but a hand detector tested over flat colours behaves
nothing like it does over a real room. These generators paint the few ingredients that
matter for a detector and for the eye: large-scale structure (walls, furniture, windows),
mid-scale texture (wood grain, paint relief, fabric), out-of-focus blur, lens vignetting,
sensor noise and colour temperature. Palettes stay neutral, cool or brown and avoid
dominant peach/pink so that nothing looks like skin.

Everything is NumPy + OpenCV, deterministic per ``seed``, and takes well under 100 ms for
640x480. Images are BGR ``uint8`` as OpenCV uses.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

__all__ = ["list_kinds", "make_background"]

_Img = np.ndarray  # (H, W, 3) float32 RGB in [0, 1] while painting


# --------------------------------------------------------------------------------------
# building blocks (float32 RGB in [0, 1])
# --------------------------------------------------------------------------------------


def _noise(rng: np.random.Generator, h: int, w: int, scale_px: float, octaves: int = 4,
           persistence: float = 0.5, aspect: float = 1.0) -> np.ndarray:
    """Fractal value noise (H,W) float32 with zero mean and ~unit std.

    ``scale_px`` is the feature size of the coarsest octave; ``aspect`` > 1 stretches
    features along x (wood fibres, fabric weave).
    """
    out = np.zeros((h, w), dtype=np.float32)
    amp, scale = 1.0, float(scale_px)
    for _ in range(octaves):
        gh = max(2, int(round(h / scale)) + 2)
        gw = max(2, int(round(w / (scale * aspect))) + 2)
        grid = rng.standard_normal((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= persistence
        scale = max(1.0, scale / 2.0)
    out -= out.mean()
    return out / (out.std() + 1e-6)


def _fill(h: int, w: int, rgb: tuple[float, float, float]) -> _Img:
    return np.broadcast_to(np.asarray(rgb, dtype=np.float32), (h, w, 3)).copy()


def _jitter(rng: np.random.Generator, rgb: tuple[float, float, float], amount: float
            ) -> tuple[float, float, float]:
    """Slightly vary a palette colour (brightness and tint) per seed."""
    c = np.asarray(rgb) * (1.0 + rng.uniform(-amount, amount)) + rng.uniform(-0.3, 0.3,
                                                                             3) * amount
    return tuple(float(x) for x in np.clip(c, 0.0, 1.0))  # type: ignore[return-value]


def _paste(img: _Img, mask: np.ndarray, rgb: _Img | tuple[float, float, float]) -> None:
    """Alpha-composite colour or image ``rgb`` over ``img`` where ``mask`` (H,W) in [0,1]."""
    m = mask[..., None].astype(np.float32)
    img *= 1.0 - m
    img += m * (np.asarray(rgb, dtype=np.float32))


def _rect_mask(h: int, w: int, x0: int, y0: int, x1: int, y1: int, radius: int = 0,
               soft: float = 0.8) -> np.ndarray:
    """Filled (rounded) rectangle mask with an anti-aliased edge."""
    mask = np.zeros((h, w), dtype=np.float32)
    r = int(max(0, min(radius, (x1 - x0) // 2, (y1 - y0) // 2)))
    if r == 0:
        cv2.rectangle(mask, (x0, y0), (x1, y1), 1.0, -1)
    else:
        cv2.rectangle(mask, (x0 + r, y0), (x1 - r, y1), 1.0, -1)
        cv2.rectangle(mask, (x0, y0 + r), (x1, y1 - r), 1.0, -1)
        for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
            cv2.circle(mask, (cx, cy), r, 1.0, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(mask, (0, 0), soft) if soft > 0 else mask


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; large sigmas run on a downscaled copy (same look, a fraction of the cost)."""
    if sigma <= 3.0:
        return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0 else img
    h, w = img.shape[:2]
    factor = min(int(sigma / 1.5), 16)
    small = cv2.resize(img, (max(1, w // factor), max(1, h // factor)),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _paste_rect(img: _Img, x0: int, y0: int, x1: int, y1: int,
                rgb: _Img | tuple[float, float, float], *, radius: int = 0, soft: float = 0.8,
                opacity: float = 1.0) -> None:
    """Composite a soft (rounded) rectangle of colour or image ``rgb``; touches only its ROI."""
    h, w = img.shape[:2]
    m = int(np.ceil(3.0 * soft)) + 1
    rx0, ry0, rx1, ry1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m + 1), min(h, y1 + m + 1)
    if rx0 >= rx1 or ry0 >= ry1:
        return
    mask = _rect_mask(ry1 - ry0, rx1 - rx0, x0 - rx0, y0 - ry0, x1 - rx0, y1 - ry0, radius, soft)
    src = rgb[ry0:ry1, rx0:rx1] if isinstance(rgb, np.ndarray) and rgb.ndim == 3 else rgb
    _paste(img[ry0:ry1, rx0:rx1], mask * opacity, src)


def _add_disc(img: _Img, cx: float, cy: float, r: int, rgb: np.ndarray) -> None:
    """Add a bokeh disc (brighter rim, anti-aliased) to ``img`` in place."""
    h, w = img.shape[:2]
    x0, y0 = int(cx) - r - 2, int(cy) - r - 2
    size = 2 * r + 5
    patch = np.zeros((size, size), np.float32)
    c = (r + 2, r + 2)
    cv2.circle(patch, c, r, 1.0, -1, cv2.LINE_AA)
    cv2.circle(patch, c, r, 1.35, max(1, r // 6), cv2.LINE_AA)
    px0, py0, px1, py1 = max(0, x0), max(0, y0), min(w, x0 + size), min(h, y0 + size)
    if px0 >= px1 or py0 >= py1:
        return
    sub = patch[py0 - y0:py1 - y0, px0 - x0:px1 - x0]
    img[py0:py1, px0:px1] += sub[..., None] * rgb


def _wood(rng: np.random.Generator, h: int, w: int, light: tuple[float, float, float],
          dark: tuple[float, float, float], ring_px: float, n_knots: int) -> _Img:
    """Plank-sawn wood with grain along x: growth rings, fibres and knots."""
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    warp = _noise(rng, h, w, scale_px=max(h, w) / 3.0, octaves=3) * ring_px * 1.6
    coord = ys + warp + 0.015 * xs * rng.uniform(-1.0, 1.0)
    knots = []
    for _ in range(n_knots):  # rings bend around knots: blend toward a radial coordinate
        kx, ky = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        rx, ry = rng.uniform(2.5, 5.0) * ring_px, rng.uniform(0.8, 1.6) * ring_px
        x0, x1 = max(0, int(kx - 3 * rx)), min(w, int(kx + 3 * rx) + 1)
        y0, y1 = max(0, int(ky - 3 * ry)), min(h, int(ky + 3 * ry) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        knots.append((kx, ky, ring_px))
        d = np.sqrt(((xs[:, x0:x1] - kx) / rx) ** 2 + ((ys[y0:y1] - ky) / ry) ** 2)
        weight = np.exp(-(d**2))
        c = coord[y0:y1, x0:x1]
        coord[y0:y1, x0:x1] = (c * (1.0 - weight) + (d * ry * 1.2 + ky) * weight
                               + np.exp(-((d * 3.0) ** 2)) * ring_px * 0.5)
    phase = coord / ring_px * 2.0 * np.pi
    rings = 0.5 + 0.5 * np.sin(phase + 0.6 * _noise(rng, h, w, ring_px * 3.0, 2))
    rings = rings**3  # narrow dark latewood bands
    fibres = _noise(rng, h, w, scale_px=3.0, octaves=2, aspect=18.0)
    figure = _noise(rng, h, w, scale_px=max(h, w) / 5.0, octaves=3)
    t = np.clip(0.55 * rings + 0.08 * fibres + 0.12 * figure + 0.2, 0.0, 1.0)
    lo, hi = np.asarray(dark, np.float32), np.asarray(light, np.float32)
    img = hi + (lo - hi) * t[..., None]
    for kx, ky, r in knots:  # dark knot cores
        _paste_rect(img, int(kx - r), int(ky - 0.35 * r), int(kx + r), int(ky + 0.35 * r),
                    dark, radius=int(0.35 * r), soft=0.3 * r, opacity=0.7)
    return img.astype(np.float32)


def _camera_finish(img: _Img, rng: np.random.Generator, *, blur_px: float, vignette: float,
                   kelvin_shift: float, noise: float) -> np.ndarray:
    """Depth of field, colour temperature, vignetting, sensor noise; returns BGR uint8.

    ``kelvin_shift`` > 0 warms (more red, less blue), < 0 cools.
    """
    h, w = img.shape[:2]
    img = _blur(img, blur_px)
    gains = np.array([1.0 + kelvin_shift, 1.0 + 0.2 * kelvin_shift, 1.0 - kelvin_shift],
                     dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    cx, cy = w * rng.uniform(0.45, 0.55), h * rng.uniform(0.45, 0.55)
    r2 = ((xs - np.float32(cx)) / np.float32(0.5 * w)) ** 2 + (
        (ys - np.float32(cy)) / np.float32(0.5 * w)) ** 2  # circular lens
    falloff = 1.0 - np.float32(vignette) * np.minimum(r2, 2.0) ** np.float32(1.3)
    img = img * (falloff[..., None] * gains)
    # photon (signal dependent) + read noise; chroma noise is blotchy after demosaicing
    luma = _noise(rng, h, w, 1.0, octaves=1)
    chroma = cv2.resize(rng.standard_normal((h // 2, w // 2, 3), dtype=np.float32), (w, h))
    gray = cv2.cvtColor(np.clip(img, 0.0, 1.0), cv2.COLOR_RGB2GRAY)
    sigma = np.float32(noise) * (0.5 + cv2.sqrt(gray))
    img = img + sigma[..., None] * (luma[..., None] + np.float32(0.35) * chroma)
    img8 = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    tone = (np.linspace(0.0, 1.0, 256) ** (1.0 / 1.08) * 255.0 + 0.5).astype(np.uint8)
    return cv2.cvtColor(cv2.LUT(img8, tone), cv2.COLOR_RGB2BGR)  # mild tone curve


# --------------------------------------------------------------------------------------
# scenes
# --------------------------------------------------------------------------------------


def _office(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    s = w / 640.0
    wall_rgb = [(0.70, 0.71, 0.72), (0.64, 0.67, 0.66), (0.72, 0.72, 0.71), (0.62, 0.65, 0.69)]
    img = _fill(h, w, _jitter(rng, wall_rgb[rng.integers(len(wall_rgb))], 0.05))
    ys, xs = np.ogrid[0:h, 0:w]
    window_left = bool(rng.integers(2))
    side = (1.0 - xs / w) if window_left else xs / w
    light = (0.78 + 0.22 * (1.0 - ys / h) + 0.15 * side).astype(np.float32)
    img *= (light * (1.0 + 0.02 * _noise(rng, h, w, 60.0 * s, 3)))[..., None]
    desk_y = int(h * rng.uniform(0.72, 0.82))
    # window: overexposed sky, blurred foliage, frame and mullions
    ww, wh = int(w * rng.uniform(0.22, 0.3)), int(desk_y * rng.uniform(0.55, 0.75))
    wx = int(w * rng.uniform(0.03, 0.12)) if window_left else w - ww - int(w * 0.08)
    wy = int(desk_y * rng.uniform(0.05, 0.15))
    sky = _fill(wh + 1, ww + 1, (0.86, 0.92, 1.0))
    foliage = _noise(rng, wh + 1, ww + 1, 18.0 * s, 4) * 0.8
    foliage += (np.arange(wh + 1, dtype=np.float32)[:, None] / wh - 0.45) * 3.0
    _paste(sky, np.clip(foliage, 0.0, 1.0) * 0.6, (0.45, 0.50, 0.46))
    img[wy:wy + wh + 1, wx:wx + ww + 1] = sky
    glow = np.zeros((h, w), np.float32)
    glow[wy:wy + wh + 1, wx:wx + ww + 1] = 1.0
    img += 0.22 * _blur(glow, 40.0 * s)[..., None]
    fr, frame_rgb = max(2, int(5 * s)), (0.9, 0.9, 0.9)
    cv2.rectangle(img, (wx, wy), (wx + ww, wy + wh), frame_rgb, fr)
    cv2.line(img, (wx + ww // 2, wy), (wx + ww // 2, wy + wh), frame_rgb, fr)
    cv2.line(img, (wx, wy + wh // 2), (wx + ww, wy + wh // 2), frame_rgb, fr)
    # bookshelf on the other side
    bw, bh = int(w * rng.uniform(0.2, 0.28)), int(desk_y * rng.uniform(0.75, 0.95))
    bx = w - bw - int(w * 0.04) if window_left else int(w * 0.04)
    by = desk_y - bh
    shelf_rgb = _jitter(rng, (0.26, 0.24, 0.22), 0.1)
    cv2.rectangle(img, (bx, by), (bx + bw, desk_y), shelf_rgb, -1)
    book_palette = [(0.18, 0.22, 0.32), (0.40, 0.18, 0.16), (0.75, 0.74, 0.70),
                    (0.12, 0.12, 0.13), (0.30, 0.36, 0.28), (0.55, 0.52, 0.40),
                    (0.22, 0.30, 0.40), (0.62, 0.62, 0.64)]
    n_shelves = int(rng.integers(3, 5))
    shelf_h = bh / n_shelves
    board_rgb = tuple(min(1.0, c * 1.5) for c in shelf_rgb)
    for k in range(n_shelves):
        top, bottom = int(by + k * shelf_h + 6 * s), int(by + (k + 1) * shelf_h - 4 * s)
        x = bx + int(6 * s)
        while x < bx + bw - int(14 * s):
            bk_w = max(2, int(rng.uniform(5, 16) * s))
            if rng.random() < 0.12:
                x += bk_w * 2  # a gap
                continue
            bk_top = int(bottom - (bottom - top) * rng.uniform(0.6, 0.95))
            col = _jitter(rng, book_palette[rng.integers(len(book_palette))], 0.15)
            cv2.rectangle(img, (x, bk_top), (min(x + bk_w, bx + bw - 6), bottom), col, -1)
            x += bk_w + 1
        cv2.rectangle(img, (bx, bottom), (bx + bw, bottom + int(4 * s)), board_rgb, -1)
    # monitor on the desk, between window and shelf
    mw, mh = int(w * rng.uniform(0.24, 0.32)), int(h * rng.uniform(0.2, 0.26))
    mx = int(w * rng.uniform(0.36, 0.48) - mw / 2 + (0.08 * w if window_left else -0.02 * w))
    my = desk_y - mh - int(h * 0.07)
    cv2.rectangle(img, (mx + mw // 2 - int(6 * s), my + mh), (mx + mw // 2 + int(6 * s), desk_y),
                  (0.12, 0.12, 0.13), -1)
    _paste_rect(img, mx, my, mx + mw, my + mh, (0.05, 0.05, 0.06), radius=int(4 * s))
    b = int(5 * s)
    cv2.rectangle(img, (mx + b, my + b), (mx + mw - b, my + mh - b), (0.10, 0.13, 0.18), -1)
    for _ in range(int(rng.integers(2, 4))):  # application windows on the screen
        x0 = int(rng.uniform(mx + b, mx + mw * 0.6))
        y0 = int(rng.uniform(my + b, my + mh * 0.55))
        x1 = min(mx + mw - b, x0 + int(mw * rng.uniform(0.25, 0.5)))
        y1 = min(my + mh - b, y0 + int(mh * rng.uniform(0.3, 0.5)))
        cv2.rectangle(img, (x0, y0), (x1, y1), _jitter(rng, (0.70, 0.73, 0.78), 0.1), -1)
    img = _blur(img, 4.0 * s)  # the wall is far: out of focus
    # desk in front: wood with a lit front edge
    species = [((0.52, 0.40, 0.28), (0.32, 0.22, 0.14)), ((0.62, 0.55, 0.44), (0.42, 0.35, 0.26)),
               ((0.36, 0.27, 0.20), (0.20, 0.14, 0.10))]
    light_w, dark_w = species[rng.integers(len(species))]
    desk = _wood(rng, h - desk_y, w, light_w, dark_w, ring_px=9.0 * s, n_knots=1)
    desk *= np.linspace(1.05, 0.75, h - desk_y, dtype=np.float32)[:, None, None]
    shadow = np.clip(1.0 - np.arange(h - desk_y, dtype=np.float32) / (10.0 * s), 0.0, 1.0)
    desk *= (1.0 - 0.25 * shadow)[:, None, None]  # contact shadow under the wall objects
    img[desk_y:] = _blur(desk, 1.2 * s)
    cv2.line(img, (0, desk_y), (w, desk_y), tuple(min(1.0, c * 1.6) for c in light_w),
             max(1, int(2 * s)), cv2.LINE_AA)
    return _camera_finish(img, rng, blur_px=0.8 * s, vignette=0.25,
                          kelvin_shift=rng.uniform(-0.04, 0.02), noise=0.012)


def _wood_desk(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    s = w / 640.0
    species = [((0.55, 0.41, 0.27), (0.33, 0.22, 0.13)), ((0.60, 0.53, 0.42), (0.40, 0.33, 0.24)),
               ((0.40, 0.30, 0.21), (0.21, 0.15, 0.10)), ((0.50, 0.47, 0.42), (0.30, 0.27, 0.24))]
    light_w, dark_w = species[rng.integers(len(species))]
    th, tw = h, w  # texture space, warped into perspective below
    n_planks = int(rng.integers(3, 6))
    edges = np.sort(rng.uniform(0.0, 1.0, n_planks - 1)) * 0.6 + np.linspace(
        0.0, 1.0, n_planks + 1)[1:-1] * 0.4
    bounds = [0] + [int(e * th) for e in edges] + [th]
    tex = np.zeros((th, tw, 3), np.float32)
    for y0, y1 in zip(bounds[:-1], bounds[1:]):
        tex[y0:y1] = _wood(rng, y1 - y0, tw, _jitter(rng, light_w, 0.06), dark_w,
                           ring_px=rng.uniform(7.0, 14.0) * s, n_knots=int(rng.integers(0, 3)))
        if y0 > 0:  # seam: dark groove, lit lower bevel
            tex[y0 - 1:y0 + 1] *= 0.35
            tex[y0 + 1:y0 + 2] = np.minimum(1.0, tex[y0 + 1:y0 + 2] * 1.25)
    # varnish sheen: a broad reflection of a window
    ys, xs = np.ogrid[0:th, 0:tw]
    sx, sy = tw * rng.uniform(0.3, 0.7), th * rng.uniform(0.15, 0.4)
    sheen = (np.exp(-(((xs - sx) / (0.35 * tw)) ** 2)) * np.exp(-(((ys - sy) / (0.18 * th)) ** 2)))
    light = 1.0 + 0.04 * _noise(rng, th, tw, 80.0 * s, 2)  # uneven light
    tex *= light[..., None]
    tex += (0.18 * sheen.astype(np.float32))[..., None] * np.array([0.95, 0.97, 1.0], np.float32)
    # perspective: the far (top) edge of the desk recedes
    squeeze = rng.uniform(0.1, 0.2) * w
    src = np.float32([[0, 0], [tw, 0], [tw, th], [0, th]])
    dst = np.float32([[squeeze, 0], [w - squeeze, 0], [w + 0.5 * squeeze, h],
                      [-0.5 * squeeze, h]])
    img = cv2.warpPerspective(tex, cv2.getPerspectiveTransform(src, dst), (w, h),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    img *= np.linspace(0.85, 1.05, h, dtype=np.float32)[:, None, None]
    k = int(0.55 * h)  # depth of field: the far (upper) part of the desk is soft
    ramp = np.linspace(1.0, 0.0, k, dtype=np.float32)[:, None, None]
    img[:k] += (_blur(img[: k + 8], 3.0 * s)[:k] - img[:k]) * ramp
    return _camera_finish(img, rng, blur_px=0.7 * s, vignette=0.4,
                          kelvin_shift=rng.uniform(-0.03, 0.03), noise=0.014)


def _living_room(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    s = w / 640.0
    walls = [(0.30, 0.33, 0.34), (0.26, 0.30, 0.30), (0.32, 0.32, 0.35), (0.28, 0.31, 0.28)]
    img = _fill(h, w, _jitter(rng, walls[rng.integers(len(walls))], 0.08))
    ys, xs = np.ogrid[0:h, 0:w]
    lamp_x = w * rng.choice([rng.uniform(0.05, 0.25), rng.uniform(0.75, 0.95)])
    lamp_y = h * rng.uniform(0.25, 0.4)
    pool = (np.exp(-(((xs - lamp_x) / (0.45 * w)) ** 2))
            * np.exp(-(((ys - lamp_y) / (0.5 * h)) ** 2))).astype(np.float32)
    img *= ((0.55 + 0.75 * pool) * (1.0 + 0.05 * _noise(rng, h, w, 40.0 * s, 3)))[..., None]
    img += 0.1 * pool[..., None] * np.array([1.0, 0.85, 0.6], np.float32)  # warm lamp spill
    # framed picture
    px, py = int(w * rng.uniform(0.35, 0.55)), int(h * rng.uniform(0.08, 0.18))
    pw, ph = int(w * rng.uniform(0.16, 0.24)), int(h * rng.uniform(0.16, 0.24))
    cv2.rectangle(img, (px, py), (px + pw, py + ph), (0.08, 0.08, 0.08), -1)
    m = int(6 * s)
    art = _fill(ph - 2 * m + 1, pw - 2 * m + 1, _jitter(rng, (0.55, 0.60, 0.62), 0.1))
    horizon = int(art.shape[0] * rng.uniform(0.4, 0.7))
    art[horizon:] *= np.float32(0.55)  # a landscape print: sky over land
    art *= (0.85 + 0.15 * _noise(rng, art.shape[0], art.shape[1], 12.0 * s, 2))[..., None]
    img[py + m:py + ph - m + 1, px + m:px + pw - m + 1] = art
    # floor lamp: pole + glowing shade
    cv2.line(img, (int(lamp_x), int(lamp_y)), (int(lamp_x), h), (0.06, 0.06, 0.06),
             max(2, int(4 * s)))
    sw, sh = int(45 * s), int(55 * s)
    pts = np.int32([[lamp_x - sw * 0.6, lamp_y - sh], [lamp_x + sw * 0.6, lamp_y - sh],
                    [lamp_x + sw, lamp_y], [lamp_x - sw, lamp_y]])
    cv2.fillConvexPoly(img, pts, (1.0, 0.93, 0.78), cv2.LINE_AA)
    # sofa: back, cushions, seat, arms in a dark, desaturated fabric
    fabrics = [(0.20, 0.23, 0.27), (0.24, 0.25, 0.26), (0.19, 0.24, 0.23), (0.30, 0.30, 0.33)]
    fab = np.asarray(_jitter(rng, fabrics[rng.integers(len(fabrics))], 0.1), np.float32)
    sx0, sx1 = int(w * rng.uniform(0.05, 0.2)), int(w * rng.uniform(0.8, 0.95))
    top = int(h * rng.uniform(0.48, 0.58))
    seat = int(h * rng.uniform(0.72, 0.78))
    rows = np.arange(h, dtype=np.float32)[:, None, None]
    shade = np.clip(1.1 - 0.5 * (rows - top) / (h - top), 0.4, 1.2)
    fabric_img = fab * shade * (1.0 + 0.08 * _noise(rng, h, w, 2.0, 2))[..., None]
    _paste_rect(img, sx0, top, sx1, h + 20, fabric_img, radius=int(28 * s), soft=1.5)
    n_cushions = int(rng.integers(2, 4))
    cw = (sx1 - sx0 - int(76 * s)) / n_cushions
    for k in range(n_cushions):
        cx0, cx1 = int(sx0 + 38 * s + k * cw) + 2, int(sx0 + 38 * s + (k + 1) * cw) - 2
        _paste_rect(img, cx0 - 3, top + int(8 * s), cx1 + 3, seat + 6, fabric_img * 0.5,
                    radius=int(22 * s), soft=3.0)  # seam shadow
        _paste_rect(img, cx0, top + int(12 * s), cx1, seat, fabric_img * 1.12,
                    radius=int(22 * s), soft=1.2)
        _paste_rect(img, cx0, seat - int(4 * s), cx1, h + 20, fabric_img * 1.3,
                    radius=int(16 * s), soft=1.2)
    for ax in (sx0, sx1 - int(38 * s)):
        _paste_rect(img, ax, top + int(45 * s), ax + int(38 * s), h + 20, fabric_img * 1.22,
                    radius=int(18 * s), soft=1.2)
    img = _blur(img, 6.0 * s)  # shallow depth of field
    # bokeh: string lights and far lamps as soft-edged discs, added to the light
    bokeh = np.zeros((h, w, 3), np.float32)
    n_lights = int(rng.integers(10, 24))
    x = np.sort(rng.uniform(-0.05, 1.05, n_lights)) * w
    sag = h * rng.uniform(0.05, 0.15)
    y = h * rng.uniform(0.05, 0.22) + sag * np.sin(np.pi * x / w)
    y += rng.normal(0.0, 6.0 * s, n_lights)
    warm, cool = np.array([1.0, 0.8, 0.5], np.float32), np.array([0.85, 0.9, 1.0], np.float32)
    for k in range(n_lights):
        col = warm if rng.random() < 0.8 else cool
        _add_disc(bokeh, x[k], y[k], int(rng.uniform(7, 20) * s), col * rng.uniform(0.25, 0.6))
    bokeh = cv2.GaussianBlur(bokeh, (0, 0), 1.5 * s)
    img = img + bokeh * (1.0 - 0.5 * np.clip(img, 0, 1))  # screen-like add
    img = 0.75 * img + 0.25 * img.mean(axis=2, keepdims=True)  # keep the warm grade muted
    return _camera_finish(img, rng, blur_px=0.0, vignette=0.45,
                          kelvin_shift=rng.uniform(0.03, 0.07), noise=0.02)


def _plain_wall(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    s = w / 640.0
    paints = [(0.84, 0.84, 0.82), (0.78, 0.79, 0.80), (0.73, 0.78, 0.83), (0.74, 0.78, 0.72),
              (0.66, 0.68, 0.70)]
    img = _fill(h, w, _jitter(rng, paints[rng.integers(len(paints))], 0.05))
    # roller texture as a relief lit from the upper left (orange peel)
    height_map = cv2.GaussianBlur(_noise(rng, h, w, 2.5 * s, 2), (0, 0), 0.8 * s)
    gx = cv2.Sobel(height_map, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(height_map, cv2.CV_32F, 0, 1, ksize=1)
    relief = 1.0 - 0.025 * (gx + gy) + 0.015 * _noise(rng, h, w, 70.0 * s, 3)
    # soft daylight gradient and a window-frame shadow across the wall
    ys, xs = np.ogrid[0:h, 0:w]
    angle = rng.uniform(-0.6, 0.6)
    ramp = (np.cos(angle) * xs / w + np.sin(angle) * ys / h).astype(np.float32)
    ramp = 0.8 + 0.3 * (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    shadow = np.zeros((h, w), np.float32)
    skew = rng.uniform(-0.4, 0.4) * h
    x0 = rng.uniform(0.15, 0.7) * w
    bar = int(rng.uniform(10, 22) * s)
    cv2.line(shadow, (int(x0), -10), (int(x0 + skew), h + 10), 1.0, bar)
    y0 = rng.uniform(0.25, 0.6) * h
    cv2.line(shadow, (int(x0 - 2 * w), int(y0 + 0.3 * w)), (int(x0 + 2 * w), int(y0 - 0.3 * w)),
             1.0, bar)
    img *= (relief * ramp * (1.0 - 0.18 * _blur(shadow, 14.0 * s)))[..., None]
    if rng.random() < 0.6:  # a wall socket or light switch
        bx, by = int(rng.uniform(0.1, 0.85) * w), int(rng.uniform(0.55, 0.85) * h)
        bw = bh = int(34 * s)
        _paste_rect(img, bx + 3, by + 4, bx + bw + 3, by + bh + 4, (0.0, 0.0, 0.0),
                    radius=int(4 * s), soft=3.0 * s, opacity=0.25)  # drop shadow
        plate = tuple(float(c) for c in np.minimum(1.0, img[by + bh // 2, bx + bw // 2] * 1.08))
        _paste_rect(img, bx, by, bx + bw, by + bh, plate, radius=int(4 * s), soft=0.7)
        _paste_rect(img, bx + bw // 3, by + bh // 4, bx + 2 * bw // 3, by + 3 * bh // 4,
                    (0.0, 0.0, 0.0), radius=int(2 * s), soft=0.7, opacity=0.06)
    return _camera_finish(img, rng, blur_px=1.0 * s, vignette=0.3,
                          kelvin_shift=rng.uniform(-0.03, 0.03), noise=0.012)


_KINDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "office": _office,
    "wood_desk": _wood_desk,
    "living_room": _living_room,
    "plain_wall": _plain_wall,
}


def list_kinds() -> list[str]:
    """Names accepted by :func:`make_background`."""
    return list(_KINDS)


def make_background(kind: str, width: int = 640, height: int = 480, seed: int = 0
                    ) -> np.ndarray:
    """A photo-like background, (height, width, 3) uint8 BGR, the same for the same seed.

    Args:
        kind: one of :func:`list_kinds`.
        width, height: image size in pixels (>= 64); scene details scale with the width.
        seed: any integer; different seeds move, recolour and re-texture the scene.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {list_kinds()}, got {kind!r}")
    if int(width) < 64 or int(height) < 64:
        raise ValueError(f"width and height must be >= 64 pixels, got {width}x{height}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, list_kinds().index(kind)])
    return _KINDS[kind](rng, int(height), int(width))
