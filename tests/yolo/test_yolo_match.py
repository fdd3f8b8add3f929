"""Pairing detections of two sides: class, IoU at and around the threshold, one to one."""
import pytest

from core.yolo import match_boxes


def det(box, class_id=0, score=0.9):
    return {"box": box, "class_id": class_id, "score": score}


def test_iou_at_the_threshold_pairs_just_below_does_not():
    square = [0, 0, 10, 10]
    shifted = [0, 0, 10, 9]                                  # IoU 90 / 100 = 0.9 exactly
    assert match_boxes([det(square)], [det(shifted)], 0.9).matched == 1
    assert match_boxes([det(square)], [det([0, 0, 10, 8.99])], 0.9).matched == 0


def test_another_class_never_pairs():
    pairing = match_boxes([det([0, 0, 10, 10], 1)], [det([0, 0, 10, 10], 2)])
    assert (pairing.matched, pairing.references, pairing.candidates) == (0, 1, 1)
    assert pairing.agreement == 0.0


def test_one_to_one_best_overlap_and_highest_score_first():
    keras = [det([0, 0, 10, 10], score=0.6), det([0, 0, 10, 10], score=0.8)]
    device = [det([0, 0, 10, 9.5]), det([0, 0, 10, 10])]
    pairing = match_boxes(keras, device, 0.9)
    # the 0.8 box goes first and takes the identical device box; the 0.6 box the other one
    assert [(i, j) for i, j, _ in pairing.pairs] == [(1, 1), (0, 0)]
    assert pairing.pairs[0][2] == pytest.approx(1.0) and pairing.pairs[1][2] == pytest.approx(0.95)
    one = match_boxes(keras, device[:1], 0.9)
    assert one.matched == 1 and one.agreement == 0.5         # over the larger count


def test_no_boxes_on_either_side_agree_fully_empty_boxes_never_pair():
    assert match_boxes([], [], 0.9).agreement == 1.0
    assert match_boxes([det([0, 0, 10, 10])], [], 0.9).agreement == 0.0
    assert match_boxes([det([5, 5, 5, 9])], [det([5, 5, 5, 9])], 0.0).matched == 1   # IoU 0 >= 0
    assert match_boxes([det([5, 5, 5, 9])], [det([5, 5, 5, 9])], 0.5).matched == 0
