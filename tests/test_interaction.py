"""Two interacting hands: kinematics, penetration volume, pose correction, prior, data."""

from __future__ import annotations

import numpy as np
import pytest

from models.geometry import axis_angle_to_matrix
from models.hand_model import HandModel, flip_faces
from models.interaction_prior import InteractionPrior, features_to_poses, pair_features
from models.penetration import (
    CorrectionConfig,
    HandKinematics,
    HandState,
    move_vertices,
    penetration_volume,
    resolve_penetration,
    state_vertices,
    total_penetration,
)
from models.poses import named_pose
from models.training.interaction_data import KINDS, sample_interaction
from realtime.mesh.two_hands import TwoHandConfig, TwoHandCorrector, hand_size
from realtime.types import HandMesh

K = np.array([[900.0, 0.0, 640.0], [0.0, 900.0, 360.0], [0.0, 0.0, 1.0]])
JAC_TOL = 1e-3  # relative error of the analytic Jacobian against a finite difference


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.open_hand()


@pytest.fixture(scope="module")
def kin(model) -> HandKinematics:
    return HandKinematics(model)


@pytest.fixture(scope="module")
def pair(kin):
    """A touching clasp and the same pair with the left hand pushed 2 cm into the right."""
    right, left, _ = sample_interaction(kin, np.random.default_rng(3), "palms")
    cr = kin.posed(right, False).keypoints.mean(0)
    cl = kin.posed(left, False).keypoints.mean(0)
    push = (cr - cl) / np.linalg.norm(cr - cl) * 0.02
    inside = HandState(left.pose, left.shape, left.rot, left.trans + push * [-1, 1, 1], True)
    return right, left, inside


def _project(p):
    return p[:, :2] / p[:, 2:3] * K[[0, 1], [0, 1]] + K[:2, 2]


@pytest.mark.parametrize("left", [False, True])
def test_jacobians_match_finite_differences(kin, model, left):
    pose = named_pose(model.data.joint_names, "pinch")[0]
    st = HandState(pose, np.zeros(10), axis_angle_to_matrix(np.array([[0.3, 0.2, 0.1]]))[0],
                   np.array([0.01, 0.0, 0.4]), left)
    posed = kin.posed(st)
    rng = np.random.default_rng(0)
    for part in (slice(0, 3), slice(3, 6), slice(6, None)):
        d = np.zeros(kin.num_params)
        d[part] = rng.normal(0.0, 1e-5, d[part].shape)
        moved = kin.posed(kin.step(st, d), False)
        change = moved.spheres - posed.spheres
        err = np.abs(change - posed.jac_spheres @ d).max() / np.abs(change).max()
        assert err < JAC_TOL


def test_fit_state_and_move_vertices_round_trip(kin, model):
    pose = named_pose(model.data.joint_names, "peace")[0]
    truth = HandState(pose, np.full(10, 0.3), axis_angle_to_matrix(np.array([[0.2, 1.0, 0.3]]))[0],
                      np.array([0.05, 0.02, 0.45]), True)
    kps = kin.posed(truth, False).keypoints
    fitted = kin.fit_state(pose, truth.shape, kps, left=True)
    np.testing.assert_allclose(kin.posed(fitted, False).keypoints, kps, atol=1e-9)
    # Carrying one state's mesh to another state gives that state's own mesh.
    other = kin.step(fitted, np.r_[0.1, 0, 0, 0, 0, 0.01, np.full(kin.num_params - 6, 0.05)])
    start, goal = state_vertices(kin, fitted), state_vertices(kin, other)
    moved = move_vertices(kin, fitted, other, start)
    assert np.linalg.norm(goal - start, axis=1).max() > 0.01  # a real move ...
    np.testing.assert_allclose(moved, goal, atol=1e-3)  # ... followed within 1 mm
    np.testing.assert_allclose(move_vertices(kin, fitted, fitted, start), start, atol=1e-12)


def _box(size: float, offset) -> tuple[np.ndarray, np.ndarray]:
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float) * size
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return v + offset, f


def test_penetration_volume_of_two_boxes():
    va, fa = _box(0.02, [0.0, 0.0, 0.3])
    vb, fb = _box(0.02, [0.01, 0.005, 0.31])  # overlap 10 x 15 x 10 mm = 1500 mm^3
    assert penetration_volume(va, fa, vb, fb, 0.0005) == pytest.approx(1500, rel=0.03)
    vc, fc = _box(0.02, [0.05, 0.0, 0.3])
    assert penetration_volume(va, fa, vc, fc) == 0.0


def test_generated_pairs_touch_without_penetrating(kin):
    rng = np.random.default_rng(1)
    for kind in KINDS:
        right, left, got = sample_interaction(kin, rng, kind)
        assert got == kind
        pen = total_penetration(kin, (right, left), CorrectionConfig(self_allowance_m=1.0))
        assert pen == 0.0  # proxies just touch
        gap = np.linalg.norm(kin.posed(right, False).spheres[:, None]
                             - kin.posed(left, False).spheres[None], axis=-1)
        r = kin.proxy.radius
        assert (gap - r[:, None] - r[None]).min() < 0.005  # ... within 5 mm: in contact
        feats = pair_features(kin, right, left)
        pose_r, pose_l = features_to_poses(feats, kin.model.num_joints)
        np.testing.assert_allclose(pose_r[1:], right.pose[1:], atol=1e-9)
        np.testing.assert_allclose(pose_l[1:], left.pose[1:], atol=1e-9)


def test_correction_removes_penetration_and_keeps_the_2d(kin, model, pair):
    right, _, inside = pair
    before = total_penetration(kin, (right, inside))
    assert before > 0
    res = resolve_penetration(kin, (right, inside), K)
    assert res.penetration_after_m < 0.1 * before
    for s0, s1 in zip((right, inside), res.states):
        uv0 = _project(kin.posed(s0, False).keypoints)
        uv1 = _project(kin.posed(s1, False).keypoints)
        assert np.linalg.norm(uv1 - uv0, axis=1).mean() < 3 * CorrectionConfig().reprojection_px
    faces = (model.faces, flip_faces(model.faces))
    v_before = penetration_volume(state_vertices(kin, right), faces[0],
                                  state_vertices(kin, inside), faces[1])
    v_after = penetration_volume(state_vertices(kin, res.states[0]), faces[0],
                                 state_vertices(kin, res.states[1]), faces[1])
    assert v_after < 0.2 * v_before


def test_correction_leaves_separate_hands_untouched(kin, pair):
    right, left, _ = pair
    res = resolve_penetration(kin, (right, left), K)
    assert res.iterations == 0 and res.states[0] is right and res.states[1] is left


def _mesh(kin, state, std=0.002, score=0.9) -> HandMesh:
    kps = kin.posed(state, False).keypoints
    return HandMesh(state_vertices(kin, state), kps, np.full(kin.model.num_vertices, std),
                    state.pose, state.shape, _project(kps), "left" if state.left else "right",
                    score, int(state.left), 0.0, 0)


def test_corrector_on_hand_meshes(kin, model, pair):
    right, left, inside = pair
    corrector = TwoHandCorrector(model, TwoHandConfig(use_prior=False))
    hands = [_mesh(kin, right), _mesh(kin, inside)]
    out = corrector.correct(hands, K)
    faces = {"right": model.faces, "left": flip_faces(model.faces)}

    def vol(hs):
        return penetration_volume(hs[0].vertices, faces["right"], hs[1].vertices, faces["left"])

    assert vol(out) < 0.2 * vol(hands)
    assert [h.handedness for h in out] == ["right", "left"]
    # touching hands of the same size barely move (at most a finger's self-contact fix)
    left = HandState(left.pose, right.shape, left.rot, left.trans, True)
    same = corrector.correct([_mesh(kin, right), _mesh(kin, left)], K)
    np.testing.assert_allclose(same[1].vertices, state_vertices(kin, left), atol=5e-4)


def test_shared_hand_size_keeps_the_2d(kin, model, pair):
    right, left, _ = pair
    big = HandState(left.pose, left.shape + 1.5, left.rot, left.trans, True)
    corrector = TwoHandCorrector(model, TwoHandConfig(use_prior=False))
    hands = [_mesh(kin, right), _mesh(kin, big)]
    shared = corrector.share_size(hands, K)
    sizes = [hand_size(kin, h.shape) for h in shared]
    assert sizes[0] == pytest.approx(sizes[1])
    for h0, h1 in zip(hands, shared):
        np.testing.assert_allclose(_project(h1.joints), _project(h0.joints), atol=1e-6)


def test_prior_loads_and_pulls_noisy_pairs_toward_plausible_ones(kin):
    prior = InteractionPrior.load()
    rng = np.random.default_rng(7)
    before, after = [], []
    for i in range(10):
        right, left, _ = sample_interaction(kin, rng, KINDS[i % len(KINDS)])
        clean = pair_features(kin, right, left)
        noisy = clean.copy()
        noisy[9:] += rng.normal(0.0, 0.2, len(clean) - 9)  # ~0.1 rad on every joint angle
        before.append(np.abs(noisy[9:] - clean[9:]).mean())
        after.append(np.abs(prior.project(noisy)[9:] - clean[9:]).mean())
    assert np.mean(after) < 0.8 * np.mean(before)
    with pytest.raises(ValueError, match="features"):
        prior.project(np.zeros(5))


def test_uncertain_pair_is_pulled_by_the_prior(kin, model, pair):
    right, left, _ = pair
    hands = [_mesh(kin, right, std=0.02), _mesh(kin, left, std=0.02)]
    out = TwoHandCorrector(model, TwoHandConfig(use_prior=True)).correct(hands, K)
    assert np.abs(out[0].pose[1:] - right.pose[1:]).max() > 1e-3
    certain = [_mesh(kin, right), _mesh(kin, left)]
    out2 = TwoHandCorrector(model, TwoHandConfig(use_prior=True)).correct(certain, K)
    np.testing.assert_allclose(out2[0].pose, right.pose)


def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match="iterations"):
        CorrectionConfig(iterations=0)
    with pytest.raises(ValueError, match="std_certain_m"):
        TwoHandConfig(std_certain_m=0.02, std_uncertain_m=0.01)
