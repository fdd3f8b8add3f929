"""RGB2Gray (Forge/Forge/SimpleKernel.swift, shader ``rgb2Gray`` in Forge/Forge/Shaders.metal):
``init(device:)``.  In half precision it computes ``y = r·0.299 + g·0.587 + b·0.114`` and writes
``half4(y·255, 0, 0, 0)``: the luminance × 255 lands in channel 0 (R); written into a 1-channel
image (``Custom(RGB2Gray(device: device), channels: 1)``) it is that image's only channel.  The
converter's ``gray`` preprocessing step (models with a one-channel input).

:func:`luminance255` is the one home of the formula: the reference device runs it, and golden
capture computes the grayscale input of the Keras model with it from the same 8-bit image.

Pinned by tests/core/test_core_custom_kernels.py::test_rgb2gray_twin_is_forges_formula.
"""
import numpy as np

from ..numerics import F32, to_f16
from . import CustomKernelSpec, custom_kernel

COEFFICIENTS = (0.299, 0.587, 0.114)          # Shaders.metal rgb2Gray, as half literals
SCALE = 255.0


def luminance255(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 1) luminance × 255 of an (H, W, ≥3) RGB image in [0, 1], in half arithmetic as the
    shader does: every product and sum rounded to float16 in the shader's order."""
    r, g, b = (to_f16(np.asarray(rgb, dtype=F32)[:, :, k]) for k in range(3))
    cr, cg, cb = (F32(np.float16(c)) for c in COEFFICIENTS)
    y = to_f16(to_f16(to_f16(r * cr) + to_f16(g * cg)) + to_f16(b * cb))
    return to_f16(y * F32(SCALE))[:, :, None]


@custom_kernel
class RGB2Gray(CustomKernelSpec):
    swift_class = "RGB2Gray"
    preprocessing_step = "gray"
    output_channels = 1

    def preprocessing_arguments(self, step: dict) -> dict:
        return {}

    def compute(self, source, arguments, channels):
        gray = luminance255(source)
        if channels == 1:
            return gray
        out = np.zeros(source.shape[:2] + (channels,), dtype=F32)    # half4(y*255, 0, 0, 0)
        out[:, :, :1] = gray
        return out
