"""Shared helpers for the benchmarks: error metrics and the real-data location."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "realhands"


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align ``pred (N,3)`` to ``gt (N,3)`` (rotation, scale, translation)."""
    mp, mg = pred.mean(0), gt.mean(0)
    a, b = pred - mp, gt - mg
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    fix = np.diag([1.0, 1.0, d])
    rot = vt.T @ fix @ u.T
    scale = float((s * np.diag(fix)).sum() / max((a**2).sum(), 1e-12))
    return scale * a @ rot.T + mg


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean distance per point, after subtracting the root (point 0) from both."""
    return float(np.linalg.norm((pred - pred[0]) - (gt - gt[0]), axis=-1).mean())


def pa_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean distance per point after Procrustes alignment (PA-MPJPE / PA-MPVPE)."""
    return float(np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean())


def pa_error_per_point(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1)
