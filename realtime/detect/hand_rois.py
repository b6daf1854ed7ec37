"""MediaPipe Hands' pre- and post-processing as pure, batched NumPy functions.

Every constant here is read from the graphs compiled into the mediapipe 0.10.21 wheel
(``PalmDetectionCpu``, ``PalmDetectionDetectionToRoi``, ``HandLandmarkCpu``,
``HandLandmarkLandmarksToRoi``) and every function mirrors one MediaPipe calculator, named in
its docstring, so that our schedule of the bundled models gives MediaPipe's own numbers.

Rects are MediaPipe's ``NormalizedRect`` as arrays ``(..., 5)``: ``x_center, y_center, width,
height`` as fractions of the image width/height and ``rotation`` in radians (clockwise on the
screen, since y points down). Images are ``(H, W, 3)`` uint8 BGR, as OpenCV reads them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

PALM_INPUT = 192  # PalmDetectionCpu: ImageToTensorCalculator 192x192, letterboxed, zeros
LANDMARK_INPUT = 224  # HandLandmarkCpu: ImageToTensorCalculator 224x224, border replicated
NUM_BOXES = 2016
NUM_KEYPOINTS = 7  # palm keypoints; 0 = wrist centre, 2 = middle finger MCP
SCORE_CLIP = 100.0  # TensorsToDetections score_clipping_thresh
NMS_IOU = 0.3  # NonMaxSuppression min_suppression_threshold, WEIGHTED, IoU
PALM_SCALE, PALM_SHIFT_Y = 2.6, -0.5  # PalmDetectionDetectionToRoi RectTransformation
HAND_SCALE, HAND_SHIFT_Y = 2.0, -0.1  # HandLandmarkLandmarksToRoi RectTransformation
NORMALIZE_Z = 0.4  # TensorsToLandmarks normalize_z of the landmark model
ASSOCIATION_IOU = 0.5  # AssociationNormRectCalculator min_similarity_threshold
# HandLandmarksToRectCalculator uses only these landmarks (wrist, thumb base, MCPs and PIPs).
ROI_LANDMARKS = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])


def normalize_radians(angle: np.ndarray | float) -> np.ndarray | float:
    """Wrap to [-pi, pi), MediaPipe's ``NormalizeRadians``."""
    return angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi))


def ssd_anchors() -> np.ndarray:
    """Anchor centres ``(2016, 2)`` (x, y in [0, 1]) of the palm detector.

    SsdAnchorsCalculator: 4 layers, strides 8/16/16/16, offsets 0.5, one aspect ratio plus the
    interpolated scale (2 anchors per layer and cell), layers of equal stride merged, fixed
    anchor size (width = height = 1, so they never scale the boxes).
    """
    strides = [8, 16, 16, 16]
    out = []
    layer = 0
    while layer < len(strides):
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
        per_cell = 2 * (last - layer)
        n = math.ceil(PALM_INPUT / strides[layer])
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(cells, per_cell, axis=0))
        layer = last
    anchors = np.concatenate(out).astype(np.float32)
    return anchors


def crop_matrix(rect_px: tuple[float, float, float, float, float], size: int) -> np.ndarray:
    """Affine ``(2, 3)`` from image pixels to a ``size x size`` tensor for a rotated rect.

    ImageToTensorCalculator (OpenCV converter): the rect's ``cv2.boxPoints`` (bottom-left,
    top-left, top-right) go to the tensor corners (0, size), (0, 0), (size, 0). ``rect_px`` is
    ``(cx, cy, width, height, rotation_rad)`` in pixels.
    """
    cx, cy, w, h, rot = rect_px
    pts = cv2.boxPoints(((cx, cy), (w, h), math.degrees(rot))).astype(np.float32)
    dst = np.array([[0, size], [0, 0], [size, 0]], dtype=np.float32)
    return cv2.getAffineTransform(pts[:3], dst)


def letterbox(image_w: int, image_h: int) -> tuple[np.ndarray, np.ndarray]:
    """The palm detector's crop matrix and letterbox padding ``(left, top, right, bottom)``.

    ImageToTensorCalculator with keep_aspect_ratio: the whole image, padded to a square around
    its centre (PadRoi), so the fractions given back are those of the tensor that are padding.
    """
    side = float(max(image_w, image_h))
    pad_x = (1.0 - image_w / side) / 2.0
    pad_y = (1.0 - image_h / side) / 2.0
    matrix = crop_matrix((image_w / 2.0, image_h / 2.0, side, side, 0.0), PALM_INPUT)
    return matrix, np.array([pad_x, pad_y, pad_x, pad_y])


def to_tensor(image: np.ndarray, matrix: np.ndarray, size: int, zero_border: bool,
              out: np.ndarray | None = None) -> np.ndarray:
    """Warp a BGR uint8 image into an RGB float32 ``(size, size, 3)`` tensor in [0, 1];
    into ``out`` when given (e.g. the interpreter's own input buffer: no extra copies)."""
    border = cv2.BORDER_CONSTANT if zero_border else cv2.BORDER_REPLICATE
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=border, borderValue=(0, 0, 0))
    cv2.cvtColor(crop, cv2.COLOR_BGR2RGB, dst=crop)
    if out is None:
        out = np.empty((size, size, 3), np.float32)
    return np.multiply(crop, np.float32(1.0 / 255.0), out=out)


def decode_palms(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
                 min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes above ``min_score`` from the palm model's raw outputs.

    TensorsToDetectionsCalculator (reverse_output_order, scales 192, clipped sigmoid score).
    ``raw_boxes (2016, 18)``, ``raw_scores (2016,)``. Returns boxes ``(K, 4)`` as xmin, ymin,
    xmax, ymax; keypoints ``(K, 7, 2)``; scores ``(K,)``, all in tensor-normalised units.
    """
    logits = np.clip(raw_scores.reshape(-1), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.nonzero(scores >= min_score)[0]
    raw = raw_boxes.reshape(NUM_BOXES, -1)[keep] / np.float32(PALM_INPUT)
    anc = anchors[keep]
    centre = raw[:, 0:2] + anc
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + anc[:, None]
    return boxes, keypoints, scores[keep]


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of ``box (4,)`` with ``boxes (N, 4)`` (xmin, ymin, xmax, ymax); 0 if disjoint."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou_threshold: float = NMS_IOU) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NonMaxSuppressionCalculator, WEIGHTED: each cluster becomes its score-weighted mean.

    The best remaining box gathers every remaining box with IoU above the threshold (itself
    included); box corners and keypoints are averaged with the scores as weights, the
    cluster keeps the best score. Returned in descending score order.
    """
    order = np.argsort(-scores, kind="stable")
    out_b, out_k, out_s = [], [], []
    while order.size:
        iou = _iou_one_to_many(boxes[order[0]], boxes[order])
        members = order[iou > iou_threshold]
        if members.size == 0:  # a degenerate box that does not even overlap itself
            members = order[:1]
        w = scores[members][:, None]
        out_b.append((boxes[members] * w).sum(0) / w.sum())
        out_k.append((keypoints[members] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[order[0]])
        order = order[~np.isin(order, members)]
    if not out_s:
        return np.zeros((0, 4)), np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros(0)
    return np.array(out_b), np.array(out_k), np.array(out_s)


def remove_letterbox(boxes: np.ndarray, keypoints: np.ndarray,
                     padding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DetectionLetterboxRemovalCalculator: tensor-normalised to image-normalised units."""
    left, top, right, bottom = padding
    scale = np.array([1.0 - left - right, 1.0 - top - bottom])
    offset = np.array([left, top])
    b = (boxes.reshape(-1, 2, 2) - offset) / scale
    k = (keypoints - offset) / scale
    return b.reshape(-1, 4), k


def transform_rect(rect: np.ndarray, image_w: int, image_h: int, scale: float,
                   shift_y: float) -> np.ndarray:
    """RectTransformationCalculator with ``square_long``, ``shift_x = 0``: shift along the
    rect's own (rotated) y axis, make it square in pixels on its long side, scale it."""
    cx, cy, w, h, rot = rect
    cx = cx - h * image_h * shift_y * math.sin(rot) / image_w
    cy = cy + h * shift_y * math.cos(rot)
    long_side = max(w * image_w, h * image_h)
    return np.array([cx, cy, long_side / image_w * scale, long_side / image_h * scale, rot])


def palm_to_rect(box: np.ndarray, keypoints: np.ndarray, image_w: int,
                 image_h: int) -> np.ndarray:
    """PalmDetectionDetectionToRoi: the hand's rect from one palm (image-normalised).

    DetectionsToRectsCalculator turns the box upright along wrist (kp 0) -> middle-finger MCP
    (kp 2), target 90 degrees; RectTransformation scales by 2.6 and shifts by -0.5 of its
    height toward the fingers so that the whole hand fits.
    """
    x0, y0 = keypoints[0, 0] * image_w, keypoints[0, 1] * image_h
    x1, y1 = keypoints[2, 0] * image_w, keypoints[2, 1] * image_h
    rot = normalize_radians(math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0))
    rect = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2,
                     box[2] - box[0], box[3] - box[1], rot])
    return transform_rect(rect, image_w, image_h, PALM_SCALE, PALM_SHIFT_Y)


def landmarks_to_rect(landmarks: np.ndarray, image_w: int, image_h: int) -> np.ndarray:
    """HandLandmarkLandmarksToRoi: next frame's rect from this frame's landmarks.

    HandLandmarksToRectCalculator on the 12 palm/base landmarks: rotation from the wrist to
    the mean of the index/middle/ring MCPs, the box of the landmarks in that rotated frame;
    then scaled by 2 and shifted by -0.1 of its height. ``landmarks (21, >=2)`` normalised.
    (Computed in pixels with few array operations: it runs per hand and frame.)
    """
    pts = landmarks[ROI_LANDMARKS, :2] * np.array([image_w, image_h], dtype=np.float64)
    wx, wy = pts[0]
    # MediaPipe names them PIPs, but indices 4, 8, 6 of the 12 are the index/ring/middle MCPs
    mx, my = ((pts[4] + pts[8]) / 2 + pts[6]) / 2
    rot = float(normalize_radians(math.pi / 2 - math.atan2(-(my - wy), mx - wx)))
    centre = (pts.max(0) + pts.min(0)) / 2
    c, s = math.cos(rot), math.sin(rot)
    # rotate by -rot into the hand's upright frame
    proj = (pts - centre) @ np.array([[c, -s], [s, c]])
    lo, hi = proj.min(0), proj.max(0)
    pcx, pcy = (lo + hi) / 2
    rect = np.array([(pcx * c - pcy * s + centre[0]) / image_w,
                     (pcx * s + pcy * c + centre[1]) / image_h,
                     (hi[0] - lo[0]) / image_w, (hi[1] - lo[1]) / image_h, rot])
    return transform_rect(rect, image_w, image_h, HAND_SCALE, HAND_SHIFT_Y)


def rect_to_px(rect: np.ndarray, image_w: int, image_h: int) -> tuple:
    """``(cx, cy, width, height, rotation)`` in pixels for :func:`crop_matrix`."""
    cx, cy, w, h, rot = rect
    return (cx * image_w, cy * image_h, w * image_w, h * image_h, rot)


def project_landmarks(raw: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """Image-normalised landmarks ``(21, 3)`` from the model's ``(63,)`` tensor-pixel output.

    TensorsToLandmarks (divide by 224; z also by normalize_z 0.4), then LandmarkProjection:
    rotate about the crop centre by the rect's rotation, scale by its size, add its centre;
    z scales like x. The crop is square in pixels, so there is no letterbox to remove.
    """
    cx, cy, w, h, rot = (float(v) for v in rect)
    c, s = math.cos(rot), math.sin(rot)
    # one matrix product (it runs per hand and frame): x' = (c x - s y) w + cx,
    # y' = (s x + c y) h + cy, z' = z / NORMALIZE_Z * w, with x, y centred on the crop
    k = 1.0 / LANDMARK_INPUT
    m = np.array([[c * w * k, s * h * k, 0.0], [-s * w * k, c * h * k, 0.0],
                  [0.0, 0.0, w * k / NORMALIZE_Z]])
    return raw.reshape(21, 3).astype(np.float64) @ m + [cx - (c - s) * w / 2,
                                                         cy - (s + c) * h / 2, 0.0]


def project_world(raw: np.ndarray, rotation: float) -> np.ndarray:
    """WorldLandmarkProjectionCalculator: the model's metric landmarks ``(63,)`` rotated in
    the image plane by the crop's rotation, so their axes are the camera's. Meters."""
    c, s = math.cos(rotation), math.sin(rotation)
    return raw.reshape(21, 3).astype(np.float64) @ np.array([[c, s, 0.0], [-s, c, 0.0],
                                                             [0.0, 0.0, 1.0]])


def rect_iou(a: np.ndarray, b: np.ndarray) -> float:
    """AssociationNormRectCalculator's overlap: IoU of the two rects as upright boxes.
    (Plain float arithmetic: it runs per hand pair and frame.)"""
    ax, ay, aw, ah = (float(v) for v in a[:4])
    bx, by, bw, bh = (float(v) for v in b[:4])
    iw = min(ax + aw / 2, bx + bw / 2) - max(ax - aw / 2, bx - bw / 2)
    ih = min(ay + ah / 2, by + bh / 2) - max(ay - ah / 2, by - bh / 2)
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = aw * ah + bw * bh - inter
    return inter / max(union, 1e-12) if union > 0 else 0.0


def associate_rects(rects: list[np.ndarray],
                    threshold: float = ASSOCIATION_IOU) -> list[np.ndarray]:
    """AssociationNormRectCalculator on one list of rects (an image's palm rects, best palm
    first): each rect in turn removes the rects kept so far that overlap it (IoU of upright
    boxes above ``threshold``) and is appended. So of two overlapping palms the *later*,
    weaker one seeds the hand, as in MediaPipe's static image mode (hgcnn 00544 and 00562:
    keeping the first gave landmarks 9-12 px worse than MediaPipe's)."""
    out: list[np.ndarray] = []
    for rect in rects:
        out = [kept for kept in out if rect_iou(rect, kept) <= threshold]
        out.append(rect)
    return out
