"""Box agreement of a detector: each image's heads decoded on both sides and the boxes paired.

A detector's manifest lists its outputs with their detection heads (core.manifest.ModelOutput);
for every image both sides' head tensors are decoded with core.yolo — the detections an app
shows: score (objectness × class probability) above ``SCORE_THRESHOLD`` and per-class NMS at
``NMS_IOU`` — and each Keras box is paired with a device box of the same class whose IoU is at
least ``MATCH_IOU`` (core.yolo.match_boxes).  Every detection counts: a cap on their number would
cut among near-equal scores, and seeded random weights saturate many scores near 1, so which
boxes made the cut would be float16 noise (YOLOv3 on dog.jpg: 0.81 of 100 capped boxes agree,
0.95 of all 46,500).  Boxes are compared in the network input's pixels (IoU does not change when
both sides are scaled alike).  Nothing here judges: :mod:`validation.judge` holds the overall
agreement to the budget file's threshold.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

SCORE_THRESHOLD = 0.5
NMS_IOU = 0.45
MATCH_IOU = 0.9


@dataclass(frozen=True)
class ImageBoxCount:
    """One image: boxes Keras finds, boxes the device finds, pairs; ``problem`` when a side's
    head tensors are not usable (then the counts are 0 and the image is left out)."""
    keras: int
    device: int
    matched: int
    problem: Optional[str] = None


class Detector:
    """What decoding needs, from the manifest: the heads, their tensors and the input size."""

    def __init__(self, manifest, heads):
        from core.yolo import HeadSpec

        self.tensors = [o.tensor for o in manifest.all_outputs]
        self.shapes = [tuple(manifest.tensor(name).shape) for name in self.tensors]
        self.heads = [HeadSpec.from_manifest(head) for head in heads]
        self.net_size = (manifest.input.height, manifest.input.width)

    @classmethod
    def of(cls, manifest) -> Optional["Detector"]:
        """The manifest's detector, or None when it records no detection heads."""
        heads = manifest.detection_heads
        return None if heads is None else cls(manifest, heads)

    def boxes(self, records: dict) -> list:
        """One side's detections from its records ``{tensor: (data, status, reason)}``."""
        from core.yolo import detections

        height, width = self.net_size
        outputs = [np.asarray(records[name][0], dtype=np.float64).reshape(shape)
                   for name, shape in zip(self.tensors, self.shapes)]
        return detections(outputs, self.heads, self.net_size, (width, height),
                          score_threshold=SCORE_THRESHOLD, iou_threshold=NMS_IOU,
                          max_boxes=None)

    def unusable(self, records: Optional[dict], side: str) -> Optional[str]:
        """Why a side's head tensors cannot be decoded, or None."""
        if records is None:
            return f"the {side} results hold no such image"
        for name in self.tensors:
            data, status, reason = records[name][:3]
            if status != "ok" or data is None or not np.size(data):
                return f"{side} head {name!r}: {status} ({reason})"
        return None

    def count(self, golden: dict, device: Optional[dict]) -> ImageBoxCount:
        """The image's box counts and pairs (see the module)."""
        from core.yolo import match_boxes

        problem = self.unusable(golden, "Keras") or self.unusable(device, "device")
        if problem:
            return ImageBoxCount(0, 0, 0, problem)
        pairing = match_boxes(self.boxes(golden), self.boxes(device), MATCH_IOU)
        return ImageBoxCount(pairing.references, pairing.candidates, pairing.matched)
