"""Decoding of Darknet detection heads (NumPy, one image at a time).

Channel layout of a head tensor (H, W, A*(5+K)), as Darknet's ``entry_index``: channel
``a*(5+K) + p`` with p = 0 tx, 1 ty, 2 tw, 3 th, 4 objectness, 5.. class scores. Rows are y
(H cells), columns x (W cells); H != W is handled everywhere.

* ``[region]`` (YOLOv2, ``get_region_box``): ``x = (col + sigmoid(tx))/W``, ``y = (row +
  sigmoid(ty))/H``, ``w = exp(tw)*anchor_w/W``, ``h = exp(th)*anchor_h/H`` (anchors in grid
  cells); objectness = sigmoid; classes = softmax if the cfg says ``softmax=1`` else as is.
* ``[yolo]`` (YOLOv3, ``get_yolo_box``): same x, y; ``w = exp(tw)*anchor_w/net_w``,
  ``h = exp(th)*anchor_h/net_h`` (anchors in input pixels, the mask's); sigmoid on objectness
  and on every class.

Boxes are (cx, cy, w, h) relative to the network input; :func:`to_image_boxes` maps them to the
original image (undoing Darknet's letterbox when used) as corner pixels (x0, y0, x1, y1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@dataclass
class HeadSpec:
    """One detection head: ``anchors`` are the anchors this output uses ((A, 2) array)."""

    kind: str  # 'region' | 'yolo'
    anchors: np.ndarray
    classes: int
    softmax: bool = True
    extra: dict = field(default_factory=dict)

    def as_manifest(self) -> dict:
        """The manifest's DetectionHead (core/manifest.py) of this head."""
        return {"kind": self.kind, "anchors": [[float(w), float(h)] for w, h in self.anchors],
                "classes": int(self.classes), "softmax": bool(self.softmax)}

    @classmethod
    def from_manifest(cls, head) -> "HeadSpec":
        """A head from the manifest's DetectionHead (its anchors are the ones it uses)."""
        return cls(kind=head.kind, anchors=np.asarray(head.anchors, dtype=np.float64).reshape(-1, 2),
                   classes=int(head.classes), softmax=bool(head.softmax))

    @classmethod
    def from_meta(cls, head: dict) -> "HeadSpec":
        anchors = np.asarray(head["anchors"], dtype=np.float64).reshape(-1, 2)
        if head["kind"] == "yolo":
            anchors = anchors[list(head.get("mask") or range(len(anchors)))]
        return cls(kind=head["kind"], anchors=anchors, classes=int(head["classes"]),
                   softmax=bool(head.get("softmax", head["kind"] == "region")),
                   extra={"tree": head.get("tree")})


@dataclass
class Decoded:
    boxes: np.ndarray  # (N, 4) cx, cy, w, h relative to the network input
    objectness: np.ndarray  # (N,)
    class_probs: np.ndarray  # (N, K)

    @property
    def scores(self) -> np.ndarray:
        """(N, K) objectness * class probability, Darknet's per-class detection score."""
        return self.objectness[:, None] * self.class_probs


def _split(feats, n_anchors, classes):
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim == 4:
        if feats.shape[0] != 1:
            raise ValueError("decode one image at a time (batch size 1)")
        feats = feats[0]
    h, w, c = feats.shape
    if c != n_anchors * (classes + 5):
        raise ValueError(f"head has {c} channels but {n_anchors} anchors x ({classes} classes + 5) "
                         f"= {n_anchors * (classes + 5)}; check --anchors and --classes")
    f = feats.reshape(h, w, n_anchors, classes + 5)
    cols = np.arange(w, dtype=np.float64)[None, :, None]
    rows = np.arange(h, dtype=np.float64)[:, None, None]
    return f, h, w, rows, cols


def decode_region(feats, anchors, classes: int, softmax_classes: bool = True) -> Decoded:
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    f, h, w, rows, cols = _split(feats, len(anchors), classes)
    x = (cols + sigmoid(f[..., 0])) / w
    y = (rows + sigmoid(f[..., 1])) / h
    bw = np.exp(f[..., 2]) * anchors[:, 0] / w
    bh = np.exp(f[..., 3]) * anchors[:, 1] / h
    obj = sigmoid(f[..., 4])
    probs = softmax(f[..., 5:]) if softmax_classes else f[..., 5:]
    return Decoded(np.stack([x, y, bw, bh], -1).reshape(-1, 4), obj.reshape(-1),
                   probs.reshape(-1, classes))


def decode_yolo(feats, anchors, classes: int, net_size) -> Decoded:
    """``anchors``: the masked anchors in pixels; ``net_size`` = (net_h, net_w)."""
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    net_h, net_w = net_size
    f, h, w, rows, cols = _split(feats, len(anchors), classes)
    x = (cols + sigmoid(f[..., 0])) / w
    y = (rows + sigmoid(f[..., 1])) / h
    bw = np.exp(f[..., 2]) * anchors[:, 0] / net_w
    bh = np.exp(f[..., 3]) * anchors[:, 1] / net_h
    obj = sigmoid(f[..., 4])
    probs = sigmoid(f[..., 5:])
    return Decoded(np.stack([x, y, bw, bh], -1).reshape(-1, 4), obj.reshape(-1),
                   probs.reshape(-1, classes))


def decode_head(feats, head: HeadSpec, net_size) -> Decoded:
    if head.kind == "region":
        return decode_region(feats, head.anchors, head.classes, head.softmax)
    if head.kind == "yolo":
        return decode_yolo(feats, head.anchors, head.classes, net_size)
    raise ValueError(f"unknown head kind {head.kind!r}")


def letterbox_geometry(image_size, net_size):
    """Darknet's letterbox: image (w, h) into net (w, h) -> (new_w, new_h, dx, dy), ints."""
    iw, ih = image_size
    nw, nh = net_size
    if nw / iw < nh / ih:
        new_w, new_h = nw, (ih * nw) // iw
    else:
        new_h, new_w = nh, (iw * nh) // ih
    return new_w, new_h, (nw - new_w) // 2, (nh - new_h) // 2


def to_image_boxes(boxes, image_size, net_size=None, letterbox: bool = False) -> np.ndarray:
    """(cx, cy, w, h) relative to the network input -> (x0, y0, x1, y1) image pixels.

    ``image_size`` and ``net_size`` are (width, height). With ``letterbox`` this is Darknet's
    ``correct_*_boxes(..., letter=1)``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    iw, ih = image_size
    if letterbox:
        nw, nh = net_size
        new_w, new_h, _, _ = letterbox_geometry(image_size, net_size)
        b[:, 0] = (b[:, 0] - (nw - new_w) / 2.0 / nw) / (new_w / nw)
        b[:, 1] = (b[:, 1] - (nh - new_h) / 2.0 / nh) / (new_h / nh)
        b[:, 2] *= nw / new_w
        b[:, 3] *= nh / new_h
    x0 = (b[:, 0] - b[:, 2] / 2) * iw
    y0 = (b[:, 1] - b[:, 3] / 2) * ih
    x1 = (b[:, 0] + b[:, 2] / 2) * iw
    y1 = (b[:, 1] + b[:, 3] / 2) * ih
    return np.stack([x0, y0, x1, y1], -1)
