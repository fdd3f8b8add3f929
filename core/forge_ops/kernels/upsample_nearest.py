"""UpsampleNearestKernel (the project's): nearest-neighbour upsampling by integer factors, as
Keras's ``UpSampling2D(interpolation="nearest")`` and Darknet's ``[upsample]`` compute it
(``upsample_layer.c`` runs ``blas.c: upsample_cpu``: ``out[c][y][x] = scale *
in[c][y / stride][x / stride]``; a ``scale`` other than 1 becomes a linear neuron after it):
every source pixel repeated ``scaleY`` times down and ``scaleX`` times across.

The fork has no upsampling layer, but MPS has one on the fork's iOS 11 target:
``MPSCNNUpsamplingNearest(device:integerScaleFactorX:integerScaleFactorY:)`` (iOS 11.0+, an
``MPSCNNKernel``; Apple's MetalPerformanceShaders documentation).  The kernel runs it from Forge's
``Custom`` layer, so no Metal shader is needed.  Sampling the nearest source pixel centre for an
integer factor is plain repetition, which is what the numpy twin does.  Being an MPSCNNKernel,
it decrements the ``readCount`` of a temporary source itself (the Custom layer contract in
Forge/Forge/Layers.swift), and like every kernel run through ``Custom`` it writes at channel 0 of
image 0 of its destination.

Pinned by tests/core/test_core_detector_ops.py::test_upsample_twin_is_keras_and_darknet.
"""
import numpy as np

from ..numerics import F32, to_f16
from ..signature import INT, Param
from . import CustomKernelSpec, custom_kernel

_SWIFT = """
/// Nearest-neighbour upsampling by integer factors (Keras UpSampling2D, Darknet [upsample]):
/// MPS's own kernel (iOS 11), run from Forge's Custom layer.
public class UpsampleNearestKernel: CustomKernel {
  let upsample: MPSCNNUpsamplingNearest

  public init(device: MTLDevice, scaleX: Int, scaleY: Int) {
    upsample = MPSCNNUpsamplingNearest(device: device, integerScaleFactorX: scaleX,
                                       integerScaleFactorY: scaleY)
  }

  public func encode(commandBuffer: MTLCommandBuffer, sourceImage: MPSImage, destinationImage: MPSImage) {
    // An MPSCNNKernel decrements the readCount of a temporary source image itself.
    upsample.encode(commandBuffer: commandBuffer, sourceImage: sourceImage,
                    destinationImage: destinationImage)
  }
}
"""


def upsample_nearest(x_hwc: np.ndarray, scale_x: int, scale_y: int) -> np.ndarray:
    return np.repeat(np.repeat(x_hwc, scale_y, axis=0), scale_x, axis=1)


@custom_kernel
class UpsampleNearestKernel(CustomKernelSpec):
    swift_class = "UpsampleNearestKernel"
    parameters = (Param("scaleX", INT), Param("scaleY", INT))
    forge_builtin = False
    swift_source = _SWIFT

    def output_shape(self, height, width, channels, arguments):
        return (height * arguments["scaleY"], width * arguments["scaleX"], channels)

    def compute(self, source, arguments, channels):
        return to_f16(upsample_nearest(source.astype(F32), arguments["scaleX"],
                                       arguments["scaleY"]))
