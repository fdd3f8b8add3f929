"""YOLOv2 training targets and loss (YAD2K's ``preprocess_true_boxes`` and ``yolo_loss``).

The loss is written with TensorFlow ops only, so it works the same under Keras 2 (tf.keras)
and Keras 3 with the TensorFlow backend; the target preprocessing is NumPy.

Conventions (those of :mod:`core.yolo.decode` and Darknet's ``[region]`` layer): the head tensor
is (B, H, W, A*(5+K)) with channel ``a*(5+K) + p``, p = 0 tx, 1 ty, 2 tw, 3 th, 4 objectness,
5.. class logits; anchors are (width, height) in grid cells; true boxes are
``(x_center, y_center, width, height, class)`` relative to the image (0..1).

Loss (YAD2K, after Darknet's ``forward_region_layer``), per image, summed over cells/anchors:

* no-object: ``noobject_scale * (1 - detected) * (1 - mask) * conf**2`` where ``detected`` is
  1 when the predicted box overlaps some true box of the image with IoU > ``ignore_thresh``
  (0.6);
* object: ``object_scale * mask * (1 - conf)**2``, or with ``rescore`` ``(iou - conf)**2`` where
  iou is the IoU of the predicted box with the true box it is responsible for (a constant:
  no gradient flows through it, as in Darknet);
* class: ``class_scale * mask * sum_k (onehot_k - softmax_k)**2``;
* coordinates: ``coord_scale * mask * [(sigmoid(tx) - x_off)**2 + (sigmoid(ty) - y_off)**2 +
  (tw - log(w/anchor_w))**2 + (th - log(h/anchor_h))**2]``;
* total ``0.5 * (object + no-object + class + coordinates)``.

YAD2K summed over the batch; here ``reduction='mean'`` (default) divides by the batch size so
the learning rate does not depend on it (``'sum'`` gives YAD2K's value).

Differences from YAD2K's preprocessing, which had bugs: a box touching the right/bottom edge
(x or y == 1) no longer indexes past the grid; non-square grids scale x by the grid width and
y by the grid height; when two boxes want the same cell and anchor the later one takes the next
best free anchor of that cell instead of silently overwriting the first (YAD2K overwrote);
zero-size (padding) boxes are skipped.
"""
from __future__ import annotations

import numpy as np

DEFAULT_SCALES = dict(object_scale=5.0, noobject_scale=1.0, class_scale=1.0, coord_scale=1.0)


# ----------------------------------------------------------------------------- targets (NumPy)

def corner_boxes_to_relative(boxes, labels, width, height) -> np.ndarray:
    """(N, 4) x0, y0, x1, y1 pixels + (N,) labels -> (N, 5) x, y, w, h relative + class."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.zeros((len(b), 5), np.float32)
    out[:, 0] = (b[:, 0] + b[:, 2]) / 2.0 / width
    out[:, 1] = (b[:, 1] + b[:, 3]) / 2.0 / height
    out[:, 2] = (b[:, 2] - b[:, 0]) / width
    out[:, 3] = (b[:, 3] - b[:, 1]) / height
    out[:, 4] = np.asarray(labels).reshape(-1)
    return out


def pad_boxes(box_lists, max_boxes=None) -> np.ndarray:
    """List of (Ni, 5) arrays -> (B, T, 5) zero-padded (T = max Ni, at least 1)."""
    t = max([len(b) for b in box_lists] + [1]) if max_boxes is None else int(max_boxes)
    out = np.zeros((len(box_lists), t, 5), np.float32)
    for i, b in enumerate(box_lists):
        b = np.asarray(b, np.float32).reshape(-1, 5)[:t]
        out[i, :len(b)] = b
    return out


def anchor_ious(wh, anchors) -> np.ndarray:
    """IoU of origin-centred boxes: (w, h) against each anchor (A, 2) -> (A,)."""
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    inter = np.minimum(wh[0], anchors[:, 0]) * np.minimum(wh[1], anchors[:, 1])
    union = wh[0] * wh[1] + anchors[:, 0] * anchors[:, 1] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def preprocess_true_boxes(true_boxes, anchors, grid_shape):
    """Targets of one image for a ``grid_shape`` = (H, W) head with ``anchors`` (A, 2) in cells.

    Returns ``detectors_mask`` (H, W, A, 1) (1 where an anchor is responsible for a box) and
    ``matching_true_boxes`` (H, W, A, 5): ``[x - col, y - row, log(w / anchor_w),
    log(h / anchor_h), class]`` in grid units. Each box goes to the cell holding its centre
    and to the anchor with the best IoU of (w, h) (ties: the lower index); see the module
    docstring for the collision rule.
    """
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    gh, gw = int(grid_shape[0]), int(grid_shape[1])
    n_anchors = len(anchors)
    mask = np.zeros((gh, gw, n_anchors, 1), np.float32)
    matching = np.zeros((gh, gw, n_anchors, 5), np.float32)
    for box in np.asarray(true_boxes, np.float64).reshape(-1, 5):
        x, y, w, h = box[0] * gw, box[1] * gh, box[2] * gw, box[3] * gh
        if w <= 0 or h <= 0:
            continue
        col = min(max(int(np.floor(x)), 0), gw - 1)
        row = min(max(int(np.floor(y)), 0), gh - 1)
        ious = anchor_ious((w, h), anchors)
        order = np.argsort(-ious, kind="stable")
        free = [a for a in order if mask[row, col, a, 0] == 0 and ious[a] > 0]
        if not free:
            continue
        a = free[0]
        mask[row, col, a, 0] = 1.0
        matching[row, col, a] = [x - col, y - row, np.log(w / anchors[a, 0]),
                                 np.log(h / anchors[a, 1]), box[4]]
    return mask, matching


def batch_targets(box_lists, anchors, grid_shape, max_boxes=None):
    """(true_boxes (B, T, 5), detectors_mask (B, H, W, A, 1), matching (B, H, W, A, 5))."""
    masks, matches = [], []
    for boxes in box_lists:
        m, t = preprocess_true_boxes(boxes, anchors, grid_shape)
        masks.append(m)
        matches.append(t)
    return pad_boxes(box_lists, max_boxes), np.stack(masks), np.stack(matches)


# ----------------------------------------------------------------------------- loss (TensorFlow)

def yolo_head(feats, anchors, num_classes):
    """Decode a (B, H, W, A*(5+K)) head tensor: (box_xy, box_wh, confidence, class_probs, raw)
    with xy/wh relative to the image, shapes (B, H, W, A, .), raw = the (B, H, W, A, 5+K) view."""
    import tensorflow as tf

    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    n_anchors = len(anchors)
    feats = tf.convert_to_tensor(feats)
    feats = tf.cast(feats, tf.float32)
    shape = tf.shape(feats)
    gh, gw = shape[1], shape[2]
    raw = tf.reshape(feats, [shape[0], gh, gw, n_anchors, num_classes + 5])
    cols = tf.cast(tf.range(gw), tf.float32)
    rows = tf.cast(tf.range(gh), tf.float32)
    gx, gy = tf.meshgrid(cols, rows)  # (gh, gw)
    grid = tf.stack([gx, gy], -1)[None, :, :, None, :]
    dims = tf.cast(tf.stack([gw, gh]), tf.float32)
    box_xy = (tf.sigmoid(raw[..., 0:2]) + grid) / dims
    box_wh = tf.exp(raw[..., 2:4]) * anchors / dims
    conf = tf.sigmoid(raw[..., 4:5])
    probs = tf.nn.softmax(raw[..., 5:], axis=-1)
    return box_xy, box_wh, conf, probs, raw


def _iou_xywh(xy1, wh1, xy2, wh2):
    import tensorflow as tf

    lo = tf.maximum(xy1 - wh1 / 2, xy2 - wh2 / 2)
    hi = tf.minimum(xy1 + wh1 / 2, xy2 + wh2 / 2)
    inter_wh = tf.maximum(hi - lo, 0.0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = wh1[..., 0] * wh1[..., 1] + wh2[..., 0] * wh2[..., 1] - inter
    return tf.math.divide_no_nan(inter, union)


def yolo_loss_terms(y_pred, true_boxes, detectors_mask, matching_true_boxes, anchors,
                    num_classes, *, rescore=False, ignore_thresh=0.6, reduction="mean",
                    object_scale=5.0, noobject_scale=1.0, class_scale=1.0, coord_scale=1.0):
    """The four loss terms (each already scaled, summed over the image, reduced over the batch)
    and ``total`` = 0.5 * their sum, as a dict of scalar tensors."""
    import tensorflow as tf

    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")
    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    box_xy, box_wh, conf, probs, raw = yolo_head(y_pred, anchors, num_classes)
    true_boxes = tf.cast(true_boxes, tf.float32)
    mask = tf.cast(detectors_mask, tf.float32)
    matching = tf.cast(matching_true_boxes, tf.float32)

    # IoU of every predicted box with every true box of its image -> best IoU per prediction.
    b = tf.shape(box_xy)[0]
    pxy = box_xy[:, :, :, :, None, :]  # (B, H, W, A, 1, 2)
    pwh = box_wh[:, :, :, :, None, :]
    txy = tf.reshape(true_boxes[..., 0:2], [b, 1, 1, 1, -1, 2])
    twh = tf.reshape(true_boxes[..., 2:4], [b, 1, 1, 1, -1, 2])
    best_iou = tf.reduce_max(_iou_xywh(pxy, pwh, txy, twh), axis=-1)[..., None]  # (B,H,W,A,1)
    detected = tf.stop_gradient(tf.cast(best_iou > ignore_thresh, tf.float32))

    no_object = noobject_scale * (1.0 - detected) * (1.0 - mask) * tf.square(conf)
    if rescore:
        shape = tf.shape(raw)
        cols = tf.cast(tf.range(shape[2]), tf.float32)
        rows = tf.cast(tf.range(shape[1]), tf.float32)
        gx, gy = tf.meshgrid(cols, rows)
        grid = tf.stack([gx, gy], -1)[None, :, :, None, :]
        dims = tf.cast(tf.stack([shape[2], shape[1]]), tf.float32)
        m_xy = (matching[..., 0:2] + grid) / dims
        m_wh = tf.exp(matching[..., 2:4]) * anchors / dims
        target = tf.stop_gradient(_iou_xywh(box_xy, box_wh, m_xy, m_wh)[..., None])
        objects = object_scale * mask * tf.square(target - conf)
    else:
        objects = object_scale * mask * tf.square(1.0 - conf)

    classes = tf.one_hot(tf.cast(matching[..., 4], tf.int32), num_classes)
    class_loss = class_scale * mask * tf.square(classes - probs)

    pred_boxes = tf.concat([tf.sigmoid(raw[..., 0:2]), raw[..., 2:4]], axis=-1)
    coord_loss = coord_scale * mask * tf.square(matching[..., 0:4] - pred_boxes)

    div = tf.cast(b, tf.float32) if reduction == "mean" else 1.0
    terms = {
        "object": tf.reduce_sum(objects) / div,
        "no_object": tf.reduce_sum(no_object) / div,
        "class": tf.reduce_sum(class_loss) / div,
        "coord": tf.reduce_sum(coord_loss) / div,
    }
    terms["total"] = 0.5 * (terms["object"] + terms["no_object"] + terms["class"] + terms["coord"])
    return terms


def yolo_loss(y_pred, true_boxes, detectors_mask, matching_true_boxes, anchors, num_classes,
              **kwargs):
    """The YOLOv2 loss (scalar tensor); keyword arguments as :func:`yolo_loss_terms`."""
    return yolo_loss_terms(y_pred, true_boxes, detectors_mask, matching_true_boxes, anchors,
                           num_classes, **kwargs)["total"]
