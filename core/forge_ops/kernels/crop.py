"""CropKernel (the project's): Keras's ``Cropping2D``, ``out[y][x][c] = in[y + top][x + left][c]``;
the output's size is declared in ``Custom(_:width:height:channels:)``.  Forge has no crop layer
and an MPS kernel's source offset is Forge's to set, not the builder's.

Pinned by tests/core/test_core_custom_kernels.py::test_broadcast_and_crop_twins_match_keras.
"""
from ..signature import INT, Param
from . import custom_kernel
from .pixel import PixelKernel


@custom_kernel
class CropKernel(PixelKernel):
    swift_class = "CropKernel"
    parameters = (Param("top", INT), Param("left", INT))
    metal_function = "cropImage"
    doc = "Cropping2D: out[y][x][c] = in[y + top][x + left][c]."
    why = "Forge has no crop layer (Cropping2D)"
    metal_body = "  value = READ(gid.x + dims[7], gid.y + dims[6], gid.z);"

    def run(self, source, arguments, out_hwc):
        height, width, channels = out_hwc
        top, left = arguments["top"], arguments["left"]
        return source[top:top + height, left:left + width, :channels].copy()
