"""RGB2BGR (Forge/Forge/SimpleKernel.swift): ``init(device:)``, swaps the red and blue channels
(alpha passes through).  The fork's hand-written builders use it; the converter writes a
TransposeChannelsKernel instead.

Pinned by tests/reference_device/test_refdev_layers.py::test_rgb2bgr_kernel.
"""
from . import CustomKernelSpec, custom_kernel
from .transpose_channels import transpose_channels


@custom_kernel
class RGB2BGR(CustomKernelSpec):
    swift_class = "RGB2BGR"

    def compute(self, source, arguments, channels):
        return transpose_channels(source, [2, 1, 0, 3], channels)
