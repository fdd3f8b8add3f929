"""Dense: ``Dense: MPSCNNLayer`` in Forge/Forge/Layers.swift.

* ``init(neurons: Int, activation: MPSCNNNeuron? = nil, useBias: Bool = true, name: String = "")``;
  typeName ``Dense``; ``outputShape`` ``(1, 1, neurons)``; offset (0, 0).
* MPSCNNFullyConnected with a kernel as large as the input (W×H), so no Flatten layer is needed:
  ``weightCount`` = inC·inH·inW·neurons laid out ``[neurons][H][W][C]``.  Keras flattens
  channels-last in the same (h, w, c) order, so the file is the Keras kernel ``(H·W·C, neurons)``
  transposed; ``biasCount`` = neurons if useBias.

Pinned by tests/reference_device/test_refdev_tiny.py (the fork-style builder's ``fc``) and the
zoo networks of tests/reference_device/test_refdev_networks.py.
"""
from .numerics import F32, Transposed, to_f16
from .params import ACTIVATION, NAME, USE_BIAS, ir_neuron
from .registry import ForgeOp, forge_op
from .shape import DataShape
from .signature import INT, Param, Signature


@forge_op
class Dense(ForgeOp):
    kind = "Dense"
    signatures = (Signature("Dense", Param("neurons", INT), ACTIVATION, USE_BIAS, NAME),)
    type_name = "Dense"
    accumulator = "dense"
    divergence_hint = ("dense weights: flatten order (Keras flattens H, W, C; the device reads channel "
                       "slices), the [out][in] transpose, or a dropped bias")
    has_weights = True
    fuses_neuron = True
    reads_flattened = True

    def ir_arguments(self, node):
        return {"neurons": int(node.weights["kernel"].shape[-1]), "activation": ir_neuron(node),
                "useBias": node.attrs.get("use_bias", True), "name": node.name}

    def output_shape(self, arguments, inputs):
        return DataShape(1, 1, arguments["neurons"])

    def weight_count(self, arguments, inputs, output):
        return inputs.channels * inputs.height * inputs.width * arguments["neurons"]

    def bias_count(self, arguments, inputs, output):
        return arguments["neurons"] if arguments["useBias"] else 0

    def weight_layout(self, arguments, inputs, output):
        return (arguments["neurons"], inputs.height, inputs.width, inputs.channels)

    def weight_files(self, node, input_shape):
        kernel = node.weights["kernel"]
        height, width, channels = input_shape
        return self.with_biases(node, Transposed(kernel, (kernel.shape[1], height, width,
                                                          channels)), "OHWI")

    def keras_output_axis(self, node):
        return -1

    def misread_transposed(self, values, layout):
        """[out][in] read as [in][out]."""
        return values.reshape(-1, layout[0]).T.reshape(layout)

    def compute(self, layer, source, in_shape, out_shape):
        return fully_connected(source, layer.weights, layer.biases, layer.arguments["activation"])


def fully_connected(src, weights, bias, neuron=None):
    """MPSCNNFullyConnected: kernel = the whole input; weights (N, H, W, C) → output (1, 1, N)."""
    n = weights.shape[0]
    h, w, c = weights.shape[1:]
    x = src[:h, :w, :c].astype(F32).reshape(-1)
    out = weights.reshape(n, -1).astype(F32, copy=False) @ x
    if bias is not None:
        out = out + bias.astype(F32)
    if neuron is not None:
        out = neuron(out.astype(F32))
    return to_f16(out.reshape(1, 1, n))
