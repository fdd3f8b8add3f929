"""MaxPooling and AveragePooling: ``Pooling: MPSCNNLayer`` in Forge/Forge/Layers.swift.

* ``init(kernel: (Int, Int), stride: (Int, Int), padding: PaddingType = .valid,
  edgeMode: MPSImageEdgeMode = .clamp, name: String = "")``; typeNames ``MaxPool``, ``AvgPool``.
  The default padding is .valid (Convolution's is .same).
* ``outputShape`` as Convolution's, channels unchanged; no weights.
* ``offsetForPooling`` (Layers.swift): .same: ``((src-1) % s)/2 + 1`` for an even kernel,
  ``((src-1) % s + 1)/2`` for an odd one; .valid: ``k/2``.
* Edge mode clamp: MPSCNNPoolingMax reads the nearest edge pixel outside the source;
  MPSCNNPoolingAverage leaves outside pixels out of the average (TensorFlow's "same").

Pinned by tests/reference_device/test_refdev_layers.py (test_forge_offsets,
test_max_pool_clamps_and_average_pool_excludes_edges, test_max_pool_even_kernel_same) and
tests/core/test_core_passes.py::test_legalise_padding_refuses_pooling_placed_differently.
"""
import numpy as np

from .numerics import F32, clamped_index, round_f16_, window_start
from .params import NAME, xy
from .registry import forge_op
from .signature import PAIR, Param, Signature, enum
from .window import WindowOp


def pool_offset(same: bool, src: int, kernel: int, stride: int) -> int:
    """One component of ``offsetForPooling`` (see the module doc)."""
    if same:
        if kernel % 2 == 0:
            return ((src - 1) % stride) // 2 + 1
        return ((src - 1) % stride + 1) // 2
    return kernel // 2


def _clamped_windows(src, kernel, stride, offset, out_hw, channels):
    """The source's channels, and per axis (rows, then columns) the (k, n_out) source indices of
    every window clamped into the image with their in-bounds masks."""
    (kw, kh), (sx, sy), (oh, ow) = kernel, stride, out_hw
    src = src[:, :, :channels]
    return (src, clamped_index(window_start(offset[1], kh), oh, sy, kh, src.shape[0]),
            clamped_index(window_start(offset[0], kw), ow, sx, kw, src.shape[1]))


class Pooling(WindowOp):
    edge_mode = "clamp"

    def __init__(self):
        self.signatures = (Signature(self.kind, Param("kernel", PAIR), Param("stride", PAIR),
                                     Param("padding", enum("same", "valid"), "valid"),
                                     Param("edgeMode", enum("clamp", "zero"), "clamp"), NAME),)

    def ir_arguments(self, node):
        a = node.attrs
        return {"kernel": xy(a["kernel"]), "stride": xy(a["stride"]), "padding": a["padding"],
                "name": node.name}

    def offset(self, padding, source, destination, kernel, stride):
        return pool_offset(padding == "same", source, kernel, stride)

    def parse_warnings(self, arguments):
        if arguments["edgeMode"] == "clamp":
            return []
        return [f"{self.kind} {arguments['name']!r} uses edgeMode .{arguments['edgeMode']}; "
                "the reference device pools with clamp edges"]

    def compute(self, layer, source, in_shape, out_shape):
        kernel, stride = self.window(layer.arguments)
        return self.pool(source, kernel, stride, self.offsets(layer.arguments, in_shape, out_shape),
                         (out_shape.height, out_shape.width), in_shape.channels)


@forge_op
class MaxPooling(Pooling):
    kind = "MaxPooling"
    type_name = "MaxPool"
    divergence_hint = "pool size/stride tuple order, padding (same vs valid) or MPS edge offsets"
    description = "max pooling"

    @staticmethod
    def pool(src, kernel, stride, offset, out_hw, channels):
        """MPSCNNPoolingMax, edge mode clamp (an outside read returns the nearest edge pixel)."""
        src, (ry, _), (rx, _) = _clamped_windows(src, kernel, stride, offset, out_hw, channels)
        out = None
        for i in range(kernel[1]):
            rows = src[ry[i]]
            for j in range(kernel[0]):
                tap = rows[:, rx[j]]
                out = tap.copy() if out is None else np.maximum(out, tap, out=out)
        return out


@forge_op
class AveragePooling(Pooling):
    kind = "AveragePooling"
    type_name = "AvgPool"
    divergence_hint = ("pool size/stride tuple order, padding, or whether edge pixels count the "
                       "padding")
    description = "average pooling"

    @staticmethod
    def pool(src, kernel, stride, offset, out_hw, channels):
        """MPSCNNPoolingAverage, edge mode clamp: outside pixels are left out of the average."""
        src, (ry, my), (rx, mx) = _clamped_windows(src, kernel, stride, offset, out_hw, channels)
        acc = np.zeros(tuple(out_hw) + (channels,), dtype=F32)
        for i in range(kernel[1]):
            rows = src[ry[i]].astype(F32) * my[i][:, None, None]
            for j in range(kernel[0]):
                acc += rows[:, rx[j]] * mx[j][None, :, None]
        count = my.sum(axis=0)[:, None] * mx.sum(axis=0)[None, :]
        acc /= np.maximum(count, 1)[:, :, None].astype(F32)
        return round_f16_(acc)
