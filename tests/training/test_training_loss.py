"""YOLOv2 true-box preprocessing and loss against hand-computed values on tiny grids."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.yolo.loss import (anchor_ious, batch_targets, corner_boxes_to_relative, pad_boxes,
                            preprocess_true_boxes)


def _loss(*args, **kw):
    from training.yolo.loss import yolo_loss_terms
    return {k: float(v) for k, v in yolo_loss_terms(*args, **kw).items()}


# ----------------------------------------------------------------------------- preprocessing

def test_preprocess_hand_values():
    anchors = [[1, 1], [2, 2]]
    # 4x4 grid; box centre (0.3, 0.6) -> x = 1.2 cells, y = 2.4 cells; size 0.45 x 0.5 -> 1.8 x 2
    mask, match = preprocess_true_boxes([[0.3, 0.6, 0.45, 0.5, 2]], anchors, (4, 4))
    assert mask.shape == (4, 4, 2, 1) and match.shape == (4, 4, 2, 5)
    assert mask.sum() == 1 and mask[2, 1, 1, 0] == 1
    np.testing.assert_allclose(match[2, 1, 1], [0.2, 0.4, math.log(1.8 / 2), math.log(2 / 2), 2],
                               rtol=1e-5, atol=1e-6)
    assert not match[mask[..., 0] == 0].any()


def test_preprocess_non_square_grid_scales_x_by_width():
    # grid H=2, W=4: x scales by 4, y by 2
    mask, match = preprocess_true_boxes([[0.6, 0.6, 0.25, 0.5, 0]], [[1, 1]], (2, 4))
    assert mask[1, 2, 0, 0] == 1
    np.testing.assert_allclose(match[1, 2, 0], [0.4, 0.2, 0.0, 0.0, 0], atol=1e-6)


def test_preprocess_edge_box_stays_in_grid():
    mask, match = preprocess_true_boxes([[1.0, 1.0, 0.2, 0.2, 1]], [[1, 1]], (3, 3))
    assert mask[2, 2, 0, 0] == 1
    np.testing.assert_allclose(match[2, 2, 0, :2], [1.0, 1.0], atol=1e-6)


def test_preprocess_collision_takes_next_anchor_and_padding_is_skipped():
    # both centres in cell (1, 1); both prefer anchor 0; the second takes anchor 1
    boxes = [[0.6, 0.6, 0.5, 0.5, 0], [0.6, 0.6, 0.45, 0.5, 1], [0, 0, 0, 0, 0]]
    mask, match = preprocess_true_boxes(boxes, [[1, 1], [3, 3]], (2, 2))
    assert mask[1, 1, 0, 0] == 1 and mask[1, 1, 1, 0] == 1
    assert match[1, 1, 0, 4] == 0 and match[1, 1, 1, 4] == 1
    np.testing.assert_allclose(match[1, 1, 1, 2:4], [math.log(0.9 / 3), math.log(1.0 / 3)], rtol=1e-5)


def test_anchor_iou_ties_pick_lower_index():
    ious = anchor_ious((1.0, 1.0), [[1, 1], [1, 1]])
    np.testing.assert_allclose(ious, [1, 1])
    mask, _ = preprocess_true_boxes([[0.5, 0.5, 0.5, 0.5, 0]], [[2, 2], [2, 2]], (2, 2))
    assert mask[1, 1, 0, 0] == 1 and mask[1, 1, 1, 0] == 0


def test_corner_boxes_and_padding():
    rel = corner_boxes_to_relative([[10, 20, 30, 60]], [2], 100, 200)
    np.testing.assert_allclose(rel, [[0.2, 0.2, 0.2, 0.2, 2]])
    padded = pad_boxes([rel, np.zeros((0, 5))])
    assert padded.shape == (2, 1, 5) and not padded[1].any()
    tb, m, mt = batch_targets([rel, np.zeros((0, 5))], [[1, 1]], (4, 4), max_boxes=3)
    assert tb.shape == (2, 3, 5) and m.shape == (2, 4, 4, 1, 1) and mt.shape == (2, 4, 4, 1, 5)
    assert m[1].sum() == 0 and m[0].sum() == 1


@settings(max_examples=60, deadline=None)
@given(x=st.floats(0.0, 1.0), y=st.floats(0.0, 1.0), w=st.floats(0.02, 1.0),
       h=st.floats(0.02, 1.0), gh=st.integers(1, 5), gw=st.integers(1, 5))
def test_preprocess_round_trips_the_box(x, y, w, h, gh, gw):
    anchors = np.array([[0.5, 0.7], [1.3, 1.1], [3.0, 2.0]])
    mask, match = preprocess_true_boxes([[x, y, w, h, 1]], anchors, (gh, gw))
    (row, col, a), = np.argwhere(mask[..., 0] == 1)
    m = match[row, col, a]
    assert 0 <= m[0] <= 1 + 1e-6 and 0 <= m[1] <= 1 + 1e-6
    np.testing.assert_allclose([(col + m[0]) / gw, (row + m[1]) / gh], [x, y], atol=1e-5)
    np.testing.assert_allclose([np.exp(m[2]) * anchors[a, 0] / gw, np.exp(m[3]) * anchors[a, 1] / gh],
                               [w, h], rtol=1e-4)
    assert a == int(np.argmax(anchor_ious((w * gw, h * gh), anchors)))


# ----------------------------------------------------------------------------- loss

def test_loss_one_cell_hand_values():
    # 1x1 grid, one anchor (1, 1), two classes; zero logits: sigmoid 0.5, softmax [0.5, 0.5],
    # predicted box (0.5, 0.5, 1, 1). Truth (0.5, 0.5, 0.5, 0.5) class 1: IoU 0.25.
    feats = np.zeros((1, 1, 1, 7), np.float32)
    truth = [[0.5, 0.5, 0.5, 0.5, 1]]
    mask, match = preprocess_true_boxes(truth, [[1, 1]], (1, 1))
    args = (feats, pad_boxes([truth]), mask[None], match[None], [[1, 1]], 2)
    t = _loss(*args)
    assert t["object"] == pytest.approx(5 * 0.25)
    assert t["no_object"] == pytest.approx(0.0)
    assert t["class"] == pytest.approx(0.25 + 0.25)
    assert t["coord"] == pytest.approx(2 * math.log(0.5) ** 2, rel=1e-6)
    assert t["total"] == pytest.approx(0.5 * (1.25 + 0.5 + 2 * math.log(0.5) ** 2), rel=1e-6)
    # rescore: the objectness target is the IoU with the matched truth, 0.25
    assert _loss(*args, rescore=True)["object"] == pytest.approx(5 * (0.25 - 0.5) ** 2)


def test_loss_no_object_ignores_good_predictions():
    # anchors (1, 1) and (s, s); truth = the whole image -> anchor 0 responsible.
    feats = np.zeros((1, 1, 1, 2 * 6), np.float32)
    truth = [[0.5, 0.5, 1.0, 1.0, 0]]
    for s, expect_no_obj in ((0.5, 0.25), (0.9, 0.0)):  # IoU 0.25 (counted) / 0.81 > 0.6 (ignored)
        anchors = [[1, 1], [s, s]]
        mask, match = preprocess_true_boxes(truth, anchors, (1, 1))
        assert mask[0, 0, :, 0].tolist() == [1, 0]
        t = _loss(feats, pad_boxes([truth]), mask[None], match[None], anchors, 1)
        assert t["no_object"] == pytest.approx(expect_no_obj)
        assert t["object"] == pytest.approx(1.25)
        assert t["class"] == pytest.approx(0.0) and t["coord"] == pytest.approx(0.0)
        assert t["total"] == pytest.approx(0.5 * (1.25 + expect_no_obj))


def test_loss_mean_vs_sum_reduction_and_scales():
    feats = np.zeros((2, 1, 1, 7), np.float32)
    truth = [[0.5, 0.5, 0.5, 0.5, 1]]
    mask, match = preprocess_true_boxes(truth, [[1, 1]], (1, 1))
    args = (feats, pad_boxes([truth, truth]), np.stack([mask, mask]), np.stack([match, match]),
            [[1, 1]], 2)
    mean, total = _loss(*args)["total"], _loss(*args, reduction="sum")["total"]
    assert total == pytest.approx(2 * mean)
    assert _loss(*args, object_scale=1.0)["object"] == pytest.approx(0.25)


def _reference_loss(feats, truths, anchors, k, grid, ignore=0.6):
    """Plain loops, straight from the formulas in core/yolo/loss.py's docstring."""
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    gh, gw = grid
    total = 0.0
    for b, boxes in enumerate(truths):
        mask, match = preprocess_true_boxes(boxes, anchors, grid)
        f = feats[b].reshape(gh, gw, len(anchors), 5 + k)
        for r in range(gh):
            for c in range(gw):
                for a, (aw, ah) in enumerate(anchors):
                    v = f[r, c, a]
                    px, py = (c + sig(v[0])) / gw, (r + sig(v[1])) / gh
                    pw, ph = math.exp(v[2]) * aw / gw, math.exp(v[3]) * ah / gh
                    conf = sig(v[4])
                    e = np.exp(v[5:] - v[5:].max())
                    probs = e / e.sum()
                    best = 0.0
                    for (tx, ty, tw, th, _) in boxes:
                        ix = max(0.0, min(px + pw / 2, tx + tw / 2) - max(px - pw / 2, tx - tw / 2))
                        iy = max(0.0, min(py + ph / 2, ty + th / 2) - max(py - ph / 2, ty - th / 2))
                        inter = ix * iy
                        best = max(best, inter / (pw * ph + tw * th - inter))
                    m = mask[r, c, a, 0]
                    t = match[r, c, a]
                    total += (1 - (best > ignore)) * (1 - m) * conf ** 2
                    total += 5 * m * (1 - conf) ** 2
                    onehot = np.eye(k)[int(t[4])]
                    total += m * ((onehot - probs) ** 2).sum()
                    total += m * ((t[0] - sig(v[0])) ** 2 + (t[1] - sig(v[1])) ** 2
                                  + (t[2] - v[2]) ** 2 + (t[3] - v[3]) ** 2)
    return 0.5 * total / len(truths)


def test_loss_matches_loop_reference_on_non_square_grid():
    rng = np.random.default_rng(0)
    anchors = [[0.8, 1.2], [2.0, 1.5]]
    k, grid = 3, (2, 3)
    feats = rng.normal(0, 1, (2, 2, 3, len(anchors) * (5 + k))).astype(np.float32)
    truths = [[[0.2, 0.3, 0.3, 0.4, 2], [0.8, 0.7, 0.5, 0.3, 0]], [[0.5, 0.5, 0.2, 0.6, 1]]]
    tb, mask, match = batch_targets(truths, anchors, grid)
    got = _loss(feats, tb, mask, match, anchors, k)["total"]
    assert got == pytest.approx(_reference_loss(feats, truths, anchors, k, grid), rel=1e-5)


def test_loss_gradient_is_finite_and_descends():
    import tensorflow as tf

    from training.yolo.loss import yolo_loss
    rng = np.random.default_rng(1)
    anchors = [[1.0, 1.0], [2.0, 2.0]]
    truths = [[[0.3, 0.3, 0.4, 0.4, 1]]]
    tb, mask, match = batch_targets(truths, anchors, (2, 2))
    v = tf.Variable(rng.normal(0, 0.1, (1, 2, 2, 2 * 7)).astype(np.float32))
    first = None
    for _ in range(50):
        with tf.GradientTape() as tape:
            loss = yolo_loss(v, tb, mask, match, anchors, 2)
        g = tape.gradient(loss, v)
        assert np.isfinite(g.numpy()).all()
        v.assign_sub(0.5 * g)
        first = float(loss) if first is None else first
    assert float(loss) < 0.1 * first
