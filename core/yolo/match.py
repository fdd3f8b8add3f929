"""Pairing two sets of detections of the same image (a device's and Keras's): boxes of the same
class whose IoU reaches a threshold, one to one.

Reference detections are taken by descending score (ties: their order); each takes the unpaired
candidate of its class with the highest IoU, ties going to the earlier candidate, if that IoU is
at least ``iou_threshold`` (>=: a pair exactly at the threshold agrees).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .nms import iou


@dataclass(frozen=True)
class BoxPairing:
    """The pairs (reference index, candidate index, IoU) and the two counts."""
    pairs: tuple
    references: int
    candidates: int

    @property
    def matched(self) -> int:
        return len(self.pairs)

    @property
    def agreement(self) -> float:
        """Paired boxes over the larger of the two counts; 1 when neither side finds any."""
        most = max(self.references, self.candidates)
        return self.matched / most if most else 1.0


def match_boxes(reference: list, candidate: list, iou_threshold: float = 0.9) -> BoxPairing:
    """Pair detections (dicts with ``box`` [x0, y0, x1, y1], ``class_id`` and ``score``, as
    :func:`~core.yolo.detect.detect` gives them) of the same class with IoU >= ``iou_threshold``."""
    boxes = np.asarray([d["box"] for d in candidate], dtype=np.float64).reshape(-1, 4)
    classes = np.asarray([d["class_id"] for d in candidate], dtype=np.int64)
    free = np.ones(len(candidate), dtype=bool)
    pairs = []
    for i in sorted(range(len(reference)), key=lambda i: (-reference[i]["score"], i)):
        same_class = np.flatnonzero(free & (classes == reference[i]["class_id"]))
        if not same_class.size:
            continue
        overlaps = iou(reference[i]["box"], boxes[same_class])
        best = int(np.argmax(overlaps))                # the first of equal overlaps
        if overlaps[best] >= iou_threshold:
            j = int(same_class[best])
            pairs.append((i, j, float(overlaps[best])))
            free[j] = False
    return BoxPairing(tuple(pairs), len(reference), len(candidate))
