"""Tests for the Numba rasterizer (realtime.render.raster) and the synthetic backgrounds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.render import raster
from scripts import backgrounds

WIDTH, HEIGHT = 320, 240
K = np.array([[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]])

SILHOUETTE_MIN_IOU = 0.95  # vs an independent cv2.fillPoly silhouette
ALPHA_TOL_LEVELS = 1.0  # rounding: 8-bit levels
BACKGROUND_MIN_STD = 8.0  # 8-bit levels; a flat colour would be ~0-2 (noise only)


def icosphere(subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere, faces counter-clockwise seen from outside."""
    t = (1.0 + 5.0**0.5) / 2.0
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
             (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
             (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
             (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    v = [np.asarray(p, dtype=np.float64) / np.linalg.norm(p) for p in verts]
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = v[a] + v[b]
                v.append(m / np.linalg.norm(m))
                cache[key] = len(v) - 1
            return cache[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    return np.asarray(v), np.asarray(faces, dtype=np.int64)


def quad(center: tuple[float, float, float], half_size: float) -> tuple[np.ndarray, np.ndarray]:
    """A square facing the camera (outward normal -z) at constant depth."""
    cx, cy, cz = center
    h = half_size
    verts = np.array([[cx - h, cy - h, cz], [cx + h, cy - h, cz], [cx + h, cy + h, cz],
                      [cx - h, cy + h, cz]])
    faces = np.array([[0, 2, 1], [0, 3, 2]], dtype=np.int64)  # normal (0, 0, -1)
    return verts, faces


def black() -> np.ndarray:
    return np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    raster.warmup()


def test_silhouette_matches_fillpoly() -> None:
    unit, faces = icosphere(2)
    verts = unit * 0.05 + np.array([0.01, -0.005, 0.4])
    mask = raster.render_mesh(black(), verts, faces, K, (0.8, 0.6, 0.5))
    uv, _ = cv2.projectPoints(verts, np.zeros(3), np.zeros(3), K, None)
    shift = 4
    polys = [np.round(uv.reshape(-1, 2)[f] * (1 << shift)).astype(np.int32) for f in faces]
    reference = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for poly in polys:  # one call per triangle: a single call would fill even-odd
        cv2.fillPoly(reference, [poly], 1, cv2.LINE_8, shift)
    ref = reference.astype(bool)
    iou = np.logical_and(mask, ref).sum() / np.logical_or(mask, ref).sum()
    assert mask.sum() > 1000
    assert iou >= SILHOUETTE_MIN_IOU


def test_vertex_normals_of_sphere_are_radial() -> None:
    unit, faces = icosphere(2)
    normals = raster.vertex_normals(unit * 2.0 + 1.0, faces)
    assert normals.shape == unit.shape
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-9)
    assert np.min(np.einsum("ij,ij->i", normals, unit)) > 0.99


@pytest.mark.parametrize("near_first", [True, False])
def test_zbuffer_near_mesh_wins_regardless_of_order(near_first: bool) -> None:
    near = quad((-0.01, 0.0, 0.40), 0.04)
    far = quad((0.01, 0.0, 0.50), 0.05)
    red, blue = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    image = black()
    zbuf = raster.new_zbuffer(HEIGHT, WIDTH)
    draws = [(near, red), (far, blue)] if near_first else [(far, blue), (near, red)]
    masks = [raster.render_mesh(image, v, f, K, c, zbuffer=zbuf) for (v, f), c in draws]
    near_mask = masks[0] if near_first else masks[1]
    far_alone = raster.render_depth(*far, K, HEIGHT, WIDTH) < np.inf
    near_alone = raster.render_depth(*near, K, HEIGHT, WIDTH) < np.inf
    overlap = near_alone & far_alone
    assert overlap.sum() > 500
    # in the overlap the near (red) quad is seen: BGR red channel dominates
    assert np.all(image[overlap][:, 2] > image[overlap][:, 0])
    assert np.array_equal(near_mask, near_alone)
    np.testing.assert_allclose(zbuf[overlap], 0.40, atol=1e-5)
    only_far = far_alone & ~near_alone
    np.testing.assert_allclose(zbuf[only_far], 0.50, atol=1e-5)
    assert np.all(image[only_far][:, 0] > image[only_far][:, 2])


def test_nan_vertices_skip_their_triangles() -> None:
    unit, faces = icosphere(2)
    verts = unit * 0.05 + np.array([0.0, 0.0, 0.4])
    full = raster.render_mesh(black(), verts, faces, K, (0.8, 0.6, 0.5))
    broken = verts.copy()
    bad = [0, 5, 40, 100]
    broken[bad] = np.nan
    broken[7, 2] = -0.3  # behind the camera: also skipped
    image = black()
    mask = raster.render_mesh(image, broken, faces, K, (0.8, 0.6, 0.5))
    assert 0 < mask.sum() < full.sum()
    assert not np.any(mask & ~full)
    assert np.all(image[~mask] == 0)
    # only triangles that touch a NaN vertex: nothing at all is drawn
    touching = faces[np.isin(faces, bad).any(axis=1)]
    image = black()
    assert raster.render_mesh(image, broken, touching, K, (0.8, 0.6, 0.5)).sum() == 0
    assert image.max() == 0
    assert np.all(np.isfinite(raster.vertex_normals(broken, faces)))


def test_degenerate_triangles_draw_nothing() -> None:
    verts = np.array([[0.0, 0.0, 0.4], [0.01, 0.0, 0.4], [0.02, 0.0, 0.4], [0.0, 0.0, 0.4]])
    faces = np.array([[0, 1, 2], [0, 3, 1], [0, 0, 0]], dtype=np.int64)
    image = black()
    assert raster.render_mesh(image, verts, faces, K, (1.0, 1.0, 1.0)).sum() == 0
    assert image.max() == 0


def test_alpha_half_is_half_of_opaque() -> None:
    verts, faces = quad((0.0, 0.0, 0.4), 0.05)
    opaque, half = black(), black()
    mask = raster.render_mesh(opaque, verts, faces, K, (1.0, 1.0, 1.0), alpha=1.0)
    raster.render_mesh(half, verts, faces, K, (1.0, 1.0, 1.0), alpha=0.5)
    assert mask.sum() > 1000
    lit = opaque[mask].astype(np.float64)
    assert lit.min() > 100  # the quad is actually lit
    np.testing.assert_allclose(half[mask], lit * 0.5, atol=ALPHA_TOL_LEVELS)
    assert np.all(half[~mask] == 0)


def test_backface_culling_option() -> None:
    verts, faces = quad((0.0, 0.0, 0.4), 0.05)
    flipped = faces[:, ::-1].copy()
    assert raster.render_mesh(black(), verts, faces, K, (1, 1, 1), cull_backfaces=True).any()
    assert not raster.render_mesh(black(), verts, flipped, K, (1, 1, 1),
                                  cull_backfaces=True).any()
    assert raster.render_mesh(black(), verts, flipped, K, (1, 1, 1)).any()


@pytest.mark.parametrize(
    ("field", "value"),
    [("shininess", -1.0), ("key_color", (2.0, 0.0, 0.0)), ("rim_direction", (0.0, 0.0, 0.0)),
     ("wrap", 1.5), ("fill_intensity", float("nan"))],
)
def test_lighting_rejects_bad_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        raster.Lighting(**{field: value})


def test_bad_inputs_raise_value_error() -> None:
    verts, faces = quad((0.0, 0.0, 0.4), 0.05)
    with pytest.raises(ValueError, match="faces"):
        raster.render_mesh(black(), verts, faces + 10, K, (1, 1, 1))
    with pytest.raises(ValueError, match="zbuffer"):
        raster.render_mesh(black(), verts, faces, K, (1, 1, 1),
                           zbuffer=np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="colors"):
        raster.render_mesh(black(), verts, faces, K, np.ones((3, 3)))


def test_draw_skeleton_draws_and_skips_nan() -> None:
    image = black()
    points = np.array([[10.0, 10.0], [100.0, 50.0], [np.nan, 3.0]])
    raster.draw_skeleton(image, points, [(0, 1), (1, 2)], (0, 255, 0), 2)
    assert image[..., 1].max() == 255 and image[..., 0].max() == 0


@pytest.mark.parametrize("kind", backgrounds.list_kinds())
def test_backgrounds_deterministic_and_textured(kind: str) -> None:
    a = backgrounds.make_background(kind, width=320, height=240, seed=3)
    b = backgrounds.make_background(kind, width=320, height=240, seed=3)
    c = backgrounds.make_background(kind, width=320, height=240, seed=4)
    assert a.shape == (240, 320, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert float(a.std()) > BACKGROUND_MIN_STD


def test_background_kinds_and_errors() -> None:
    assert len(backgrounds.list_kinds()) >= 4
    with pytest.raises(ValueError, match="kind"):
        backgrounds.make_background("moon_base")
