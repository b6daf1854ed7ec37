"""Jitter, lag and cost of the One-Euro hand smoother (``realtime.mesh.smoothing``).

(a) A synthetic trajectory with known truth: the open hand moving for 20 s at 30 FPS, slow
    drift plus a few fast moves and wrist turns, with MediaPipe-like noise added.
(b) A static hand. Running MediaPipe over the recorded clip is too slow for a quick
    benchmark on this 2-core machine, so the static hand is simulated: white per-joint noise
    plus a slowly wandering (AR(1)) per-hand offset, z noisier than x/y, the magnitudes seen
    on MediaPipe's landmarks of a still hand (a few millimetres).
(c) The cost per frame of smoothing two full-mesh hands after warm-up, against a NumPy
    One-Euro of the same points in the same run.

Metrics: jitter = RMS of the frame-to-frame acceleration (second difference) of the joints;
jitter_reduction = 1 - jitter_out / jitter_raw. Lag = the time shift s (frames, 0.05 steps)
minimising the mean squared distance between the output at t and the truth at t - s;
added lag = lag(smoothed) - lag(raw). Prints a table; the last line is one JSON object.

    .venv/bin/python -m benchmarks.smoothing [--sweep]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from benchmarks.common import REPO
from models.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from models.hand_model import HandModel
from realtime.mesh.smoothing import HandSmoother, SmootherConfig
from realtime.types import HandMesh

FPS = 30.0
SECONDS = 20.0
JOINT_NOISE_M = np.array([0.0025, 0.0025, 0.004])   # per joint, per frame (x, y, z)
HAND_NOISE_M = np.array([0.0015, 0.0015, 0.003])    # shared by the whole hand, per frame
ROOT_NOISE_RAD = 0.03
TRACE_PNG = REPO / "docs" / "smoothing_trace.png"


def min_jerk(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return 10 * u**3 - 15 * u**4 + 6 * u**5


def trajectory(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wrist position ``(n,3)`` meters and root rotation vector ``(n,3)`` of the truth."""
    t = np.arange(n) / FPS
    pos = np.stack([0.02 * np.sin(2 * np.pi * 0.11 * t) + 0.01 * np.sin(2 * np.pi * 0.37 * t),
                    0.015 * np.sin(2 * np.pi * 0.07 * t + 1.0),
                    0.5 + 0.02 * np.sin(2 * np.pi * 0.05 * t)], axis=1)
    # Fast moves: (start s, duration s, displacement m); peak speeds 0.5-1 m/s.
    for start, dur, disp in ((3.0, 0.4, (0.20, 0.0, 0.0)), (6.5, 0.3, (-0.10, 0.08, 0.0)),
                             (10.0, 0.5, (0.0, -0.15, 0.10)), (14.0, 0.35, (-0.10, 0.07, -0.1)),
                             (17.0, 0.25, (0.08, 0.0, 0.0))):
        pos += min_jerk((t - start) / dur)[:, None] * np.asarray(disp)
    rot = np.stack([0.2 * np.sin(2 * np.pi * 0.1 * t),
                    0.4 * np.sin(2 * np.pi * 0.06 * t) + 0.8 * min_jerk((t - 8.0) / 0.5)
                    - 0.8 * min_jerk((t - 12.0) / 0.5),
                    0.1 * np.sin(2 * np.pi * 0.13 * t)], axis=1)
    return pos, rot


def hands_over_time(model: HandModel, pos, rot, rng, static_wander: bool = False):
    """Truth and noisy :class:`HandMesh` sequences for a rigid open hand."""
    rest_v = model.forward(model.zero_pose(1)).vertices[0]
    rest_k = model.forward(model.zero_pose(1)).keypoints[0]
    nearest = np.argmin(np.linalg.norm(rest_v[:, None] - rest_k[None], axis=-1), axis=1)
    mats = axis_angle_to_matrix(rot)
    n = len(pos)
    truth_k = np.einsum("tij,kj->tki", mats, rest_k) + pos[:, None]
    truth_v = np.einsum("tij,vj->tvi", mats, rest_v) + pos[:, None]
    shared = rng.normal(0, 1, (n, 3)) * HAND_NOISE_M
    if static_wander:  # slow wander of MediaPipe's estimate of a still hand
        ar = np.zeros((n, 3))
        for i in range(1, n):
            ar[i] = 0.8 * ar[i - 1] + rng.normal(0, 1, 3) * HAND_NOISE_M * 0.6
        shared = shared + ar
    per_joint = rng.normal(0, 1, (n, 21, 3)) * JOINT_NOISE_M
    raw_k = truth_k + per_joint + shared[:, None]
    raw_v = truth_v + per_joint[:, nearest] + shared[:, None]  # the mesh follows the joints
    noisy_rot = matrix_to_axis_angle(mats @ axis_angle_to_matrix(
        rng.normal(0, ROOT_NOISE_RAD / np.sqrt(3), (n, 3))))
    hands = []
    for i in range(n):
        pose = model.zero_pose(1)[0]
        pose[0] = noisy_rot[i]
        hands.append(HandMesh(raw_v[i], raw_k[i], np.zeros(len(rest_v)), pose,
                              np.zeros(model.num_shape), np.zeros((21, 2)), "right", 1.0, 0,
                              i / FPS, i))
    return truth_k, truth_v, hands


def run(smoother: HandSmoother, hands: list[HandMesh]):
    outs = [smoother.smooth([h])[0] for h in hands]
    return (np.stack([o.joints for o in outs]), np.stack([o.vertices for o in outs]),
            np.stack([o.pose[0] for o in outs]))


def jitter(x: np.ndarray) -> float:
    """RMS norm of the second difference over frames, ``x (T,P,3)``."""
    return float(np.sqrt(np.mean(np.sum(np.diff(x, 2, axis=0) ** 2, axis=-1))))


def best_shift(out: np.ndarray, truth: np.ndarray, margin: int = 15,
               shift_range: tuple[float, float] = (-3.0, 8.0),
               per_point_offset: bool = False) -> float:
    """Shift s (frames) minimising mean |out(t) - truth(t - s)|^2, by linear interpolation.

    ``shift_range``: the searched shifts (0.05-frame steps); ``margin`` must exceed its ends.
    ``per_point_offset``: ignore a constant offset per point (the mean difference over the
    compared frames is removed at each shift), for two estimators whose skeletons differ.
    """
    if margin <= max(abs(shift_range[0]), abs(shift_range[1])):
        raise ValueError(f"margin {margin} must exceed the searched shifts {shift_range}")
    n = len(truth)
    t = np.arange(margin, n - margin)
    shifts = np.arange(shift_range[0], shift_range[1] + 1e-9, 0.05)
    errs = []
    for s in shifts:
        src = t - s
        i0 = np.floor(src).astype(int)
        w = (src - i0)[:, None, None]
        shifted = (1 - w) * truth[i0] + w * truth[i0 + 1]
        diff = out[t] - shifted
        if per_point_offset:
            diff = diff - diff.mean(axis=0)
        errs.append(np.mean(np.sum(diff ** 2, axis=-1)))
    return float(shifts[int(np.argmin(errs))])


def mean_err_mm(x: np.ndarray, truth: np.ndarray) -> float:
    return 1000.0 * float(np.linalg.norm(x - truth, axis=-1).mean())


def synthetic(model, config, seed=0):
    rng = np.random.default_rng(seed)
    pos, rot = trajectory(int(SECONDS * FPS))
    truth_k, truth_v, hands = hands_over_time(model, pos, rot, rng)
    raw_k = np.stack([h.joints for h in hands])
    raw_v = np.stack([h.vertices for h in hands])
    sm = HandSmoother(config)
    out_k, out_v, out_r = run(sm, hands)
    raw_r = np.stack([h.pose[0] for h in hands])
    rot_err = lambda r: float(np.degrees(np.linalg.norm(matrix_to_axis_angle(  # noqa: E731
        axis_angle_to_matrix(r) @ np.swapaxes(axis_angle_to_matrix(rot), 1, 2)), axis=1).mean()))
    return {
        "jitter_raw_mm": 1000 * jitter(raw_k), "jitter_out_mm": 1000 * jitter(out_k),
        "jitter_reduction": 1 - jitter(out_k) / jitter(raw_k),
        "vertex_jitter_reduction": 1 - jitter(out_v) / jitter(raw_v),
        "lag_raw": best_shift(raw_k, truth_k), "lag_out": best_shift(out_k, truth_k),
        "error_raw_mm": mean_err_mm(raw_k, truth_k),
        "error_smoothed_mm": mean_err_mm(out_k, truth_k),
        "vertex_error_raw_mm": mean_err_mm(raw_v, truth_v),
        "vertex_error_smoothed_mm": mean_err_mm(out_v, truth_v),
        "root_error_raw_deg": rot_err(raw_r), "root_error_smoothed_deg": rot_err(out_r),
        "trace": (truth_k[:, 8, 0], raw_k[:, 8, 0], out_k[:, 8, 0]),
    }


def static(model, config, seed=1):
    rng = np.random.default_rng(seed)
    n = int(SECONDS * FPS)
    pos = np.tile([0.0, 0.0, 0.5], (n, 1))
    rot = np.tile([0.1, 0.2, 0.0], (n, 1))
    truth_k, _, hands = hands_over_time(model, pos, rot, rng, static_wander=True)
    raw_k = np.stack([h.joints for h in hands])
    out_k, _, _ = run(HandSmoother(config), hands)
    return {"static_jitter_reduction": 1 - jitter(out_k) / jitter(raw_k),
            "static_error_raw_mm": mean_err_mm(raw_k, truth_k),
            "static_error_smoothed_mm": mean_err_mm(out_k, truth_k)}


class NumpyOneEuro:
    """The same filter in NumPy over ``(..., 3)`` points (reference for the cost)."""

    def __init__(self, min_cutoff, beta, d_cutoff):
        self.p = (min_cutoff, beta, d_cutoff)
        self.x = self.dx = None

    def __call__(self, x, dt):
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x.copy()
        mc, beta, dc = self.p
        wd = 2 * np.pi * dc * dt
        self.dx = self.dx + wd / (1 + wd) * ((x - self.x) / dt - self.dx)
        w = 2 * np.pi * dt * (mc + beta * np.linalg.norm(self.dx, axis=-1, keepdims=True))
        self.x = self.x + w / (1 + w) * (x - self.x)
        return self.x.copy()


def cost(model, config, frames=300):
    rng = np.random.default_rng(2)
    base_v = model.forward(model.zero_pose(1)).vertices[0] + [0, 0, 0.5]
    base_k = model.forward(model.zero_pose(1)).keypoints[0] + [0, 0, 0.5]
    sides = ("right", "left")
    hands = [[HandMesh(base_v + rng.normal(0, 0.002, base_v.shape),
                       base_k + rng.normal(0, 0.002, base_k.shape), np.zeros(len(base_v)),
                       rng.normal(0, 0.1, (model.num_joints, 3)), np.zeros(model.num_shape),
                       np.zeros((21, 2)), sides[h], 1.0, h, f / FPS, f) for h in range(2)]
             for f in range(frames)]
    sm = HandSmoother(config)
    sm.warmup()
    ours = []
    for frame in hands:
        t0 = time.perf_counter()
        sm.smooth(frame)
        ours.append(time.perf_counter() - t0)
    ref = NumpyOneEuro(config.min_cutoff_hz, config.beta, config.d_cutoff_hz)
    theirs = []
    for frame in hands:
        t0 = time.perf_counter()
        pts = np.stack([np.concatenate([h.joints, h.vertices]) for h in frame])
        out = ref(pts, 1.0 / FPS)
        [replace(h, joints=out[i, :21], vertices=out[i, 21:]) for i, h in enumerate(frame)]
        theirs.append(time.perf_counter() - t0)
    ours, theirs = np.array(ours[10:]) * 1e3, np.array(theirs[10:]) * 1e3
    return {"smoothing_ms": float(np.median(ours)),
            "smoothing_ms_p95": float(np.percentile(ours, 95)),
            "numpy_smoothing_ms": float(np.median(theirs)),
            "numpy_over_numba": float(np.median(theirs) / np.median(ours))}


def plot(trace, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth, raw, out = trace
    t = np.arange(len(truth)) / FPS
    sel = (t > 1.5) & (t < 7.5)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(t[sel], 1000 * raw[sel], ".", ms=3, color="0.6", label="raw (noisy)")
    ax.plot(t[sel], 1000 * truth[sel], "k-", lw=1, label="truth")
    ax.plot(t[sel], 1000 * out[sel], "C3-", lw=1.3, label="One-Euro")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("index tip x (mm)")
    ax.set_title("Smoother on the synthetic trajectory (30 FPS)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep(model):
    print(f"{'min_cutoff':>10} {'beta':>6} {'jitter_red':>10} {'added_lag':>9} {'err_mm':>7} "
          f"{'static':>7}")
    for mc in (0.7, 1.0, 1.5):
        for beta in (5.0, 10.0, 20.0, 40.0):
            cfg = SmootherConfig(min_cutoff_hz=mc, beta=beta)
            r = synthetic(model, cfg)
            s = static(model, cfg)
            print(f"{mc:>10} {beta:>6} {r['jitter_reduction']:>10.3f} "
                  f"{r['lag_out'] - r['lag_raw']:>9.2f} {r['error_smoothed_mm']:>7.2f} "
                  f"{s['static_jitter_reduction']:>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", action="store_true", help="also sweep min_cutoff and beta")
    args = parser.parse_args()
    model = HandModel.open_hand()
    config = SmootherConfig()
    if args.sweep:
        sweep(model)
    syn = synthetic(model, config)
    sta = static(model, config)
    cst = cost(model, config)
    plot(syn.pop("trace"), TRACE_PNG)
    added_lag = syn["lag_out"] - syn["lag_raw"]
    rows = [
        ("config", f"mode={config.mode} min_cutoff={config.min_cutoff_hz} Hz beta={config.beta} "
                   f"d_cutoff={config.d_cutoff_hz} Hz rot: {config.rotation_min_cutoff_hz} Hz "
                   f"beta {config.rotation_beta}", ""),
        ("jitter joints (mm/frame^2) raw -> out",
         f"{syn['jitter_raw_mm']:.2f} -> {syn['jitter_out_mm']:.2f}", ""),
        ("jitter reduction, joints (vertices)",
         f"{syn['jitter_reduction']:.3f} ({syn['vertex_jitter_reduction']:.3f})", ">= 0.6"),
        ("lag raw / smoothed (frames)", f"{syn['lag_raw']:.2f} / {syn['lag_out']:.2f}", ""),
        ("added lag (frames at 30 FPS)", f"{added_lag:.2f}", "<= 1"),
        ("joint error to truth raw -> smoothed (mm)",
         f"{syn['error_raw_mm']:.2f} -> {syn['error_smoothed_mm']:.2f}", ""),
        ("vertex error to truth raw -> smoothed (mm)",
         f"{syn['vertex_error_raw_mm']:.2f} -> {syn['vertex_error_smoothed_mm']:.2f}", ""),
        ("root rotation error raw -> smoothed (deg)",
         f"{syn['root_error_raw_deg']:.2f} -> {syn['root_error_smoothed_deg']:.2f}", ""),
        ("static hand (simulated) jitter reduction",
         f"{sta['static_jitter_reduction']:.3f}", ">= 0.6"),
        ("smoothing 2 hands x 1302 verts, median / p95 (ms)",
         f"{cst['smoothing_ms']:.3f} / {cst['smoothing_ms_p95']:.3f}", "<= 0.2"),
        ("NumPy One-Euro, same points (ms), ratio",
         f"{cst['numpy_smoothing_ms']:.3f}, x{cst['numpy_over_numba']:.1f}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<28} {target}")
    print(f"trace plot: {TRACE_PNG.relative_to(REPO)}")
    print(json.dumps({
        "jitter_reduction": round(syn["jitter_reduction"], 4),
        "added_lag_frames": round(added_lag, 3),
        "smoothing_ms": round(cst["smoothing_ms"], 4),
        "smoothing_ms_p95": round(cst["smoothing_ms_p95"], 4),
        "numpy_smoothing_ms": round(cst["numpy_smoothing_ms"], 4),
        "static_jitter_reduction": round(sta["static_jitter_reduction"], 4),
        "error_raw_mm": round(syn["error_raw_mm"], 3),
        "error_smoothed_mm": round(syn["error_smoothed_mm"], 3),
    }))


if __name__ == "__main__":
    main()
