"""YOLO detection on converted Darknet models: head decoding ([region] v2, [yolo] v3),
per-class NMS, letterboxing, drawing, and the ``yolo-detect`` CLI.

Public API: :class:`HeadSpec`, :func:`decode_region`, :func:`decode_yolo`,
:func:`decode_head`, :func:`to_image_boxes`, :func:`letterbox_geometry`, :func:`iou`,
:func:`nms`, :func:`per_class_nms`, :func:`prepare_image`, :func:`draw_detections`,
:func:`detect`, :func:`detections` (from head outputs computed anywhere), :func:`match_boxes`,
:func:`heads_from_meta`, :func:`heads_from_anchors`, :class:`YoloError`.
"""
from .decode import (Decoded, HeadSpec, decode_head, decode_region, decode_yolo,
                     letterbox_geometry, to_image_boxes)
from .detect import (YoloError, detect, detections, heads_from_anchors, heads_from_meta,
                     read_anchors, read_class_names)
from .draw import draw_detections
from .letterbox import prepare_image
from .match import BoxPairing, match_boxes
from .nms import iou, nms, per_class_nms

__all__ = ["BoxPairing", "Decoded", "HeadSpec", "YoloError", "decode_head", "decode_region",
           "decode_yolo", "detect", "detections", "draw_detections", "heads_from_anchors",
           "heads_from_meta", "iou", "letterbox_geometry", "match_boxes", "nms", "per_class_nms",
           "prepare_image", "read_anchors", "read_class_names", "to_image_boxes"]
