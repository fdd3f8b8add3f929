"""Activation: ``Activation: MPSCNNLayer`` in Forge/Forge/Layers.swift.

* ``init(_ activation: MPSCNNNeuron, name: String = "")``; typeName ``Activation``;
  ``outputShape`` = the input's; offset (0, 0).  Runs the neuron kernel as a layer of its own.
* The converter also uses it for the ``linear`` preprocessing step (``a*x + b``) and for the
  identity copies (Linear a=1, b=0) that give a Concatenate/Collect input its own image.

Pinned by tests/reference_device/test_refdev_layers.py::test_neuron_formulas and
tests/core/test_core_passes.py::test_enforce_merge_rules_copies_concat_inputs_with_other_readers.
"""
import numpy as np

from .neurons import Neuron
from .numerics import F32, round_f16_
from .params import NAME, NEURON, ir_neuron
from .registry import ForgeOp, forge_op
from .signature import Param, Signature


@forge_op
class Activation(ForgeOp):
    kind = "Activation"
    signatures = (Signature("Activation", Param("activation", NEURON, labelled=False), NAME),)
    type_name = "Activation"
    applies_activation = True
    divergence_hint = ("activation kind or parameters (ReLU6 cap, leaky slope), or preprocessing scale "
                       "(input_scale: [0, 1] → [-1, 1])")
    preprocessing_step = "linear"

    def ir_arguments(self, node):
        return {"activation": ir_neuron(node), "name": node.name}

    def preprocessing_attrs(self, step: dict) -> dict:
        return {"neuron": {"type": "linear", "a": step["a"], "b": step["b"]}}

    def output_shape(self, arguments, inputs):
        return inputs[0]

    def compute(self, layer, source, in_shape, out_shape):
        return neuron_layer(source[:in_shape.height, :in_shape.width], layer.arguments["activation"],
                            in_shape.channels)


def neuron_layer(src: np.ndarray, neuron: Neuron, channels: int) -> np.ndarray:
    """An MPSCNNNeuron kernel used as a layer of its own."""
    x = src[:, :, :channels]
    if neuron.kind in ("ReLU", "ReLUN") and neuron.a == 0.0:       # one pass, no copy first
        y = np.maximum(x, F32(0))
        if neuron.kind == "ReLUN":
            np.minimum(y, F32(neuron.b), out=y)
    else:
        y = neuron(np.array(x, dtype=F32, copy=True, order="C"))
    if neuron.preserves_f16:
        return y
    return round_f16_(np.ascontiguousarray(y, dtype=F32))
