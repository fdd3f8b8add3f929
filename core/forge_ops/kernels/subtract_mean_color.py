"""SubtractMeanColor (Forge/Forge/SubtractMeanColor.swift): ``init(device:, red: Float = 123.68,
green: Float = 116.779, blue: Float = 103.939, scale: Float = 255)`` computes, in half precision,
``out = in * (scale, scale, scale, 1) - (red, green, blue, 0)``.  The means apply to channels
0, 1, 2 by position, so after a channel swap they are given in the swapped order.  The
converter's ``subtract_mean`` preprocessing step (Keras "caffe" mode).

Pinned by tests/reference_device/test_refdev_layers.py::test_custom_transpose_and_subtract_mean
and tests/core/test_core_passes.py::test_insert_preprocessing_caffe_means_follow_the_channel_swap.
"""
import numpy as np

from ..numerics import F32, to_f16
from ..signature import NUMBER, Param
from . import CustomKernelSpec, custom_kernel


def subtract_mean_color(src: np.ndarray, red, green, blue, scale, channels: int) -> np.ndarray:
    """The kernel in float16 arithmetic: scale, round, subtract, round."""
    mean = np.zeros(max(4, channels), dtype=F32)
    mean[:3] = to_f16(np.array([red, green, blue], dtype=F32))
    mul = np.ones(max(4, channels), dtype=F32)
    mul[:3] = to_f16(np.array([scale], dtype=F32))
    scaled = to_f16(src[:, :, :channels] * mul[:channels])
    return to_f16(scaled - mean[:channels])


@custom_kernel
class SubtractMeanColor(CustomKernelSpec):
    swift_class = "SubtractMeanColor"
    parameters = (Param("red", NUMBER, 123.68), Param("green", NUMBER, 116.779),
                  Param("blue", NUMBER, 103.939), Param("scale", NUMBER, 255.0))
    preprocessing_step = "subtract_mean"

    def preprocessing_arguments(self, step: dict) -> dict:
        red, green, blue = step["mean"]      # positional: channel 0, 1, 2 after any swap
        return {"red": red, "green": green, "blue": blue, "scale": step["scale"]}

    def compute(self, source, arguments, channels):
        return subtract_mean_color(source, arguments["red"], arguments["green"], arguments["blue"],
                                   arguments["scale"], min(channels, source.shape[2]))
