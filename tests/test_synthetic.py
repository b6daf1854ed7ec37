"""The synthetic MediaPipe-like hand generator: determinism, geometry, noise, error rates."""

from __future__ import annotations

import pytest
import torch

from models.hand_model import HandModel
from models.training.synthetic import (
    SyntheticConfig,
    SyntheticHands,
    image_to_pixels,
    project,
    sample_poses_torch,
)
from models.training.torch_skinning import TorchHandModel

VERTEX_TOL_M = 1e-5  # generator's skinning vs TorchHandModel, float32
PIXEL_TOL = 1e-2  # clean image landmarks vs projection of keypoints_cam
LIMIT_TOL_RAD = 1e-6
BATCH = 256


@pytest.fixture(scope="module")
def data():
    return HandModel.open_hand().data


@pytest.fixture(scope="module")
def batch(data):
    return SyntheticHands(data).sample(BATCH, torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def clean_batch(data):
    gen = SyntheticHands(data, SyntheticConfig.clean())
    return gen.sample(BATCH, torch.Generator().manual_seed(1))


def test_same_seed_same_hands_other_seed_others(data):
    gen = SyntheticHands(data)
    a = gen.sample(32, torch.Generator().manual_seed(7))
    b = gen.sample(32, torch.Generator().manual_seed(7))
    c = gen.sample(32, torch.Generator().manual_seed(8))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["world"], c["world"])
    s1, s2 = gen.fixed_set(40, seed=3, batch=16), gen.fixed_set(40, seed=3, batch=16)
    assert s1["vertices"].shape[0] == 40
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_shapes_and_dtypes(batch, data):
    v, s = data.template.shape[0], data.shapedirs.shape[-1]
    j = data.joints.shape[0]
    want = {
        "world": (BATCH, 21, 3), "image": (BATCH, 21, 3), "handedness": (BATCH, 1),
        "K": (BATCH, 3, 3), "image_size": (BATCH, 2), "vertices": (BATCH, v, 3),
        "keypoints": (BATCH, 21, 3), "pose": (BATCH, j, 3), "shape": (BATCH, s),
        "keypoints_cam": (BATCH, 21, 3), "center_cam": (BATCH, 3),
    }
    for key, shape in want.items():
        assert tuple(batch[key].shape) == shape, key
    for key, value in batch.items():
        assert value.dtype == torch.float32, key
        assert torch.isfinite(value).all(), key


def test_poses_and_shapes_within_limits(batch, data):
    lim = torch.as_tensor(data.limits, dtype=torch.float32)
    pose = batch["pose"]
    assert (pose >= lim[..., 0] - LIMIT_TOL_RAD).all()
    assert (pose <= lim[..., 1] + LIMIT_TOL_RAD).all()
    cfg = SyntheticConfig()
    assert batch["shape"].abs().max() <= cfg.shape_clip + 1e-6
    poses = sample_poses_torch(data.joint_names, data.limits, 64, torch.Generator().manual_seed(0))
    assert (poses[:, 0] == 0).all() and (poses[:, 1:] <= lim[1:, :, 1] + LIMIT_TOL_RAD).all()


def test_hand_inside_image_and_depth_range(batch):
    px = project(batch["keypoints_cam"], batch["K"])
    size = batch["image_size"][:, None]
    assert (px >= 0).all() and (px <= size).all()
    depth = batch["center_cam"][:, 2]
    lo, hi = SyntheticConfig().depth_range_m
    assert (depth >= lo - 1e-6).all() and (depth <= hi + 1e-6).all()
    assert (batch["keypoints_cam"][..., 2] > 0).all()


def test_targets_are_the_hand_model_recentred(batch, data):
    verts, _, kps = TorchHandModel(data)(batch["pose"], batch["shape"])
    mean = kps.mean(1, keepdim=True)
    assert torch.allclose(verts - mean, batch["vertices"], atol=VERTEX_TOL_M)
    assert torch.allclose(kps - mean, batch["keypoints"], atol=VERTEX_TOL_M)
    cam = batch["keypoints"] + batch["center_cam"][:, None]
    assert torch.allclose(cam, batch["keypoints_cam"], atol=VERTEX_TOL_M)
    assert batch["keypoints"].mean(1).abs().max() < VERTEX_TOL_M


def test_clean_inputs_match_the_geometry(clean_batch):
    b = clean_batch
    assert torch.allclose(b["world"], b["keypoints"], atol=VERTEX_TOL_M)
    px = image_to_pixels(b["image"], b["image_size"])
    assert torch.allclose(px[..., :2], project(b["keypoints_cam"], b["K"]), atol=PIXEL_TOL)
    z = b["keypoints_cam"][..., 2]
    fx, w = b["K"][:, 0, 0, None], b["image_size"][:, 0:1]
    rel_z = (z - z[:, :1]) * fx / (z[:, :1] * w)
    assert torch.allclose(b["image"][..., 2], rel_z, atol=1e-5)


def test_world_noise_statistics(data):
    # Only the per-keypoint noise on: residuals are exactly that noise.
    cfg = SyntheticConfig.clean(world_xy_noise_mm=(3.0, 3.0), world_z_noise_ratio=(3.5, 3.5),
                                occluded_noise_factor=1.0)
    b = SyntheticHands(data, cfg).sample(1024, torch.Generator().manual_seed(2))
    res = b["world"] - b["keypoints"]
    assert res.mean(1).abs().max() < 0.02  # centred up to noise
    std = res.std(dim=(0, 1))
    assert std[2] > 2.5 * std[:2].max()
    depth = b["center_cam"][:, 2]
    factor = (1.0 + cfg.depth_noise_slope * (depth / 0.5 - 1.0)).clamp_min(0.25)
    expected_xy = 3e-3 * factor.pow(2).mean().sqrt().item()
    assert std[:2].mean().item() == pytest.approx(expected_xy, rel=0.1)
    near = depth < depth.median()
    ratio = (res[~near].std() / res[near].std()).item()
    expected = (factor[~near].pow(2).mean() / factor[near].pow(2).mean()).sqrt().item()
    assert ratio > 1.2
    assert ratio == pytest.approx(expected, rel=0.1)


def test_occluded_keypoints_are_noisier(data):
    cfg = SyntheticConfig.clean(world_xy_noise_mm=(3.0, 3.0), occluded_noise_factor=3.0)
    b = SyntheticHands(data, cfg).sample(1024, torch.Generator().manual_seed(4))
    occ = b["occluded"].bool()
    assert 0.02 < occ.float().mean() < 0.5
    res = (b["world"] - b["keypoints"])[..., :2]
    depth = b["center_cam"][:, 2, None].expand_as(occ)
    # Compare at similar depths: scale residuals by the depth factor first.
    res = res / (1.0 + cfg.depth_noise_slope * (depth / 0.5 - 1.0)).clamp_min(0.25)[..., None]
    assert res[occ].std() > 2.0 * res[~occ].std()


def test_image_noise_scales_with_the_hand(data):
    cfg = SyntheticConfig.clean(image_noise_frac=(0.01, 0.01), occluded_noise_factor=1.0)
    b = SyntheticHands(data, cfg).sample(512, torch.Generator().manual_seed(5))
    true_px = project(b["keypoints_cam"], b["K"])
    extent = (true_px.amax(1) - true_px.amin(1)).amax(-1)
    err = image_to_pixels(b["image"], b["image_size"])[..., :2] - true_px
    assert (err / extent[:, None, None]).std().item() == pytest.approx(0.01, rel=0.1)


def test_mirroring_errors_at_configured_rate(data):
    cfg = SyntheticConfig.clean(p_mirror_error=0.5)
    b = SyntheticHands(data, cfg).sample(1024, torch.Generator().manual_seed(6))
    mirror = b["mirror_error"][:, 0].bool()
    left = b["handedness"][:, 0] == 0
    assert not mirror[~left].any()
    assert mirror[left].float().mean().item() == pytest.approx(0.5, abs=0.07)
    flipped = b["keypoints"].clone()
    flipped[..., 0] *= -1
    assert torch.allclose(b["world"][mirror], flipped[mirror], atol=VERTEX_TOL_M)
    assert torch.allclose(b["world"][~mirror], b["keypoints"][~mirror], atol=VERTEX_TOL_M)
    px = project(b["keypoints_cam"], b["K"])[..., 0] / b["image_size"][:, None, 0]
    assert torch.allclose(b["image"][mirror][..., 0], 1 - px[mirror], atol=1e-5)
    assert 0.4 < left.float().mean() < 0.6


def test_gross_errors_change_the_inputs(data):
    cfg = SyntheticConfig.clean(p_collapse=0.3, p_swap=0.3, p_pull=0.3)
    b = SyntheticHands(data, cfg).sample(512, torch.Generator().manual_seed(9))
    rate = b["gross_error"].mean(0)
    assert ((rate > 0.2) & (rate < 0.4)).all()
    hit = b["gross_error"].any(-1)
    err = (b["world"] - b["keypoints"]).norm(dim=-1).amax(-1)
    assert (err[hit] > 1e-3).float().mean() > 0.9
    assert torch.allclose(b["world"][~hit], b["keypoints"][~hit], atol=VERTEX_TOL_M)


@pytest.mark.parametrize(
    ("field", "value"),
    [("depth_range_m", (0.8, 0.15)), ("hfov_deg", (50.0, 200.0)), ("p_swap", 1.5),
     ("image_sizes", ((640, 0),)), ("shape_std", -1.0), ("world_xy_noise_mm", (2.0,))],
)
def test_bad_config_field_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**{field: value})
