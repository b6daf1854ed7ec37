"""The compiled landmark post-processing (realtime.detect.roi_kernels) equals hand_rois' NumPy."""

from __future__ import annotations

import numpy as np

from realtime.detect import hand_rois as hr
from realtime.detect.roi_kernels import ROI_INDEX, landmark_outputs


def test_kernel_matches_the_numpy_reference():
    rng = np.random.default_rng(0)
    for trial in range(50):
        n = 1 + trial % 3
        w, h = (640, 480) if trial % 2 else (1280, 720)
        raw = rng.uniform(0, 224, (n, 63)).astype(np.float32)
        raw[:, 2::3] = rng.normal(0, 20, (n, 21))
        world = rng.normal(0, 0.05, (n, 63)).astype(np.float32)
        rects = np.column_stack([rng.uniform(0.2, 0.8, (n, 2)), rng.uniform(0.1, 0.5, (n, 2)),
                                 rng.uniform(-np.pi, np.pi, n)])
        out = (np.empty((n, 21, 3)), np.empty((n, 21, 2)), np.empty((n, 21, 3)),
               np.empty((n, 5)), np.empty((n, 4)))
        landmark_outputs(raw, world, rects, w, h, ROI_INDEX, *out)
        lm, px, wl, nxt, box = out
        for b in range(n):
            want_lm = hr.project_landmarks(raw[b], rects[b])
            np.testing.assert_allclose(lm[b], want_lm, rtol=0, atol=1e-12)
            np.testing.assert_allclose(px[b], want_lm[:, :2] * (w, h), rtol=0, atol=1e-9)
            np.testing.assert_allclose(wl[b], hr.project_world(world[b], rects[b, 4]),
                                       rtol=0, atol=1e-12)
            np.testing.assert_allclose(nxt[b], hr.landmarks_to_rect(want_lm, w, h),
                                       rtol=0, atol=1e-9)
            p = want_lm[:, :2] * (w, h)
            np.testing.assert_allclose(box[b], np.concatenate([p.min(0), p.max(0)]),
                                       rtol=0, atol=1e-9)
