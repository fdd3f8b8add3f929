"""TransposeChannelsKernel (Forge/Forge/TransposeChannels.swift; its CustomKernel conformance is
the fork's): ``init(device:, featureChannels: Int, permute: [UInt16])``, ``out[i] = in[permute[i]]``.
The converter's ``swap_channels`` preprocessing step (RGB to BGR: ``permute: [2, 1, 0]``).

Pinned by tests/reference_device/test_refdev_layers.py::test_custom_transpose_and_subtract_mean.
"""
import numpy as np

from ..signature import INT, INT_LIST, Param
from . import CustomKernelSpec, custom_kernel


def transpose_channels(src: np.ndarray, permute, channels: int) -> np.ndarray:
    """``out[i] = in[permute[i]]``; entries past ``permute`` or the source read channel 0 (Forge
    leaves them uninitialised: only padding channels are affected)."""
    perm = list(permute)[:channels] + [0] * max(0, channels - len(permute))
    perm = [p if p < src.shape[2] else 0 for p in perm]
    return np.ascontiguousarray(src[:, :, perm])


@custom_kernel
class TransposeChannelsKernel(CustomKernelSpec):
    swift_class = "TransposeChannelsKernel"
    parameters = (Param("featureChannels", INT), Param("permute", INT_LIST))
    preprocessing_step = "swap_channels"

    def preprocessing_arguments(self, step: dict) -> dict:
        return {"featureChannels": 3, "permute": step["permute"]}

    def compute(self, source, arguments, channels):
        return transpose_channels(source, arguments["permute"], channels)
