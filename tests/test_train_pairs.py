"""Real-detector training pairs: the script's file format and the trainer's options.

A handful of hands is rendered and run through the real MediaPipe detector by
``scripts.make_detector_pairs`` (once per module); the trainer then fine-tunes the shipped
weights on them for a few steps with ``--init-from`` / ``--pairs`` / ``--pairs-fraction``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models import WEIGHTS_DIR
from models.geometry import axis_angle_to_matrix
from models.hand_model import HandModel
from models.limits import clamp_pose
from models.poses import NAMED_POSES, named_pose
from models.training.pairs import (
    TRAIN_KEYS,
    PairsError,
    load_pairs,
    mix,
    sample_pairs,
    split_pairs,
)
from models.training.synthetic import SyntheticHands, sample_rotations
from models.training.train import TrainConfig, initial_weights, main, train
from scripts.make_detector_pairs import PairsConfig, Renderer, draw_hands, make_pairs
from scripts.make_detector_pairs import main as pairs_main

COUNT = 8  # rendered images; MediaPipe finds most of them


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pairs") / "pairs.npz"
    make_pairs(PairsConfig(count=COUNT, seed=3), path)
    return path


@pytest.fixture(scope="module")
def hands():
    return SyntheticHands(HandModel.open_hand().data)


def test_pairs_file_format(pairs_file):
    model = HandModel.open_hand()
    z = np.load(pairs_file)
    recipe = json.loads(str(z["recipe"]))
    n = recipe["pairs"]
    assert n >= 2, f"MediaPipe found only {n} of {COUNT} rendered hands"
    assert recipe["rendered"] == COUNT == n + recipe["missed"] + recipe["wrong_handedness"]
    assert recipe["config"]["seed"] == 3 and recipe["model_sha256"] == model.data.sha256
    shapes = {"world": (21, 3), "image": (21, 3), "image_size": (2,), "handedness": (1,),
              "pose": (model.num_joints, 3), "shape": (model.num_shape,), "trans": (3,),
              "keypoints_cam": (21, 3), "K": (3, 3), "flipped": (), "kind": (),
              "landmarks_px": (21, 2), "keypoints_2d": (21, 2), "score": ()}
    for key, shape in shapes.items():
        assert z[key].shape == (n,) + shape, key
        assert np.all(np.isfinite(z[key])), key
    # Inputs as the runtime prepares them: world centred, a right hand after mirroring.
    assert np.abs(z["world"].mean(1)).max() < 1e-6
    assert np.array_equal(z["handedness"][:, 0] == 0, z["flipped"])
    w, h = z["image_size"][:, 0], z["image_size"][:, 1]
    assert np.all((w >= 256) & (w <= 480) & (h >= 256) & (h <= 480))
    # image x/W, y/H: undo the runtime's mirroring and compare with the detected pixels.
    u = np.where(z["flipped"][:, None], w[:, None] * (1 - z["image"][..., 0]),
                 w[:, None] * z["image"][..., 0])
    assert np.allclose(u, z["landmarks_px"][..., 0], atol=1e-3)
    assert np.allclose(h[:, None] * z["image"][..., 1], z["landmarks_px"][..., 1], atol=1e-3)
    # Ground truth: the pose and shape skin to the stored camera-frame keypoints, which
    # project (mirrored when flipped) to the stored 2D truth.
    out = model.forward(z["pose"].astype(np.float64), z["shape"].astype(np.float64),
                        z["trans"].astype(np.float64))
    assert np.abs(out.keypoints - z["keypoints_cam"]).max() < 1e-5
    uv = np.einsum("nij,nkj->nki", z["K"].astype(np.float64), out.keypoints)
    uv = uv[..., :2] / uv[..., 2:]
    uv[..., 0] = np.where(z["flipped"][:, None], w[:, None] - 1 - uv[..., 0], uv[..., 0])
    assert np.abs(uv - z["keypoints_2d"]).max() < 1e-2
    # MediaPipe really erred, and found the right hand (within half its size).
    err = np.linalg.norm(z["landmarks_px"] - z["keypoints_2d"], axis=-1).mean(1)
    size = np.ptp(z["keypoints_2d"], axis=1).max(1)
    assert np.all(err > 0) and np.all(err < 0.5 * size)


def test_same_seed_same_pairs():
    a, b = (make_pairs(PairsConfig(count=3, seed=5)) for _ in range(2))
    for key in ("pose", "world", "image", "landmarks_px"):
        assert np.array_equal(a[key], b[key]), key


def test_targets_centred_and_match_numpy_model(pairs_file, hands):
    pairs = load_pairs(pairs_file, hands)
    assert set(TRAIN_KEYS) <= set(pairs)
    assert pairs["keypoints"].mean(1).abs().max() < 1e-6
    model = HandModel.open_hand()
    out = model.forward(pairs["pose"].double().numpy(), pairs["shape"].double().numpy())
    centred = out.vertices - out.keypoints.mean(1, keepdims=True)
    assert np.abs(centred - pairs["vertices"].numpy()).max() < 1e-5


def test_split_and_mix(pairs_file, hands):
    pairs = load_pairs(pairs_file, hands)
    train_p, val_p = split_pairs(pairs, 0.3, seed=0)
    n = len(pairs["world"])
    assert len(train_p["world"]) + len(val_p["world"]) == n and len(val_p["world"]) >= 1
    again, _ = split_pairs(pairs, 0.3, seed=0)
    assert torch.equal(again["world"], train_p["world"])
    g = torch.Generator().manual_seed(0)
    batch = mix(hands.sample(3, g), sample_pairs(train_p, 5, g))
    assert all(batch[k].shape[0] == 8 for k in TRAIN_KEYS)


def test_fine_tune_on_pairs(pairs_file, tmp_path):
    cfg = TrainConfig(steps=3, batch=8, lr=1e-4, validate_every=3, checkpoint_every=3,
                      val_hands=16, out_dir=str(tmp_path / "run"),
                      init_from=str(WEIGHTS_DIR / "regressor.pt"), pairs=str(pairs_file),
                      pairs_fraction=0.5, val_pairs_fraction=0.3)
    assert cfg.pairs_per_batch == 4
    start, _ = initial_weights(WEIGHTS_DIR / "regressor.pt")
    net, info = train(cfg)
    steps = [h["step"] for h in info["history"]]
    assert steps == [0, 3], "a validation before fine-tuning and one at the end"
    for h in info["history"]:
        for key in ("val_vertex_mm", "pairs_val_vertex_mm", "pairs_val_keypoint_mm",
                    "pairs_val_within_1sigma"):
            assert np.isfinite(h[key]), key
    assert info["pairs_recipe"]["pairs"] == len(np.load(pairs_file)["world"])
    assert info["init_from"]["file"] == "regressor.pt"
    changed = [k for k, v in net.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, start[k])]
    assert changed, "three steps moved no weight"
    # The checkpoint resumes: same loader, now from a training checkpoint.
    state, _ = initial_weights(tmp_path / "run" / "last.pt")
    assert torch.equal(state[changed[0]], net.state_dict()[changed[0]])


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 0.01])
def test_bad_pairs_fraction_refused(fraction):
    with pytest.raises(ValueError, match="pairs_fraction"):
        TrainConfig(batch=16, pairs="x.npz", pairs_fraction=fraction)


def test_missing_pairs_file_is_one_line_exit_2(tmp_path, capsys, hands):
    with pytest.raises(PairsError, match="make_detector_pairs"):
        load_pairs(tmp_path / "none.npz", hands)
    with pytest.raises(SystemExit) as exc:
        main(["--steps", "1", "--batch", "8", "--pairs", str(tmp_path / "none.npz"),
              "--out-dir", str(tmp_path / "run"), "--no-export"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "none.npz" in err and len(err.splitlines()) == 1


def test_pairs_of_another_file_refused(tmp_path, hands):
    bad = tmp_path / "bad.npz"
    np.savez(bad, world=np.zeros((2, 21, 3)))
    with pytest.raises(PairsError, match="not a make_detector_pairs file"):
        load_pairs(bad, hands)


def test_fewer_hands_are_the_start_of_more():
    """``--count 2000`` reproduces the first 2000 hands of ``--count 5000`` (the documented
    training file), and the draw covers pinches, named gestures and both hands' views."""
    model = HandModel.open_hand()
    few = draw_hands(model, PairsConfig(count=3, seed=0))
    many = draw_hands(model, PairsConfig(count=5000, seed=0))
    for a, b in zip(few, many):
        assert np.array_equal(a, b[:3])
    pose, shape, kind = many
    assert pose.shape == (5000, model.num_joints, 3) and shape.shape == (5000, model.num_shape)
    assert 0.25 < np.mean(kind >= 0) < 0.45  # p_named 0.35
    assert set(np.unique(kind[kind >= 0])) == set(range(len(NAMED_POSES)))


def test_pairs_filtered_by_mediapipe_error(pairs_file, hands):
    from benchmarks.common import pa_error
    from models.training.pairs import pa_mpjpe

    pairs = load_pairs(pairs_file, hands)
    errs = pa_mpjpe(pairs["world"].double(), pairs["keypoints"].double()).numpy()
    for w, k, e in zip(pairs["world"].double().numpy(), pairs["keypoints"].double().numpy(), errs):
        assert abs(pa_error(w, k) - e) < 1e-6  # the benchmarks' Procrustes, batched
    cut = 1000 * float(np.median(errs)) + 1e-6
    kept = load_pairs(pairs_file, hands, max_error_mm=cut)
    assert 0 < len(kept["world"]) <= len(pairs["world"])
    assert np.all(1000 * pa_mpjpe(kept["world"].double(), kept["keypoints"].double()).numpy() < cut)
    with pytest.raises(PairsError, match="under 0.001 mm"):
        load_pairs(pairs_file, hands, max_error_mm=0.001)


def test_synthetic_noise_overrides(tmp_path):
    from models.training.train import parse_overrides

    over = parse_overrides(["world_z_noise_ratio=[2.5, 3.3]", "world_scale_std=0.05"])
    cfg = TrainConfig(steps=1, batch=8, val_hands=8, validate_every=1, checkpoint_every=1,
                      out_dir=str(tmp_path / "run"), synthetic=over)
    noise = cfg.synthetic_config
    assert noise.world_z_noise_ratio == (2.5, 3.3) and noise.world_scale_std == 0.05
    _, info = train(cfg)
    assert info["config"]["synthetic"] == over, "the manifest's recipe records the noise"


@pytest.mark.parametrize("item, words", [("no_such_field=1", "unknown SyntheticConfig"),
                                         ("world_scale_std=abc", "not JSON"),
                                         ("world_scale_std", "FIELD=VALUE"),
                                         ("world_scale_std=-1", "world_scale_std")])
def test_bad_synthetic_override_is_one_line_exit_2(tmp_path, capsys, item, words):
    with pytest.raises(SystemExit) as exc:
        main(["--steps", "1", "--batch", "8", "--synthetic", item,
              "--out-dir", str(tmp_path / "run"), "--no-export"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and len(err.splitlines()) == 1


def test_yaw_range_keeps_palm_and_back_views():
    """``yaw_deg`` < 180 turns the hand about its finger axis by at most that much from a
    palm or a back view (both occur); the default turns it by any angle."""
    g = torch.Generator().manual_seed(0)
    rot = axis_angle_to_matrix(sample_rotations(g, 4000, 0.0, 0.0, yaw_deg=30.0).double().numpy())
    cos_yaw = rot[:, 0, 0]
    assert np.allclose(rot[:, 1, 1], 1.0, atol=1e-6), "no tilt with a cone of 0 deg"
    assert np.all(np.abs(cos_yaw) >= np.cos(np.radians(30.0)) - 1e-6)
    assert (cos_yaw > 0).mean() == pytest.approx(0.5, abs=0.05), "palm and back views alike"
    g = torch.Generator().manual_seed(0)
    any_yaw = axis_angle_to_matrix(sample_rotations(g, 4000, 0.0, 0.0).double().numpy())[:, 0, 0]
    assert (np.abs(any_yaw) < 0.5).mean() > 0.25, "the default includes side views"


def test_pairs_config_set_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "p.npz"
    pairs_main(["--count", "2", "--out", str(out), "--set", "yaw_deg=40",
                "--set", "fill=[0.5,0.7]", "--save-every", "0"])
    recipe = json.loads(str(np.load(out)["recipe"]))
    assert recipe["config"]["yaw_deg"] == 40 and recipe["config"]["fill"] == [0.5, 0.7]


@pytest.mark.parametrize("item, words", [("no_such_field=1", "unknown PairsConfig"),
                                         ("yaw_deg=abc", "not JSON"),
                                         ("fill=[0.9,0.1]", "fill must be")])
def test_bad_pairs_setting_is_one_line_exit_2(tmp_path, capsys, item, words):
    with pytest.raises(SystemExit) as exc:
        pairs_main(["--count", "1", "--out", str(tmp_path / "p.npz"), "--set", item])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert words in err
    assert not (tmp_path / "p.npz").exists()


def _pose_file(tmp_path, model):
    names = model.data.joint_names
    bank = np.stack([clamp_pose(named_pose(names, k)[0][None], model.data.limits)[0]
                     for k in NAMED_POSES[:2]])
    bank[:, 0] = [[0.3, 0.0, 0.0], [0.0, 0.0, 0.5]]
    path = tmp_path / "poses.npz"
    np.savez(path, pose=bank, shape=np.zeros((2, model.num_shape)))
    return path, bank


@pytest.mark.parametrize("file_view", [0.0, 1.0])
def test_pose_file_gives_the_fingers_and_optionally_the_view(tmp_path, file_view):
    model = HandModel.open_hand()
    path, bank = _pose_file(tmp_path, model)
    cfg = PairsConfig(count=20, seed=2, p_named=0.0, named_jitter_deg=0.0, pose_file=str(path),
                      p_file_view=file_view)
    pose, _, kind = draw_hands(model, cfg)
    assert np.all(kind == -2)
    nearest = np.abs(pose[:, None, 1:] - bank[None, :, 1:]).max(axis=(2, 3)).min(1)
    assert np.all(nearest < 1e-6), "fingers from the file"
    roots = np.abs(pose[:, None, 0] - bank[None, :, 0]).max(2).min(1)
    if file_view:
        assert np.all(roots < 1e-6), "the file's views"
    else:
        assert np.all(roots > 1e-3), "sampled views"


def test_pose_file_of_another_layout_refused(tmp_path):
    model = HandModel.open_hand()
    path = tmp_path / "bad.npz"
    np.savez(path, pose=np.zeros((3, 21, 3)))
    with pytest.raises(ValueError, match="pose must be"):
        draw_hands(model, PairsConfig(count=4, pose_file=str(path)))


def test_clip_poses_from_a_video(tmp_path):
    """Poses of the hands our pipeline finds in a clip (the built-in sample's first frames)."""
    from realtime.io.sample import SAMPLE_VIDEO
    from scripts.clip_poses import main as clip_poses_main

    out = tmp_path / "poses.npz"
    assert clip_poses_main(["--clips", str(SAMPLE_VIDEO), "--max-frames", "6",
                            "--out", str(out)]) == 0
    with np.load(out) as z:
        pose, shape, source = z["pose"], z["shape"], z["source"]
    model = HandModel.open_hand()
    assert pose.shape[1:] == (model.num_joints, 3) and len(pose) >= 6
    assert shape.shape == (len(pose), model.num_shape) and np.all(np.isfinite(pose))
    assert set(source) == {SAMPLE_VIDEO.name}
    draw_hands(model, PairsConfig(count=3, pose_file=str(out)))  # usable as a pose file


def test_clip_poses_missing_clip_is_exit_2(tmp_path, capsys):
    from scripts.clip_poses import main as clip_poses_main

    assert clip_poses_main(["--clips", str(tmp_path / "none.mp4")]) == 2
    assert "not found" in capsys.readouterr().err


def test_clip_poses_unreadable_video_is_exit_2(tmp_path, capsys):
    from scripts.clip_poses import main as clip_poses_main

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    assert clip_poses_main(["--clips", str(bad), "--out", str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "bad.mp4" in err[0]
    assert not (tmp_path / "p.npz").exists()


def test_missing_pose_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="pose file not found.*clip_poses"):
        draw_hands(HandModel.open_hand(),
                   PairsConfig(count=2, pose_file=str(tmp_path / "none.npz")))


def test_thickened_hand_covers_more_of_the_image(monkeypatch):
    """``thicken_mm`` moves the rendered surface out along its normals: the same hand in the
    same camera covers more pixels (on a plain background, to count them)."""
    import scripts.make_detector_pairs as mdp

    monkeypatch.setattr(mdp, "make_background",
                        lambda kind, w, h, seed: np.full((h, w, 3), 128, np.uint8))
    model = HandModel.open_hand()
    out = model.forward(named_pose(model.data.joint_names, "spread"))
    K = np.array([[500.0, 0, 159.5], [0, 500.0, 159.5], [0, 0, 1]])
    trans = np.array([0.0, 0.0, 0.45]) - out.keypoints[0].mean(0)
    covered = []
    for mm in (0.0, 3.0):
        renderer = Renderer(model, PairsConfig(thicken_mm=(mm, mm)))
        img = renderer.draw(out, trans, K, 320, 320, np.random.default_rng(0))
        covered.append(int((np.abs(img - 128).max(-1) > 2).sum()))
    assert covered[1] > 1.1 * covered[0] > 0


def test_bad_thickening_refused():
    with pytest.raises(ValueError, match="thicken_mm"):
        PairsConfig(thicken_mm=(3.0, 1.0))
