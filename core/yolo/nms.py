"""IoU and per-class non-maximum suppression (Darknet's ``do_nms_sort`` semantics).

Candidates are (box, class) pairs whose score (objectness * class probability) is strictly
greater than ``score_threshold`` (Darknet: ``prob > thresh``); a box may be a candidate for
several classes. Within each class, candidates are taken by descending score (ties: lower
index first) and one is dropped when its IoU with an already kept box of the same class is
strictly greater than ``iou_threshold``.
"""
from __future__ import annotations

import numpy as np


def iou(box, boxes) -> np.ndarray:
    """IoU of one corner box (x0, y0, x1, y1) with each of ``boxes``; 0 for empty boxes."""
    box = np.asarray(box, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return out


def nms(boxes, scores, iou_threshold: float, max_boxes: int | None = None) -> list:
    """Greedy NMS on one class; returns kept indices by descending score.

    Each kept box removes the later candidates it overlaps by more than ``iou_threshold`` at
    once, which keeps exactly the boxes the one-by-one definition keeps (a candidate survives
    iff no earlier kept box overlaps it) in as many steps as boxes are kept."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.lexsort((np.arange(len(scores)), -scores))     # by -score, then index
    keep: list = []
    while order.size and (max_boxes is None or len(keep) < max_boxes):
        first, order = int(order[0]), order[1:]
        keep.append(first)
        order = order[iou(boxes[first], boxes[order]) <= iou_threshold]
    return keep


def per_class_nms(boxes, scores, score_threshold: float, iou_threshold: float,
                  max_boxes: int | None = None) -> list:
    """``boxes`` (N, 4) corners, ``scores`` (N, K) -> [(box index, class, score)] by score.

    ``max_boxes`` caps the total after per-class NMS (highest scores kept).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    out = []
    for k in range(scores.shape[1]):
        cand = np.flatnonzero(scores[:, k] > score_threshold)
        if cand.size == 0:
            continue
        for j in nms(boxes[cand], scores[cand, k], iou_threshold):
            out.append((int(cand[j]), k, float(scores[cand[j], k])))
    out.sort(key=lambda t: (-t[2], t[1], t[0]))
    return out[:max_boxes] if max_boxes is not None else out
