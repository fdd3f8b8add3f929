"""DepthwiseConvolution: ``DepthwiseConvolution: Layer`` in Forge/Forge/Layers.swift.

* ``init(kernel: (Int, Int), channelMultiplier: Int = 1, stride: (Int, Int) = (1, 1),
  activation: MPSCNNNeuron? = nil, useBias: Bool = true, name: String = "")`` (channelMultiplier
  is the fork's); typeName ``DepthwConv``.  No padding parameter: always .same.
* ``outputShape``: ``((W-1)/sx+1, (H-1)/sy+1, C*channelMultiplier)``.
* ``weightCount`` = inC·kH·kW·multiplier, ``biasCount`` = outC if useBias; the file holds MPS's
  order ``[C][multiplier][kH][kW]`` (Keras ``(kH, kW, C, 1)`` → ``[C][kH][kW]``); MPS supports a
  multiplier of 1 only (MPSCNNDepthWiseConvolutionDescriptor).
* Encoded with ``offsetForConvolution(padding: .same, ...)``, ``edgeMode = .zero``, iOS 11's
  MPSCNNDepthWiseConvolutionDescriptor; Forge encodes it itself, not through MPSCNNLayer: it reads
  image 0 of its source and ignores the destination's channel offset and image number.

Pinned by tests/reference_device/test_refdev_networks.py (MobileNet, Xception end to end) and
tests/core/test_core_passes.py::test_enforce_merge_rules_copies_depthwise_written_collect_inputs.
"""
import numpy as np

from .convolution import conv_offset
from .numerics import F32, padded_window_source, round_f16_, window_start
from .params import ACTIVATION, NAME, USE_BIAS, ir_neuron, xy
from .registry import forge_op
from .shape import window_output_size
from .signature import INT, PAIR, Param, Signature
from .window import WindowOp


@forge_op
class DepthwiseConvolution(WindowOp):
    kind = "DepthwiseConvolution"
    signatures = (Signature("DepthwiseConvolution", Param("kernel", PAIR),
                            Param("channelMultiplier", INT, 1), Param("stride", PAIR, (1, 1)),
                            ACTIVATION, USE_BIAS, NAME),)
    type_name = "DepthwConv"
    accumulator = "depthwise"
    divergence_hint = ("depthwise weights: [C][kH][kW] layout (not Keras' kH, kW, C, 1), channel "
                       "multiplier, stride tuple order, or a wrong BatchNorm fold")
    has_weights = True
    description = "depthwise convolution"
    fuses_neuron = True
    writes_at_destination = False
    reads_source_image = False
    paddings = ("same",)
    preprocessing_step = "channel_affine"

    def preprocessing_attrs(self, step: dict) -> dict:
        """``x * scale + offset`` per channel (the ``torch`` family's normalisation): 1x1."""
        return {"kernel": (1, 1), "stride": (1, 1), "padding": "same", "use_bias": True}

    def preprocessing_weights(self, step: dict) -> dict:
        return affine_weights(step["scale"], step["offset"])

    def ir_arguments(self, node):
        a = node.attrs
        return {"kernel": xy(a["kernel"]), "channelMultiplier": int(node.weights["kernel"].shape[-1]),
                "stride": xy(a["stride"]), "activation": ir_neuron(node),
                "useBias": a.get("use_bias", True), "name": node.name}

    def ir_shape(self, node, input_shapes):
        """Forge's shape, except that an IR node keeps Keras's 'valid' padding (and shape) until
        legalise_padding folds it into a padding layer or refuses it."""
        height, width, channels = input_shapes[0]
        (kh, kw), (sh, sw) = node.attrs["kernel"], node.attrs["stride"]
        padding = node.attrs["padding"]
        multiplier = int(node.weights["kernel"].shape[-1])
        return (window_output_size(height, kh, sh, padding),
                window_output_size(width, kw, sw, padding), channels * multiplier)

    def padding(self, arguments):
        return "same"

    def output_channels(self, arguments, inputs):
        return inputs.channels * arguments["channelMultiplier"]

    def offset(self, padding, source, destination, kernel, stride):
        return conv_offset(padding == "same", source, destination, kernel, stride)

    def weight_count(self, arguments, inputs, output):
        (kx, ky), _ = self.window(arguments)
        return inputs.channels * ky * kx * arguments["channelMultiplier"]

    def bias_count(self, arguments, inputs, output):
        return output.channels if arguments["useBias"] else 0

    def weight_layout(self, arguments, inputs, output):
        (kx, ky), _ = self.window(arguments)
        return (inputs.channels, arguments["channelMultiplier"], ky, kx)

    def weight_files(self, node, input_shape):
        return self.with_biases(node, node.weights["kernel"][:, :, :, 0].transpose(2, 0, 1), "CHW")

    def keras_output_axis(self, node):
        return -2

    def misread_transposed(self, values, layout):
        """[C][kH][kW] read as the older [kH][kW][C] (upstream Forge before MPS's order)."""
        c, m, kh, kw = layout
        return values.reshape(kh, kw, c * m).transpose(2, 0, 1).reshape(layout)

    def parse_warnings(self, arguments):
        multiplier = arguments["channelMultiplier"]
        if multiplier == 1:
            return []
        return [f"DepthwiseConvolution {arguments['name']!r} uses channelMultiplier {multiplier}; "
                "MPS supports only 1"]

    def compute(self, layer, source, in_shape, out_shape):
        kernel, stride = self.window(layer.arguments)
        return depthwise_convolution(source, layer.weights, layer.biases, kernel, stride,
                                     self.offsets(layer.arguments, in_shape, out_shape),
                                     (out_shape.height, out_shape.width),
                                     layer.arguments["channelMultiplier"],
                                     layer.arguments["activation"])


def affine_weights(scale, offset) -> dict:
    """IR weights of a 1x1 depthwise convolution computing ``x * scale + offset`` per channel."""
    return {"kernel": np.asarray(scale, dtype=F32)[None, None, :, None],
            "bias": np.asarray(offset, dtype=F32)}


def depthwise_convolution(src: np.ndarray, weights: np.ndarray, bias, kernel: tuple,
                          stride: tuple, offset: tuple, out_hw: tuple, multiplier: int = 1,
                          neuron=None) -> np.ndarray:
    """MPS depthwise convolution, edge mode zero.

    weights: (C, multiplier, kH, kW) float32 (MPS order); output channel ``k*multiplier + q``.
    """
    kw, kh = kernel
    sx, sy = stride
    oh, ow = out_hw
    c = weights.shape[0]
    y0 = window_start(offset[1], kh)
    x0 = window_start(offset[0], kw)
    xp = padded_window_source(src[:, :, :c], y0, x0, (oh - 1) * sy + kh, (ow - 1) * sx + kw)
    if multiplier != 1:
        xp = np.repeat(xp, multiplier, axis=2)
    w = weights.reshape(c * multiplier, kh, kw).astype(F32)
    out = np.zeros((oh, ow, c * multiplier), dtype=F32)
    tmp = np.empty_like(out)
    for i in range(kh):
        for j in range(kw):
            tap = xp[i:i + (oh - 1) * sy + 1:sy, j:j + (ow - 1) * sx + 1:sx]
            np.multiply(tap, w[:, i, j], out=tmp)
            out += tmp
    if bias is not None:
        out += bias.astype(F32)
    if neuron is not None:
        out = neuron(out)
    return round_f16_(np.ascontiguousarray(out, dtype=F32))
