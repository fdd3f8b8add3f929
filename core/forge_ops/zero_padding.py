"""ZeroPadding: ``ZeroPadding: Layer`` in Forge/Forge/Layers.swift (the fork's), with PadKernel.

* ``init(tblr_padding: (Int, Int, Int, Int), padValue: Float = 0, name: String = "")``, the tuple
  being (top, bottom, left, right); typeName ``ZeroPadding``.
* ``outputShape`` ``(W+left+right, H+top+bottom, C)``; numImages resets to 1.
* Encoded with Forge's own ``pad`` shaders (PadKernel.swift): it reads image 0 of its source, and
  writes at ``destinationChannelOffset/4 + imageNumber*slices`` (a precondition asks for a
  channel offset that is a multiple of 4), so it honours the destination channel offset and
  image number.

Pinned by tests/reference_device/test_refdev_layers.py::test_zero_padding_and_pad_value and
tests/core/test_core_passes.py::test_fold_zero_padding_only_when_windows_coincide.
"""
import numpy as np

from .numerics import F16, F32
from .params import NAME
from .registry import ForgeOp, forge_op
from .shape import DataShape
from .signature import NUMBER, TBLR, Param, Signature


@forge_op
class ZeroPadding(ForgeOp):
    kind = "ZeroPadding"
    signatures = (Signature("ZeroPadding", Param("tblr_padding", TBLR),
                            Param("padValue", NUMBER, 0.0), NAME),)
    type_name = "ZeroPadding"
    divergence_hint = "padding amounts or their (top, bottom, left, right) order"
    reads_source_image = False

    def ir_arguments(self, node):
        return {"tblr_padding": tuple(int(v) for v in node.attrs["tblr"]), "name": node.name}

    def output_shape(self, arguments, inputs):
        top, bottom, left, right = arguments["tblr_padding"]
        source = inputs[0]
        return DataShape(source.width + left + right, source.height + top + bottom,
                         source.channels)

    def compute(self, layer, source, in_shape, out_shape):
        top, bottom, left, right = layer.arguments["tblr_padding"]
        h, w, c = in_shape.height, in_shape.width, in_shape.channels
        out = np.full((h + top + bottom, w + left + right, c), F16(layer.arguments["padValue"]),
                      dtype=F32)
        out[top:top + h, left:left + w] = source[:h, :w, :c]
        return out
