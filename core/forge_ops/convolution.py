"""Convolution: ``Convolution: MPSCNNLayer`` in Forge/Forge/Layers.swift.

* ``init(kernel: (Int, Int), channels: Int, stride: (Int, Int) = (1, 1), padding: PaddingType =
  .same, activation: MPSCNNNeuron? = nil, useBias: Bool = true, name: String = "")``; typeName
  ``Conv``.  The default padding is .same (Keras's is valid).
* ``outputShape``: .same ``((W-1)/sx+1, (H-1)/sy+1, channels)``, .valid ``((W-kx)/sx+1, ...)``.
* ``weightCount`` = inC·kH·kW·outC, ``biasCount`` = outC if useBias: the weight file is OHWI
  ``[out][kH][kW][in]``, MPSCNNConvolution's ``kernelWeights`` order (Keras ``(kH, kW, in, out)``
  transposed ``(3, 0, 1, 2)``), float32, biases ``[out]``.
* ``offsetForConvolution`` (Layers.swift): .same: ``pad = max((dst-1)*s + k - src, 0)`` (the fork
  clamps a negative pad to 0: before, a 1x1 kernel with stride 2 was misplaced) and
  ``offset = (k - pad)/2`` (Swift division); .valid: ``offset = k/2``.  With the window starting at
  ``offset - (k >> 1)``, odd kernels start where TensorFlow's "same" does (``-pad/2``); even
  kernels start one pixel further left.
* MPSCNNConvolution with ``edgeMode = .zero`` and the neuron fused (``neuronFilter``).

Pinned by tests/reference_device/test_refdev_layers.py (test_forge_offsets,
test_even_kernel_same_conv_is_offset_by_one, test_conv_matches_explicit_loop) and
tests/core/test_core_passes.py (test_forge_same_conv_window_*).
"""
import numpy as np

from .numerics import (F32, padded_window_source, round_f16_, swift_divide, Transposed,
                       window_start)
from .params import ACTIVATION, NAME, USE_BIAS, ir_neuron, xy
from .registry import forge_op
from .signature import INT, PAIR, Param, Signature, enum
from .window import WindowOp

PADDING = enum("same", "valid")
# Largest im2col block (float32 elements) built at once; bounds the memory of big convolutions.
_IM2COL_BLOCK = 1 << 22


def conv_offset(same: bool, src: int, dst: int, kernel: int, stride: int) -> int:
    """One component of ``offsetForConvolution`` (see the module doc)."""
    if same:
        pad = max((dst - 1) * stride + kernel - src, 0)
        return swift_divide(kernel - pad, 2)
    return kernel // 2


@forge_op
class Convolution(WindowOp):
    kind = "Convolution"
    signatures = (Signature("Convolution", Param("kernel", PAIR), Param("channels", INT),
                            Param("stride", PAIR, (1, 1)), Param("padding", PADDING, "same"),
                            ACTIVATION, USE_BIAS, NAME),)
    type_name = "Conv"
    accumulator = "conv"
    divergence_hint = ("convolution weights: OHWI transpose of the Keras (kH, kW, in, out) kernel, kernel "
                       "or stride given as (y, x) instead of (x, y), padding offset (same vs valid), a "
                       "dropped bias, or BatchNorm folded wrongly (epsilon, gamma/sqrt(var), mean "
                       "subtracted twice)")
    has_weights = True
    description = "convolution"
    fuses_neuron = True

    def ir_arguments(self, node):
        a = node.attrs
        return {"kernel": xy(a["kernel"]), "channels": int(node.weights["kernel"].shape[-1]),
                "stride": xy(a["stride"]), "padding": a["padding"], "activation": ir_neuron(node),
                "useBias": a.get("use_bias", True), "name": node.name}

    def output_channels(self, arguments, inputs):
        return arguments["channels"]

    def offset(self, padding, source, destination, kernel, stride):
        return conv_offset(padding == "same", source, destination, kernel, stride)

    def weight_count(self, arguments, inputs, output):
        (kx, ky), _ = self.window(arguments)
        return inputs.channels * ky * kx * output.channels

    def bias_count(self, arguments, inputs, output):
        return output.channels if arguments["useBias"] else 0

    def weight_layout(self, arguments, inputs, output):
        (kx, ky), _ = self.window(arguments)
        return (output.channels, ky, kx, inputs.channels)                  # OHWI

    def weight_files(self, node, input_shape):
        kernel = node.weights["kernel"]                                  # (kH, kW, in, out)
        kh, kw, cin, cout = kernel.shape
        return self.with_biases(node, Transposed(kernel.reshape(-1, cout), (cout, kh, kw, cin)),
                                "OHWI")

    def keras_output_axis(self, node):
        return -1

    def misread_transposed(self, values, layout):
        """OHWI read as IHWO."""
        o, kh, kw, i = layout
        return values.reshape(i, kh, kw, o).transpose(3, 1, 2, 0).reshape(layout)

    def compute(self, layer, source, in_shape, out_shape):
        kernel, stride = self.window(layer.arguments)
        wmat = layer.cache.get("weight_matrix")
        if wmat is None:
            wmat = layer.cache["weight_matrix"] = weight_matrix(layer.weights)
        return convolution(source, layer.weights, layer.biases, kernel, stride,
                           self.offsets(layer.arguments, in_shape, out_shape),
                           (out_shape.height, out_shape.width), layer.arguments["activation"], wmat)


def _patches(xp: np.ndarray, out_h: int, out_w: int, kh: int, kw: int, sy: int, sx: int):
    """Strided view (out_h, out_w, kh, kw, C) of a padded float32 source."""
    s0, s1, s2 = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, shape=(out_h, out_w, kh, kw, xp.shape[2]),
        strides=(s0 * sy, s1 * sx, s0, s1, s2), writeable=False)


def weight_matrix(weights: np.ndarray) -> np.ndarray:
    """OHWI weights as the (kH*kW*Cin, Cout) matrix the im2col product uses."""
    return np.ascontiguousarray(weights.reshape(weights.shape[0], -1).T)


def convolution(src: np.ndarray, weights: np.ndarray, bias, kernel: tuple, stride: tuple,
                offset: tuple, out_hw: tuple, neuron=None, wmat=None) -> np.ndarray:
    """MPSCNNConvolution, edge mode zero.

    src: (Hs, Ws, Cin) float16; weights: (Cout, kH, kW, Cin) float32 (OHWI); bias: (Cout,) or
    None; kernel/stride/offset: (x, y) tuples as Forge passes them; out_hw: (H, W).
    """
    kw, kh = kernel
    sx, sy = stride
    oh, ow = out_hw
    cout = weights.shape[0]
    cin = weights.shape[3]
    y0 = window_start(offset[1], kh)
    x0 = window_start(offset[0], kw)
    span_y = (oh - 1) * sy + kh
    span_x = (ow - 1) * sx + kw
    xp = padded_window_source(src[:, :, :cin], y0, x0, span_y, span_x)
    if wmat is None:
        wmat = weight_matrix(weights)
    out = np.empty((oh, ow, cout), dtype=F32)
    if kh == 1 and kw == 1:
        view = xp[::sy, ::sx][:oh, :ow]
        np.matmul(view.reshape(oh * ow, cin), wmat, out=out.reshape(oh * ow, cout))
    else:
        patches = _patches(xp, oh, ow, kh, kw, sy, sx)
        rows = max(1, min(oh, _IM2COL_BLOCK // max(1, ow * kh * kw * cin)))
        for r in range(0, oh, rows):
            block = patches[r:r + rows].reshape(-1, kh * kw * cin)
            np.matmul(block, wmat, out=out[r:r + rows].reshape(-1, cout))
    if bias is not None:
        out += bias.astype(F32)
    if neuron is not None:
        out = neuron(out)
    return round_f16_(np.ascontiguousarray(out, dtype=F32))

