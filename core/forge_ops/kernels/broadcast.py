"""BroadcastKernel (the project's): a 1×1 image repeated over the output's width and height,
``out[y][x][c] = in[0][0][c]``.  Forge's merge layers need a Collect of equal-sized images
(Tensor.swift ``Collect``), so a Keras ``Multiply`` of a feature map by a per-channel vector
(squeeze-and-excitation) broadcasts the vector first and multiplies with Forge's ``Multiply``.
The output's size is declared in ``Custom(_:width:height:channels:)``.

Pinned by tests/core/test_core_custom_kernels.py::test_broadcast_and_crop_twins_match_keras.
"""
import numpy as np

from . import custom_kernel
from .pixel import PixelKernel


@custom_kernel
class BroadcastKernel(PixelKernel):
    swift_class = "BroadcastKernel"
    metal_function = "broadcastPixel"
    doc = "out[y][x][c] = in[0][0][c]: a 1x1 image over the whole output."
    why = ("Forge's Collect needs equal-sized inputs: the per-channel factor of a broadcast "
           "Multiply is repeated over the image first")
    metal_body = "  value = READ(0, 0, gid.z);"

    def run(self, source, arguments, out_hwc):
        height, width, channels = out_hwc
        return np.ascontiguousarray(np.broadcast_to(source[:1, :1, :channels],
                                                    (height, width, channels)))
