"""Occlusion-aware texture: UV layout, visibility against both hands, fusion over time."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import AssetError
from models.hand_model import HandModel, flip_faces, mirror_x
from models.uv_layout import load_uv_layout
from realtime.mesh.texture import (
    TextureConfig,
    TextureError,
    TextureFuser,
    TextureStage,
    bake_texture,
    sample_vertex_colors,
    zbuffer_of,
)
from realtime.render import raster
from realtime.types import Frame, HandMesh

W, H = 320, 240
K = np.array([[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]])
FLAT = raster.Lighting(key_intensity=0.0, fill_intensity=0.0, rim_intensity=0.0,
                       sky_color=(1.0, 1.0, 1.0), ground_color=(1.0, 1.0, 1.0),
                       specular_strength=0.0)
COLOR_TOL = 0.03  # colour error allowed for a visible vertex (interpolation, rounding)


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


def _hand(model: HandModel, centre, left: bool = False) -> np.ndarray:
    v = model.forward().vertices[0]
    v = mirror_x(v) if left else v
    return v - v.mean(0) + np.asarray(centre)


def _mesh(verts, side, tid, std=0.002) -> HandMesh:
    return HandMesh(verts, np.zeros((21, 3)), np.full(len(verts), std), np.zeros((20, 3)),
                    np.zeros(10), np.zeros((21, 2)), side, 0.9, tid, 0.0, 0)


def _render(model, hands) -> np.ndarray:
    image = np.zeros((H, W, 3), np.uint8)
    zb = raster.new_zbuffer(H, W)
    for verts, side, color in hands:
        faces = model.faces if side == "right" else flip_faces(model.faces)
        raster.render_mesh(image, verts, faces, K, color, lighting=FLAT, zbuffer=zb)
    return image


def test_uv_layout_matches_the_mesh(model):
    layout = load_uv_layout()
    layout.check_mesh(model.faces)  # raises if the topology differs
    assert layout.uv.min() >= 0.0 and layout.uv.max() <= 1.0
    assert set(np.unique(layout.vmapping)) == set(range(model.num_vertices))
    with pytest.raises(AssetError, match="does not match"):
        layout.check_mesh(model.faces[:-1])


def test_uv_layout_refuses_another_mesh(tmp_path):
    other = tmp_path / "other.npz"
    other.write_bytes(b"not the hand")
    with pytest.raises(AssetError, match="another mesh"):
        load_uv_layout(mesh_path=other)


def test_front_vertices_sample_their_colour_and_hidden_ones_do_not(model):
    back = _hand(model, [0.0, 0.0, 0.40])
    front = _hand(model, [0.03, 0.0, 0.32], left=True)  # covers part of the back hand
    image = _render(model, [(back, "right", (0.9, 0.2, 0.1)), (front, "left", (0.1, 0.3, 0.9))])
    faces_r, faces_l = model.faces, flip_faces(model.faces)
    zb = zbuffer_of([(back, faces_r), (front, faces_l)], K, H, W, 0.5)
    colors, weights, pixels = sample_vertex_colors(image, zb, back, faces_r, K)
    seen = weights > 0
    assert seen.sum() > 50
    # every vertex that took a colour took the back hand's, never the front hand's
    assert np.abs(colors[seen] - [0.9, 0.2, 0.1]).max() < COLOR_TOL
    # vertices behind the front hand on screen (where it is drawn) are not sampled
    alone = zbuffer_of([(front, faces_l)], K, H, W, 1.0)[0]
    px = np.round(pixels).astype(int)
    inside = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H)
    covered = np.zeros(len(back), bool)
    covered[inside] = np.isfinite(alone[px[inside, 1], px[inside, 0]])
    assert covered.sum() > 50 and not np.any(seen & covered)
    # the front hand samples its own colour
    c2, w2, _ = sample_vertex_colors(image, zb, front, faces_l, K)
    assert (w2 > 0).sum() > 50
    assert np.abs(c2[w2 > 0] - [0.1, 0.3, 0.9]).max() < COLOR_TOL


def test_back_facing_and_off_image_vertices_are_not_sampled(model):
    hand = _hand(model, [0.0, 0.0, 0.4])
    image = _render(model, [(hand, "right", (0.5, 0.5, 0.5))])
    zb = zbuffer_of([(hand, model.faces)], K, H, W)
    _, weights, _ = sample_vertex_colors(image, zb, hand, model.faces, K)
    normals = raster.vertex_normals(hand, model.faces)
    facing = -np.einsum("vi,vi->v", normals, hand / np.linalg.norm(hand, axis=1, keepdims=True))
    assert np.all(weights[facing < TextureConfig().min_facing_cos] == 0)
    off = hand + [1.0, 0.0, 0.0]  # far to the right, outside the image
    _, w_off, _ = sample_vertex_colors(image, zb, off, model.faces, K)
    assert not np.any(w_off > 0)


def test_fuser_keeps_the_estimate_where_occluded_and_averages_where_seen(model):
    faces = {"right": model.faces, "left": flip_faces(model.faces)}
    fuser = TextureFuser(lambda s: faces[s])
    back = _hand(model, [0.0, 0.0, 0.40])
    img1 = _render(model, [(back, "right", (0.8, 0.4, 0.2))])
    fuser.update(img1, K, [_mesh(back, "right", 7)], 0)
    tex = fuser.textures[7]
    first_seen = tex.seen.copy()
    assert np.abs(tex.colors[first_seen] - [0.8, 0.4, 0.2]).max() < COLOR_TOL
    # frame 2: a left hand in front hides part of it; the back hand has turned green
    front = _hand(model, [0.0, 0.0, 0.30], left=True)
    img2 = _render(model, [(back, "right", (0.2, 0.8, 0.2)), (front, "left", (0.0, 0.0, 1.0))])
    before = tex.colors.copy()
    fuser.update(img2, K, [_mesh(back, "right", 7), _mesh(front, "left", 8)], 1)
    colors, weights, _ = sample_vertex_colors(
        img2, zbuffer_of([(back, faces["right"]), (front, faces["left"])], K, H, W, 0.5),
        back, faces["right"], K)
    hidden = first_seen & (weights == 0)
    assert hidden.sum() > 20
    np.testing.assert_array_equal(tex.colors[hidden], before[hidden])
    seen2 = first_seen & (weights > 0)
    # seen in both: a weighted mean between the two colours, never the blue occluder
    mid = tex.colors[seen2]
    assert np.all(mid[:, 1] > 0.4 + COLOR_TOL) and np.all(mid[:, 1] < 0.8 - COLOR_TOL)
    assert np.all(mid[:, 2] < 0.2 + COLOR_TOL)


def test_uncertain_and_distant_samples_weigh_less(model):
    near = _hand(model, [0.0, 0.0, 0.35])
    image = _render(model, [(near, "right", (0.5, 0.5, 0.5))])
    zb = zbuffer_of([(near, model.faces)], K, H, W)
    _, w_sure, _ = sample_vertex_colors(image, zb, near, model.faces, K, np.full(len(near), 1e-4))
    _, w_unsure, _ = sample_vertex_colors(image, zb, near, model.faces, K,
                                          np.full(len(near), 0.02))
    seen = w_sure > 0
    assert np.all(w_unsure[seen] < 0.2 * w_sure[seen])


def test_tracks_are_forgotten_and_bake_and_save(model, tmp_path):
    faces = {"right": model.faces, "left": flip_faces(model.faces)}
    fuser = TextureFuser(lambda s: faces[s], TextureConfig(forget_after_frames=5))
    hand = _hand(model, [0.0, 0.0, 0.4])
    image = _render(model, [(hand, "right", (0.6, 0.3, 0.3))])
    fuser.update(image, K, [_mesh(hand, "right", 1)], 0)
    layout = load_uv_layout()
    atlas = bake_texture(fuser.textures[1].colors, fuser.textures[1].seen, layout, 128)
    assert atlas.shape == (128, 128, 4) and atlas.dtype == np.uint8
    painted = atlas[..., 3] == 255
    assert painted.any() and not painted.all()
    bgr = np.array([0.3, 0.3, 0.6]) * 255
    assert np.abs(atlas[painted][:, :3].astype(float) - bgr).max() < 10
    written = fuser.save(tmp_path / "tex.png", layout)
    assert written == [tmp_path / "tex.png"] and written[0].stat().st_size > 0
    with pytest.raises(TextureError, match="png"):
        fuser.save(tmp_path / "tex.jpg", layout)
    fuser.update(image, K, [], 10)  # track 1 unseen for 10 > 5 frames
    assert 1 not in fuser.textures


def test_stage_attaches_vertex_colors(model):
    from calibration.camera import Camera
    from calibration.intrinsics import CameraIntrinsics
    from realtime.types import Packet

    stage = TextureStage(TextureFuser(model.faces_for))
    hand = _hand(model, [0.0, 0.0, 0.4])
    image = _render(model, [(hand, "right", (0.6, 0.3, 0.3))])
    camera = Camera.pinhole(CameraIntrinsics.from_matrix(K, W, H))  # the frame's camera
    p = Packet(frame=Frame(image, 0, 0.0, camera=camera), t_capture=0.0,
               hands=(_mesh(hand, "right", 3),))
    out = stage(p)
    assert out.hands[0].vertex_colors.shape == (model.num_vertices, 3)
    assert p.hands[0].vertex_colors is None  # the input packet is not modified


def test_bad_inputs_are_refused(model):
    hand = _hand(model, [0.0, 0.0, 0.4])
    zb = zbuffer_of([(hand, model.faces)], K, H, W)
    with pytest.raises(TextureError, match="uint8"):
        sample_vertex_colors(np.zeros((H, W, 3)), zb, hand, model.faces, K)
    with pytest.raises(TextureError, match="vertex_std"):
        sample_vertex_colors(np.zeros((H, W, 3), np.uint8), zb, hand, model.faces, K,
                             np.zeros(3))
    with pytest.raises(ValueError, match="min_facing_cos"):
        TextureConfig(min_facing_cos=1.5)
    with pytest.raises(ValueError, match="zbuffer_scale"):
        TextureConfig(zbuffer_scale=0.0)


def test_texture_topic_sends_on_change_over_zeromq(model):
    import zmq

    from realtime.stream.texture_topic import TextureTopic, decode_texture

    faces = {"right": model.faces, "left": flip_faces(model.faces)}
    fuser = TextureFuser(lambda s: faces[s])
    hand = _hand(model, [0.0, 0.0, 0.4])
    image = _render(model, [(hand, "right", (0.6, 0.3, 0.3))])
    topic = TextureTopic(min_interval_s=0.5)
    assert topic.message(fuser.textures, now=0.0) is None  # nothing yet
    fuser.update(image, K, [_mesh(hand, "right", 4)], 0)
    msg = topic.message(fuser.textures, now=1.0)
    assert msg is not None
    assert topic.message(fuser.textures, now=2.0) is None  # unchanged: not sent again
    fuser.update(image, K, [_mesh(hand, "right", 4)], 1)
    assert topic.message(fuser.textures, now=1.2) is None  # changed, but too soon
    ctx = zmq.Context.instance()
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    try:
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub.connect(f"tcp://127.0.0.1:{port}")
        sub.setsockopt(zmq.SUBSCRIBE, b"texture")
        sub.setsockopt(zmq.RCVTIMEO, 200)
        got = None
        for _ in range(25):  # PUB/SUB joins asynchronously: send until received
            pub.send(msg)
            try:
                got = sub.recv()
                break
            except zmq.Again:
                continue
        assert got is not None
    finally:
        pub.close(0)
        sub.close(0)
    decoded = decode_texture(got)
    hand0 = decoded.hands[0]
    assert hand0["track_id"] == 4 and hand0["handedness"] == "right"
    np.testing.assert_allclose(hand0["vertex_colors"], fuser.textures[4].colors, atol=1e-6)
    assert hand0["vertex_weight"].shape == (model.num_vertices,)


def test_sink_publishes_on_change_and_topology_uv_arrays(model):
    from realtime.mesh.texture import hand_colors
    from realtime.stream.protocol import decode, encode, peek_topic
    from realtime.stream.texture_topic import TOPIC_TEXTURE, TextureSink, TextureTopic, uv_arrays

    faces = {"right": model.faces, "left": flip_faces(model.faces)}
    fuser = TextureFuser(lambda s: faces[s])
    sent = []
    sink = TextureSink(fuser, lambda msg: sent.append((peek_topic(msg), msg)),
                       TextureTopic(min_interval_s=0.0))
    sink.write(None)
    assert sent == []  # no texture yet
    hand = _hand(model, [0.0, 0.0, 0.4])
    mesh = _mesh(hand, "right", 2)
    assert np.array_equal(hand_colors(mesh, (0.1, 0.2, 0.3)), [0.1, 0.2, 0.3])
    fuser.update(_render(model, [(hand, "right", (0.6, 0.3, 0.3))]), K, [mesh], 0)
    sink.write(None)
    assert len(sent) == 1 and sent[0][0] == TOPIC_TEXTURE
    sink.write(None)
    assert len(sent) == 1  # unchanged: not sent again
    arrays = uv_arrays(load_uv_layout())
    msg = decode(encode(b"topology", {"seq": 1}, arrays=arrays))
    np.testing.assert_array_equal(msg.arrays["uv_vertex"][msg.arrays["uv_faces"]], model.faces)


def test_forgotten_hand_texture_is_still_saved(model, tmp_path):
    faces = {"right": model.faces, "left": flip_faces(model.faces)}
    fuser = TextureFuser(lambda s: faces[s], TextureConfig(forget_after_frames=2))
    hand = _hand(model, [0.0, 0.0, 0.4])
    fuser.update(_render(model, [(hand, "right", (0.6, 0.3, 0.3))]), K,
                 [_mesh(hand, "right", 5)], 0)
    fuser.update(np.zeros((H, W, 3), np.uint8), K, [], 10)
    assert not fuser.textures
    assert fuser.save(tmp_path / "t.png", load_uv_layout()) == [tmp_path / "t.png"]


def test_hands_without_a_mesh_are_skipped(model):
    faces = {"right": model.faces, "left": flip_faces(model.faces)}
    fuser = TextureFuser(lambda s: faces[s])
    joints_only = _mesh(np.zeros((0, 3)), "right", 9)
    assert fuser.update(np.zeros((H, W, 3), np.uint8), K, [joints_only], 0) == {}
