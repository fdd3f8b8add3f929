"""Resize: ``Resize: Layer`` in Forge/Forge/Layers.swift.

* ``init(width: Int, height: Int, name: String = "")``; typeName ``Resize``;
  ``outputShape`` ``(width, height, 3)`` whatever the input; allows an incomplete input shape.
* Reads the input *texture* (``wantsTextures``) with MPSImageLanczosScale; Forge gives RGB
  float16 in [0, 1].  Not an MPSCNNLayer: no destination channel offset or image number.
* The reference device scales with PIL's Lanczos filter: images pre-sized to the network input
  (as Forge's Docs/Importing.markdown recommends) are not resampled at all.

Pinned by tests/reference_device/test_refdev_tiny.py (resized and exact-size images).
"""
import numpy as np

from .numerics import F32, to_f16
from .params import NAME
from .registry import ForgeOp, forge_op
from .shape import DataShape
from .signature import INT, Param, Signature


@forge_op
class Resize(ForgeOp):
    kind = "Resize"
    signatures = (Signature("Resize", Param("width", INT), Param("height", INT), NAME),)
    type_name = "Resize"
    divergence_hint = ("the input image: resize filter (Lanczos vs bilinear), 8-bit vs float input, or a "
                       "different image than Keras saw")
    wants_textures = True
    writes_at_destination = False
    reads_source_image = False

    def ir_arguments(self, node):
        return {"width": node.attrs["width"], "height": node.attrs["height"], "name": node.name}

    def output_shape(self, arguments, inputs):
        return DataShape(arguments["width"], arguments["height"], 3)

    def allows_incomplete_shape(self, arguments):
        return True

    def compute(self, layer, source, in_shape, out_shape):
        rgb8 = source[:, :, :3]
        size = (layer.arguments["width"], layer.arguments["height"])
        if (rgb8.shape[1], rgb8.shape[0]) != size:
            from PIL import Image

            rgb8 = np.asarray(Image.fromarray(np.ascontiguousarray(rgb8)).resize(
                size, Image.LANCZOS), dtype=np.uint8)
        return to_f16(rgb8.astype(F32) / F32(255.0))
