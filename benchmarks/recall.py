"""Hands found on real photos: our pipeline (one pass, and recall mode) against MediaPipe.

Baseline: MediaPipe Hands 0.10.21 (``mediapipe.solutions.hands``), ``static_image_mode=True``,
``max_num_hands=2``, ``model_complexity=1``, confidences 0.5, as in the table of
``realhands/README.md``. Ours: the real pipeline on each photo, :class:`~realtime.HandMesher`
with ``stills=True`` and the photo default ``max_num_hands=4`` (the ``handmesh`` command on
an image), the 2D keypoints of the mesh hands it returns (``HandMesh.keypoints_2d``, which
the regressor pulls onto the detector's 2D landmarks); once with one detector pass, once in
recall mode (:mod:`realtime.detect.recall`: original, flipped, padded and four quarter
passes, merged).

Labelled sets (hgcnn_realworld: the report split 00300-00582; freihand, onehand10k,
panoptic, interhand2.6m, coco-wholebody): a ground-truth hand is *detected* when a hand
matches it (one to one, nearest first) with mean error < 0.5 x its size (the longer side of
its visible keypoints' box), as in the README. Errors are mean px over visible joints, on
the hands both MediaPipe and ours found, and on all hands each found. ``false_hands``
counts hands matched to no ground truth (a labelled set may leave hands unlabelled: coco,
onehand10k; hgcnn's images have one hand each, so there each is a false detection).
Unlabelled sets (wild photos, FreiHAND eval, gesture photos, MediaPipe's hands.jpg): hands
found by each.

Prints a table; the last line is one JSON object (``recall_ratio_vs_mediapipe`` per set and
overall, for the default and recall mode, and ``px_error_ratio_vs_mediapipe``).

    .venv/bin/python -m benchmarks.recall [--quick] [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import REPORT_FROM, SHARED_DATA

LABELLED = ("hgcnn_realworld", "freihand_mmpose", "onehand10k_mmpose", "panoptic_mmpose",
            "interhand26m_mmpose", "cocowholebody_mmpose")
UNLABELLED = ("wild_nogt", "freihand_eval_handmesh", "gestures_mediapipe_modelmaker",
              "mediapipe_reference")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MATCH_FRACTION = 0.5  # detected: mean error < this x the ground-truth hand's size
QUICK_HGCNN = 40
METHODS = ("mediapipe", "ours", "ours_recall")


@dataclass
class SetResult:
    """Per set: counts per method, and per ground-truth hand each method's error (or None)."""

    images: int = 0
    gt_hands: int = 0
    found: dict = field(default_factory=lambda: {m: 0 for m in METHODS})  # all hands found
    false_hands: dict = field(default_factory=lambda: {m: 0 for m in METHODS})  # no GT
    errors: dict = field(default_factory=lambda: {m: [] for m in METHODS})  # per GT hand
    side_ok: dict = field(default_factory=lambda: {m: [0, 0] for m in METHODS})
    seconds: dict = field(default_factory=lambda: {m: 0.0 for m in METHODS})


def gt_hands(image: dict) -> list[tuple[np.ndarray, np.ndarray, str | None]]:
    """(visible keypoints (K,2), their joint indices, side) of each labelled hand."""
    out = []
    for hand in image.get("hands") or []:
        kp = np.asarray(hand["keypoints_2d"], dtype=np.float64)
        vis = np.asarray(hand.get("visible") or [1] * 21, dtype=bool)
        if vis.sum() >= 2 and np.ptp(kp[vis], axis=0).max() > 0:
            out.append((kp[vis], np.flatnonzero(vis), hand.get("side")))
    return out


def match(preds: list[np.ndarray], gts: list) -> dict[int, tuple[int, float]]:
    """Ground-truth hand -> (prediction, mean px error), one to one, nearest pairs first,
    only pairs within ``MATCH_FRACTION`` of the ground-truth hand's size."""
    pairs = []
    for g, (kp, idx, _) in enumerate(gts):
        size = np.ptp(kp, axis=0).max()
        for p, pred in enumerate(preds):
            err = float(np.linalg.norm(pred[idx] - kp, axis=1).mean())
            if err < MATCH_FRACTION * size:
                pairs.append((err, g, p))
    out: dict[int, tuple[int, float]] = {}
    used: set[int] = set()
    for err, g, p in sorted(pairs):
        if g not in out and p not in used:
            out[g] = (p, err)
            used.add(p)
    return out


class Methods:
    """The three hand finders, each ``(bgr) -> [(keypoints (21,2), side)]``."""

    def __init__(self) -> None:
        from realtime import HandMesher, HandMesherConfig
        from realtime.detect.detector import PHOTO_MAX_HANDS, DetectorConfig
        from realtime.detect.mediapipe_legacy import MediaPipeDetector
        from realtime.detect.recall import RecallConfig

        self.mediapipe = MediaPipeDetector(DetectorConfig(
            kind="mediapipe", static_image_mode=True, max_num_hands=2, model_complexity=1))
        self.ours = HandMesher(HandMesherConfig(
            stills=True, detector=DetectorConfig(max_num_hands=PHOTO_MAX_HANDS)))
        self.ours_recall = HandMesher(HandMesherConfig(
            stills=True, detector=DetectorConfig(max_num_hands=PHOTO_MAX_HANDS,
                                                 recall=RecallConfig())), model=self.ours.model)

    def run(self, name: str, bgr: np.ndarray) -> list[tuple[np.ndarray, str]]:
        if name == "mediapipe":
            from realtime.types import Frame

            return [(d.landmarks_px, d.handedness)
                    for d in self.mediapipe.process(Frame(bgr, 0, 0.0))]
        mesher = self.ours if name == "ours" else self.ours_recall
        return [(np.asarray(h.keypoints_2d), h.handedness) for h in mesher.process(bgr)]

    def close(self) -> None:
        self.mediapipe.close()
        self.ours.close()
        self.ours_recall.close()


def images_of(data: Path, name: str, quick: bool) -> list[dict]:
    """The images of a set: its annotations' entries, or every image file (unlabelled)."""
    folder = data / name
    ann = folder / "annotations.json"
    if name in LABELLED:
        images = json.loads(ann.read_text())["images"]
        if name == "hgcnn_realworld":  # the report split; 00000-00299 are for tuning
            images = [im for im in images if int(Path(im["file"]).stem) >= REPORT_FROM]
            images = images[:QUICK_HGCNN] if quick else images
        return images
    return [{"file": p.name} for p in sorted(folder.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES]


def evaluate(methods: Methods, data: Path, name: str, quick: bool) -> SetResult:
    res = SetResult()
    for im in images_of(data, name, quick):
        bgr = cv2.imread(str(data / name / im["file"]), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"  {name}/{im['file']}: unreadable, skipped")
            continue
        res.images += 1
        gts = gt_hands(im) if name in LABELLED else []
        res.gt_hands += len(gts)
        for m in METHODS:
            t0 = time.perf_counter()
            found = methods.run(m, bgr)
            res.seconds[m] += time.perf_counter() - t0
            res.found[m] += len(found)
            matches = match([kp for kp, _ in found], gts)
            res.false_hands[m] += len(found) - len(matches)
            for g, (_, _, side) in enumerate(gts):
                hit = matches.get(g)
                res.errors[m].append(None if hit is None else hit[1])
                if hit is not None and side in ("left", "right"):
                    res.side_ok[m][0] += found[hit[0]][1] == side
                    res.side_ok[m][1] += 1
    return res


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 3) if values else None


def _ratio(a, b) -> float | None:
    return round(a / b, 4) if a is not None and b else None


def summarize(name: str, r: SetResult) -> dict:
    out = {"images": r.images, "found": dict(r.found),
           "seconds_per_image": {m: round(r.seconds[m] / max(r.images, 1), 3) for m in METHODS}}
    if name not in LABELLED:
        out["found_ratio_vs_mediapipe"] = _ratio(r.found["ours_recall"], r.found["mediapipe"])
        return out
    det = {m: sum(e is not None for e in r.errors[m]) for m in METHODS}
    mp = r.errors["mediapipe"]
    out.update(gt_hands=r.gt_hands, detected=det, false_hands=dict(r.false_hands),
               recall_ratio_vs_mediapipe=_ratio(det["ours"], det["mediapipe"]),
               recall_ratio_recall_mode_vs_mediapipe=_ratio(det["ours_recall"],
                                                            det["mediapipe"]),
               px_error_all=({m: _mean(r.errors[m]) for m in METHODS}),
               handedness_correct={m: f"{a}/{b}" for m, (a, b) in r.side_ok.items() if b})
    for m in ("ours", "ours_recall"):
        both = [(e, b) for e, b in zip(r.errors[m], mp) if e is not None and b is not None]
        out[f"px_error_both_{m}"] = {"hands": len(both), "ours": _mean(e for e, _ in both),
                                     "mediapipe": _mean(b for _, b in both)}
    return out


def print_table(results: dict) -> None:
    print(f"\n{'set':<30}{'imgs':>5}{'GT':>5}{'MP':>5}{'ours':>6}{'recall':>7}"
          f"{'ratio':>7}{'ratio_r':>8}{'px MP/ours/recall (both)':>28}{'false MP/o/r':>14}")
    for name, s in results.items():
        if "gt_hands" not in s:
            continue
        d = s["detected"]
        both = s["px_error_both_ours"]
        both_r = s["px_error_both_ours_recall"]
        px = f"{both['mediapipe']}/{both['ours']}/{both_r['ours']}"
        false = "/".join(str(s["false_hands"][m]) for m in METHODS)
        print(f"{name:<30}{s['images']:>5}{s['gt_hands']:>5}{d['mediapipe']:>5}{d['ours']:>6}"
              f"{d['ours_recall']:>7}{s['recall_ratio_vs_mediapipe']!s:>7}"
              f"{s['recall_ratio_recall_mode_vs_mediapipe']!s:>8}{px:>28}{false:>14}")
    print(f"\n{'unlabelled set':<30}{'imgs':>5}{'found MP':>10}{'ours':>6}{'recall':>7}"
          f"{'s/img MP/ours/recall':>24}")
    for name, s in results.items():
        if "gt_hands" in s:
            continue
        f, t = s["found"], s["seconds_per_image"]
        print(f"{name:<30}{s['images']:>5}{f['mediapipe']:>10}{f['ours']:>6}"
              f"{f['ours_recall']:>7}{t['mediapipe']:>10}/{t['ours']}/{t['ours_recall']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"hgcnn_realworld: the first {QUICK_HGCNN} report-split images only")
    p.add_argument("--data", type=Path, default=SHARED_DATA,
                   help="the realhands folder (default: ../shared/data/realhands)")
    a = p.parse_args(argv)
    if not (a.data / "README.md").is_file():
        print(f"skipping: {a.data} not found (the shared real-hands data is absent; pass "
              "--data PATH)")
        print(json.dumps({"benchmark": "recall", "skipped": f"{a.data} not found"}))
        return 0
    methods = Methods()
    results: dict[str, dict] = {}
    sets: dict[str, SetResult] = {}
    try:
        for name in LABELLED + UNLABELLED:
            if not (a.data / name).is_dir():
                print(f"skipping {name}: {a.data / name} not found")
                continue
            t0 = time.perf_counter()
            sets[name] = evaluate(methods, a.data, name, a.quick)
            results[name] = summarize(name, sets[name])
            print(f"{name}: {sets[name].images} images, {time.perf_counter() - t0:.0f} s",
                  flush=True)
    finally:
        methods.close()
    print_table(results)
    labelled = [sets[n] for n in LABELLED if n in sets]
    det = {m: sum(e is not None for s in labelled for e in s.errors[m]) for m in METHODS}
    gt = sum(s.gt_hands for s in labelled)
    mp_all = [e for s in labelled for e in s.errors["mediapipe"]]
    false_hands = {m: sum(s.false_hands[m] for s in labelled) for m in METHODS}
    overall = {"gt_hands": gt, "detected": det, "false_hands": false_hands}
    for m in ("ours", "ours_recall"):
        errs = [e for s in labelled for e in s.errors[m]]
        both = [(e, b) for e, b in zip(errs, mp_all) if e is not None and b is not None]
        overall[f"px_error_both_{m}"] = {"hands": len(both), "ours": _mean(e for e, _ in both),
                                         "mediapipe": _mean(b for _, b in both)}
    print(f"\noverall (labelled): {gt} GT hands, detected MediaPipe {det['mediapipe']}, ours "
          f"{det['ours']}, recall mode {det['ours_recall']}; false hands MediaPipe "
          f"{false_hands['mediapipe']}, ours {false_hands['ours']}, recall mode "
          f"{false_hands['ours_recall']}")
    found = {m: sum(s.found[m] for n, s in sets.items() if n in UNLABELLED) for m in METHODS}
    print(f"overall (unlabelled): hands found MediaPipe {found['mediapipe']}, ours "
          f"{found['ours']}, recall mode {found['ours_recall']}")
    ratios = {n: s["recall_ratio_vs_mediapipe"] for n, s in results.items() if "gt_hands" in s}
    ratios["overall"] = _ratio(det["ours"], det["mediapipe"])
    ratios_r = {n: s["recall_ratio_recall_mode_vs_mediapipe"]
                for n, s in results.items() if "gt_hands" in s}
    ratios_r["overall"] = _ratio(det["ours_recall"], det["mediapipe"])
    px = {}
    for name, s in list(results.items()) + [("overall", overall)]:
        if "px_error_both_ours" in s:
            px[name] = {m: _ratio(s[f"px_error_both_{m}"]["ours"],
                                  s[f"px_error_both_{m}"]["mediapipe"])
                        for m in ("ours", "ours_recall")}
    print(json.dumps({
        "benchmark": "recall", "quick": a.quick,
        "baseline": "mediapipe 0.10.21 static_image_mode max_num_hands=2 model_complexity=1",
        "recall_ratio_vs_mediapipe": ratios,
        "recall_ratio_recall_mode_vs_mediapipe": ratios_r,
        "px_error_ratio_vs_mediapipe": px,
        "false_hands": {**{n: s["false_hands"] for n, s in results.items() if "gt_hands" in s},
                        "overall": false_hands},
        "unlabelled_found": {n: s["found"] for n, s in results.items() if "gt_hands" not in s},
        "unlabelled_found_overall": found,
        "overall": overall, "sets": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
