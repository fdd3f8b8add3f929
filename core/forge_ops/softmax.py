"""Softmax: ``Softmax: MPSCNNLayer`` in Forge/Forge/Layers.swift.

* No initialiser of its own: ``Layer.init(name:useBias:wantsTextures:allowsIncompleteShape:)``;
  typeName ``Softmax``; ``outputShape`` = the input's; offset (0, 0).
* MPSCNNSoftMax over the feature channels of each pixel.

Pinned by tests/reference_device/test_refdev_tiny.py (the fork-style builder ends in Softmax).
"""
import numpy as np

from .numerics import F32, round_f16_
from .params import LAYER_INIT
from .registry import ForgeOp, forge_op
from .signature import Signature


@forge_op
class Softmax(ForgeOp):
    kind = "Softmax"
    signatures = (Signature("Softmax", *LAYER_INIT),)
    type_name = "Softmax"
    rounds_logits = True
    applies_activation = True
    fixed_activation = "softmax"
    divergence_hint = ("the logits before it (a Dense or 1×1 convolution whose output Keras does not "
                       "expose): weights transpose, flatten order or a dropped bias")

    def ir_arguments(self, node):
        return {"name": node.name}

    def output_shape(self, arguments, inputs):
        return inputs[0]

    def compute(self, layer, source, in_shape, out_shape):
        x = source[:in_shape.height, :in_shape.width, :in_shape.channels].astype(F32)
        x = x - x.max(axis=2, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=2, keepdims=True)
        return round_f16_(x)
