"""Synthetic, plausible two-hand interactions: contact-rich and free of interpenetration.

Five kinds, each drawn with random poses, shapes and offsets around a hand-made template:
``clasp`` (palms together, fingers curled round the other hand), ``pinch`` (one hand's
thumb and index pinching the other's index tip), ``interlace`` (open, spread hands palm to
palm, fingers between fingers), ``hold_finger`` (a loose fist round the other's index
finger) and ``palms`` (palm to palm, as in a clap or a push). The left hand is placed in
the right hand's frame by the template, then pushed out along the line between the hands
until the sphere proxies (``models.penetration``) just stop overlapping, so every pair
touches without penetrating. A random view and a placement 0.3-0.6 m in front of the
camera follow. Used to train the interaction prior and by ``benchmarks/two_hands.py``.
"""

from __future__ import annotations

import numpy as np

from models.geometry import axis_angle_to_matrix
from models.hand_model import HandModel
from models.limits import clamp_pose
from models.penetration import HandKinematics, HandState, overlaps, sphere_penetration
from models.poses import named_pose, pose_from_curls

KINDS = ("clasp", "pinch", "interlace", "hold_finger", "palms")
_MIRROR = np.diag([-1.0, 1.0, 1.0])


def _rot(x: float, y: float, z: float) -> np.ndarray:
    return axis_angle_to_matrix(np.array([[x, y, z]]))[0]


def _poses(model: HandModel, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    names = model.data.joint_names
    u = rng.uniform
    if kind == "clasp":
        a = pose_from_curls(names, [[u(0.2, 0.6)] + list(u(0.45, 0.8, 4))], u(0, 0.3))
        b = pose_from_curls(names, [[u(0.2, 0.6)] + list(u(0.45, 0.8, 4))], u(0, 0.3))
    elif kind == "pinch":
        a = named_pose(names, "pinch")
        b = named_pose(names, "point")
    elif kind == "interlace":
        a = pose_from_curls(names, [list(u(0.0, 0.3, 5))], u(0.7, 1.0))
        b = pose_from_curls(names, [list(u(0.0, 0.3, 5))], u(0.7, 1.0))
    elif kind == "hold_finger":
        a = pose_from_curls(names, [[u(0.3, 0.6)] + list(u(0.55, 0.8, 4))], 0.0)
        b = named_pose(names, "point")
    elif kind == "palms":
        a = pose_from_curls(names, [list(u(0.0, 0.35, 5))], u(0.0, 0.6))
        b = pose_from_curls(names, [list(u(0.0, 0.35, 5))], u(0.0, 0.6))
    else:
        raise ValueError(f"unknown interaction kind {kind!r}; choose from {', '.join(KINDS)}")
    out = []
    for p in (a, b):
        p = p[0].copy()
        p[1:] += rng.normal(0.0, np.deg2rad(3.0), p[1:].shape)
        out.append(clamp_pose(p[None], model.data.limits)[0])
    return tuple(out)


def _left_in_right_frame(kind: str, kin: HandKinematics, right: HandState, left_pose,
                         shape, rng) -> tuple[np.ndarray, np.ndarray]:
    """Camera-space rotation ``G`` and wrist-relative offset of the left hand (right at I)."""
    u = rng.uniform
    facing = _rot(0.0, np.pi, 0.0)  # a left hand turned to face a right hand's palm
    kr = kin.posed(right, False).keypoints
    if kind in ("clasp", "palms", "interlace"):
        spin = {"clasp": u(1.2, 1.9), "palms": u(-0.3, 0.3), "interlace": u(-0.15, 0.15)}[kind]
        g = _rot(0.0, 0.0, spin) @ facing
        centre = kr[[0, 5, 9, 13, 17]].mean(0) + np.array([
            u(-0.01, 0.01), u(-0.01, 0.01), -0.025])
        if kind == "interlace":
            centre[0] += 0.009 * rng.choice([-1.0, 1.0])
        return g, centre
    # pinch / hold: the left index tip goes where the right hand holds it.
    g = _rot(*rng.normal(0.0, 0.6, 3)) @ facing
    target = (kr[4] + kr[8]) / 2 if kind == "pinch" else kr[[6, 10, 14, 2]].mean(0)
    probe = HandState(left_pose, shape, _MIRROR @ g @ _MIRROR, np.zeros(3), True)
    kl = kin.posed(probe, False).keypoints  # camera space, left wrist near the origin
    return g, target - kl[8] + kl[[0, 5, 9, 13, 17]].mean(0)


def _left_state(kin: HandKinematics, pose, shape, g: np.ndarray, centre: np.ndarray
                ) -> HandState:
    """A left-hand state whose palm centre (camera space) is ``centre`` and rotation ``g``."""
    s = HandState(pose, shape, _MIRROR @ g @ _MIRROR, np.zeros(3), True)
    kp = kin.posed(s, False).keypoints
    shift = centre - kp[[0, 5, 9, 13, 17]].mean(0)
    return HandState(pose, shape, s.rot, _MIRROR @ shift, True)


def separate(kin: HandKinematics, right: HandState, left: HandState, direction: np.ndarray,
             max_m: float = 0.12) -> HandState:
    """Push the left hand along ``direction`` (camera axes) until the proxies just touch."""
    r = kin.proxy.radius
    sa = kin.posed(right, False).spheres
    direction = direction / max(np.linalg.norm(direction), 1e-9)

    def moved(dist: float) -> HandState:
        return HandState(left.pose, left.shape, left.rot,
                         left.trans + _MIRROR @ (direction * dist), True)

    def pen(dist: float) -> float:
        return float(sphere_penetration(sa, r, kin.posed(moved(dist), False).spheres, r).sum())

    if pen(0.0) <= 0.0:
        return left
    lo, hi = 0.0, max_m
    for _ in range(18):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if pen(mid) <= 0.0 else (mid, hi)
    return moved(hi)


def _place(state: HandState, q: np.ndarray, offset: np.ndarray) -> HandState:
    """Turn a camera-space hand by ``q`` about the origin, then shift it by ``offset``."""
    if state.left:
        qm = _MIRROR @ q @ _MIRROR
        return HandState(state.pose, state.shape, qm @ state.rot,
                         qm @ state.trans + _MIRROR @ offset, True)
    return HandState(state.pose, state.shape, q @ state.rot, q @ state.trans + offset, False)


def sample_interaction(kin: HandKinematics, rng: np.random.Generator, kind: str | None = None,
                       shape_std: float = 0.6) -> tuple[HandState, HandState, str]:
    """One touching, non-penetrating pair ``(right, left, kind)`` in the camera frame
    (drawn again when pushing the hands apart along the line between them does not part
    their proxies within 12 cm)."""
    kind = kind or str(rng.choice(KINDS))
    for _ in range(50):
        right, left = _draw(kin, rng, kind, shape_std)
        r = kin.proxy.radius
        if not len(overlaps(kin.posed(right, False).spheres, r,
                            kin.posed(left, False).spheres, r)[0]):
            return right, left, kind
    raise RuntimeError(f"could not draw a non-penetrating {kind!r} pair in 50 tries")


def _draw(kin: HandKinematics, rng: np.random.Generator, kind: str, shape_std: float
          ) -> tuple[HandState, HandState]:
    model = kin.model
    pose_r, pose_l = _poses(model, kind, rng)
    shape = np.clip(rng.normal(0.0, shape_std, model.num_shape), -2.0, 2.0)
    shape_l = shape + rng.normal(0.0, 0.05, shape.shape)  # one person: nearly one size
    right = HandState(pose_r, shape, np.eye(3), np.zeros(3), False)
    g, centre = _left_in_right_frame(kind, kin, right, pose_l, shape_l, rng)
    left = _left_state(kin, pose_l, shape_l, g, centre)
    cr = kin.posed(right, False).spheres.mean(0)
    cl = kin.posed(left, False).spheres.mean(0)
    left = separate(kin, right, left, cl - cr + rng.normal(0, 0.002, 3))
    # A view: fingers roughly up, any turn about the vertical, some tilt; then placement.
    q = _rot(*rng.normal(0.0, 0.35, 3)) @ _rot(0.0, rng.uniform(-np.pi, np.pi), 0.0)
    mid = (kin.posed(right, False).keypoints.mean(0) + kin.posed(left, False).keypoints.mean(0))
    offset = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.04, 0.04),
                       rng.uniform(0.3, 0.6)]) - q @ (mid / 2)
    return _place(right, q, offset), _place(left, q, offset)
