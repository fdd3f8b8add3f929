"""IoU and per-class NMS against hand-computed cases."""
import numpy as np
import pytest

from core.yolo import iou, nms, per_class_nms


def test_iou_hand_computed():
    assert iou([0, 0, 2, 2], [[1, 1, 3, 3]])[0] == pytest.approx(1 / 7)
    assert iou([0, 0, 2, 2], [[0, 0, 2, 2], [2, 2, 3, 3], [5, 5, 5, 9]]).tolist() == [1.0, 0.0, 0.0]


def test_iou_equal_to_threshold_is_kept_above_is_dropped():
    boxes = [[0, 0, 2, 2], [1, 0, 3, 2]]  # IoU = 2 / 6
    assert nms(boxes, [0.9, 0.8], 1 / 3) == [0, 1]
    assert nms(boxes, [0.9, 0.8], 0.33) == [0]
    assert nms(boxes, [0.7, 0.8], 0.33) == [1]


def test_per_class_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([
        [0.9, 0.0],   # class 0
        [0.8, 0.0],   # class 0, overlaps box 0 (IoU 81/119) -> suppressed
        [0.0, 0.7],   # class 1, same place as box 0 -> kept (other class)
        [0.3, 0.6],   # both classes above 0.25 -> two detections
    ])
    found = per_class_nms(boxes, scores, score_threshold=0.25, iou_threshold=0.45)
    assert found == [(0, 0, 0.9), (2, 1, 0.7), (3, 1, 0.6), (3, 0, 0.3)]
    assert per_class_nms(boxes, scores, 0.3, 0.45) == [(0, 0, 0.9), (2, 1, 0.7), (3, 1, 0.6)]  # strict >
    assert per_class_nms(boxes, scores, 0.25, 0.45, max_boxes=2) == [(0, 0, 0.9), (2, 1, 0.7)]
    assert per_class_nms(boxes, scores, 0.25, 0.9)[:3] == [(0, 0, 0.9), (1, 0, 0.8), (2, 1, 0.7)]


def test_decode_then_nms_on_a_non_square_grid():
    """Two neighbouring cells predicting the same object: NMS keeps the confident one."""
    from core.yolo import decode_region, to_image_boxes
    feats = np.full((2, 3, 7), -10.0)
    feats[..., :4] = 0.0
    feats[0, 1] = [0, 0, np.log(2), np.log(2), 3.0, 4.0, 0.0]   # centre (1.5/3, 0.5/2)
    feats[0, 2] = [-10, 0, np.log(2), np.log(2), 1.0, 4.0, 0.0]  # centre ~ (2/3, 0.25)
    dec = decode_region(feats, [[1.0, 1.0]], 2)
    boxes = to_image_boxes(dec.boxes, (300, 200))
    assert boxes[1].tolist() == pytest.approx([50, -50, 250, 150])  # w = 2/3 * 300, h = 2/2 * 200
    found = per_class_nms(boxes, dec.scores, 0.3, 0.45)
    assert [(i, k) for i, k, _ in found] == [(1, 0)]
