"""Run a converted YOLO model on images: heads from the Darknet sidecar or anchors/classes,
decoding, per-class NMS, mapping back to image pixels."""
from __future__ import annotations

import json
import os

import numpy as np

from .decode import HeadSpec, decode_head, to_image_boxes
from .letterbox import prepare_image
from .nms import per_class_nms


class YoloError(ValueError):
    """Bad detection input (model/anchors/classes mismatch, unreadable files)."""


def read_anchors(path) -> list:
    """YAD2K anchors file: the first line, comma-separated numbers."""
    try:
        with open(path, encoding="utf-8") as fh:
            line = fh.readline()
        values = [float(v) for v in line.split(",") if v.strip()]
    except (OSError, ValueError) as exc:
        raise YoloError(f"{path}: cannot read anchors ({exc}); expected one line of comma-separated "
                        "numbers as written by yad2k") from None
    if not values or len(values) % 2:
        raise YoloError(f"{path}: {len(values)} anchor numbers; expected (width, height) pairs")
    return values


def read_class_names(path, error=None) -> list:
    """Class names, one per line; problems raise ``error`` (default YoloError) naming the file."""
    error = error or YoloError
    try:
        with open(path, encoding="utf-8") as fh:
            names = [line.strip() for line in fh if line.strip()]
    except OSError as exc:
        raise error(f"{path}: cannot read class names ({exc.strerror or exc})") from None
    if not names:
        raise error(f"{path}: no class names (one per line expected)")
    return names


def sidecar_path(model_path) -> str:
    root, _ = os.path.splitext(os.fspath(model_path))
    return root + "_darknet.json"


def load_meta(path) -> dict | None:
    if path is None or not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise YoloError(f"{path}: cannot read the Darknet metadata ({exc})") from None


def output_shapes(model) -> list:
    return [tuple(t.shape[1:]) for t in model.outputs]


def heads_from_meta(meta: dict, shapes) -> list:
    heads = [HeadSpec.from_meta(h) for h in meta.get("heads", [])]
    if len(heads) != len(shapes):
        raise YoloError(f"the metadata describes {len(heads)} detection heads but the model has "
                        f"{len(shapes)} outputs")
    return heads


def heads_from_anchors(shapes, anchors, num_classes: int) -> list:
    """Without metadata: one output -> [region] (grid-unit anchors); several -> [yolo] (pixel
    anchors, the coarsest grid taking the last anchors, as in Darknet's cfgs)."""
    pairs = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    per = []
    for s in shapes:
        if len(s) != 3 or s[-1] % (num_classes + 5):
            raise YoloError(f"model output {s} is not anchors x ({num_classes} classes + 5) "
                            "channels; specify matching --anchors and --classes")
        per.append(s[-1] // (num_classes + 5))
    if len(shapes) == 1:
        if per[0] != len(pairs):
            raise YoloError(f"the model has {per[0]} anchors x ({num_classes} + 5) channels but "
                            f"{len(pairs)} anchors were given; specify matching --anchors and --classes")
        return [HeadSpec("region", pairs, num_classes, softmax=True)]
    if sum(per) != len(pairs):
        raise YoloError(f"the model outputs use {sum(per)} anchors but {len(pairs)} were given")
    order = sorted(range(len(shapes)), key=lambda i: (shapes[i][0] or 0) * (shapes[i][1] or 0))
    heads = [None] * len(shapes)
    end = len(pairs)
    for i in order:  # coarsest grid first, takes the last anchors
        heads[i] = HeadSpec("yolo", pairs[end - per[i]:end], num_classes, softmax=False)
        end -= per[i]
    return heads


def detect(model, image, heads, *, net_size=None, class_names=None, score_threshold=0.3,
           iou_threshold=0.45, letterbox=False, max_boxes=100) -> list:
    """Detections on one PIL image: dicts with box [x0, y0, x1, y1] (pixels), class_id, label,
    score. ``net_size`` (height, width) is needed only for models with a free input size."""
    ih_w = tuple(model.inputs[0].shape[1:3])
    if None in ih_w:
        if net_size is None:
            raise YoloError("the model accepts any input size; give the size to run at (--size)")
        ih_w = tuple(net_size)
    net_h, net_w = ih_w
    x = prepare_image(image, (net_w, net_h), letterbox)
    outs = model(x, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return detections([np.asarray(feats) for feats in outs], heads, (net_h, net_w), image.size,
                      class_names=class_names, score_threshold=score_threshold,
                      iou_threshold=iou_threshold, letterbox=letterbox, max_boxes=max_boxes)


def detections(head_outputs: list, heads: list, net_size, image_size, *, class_names=None,
               score_threshold=0.3, iou_threshold=0.45, letterbox=False, max_boxes=100) -> list:
    """Detections from one image's head outputs (each (H, W, A*(5+K)), one per head, whoever
    computed them: Keras, a phone, the reference device): decoding, mapping to the image's
    pixels (``image_size`` = (width, height); ``net_size`` = (height, width)) and per-class NMS.
    Dicts with box [x0, y0, x1, y1], class_id, label and score, by descending score."""
    if len(head_outputs) != len(heads):
        raise YoloError(f"{len(head_outputs)} head outputs for {len(heads)} detection heads")
    net_h, net_w = net_size
    boxes, scores = [], []
    for feats, head in zip(head_outputs, heads):
        dec = decode_head(feats, head, (net_h, net_w))
        boxes.append(to_image_boxes(dec.boxes, image_size, (net_w, net_h), letterbox))
        scores.append(dec.scores)
    boxes = np.concatenate(boxes)
    scores = np.concatenate(scores)
    found = per_class_nms(boxes, scores, score_threshold, iou_threshold, max_boxes)
    out = []
    for idx, k, score in found:
        label = class_names[k] if class_names and k < len(class_names) else f"class_{k}"
        out.append(dict(box=[float(v) for v in boxes[idx]], class_id=int(k), label=label,
                        score=float(score)))
    return out
