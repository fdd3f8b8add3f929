"""GlobalAveragePooling: ``GlobalAveragePooling: MPSCNNLayer`` in Forge/Forge/Layers.swift.

* No initialiser of its own: ``Layer.init(name:useBias:wantsTextures:allowsIncompleteShape:)``;
  typeName ``GlbAvgPool``; ``outputShape`` ``(1, 1, C)``; no weights.
* MPSCNNPoolingAverage with kernel = stride = the input's W×H, offset ``(W/2, H/2)``, clamp:
  the mean over the image.

Pinned by the zoo networks of tests/reference_device/test_refdev_networks.py.
"""
import numpy as np

from .numerics import F32, to_f16
from .params import LAYER_INIT
from .registry import ForgeOp, forge_op
from .shape import DataShape
from .signature import Signature


@forge_op
class GlobalAveragePooling(ForgeOp):
    kind = "GlobalAveragePooling"
    signatures = (Signature("GlobalAveragePooling", *LAYER_INIT),)
    type_name = "GlbAvgPool"
    divergence_hint = "global average pooling over the wrong extent (padding or partial image)"

    def ir_arguments(self, node):
        return {"name": node.name}

    def output_shape(self, arguments, inputs):
        return DataShape(1, 1, inputs[0].channels)

    def compute(self, layer, source, in_shape, out_shape):
        h, w, c = in_shape.height, in_shape.width, in_shape.channels
        x = source[:h, :w, :c].astype(F32)
        return to_f16(x.mean(axis=(0, 1), dtype=np.float64).astype(F32).reshape(1, 1, c))
