"""Two-hand correction in the loop: no interpenetration, and the interaction prior.

Per frame, the hands' meshes (:class:`realtime.types.HandMesh`) are turned into pose states
of the hand model (their joint angles and shape, with the root found by Kabsch on their
keypoints), corrected by ``models.penetration.resolve_penetration`` (pose, not vertices:
root, translation and finger angles of both hands; the keypoints' 2D reprojection kept),
and the meshes are carried to the corrected pose by the change of each joint's skinning
transform, so the regressor's own surface detail is kept. When a hand is uncertain (high
``vertex_std``, low score), the interaction prior (``models.interaction_prior``) adds a
pull of both hands' joint angles toward the nearest plausible interaction, in proportion
to the uncertainty. Frames without any overlap and without uncertainty cost only the
overlap test (well under a millisecond).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from models.geometry import project
from models.hand_model import HandModel
from models.interaction_prior import InteractionPrior, features_to_poses, pair_features
from models.penetration import (
    CorrectionConfig,
    HandKinematics,
    move_vertices,
    resolve_penetration,
    total_penetration,
)
from models.topology import BONES
from realtime.types import HandMesh

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TwoHandConfig:
    """Whether and how hard to correct; uncertainty thresholds for the prior."""

    correction: CorrectionConfig = field(default_factory=CorrectionConfig)
    # One person, one hand size: a left and a right hand in one frame are given their
    # common size, each scaled about the camera centre (its 2D projection unchanged). Each
    # hand's size error otherwise puts it at its own wrong depth, the commonest cause of
    # two hands passing through each other.
    share_hand_size: bool = True
    use_prior: bool = True  # needs models/weights/interaction_prior.npz
    std_certain_m: float = 0.004  # mean vertex_std below this: the image decides alone
    std_uncertain_m: float = 0.012  # at and above this: the prior's full weight
    max_prior_weight: float = 0.35  # blend toward the prior at full uncertainty

    def __post_init__(self) -> None:
        if not 0 < self.std_certain_m < self.std_uncertain_m:
            raise ValueError("TwoHandConfig needs 0 < std_certain_m < std_uncertain_m, got "
                             f"{self.std_certain_m!r}, {self.std_uncertain_m!r}")
        if not 0.0 <= self.max_prior_weight <= 1.0:
            raise ValueError(f"TwoHandConfig.max_prior_weight must be in [0, 1], got "
                             f"{self.max_prior_weight!r}")


def uncertainty(hand: HandMesh, config: TwoHandConfig) -> float:
    """0 (the image is clear) .. 1 (it says little): from the mean vertex_std and the score."""
    std = float(np.mean(hand.vertex_std)) if np.size(hand.vertex_std) else 0.0
    u = (std - config.std_certain_m) / (config.std_uncertain_m - config.std_certain_m)
    u = max(u, 1.0 - 2.0 * float(hand.score)) if np.isfinite(hand.score) else u
    return float(np.clip(u, 0.0, 1.0))


class TwoHandCorrector:
    """Corrects the hands of one frame together; stateless between frames."""

    def __init__(self, model: HandModel, config: TwoHandConfig = TwoHandConfig(),
                 prior: InteractionPrior | None = None) -> None:
        self.model = model
        self.config = config
        self.kin = HandKinematics(model)
        self.prior = prior
        if prior is None and config.use_prior:
            self.prior = InteractionPrior.load()
        self.last_penetration = (0.0, 0.0)  # sphere overlap before/after of the last frame

    def share_size(self, hands: list[HandMesh], K: np.ndarray) -> list[HandMesh]:  # noqa: N803
        """Both hands at their mean size and shape, scaled about the camera centre."""
        shapes = [np.asarray(h.shape, np.float64) for h in hands]
        common = np.mean(shapes, axis=0)
        target = hand_size(self.kin, common)
        out = []
        for h, s in zip(hands, shapes):
            k = target / max(hand_size(self.kin, s), 1e-6)
            out.append(replace(h, vertices=h.vertices * k, joints=h.joints * k, shape=common,
                               keypoints_2d=project(h.joints * k, K)))
        return out

    def pull_to_prior(self, hands: list[HandMesh], states: tuple) -> tuple:
        """Blend both hands' joint angles toward the prior's nearest plausible pair, by
        ``max_prior_weight`` x the larger of the two hands' uncertainty (0: unchanged).

        Done before the penetration correction, so that the correction has the last word;
        a pull that would push the hands further into each other is halved, twice, then
        dropped.
        """
        u = max(uncertainty(h, self.config) for h in hands)
        alpha = float(np.clip(self.config.max_prior_weight * u, 0.0, 1.0))
        if alpha <= 0:
            return states
        r = 0 if hands[0].handedness == "right" else 1
        feats = pair_features(self.kin, states[r], states[1 - r])
        pose_r, pose_l = features_to_poses(self.prior.project(feats), self.model.num_joints)
        targets = (pose_r, pose_l) if r == 0 else (pose_l, pose_r)
        lim = self.kin.limits
        base = total_penetration(self.kin, states, self.config.correction)
        # The largest pull (full, half, a quarter) that does not push the hands further
        # into each other; none if every one does.
        for a in (alpha, alpha / 2, alpha / 4):
            out = []
            for s, t in zip(states, targets):
                pose = s.pose.copy()
                pose[1:] = np.clip(pose[1:] + a * (t[1:] - pose[1:]), lim[1:, :, 0],
                                   lim[1:, :, 1])
                out.append(replace(s, pose=pose))
            out = tuple(out)
            if total_penetration(self.kin, out, self.config.correction) <= base + 1e-3:
                return out
        return states

    def correct(self, hands: list[HandMesh], K: np.ndarray) -> list[HandMesh]:  # noqa: N803
        """The frame's hands with overlaps removed (same order; untouched when none)."""
        hands = list(hands)
        if not hands:
            return hands
        for h in hands:
            if h.vertices.shape[0] != self.model.num_vertices or np.size(h.pose) == 0:
                return hands  # not the model's mesh (e.g. a replay of joints only)
        pair = len(hands) == 2 and {h.handedness for h in hands} == {"left", "right"}
        if not (pair and self.config.share_hand_size):
            return self._correct(hands, K, pair)[0]
        out, after = self._correct(self.share_size(hands, K), K, pair)
        # A common size can put the hands deep into each other (when one hand's depth was
        # right by luck and the other's size error was large), deeper than one correction
        # untangles: then keep their own sizes if that ends with less overlap.
        states = tuple(self.kin.fit_state(h.pose, h.shape, h.joints, h.handedness == "left")
                       for h in hands)
        if after > total_penetration(self.kin, states, self.config.correction) + 1e-3:
            own, after_own = self._correct(hands, K, pair)
            if after_own < after:
                return own
        return out

    def _correct(self, hands: list[HandMesh], K: np.ndarray, pair: bool  # noqa: N803
                 ) -> tuple[list[HandMesh], float]:
        """Prior pull and penetration correction; the hands and their remaining overlap."""
        states = tuple(self.kin.fit_state(h.pose, h.shape, h.joints, h.handedness == "left")
                       for h in hands)
        start = states
        if self.prior is not None and pair:
            states = self.pull_to_prior(hands, states)
        result = resolve_penetration(self.kin, states, K, self.config.correction)
        if result.iterations == 0 and states is not start:
            result = replace(result, iterations=1)  # the prior moved the hands
        self.last_penetration = (result.penetration_before_m, result.penetration_after_m)
        if result.iterations == 0:
            return hands, 0.0
        out = []
        for h, before, after in zip(hands, start, result.states):
            kp0 = self.kin.posed(before, False).keypoints
            kp1 = self.kin.posed(after, False).keypoints
            joints = h.joints + (kp1 - kp0)
            verts = move_vertices(self.kin, before, after, h.vertices)
            pose = np.array(h.pose, dtype=np.float64, copy=True)
            pose[1:] = after.pose[1:]
            out.append(replace(h, vertices=verts, joints=joints, pose=pose,
                               keypoints_2d=project(joints, K)))
        return out, result.penetration_after_m


def hand_size(kin: HandKinematics, shape: np.ndarray) -> float:
    """Sum of the rest skeleton's 20 bone lengths for a shape, meters."""
    kps = kin.rest(np.asarray(shape, np.float64))[1]
    return float(sum(np.linalg.norm(kps[c] - kps[p]) for p, c in BONES))


class TwoHandStage:
    """Pipeline stage around :class:`TwoHandCorrector` (after regression, before smoothing)."""

    def __init__(self, corrector: TwoHandCorrector) -> None:
        self.corrector = corrector

    def __call__(self, p):
        if not p.hands:
            return p
        return replace(p, hands=tuple(self.corrector.correct(list(p.hands),
                                                             p.frame.camera.K)))
