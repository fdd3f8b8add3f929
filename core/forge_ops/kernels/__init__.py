"""Custom kernels for Forge's ``Custom`` layer, one module each: Forge's own
(TransposeChannelsKernel, SubtractMeanColor, RGB2BGR, RGB2Gray) and the project's
(SpaceToDepthKernel, DarknetReorgKernel, GELUKernel, LayerNormKernel, BroadcastKernel,
CropKernel, UpsampleNearestKernel, ChannelSliceKernel), whose Swift class and Metal shader (when
it has one) the emitter writes next to the builder.

Each kernel module owns its initialiser signature, its numpy twin (what the reference device runs)
and, for the project's kernels, the output shape the converter declares in
``Custom(_:width:height:channels:)``.
"""
from dataclasses import dataclass

from ..signature import DEVICE, DEVICE_TYPE, Param, Signature

_KERNELS = {}


class CustomKernelSpec:
    swift_class = ""
    parameters = ()                 # Params after ``device:``
    forge_builtin = True            # False: the project's own, emitted with the builder
    preprocessing_step = None       # the manifest preprocessing op it implements, if any
    swift_source = ""
    metal_source = ""
    why = ""                        # the project's: why MPS cannot do it (conversion summary)

    @property
    def signature(self) -> Signature:
        return Signature(self.swift_class, Param("device", DEVICE_TYPE), *self.parameters)

    def call(self, arguments: dict) -> "KernelCall":
        """The kernel object with these arguments (``device`` and defaults filled in)."""
        return KernelCall(self, self.signature.complete(dict(arguments, device=DEVICE)))

    def output_shape(self, height: int, width: int, channels: int, arguments: dict) -> tuple:
        """(H, W, C) of its output for an input of (H, W, C)."""
        return (height, width, channels)

    def compute(self, source, arguments: dict, channels: int):
        """Its output image (float16 values) for an (H, W, C) source; ``channels``: the layer's."""
        raise NotImplementedError

    def run(self, source, arguments: dict, out_hwc: tuple):
        """Its output image for the layer's declared (H, W, C); most kernels need the channels
        only."""
        return self.compute(source, arguments, out_hwc[2])

    def __repr__(self):
        return f"<custom kernel {self.swift_class}>"


def custom_kernel(cls):
    """Class decorator: register one kernel by its Swift class name."""
    kernel = cls()
    _KERNELS[kernel.swift_class] = kernel
    return cls


def kernel_for_swift(swift_class: str):
    return _KERNELS.get(swift_class)


def custom_kernels() -> list:
    return list(_KERNELS.values())


@dataclass
class KernelCall:
    """A kernel object as a builder creates it: ``SpaceToDepthKernel(device: device, blockSize: 2)``."""
    kernel: CustomKernelSpec
    arguments: dict

    @property
    def parameters(self) -> dict:
        return {k: v for k, v in self.arguments.items() if k != "device"}

    def swift_reference(self) -> str:
        return self.kernel.signature.call(self.arguments, spell_out_defaults=True)

    def __repr__(self):
        return f"{self.kernel.swift_class}({self.parameters})"


from . import (broadcast, channel_slice, crop, darknet_reorg, gelu, layer_norm,  # noqa: E402,F401,I001
               rgb2bgr, rgb2gray, space_to_depth, subtract_mean_color, transpose_channels,
               upsample_nearest)
