"""LayerNormKernel (the project's): Keras's ``LayerNormalization`` over the channels without its
scale and centre, ``(x - mean) / sqrt(variance + epsilon)`` per pixel, mean and variance over the
image's channels in float32.  MPS has no layer normalising across the channels of one pixel; the
converter runs the layer's gamma and beta after it as a 1×1 DepthwiseConvolution (MPS).

Pinned by tests/core/test_core_custom_kernels.py::test_layer_norm_twin_matches_keras.
"""
import numpy as np

from ..numerics import F32, to_f16
from ..signature import NUMBER, Param
from . import custom_kernel
from .pixel import PixelKernel


def layer_norm(x: np.ndarray, epsilon: float) -> np.ndarray:
    """The kernel on float32 values: two passes over the channels, as the shader does."""
    x = np.asarray(x, dtype=F32)
    mean = x.mean(axis=-1, keepdims=True, dtype=F32)
    variance = np.square(x - mean).mean(axis=-1, keepdims=True, dtype=F32)
    return ((x - mean) / np.sqrt(variance + F32(epsilon))).astype(F32)


@custom_kernel
class LayerNormKernel(PixelKernel):
    swift_class = "LayerNormKernel"
    parameters = (Param("epsilon", NUMBER),)
    metal_function = "layerNorm"
    doc = "(x - mean) / sqrt(variance + epsilon) over the channels of each pixel, in float32."
    why = "MPS has no normalisation across the channels of a pixel (LayerNormalization)"
    metal_body = """  const uint slices = (inC + 3) / 4;
  float sum = 0.0f;
  for (uint s = 0; s < slices; ++s) {
    const half4 v = READ(gid.x, gid.y, s);
    for (uint k = 0; k < 4 && s * 4 + k < inC; ++k) sum += float(v[k]);
  }
  const float mean = sum / float(inC);
  float squares = 0.0f;
  for (uint s = 0; s < slices; ++s) {
    const half4 v = READ(gid.x, gid.y, s);
    for (uint k = 0; k < 4 && s * 4 + k < inC; ++k) {
      const float d = float(v[k]) - mean;
      squares += d * d;
    }
  }
  const float scale = 1.0f / sqrt(squares / float(inC) + params[0]);
  const half4 x = READ(gid.x, gid.y, gid.z);
  for (uint k = 0; k < 4; ++k) value[k] = half((float(x[k]) - mean) * scale);"""

    def compute(self, source, arguments, channels):
        return to_f16(layer_norm(source[:, :, :channels], arguments["epsilon"]))
