"""Decoding [region] / [yolo] heads and mapping boxes back, against hand-computed values."""
import math

import numpy as np
import pytest
from PIL import Image

from core.yolo import (HeadSpec, decode_region, decode_yolo, letterbox_geometry, prepare_image,
                       to_image_boxes)


def test_region_zero_tensor():
    anchors = [[1.08, 1.19], [3.42, 4.41], [6.63, 11.38], [9.42, 5.11], [16.62, 10.52]]
    dec = decode_region(np.zeros((13, 13, 125)), anchors, 20)
    b = dec.boxes.reshape(13, 13, 5, 4)
    for row, col, a in [(0, 0, 0), (4, 7, 2), (12, 3, 4)]:
        assert b[row, col, a].tolist() == pytest.approx([(col + 0.5) / 13, (row + 0.5) / 13,
                                                         anchors[a][0] / 13, anchors[a][1] / 13])
    assert np.allclose(dec.objectness, 0.5) and np.allclose(dec.class_probs, 1 / 20)
    assert np.allclose(dec.scores, 0.5 / 20)


def test_region_non_square_grid():
    """H=2 rows, W=3 columns: x divides by W, y by H, never the other way round."""
    feats = np.zeros((2, 3, 1 * 7))
    feats[1, 2] = [0.0, 0.0, math.log(2.0), math.log(3.0), 10.0, 1.0, -1.0]
    dec = decode_region(feats, [[1.5, 0.5]], 2)
    n = (1 * 3 + 2) * 1 + 0
    assert dec.boxes[n].tolist() == pytest.approx([2.5 / 3, 1.5 / 2, 2 * 1.5 / 3, 3 * 0.5 / 2])
    assert dec.objectness[n] == pytest.approx(1 / (1 + math.exp(-10)))
    e = math.exp(2.0)
    assert dec.class_probs[n].tolist() == pytest.approx([e / (e + 1), 1 / (e + 1)])
    # cell (row 0, col 1) of a zero tensor
    assert dec.boxes[1].tolist() == pytest.approx([1.5 / 3, 0.5 / 2, 1.5 / 3, 0.5 / 2])


def test_yolo_non_square_grid_and_net():
    """H=2, W=4 grid of a 64x128 (h x w) input; anchors in pixels from the mask."""
    k = 3
    feats = np.zeros((2, 4, 2 * (k + 5)))
    feats[0, 3, (k + 5):] = [0, 0, 0, math.log(2), 2.0, 0.0, 5.0, -5.0]  # anchor 1
    head = HeadSpec.from_meta(dict(kind="yolo", anchors=[[1, 1], [10, 20], [30, 40], [50, 60]],
                                   mask=[1, 3], classes=k))
    assert head.anchors.tolist() == [[10, 20], [50, 60]]
    dec = decode_yolo(feats, head.anchors, k, (64, 128))
    n = (0 * 4 + 3) * 2 + 1
    assert dec.boxes[n].tolist() == pytest.approx([3.5 / 4, 0.5 / 2, 50 / 128, 2 * 60 / 64])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert dec.objectness[n] == pytest.approx(sig(2.0))
    assert dec.class_probs[n].tolist() == pytest.approx([0.5, sig(5), sig(-5)])  # logistic, not softmax
    assert dec.scores[n].tolist() == pytest.approx([sig(2) * 0.5, sig(2) * sig(5), sig(2) * sig(-5)])


def test_channel_mismatch_is_reported():
    with pytest.raises(ValueError, match="125 channels but 5 anchors x \\(80 classes \\+ 5\\)"):
        decode_region(np.zeros((13, 13, 125)), np.ones((5, 2)), 80)


def test_plain_resize_boxes_to_pixels():
    boxes = to_image_boxes([[0.5, 0.5, 0.2, 0.4]], (200, 100))
    assert boxes[0].tolist() == pytest.approx([80, 30, 120, 70])


def test_letterbox_boxes_to_pixels():
    assert letterbox_geometry((200, 100), (416, 416)) == (416, 208, 0, 104)
    boxes = to_image_boxes([[0.5, 0.5, 0.5, 0.25]], (200, 100), (416, 416), letterbox=True)
    assert boxes[0].tolist() == pytest.approx([50, 25, 150, 75])
    # a box touching the top of the letterboxed image area maps to y = 0
    top = 104 / 416
    boxes = to_image_boxes([[0.5, top + 0.05, 0.1, 0.1]], (200, 100), (416, 416), letterbox=True)
    assert boxes[0, 1] == pytest.approx(0.0, abs=1e-9)


def test_prepare_image_letterbox_and_resize():
    img = Image.new("RGB", (200, 100), (255, 0, 0))
    x = prepare_image(img, (64, 64), letterbox=True)
    assert x.shape == (1, 64, 64, 3) and x.dtype == np.float32
    assert np.allclose(x[0, :16], 0.5) and np.allclose(x[0, 48:], 0.5)  # grey bands
    assert np.allclose(x[0, 16:48, :, 0], 1.0) and np.allclose(x[0, 16:48, :, 1], 0.0)
    y = prepare_image(img.convert("L"), (96, 64))
    assert y.shape == (1, 64, 96, 3)
