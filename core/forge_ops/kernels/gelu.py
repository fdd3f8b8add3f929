"""GELUKernel (the project's): Keras's exact GELU, ``0.5·x·(1 + erf(x/√2))``
(``keras.activations.gelu(approximate=False)``, the default of ``Activation("gelu")``).  MPS has
no GELU neuron and Metal no ``erf``: the shader evaluates erf with Abramowitz & Stegun's 7.1.26
polynomial (absolute error below 1.5e-7, far below float16's resolution) in float32, and rounds
the result to the float16 image once.

Pinned by tests/core/test_core_custom_kernels.py::test_gelu_twin_matches_keras.
"""
import numpy as np

from ..numerics import F32, to_f16
from . import custom_kernel
from .pixel import PixelKernel

_P = F32(0.3275911)
_A = [F32(v) for v in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)]
_INV_SQRT2 = F32(0.70710678)


def erf_as_the_shader(x: np.ndarray) -> np.ndarray:
    """erf by A&S 7.1.26 in float32, in the shader's order of operations."""
    z = np.abs(x).astype(F32)
    t = F32(1) / (F32(1) + _P * z)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    value = F32(1) - poly * np.exp(-z * z)
    return np.where(x < 0, -value, value).astype(F32)


def gelu(x: np.ndarray) -> np.ndarray:
    """The kernel on float32 values (before the float16 image rounds them)."""
    x = np.asarray(x, dtype=F32)
    return (F32(0.5) * x * (F32(1) + erf_as_the_shader(x * _INV_SQRT2))).astype(F32)


@custom_kernel
class GELUKernel(PixelKernel):
    swift_class = "GELUKernel"
    metal_function = "gelu"
    doc = "GELU, 0.5 x (1 + erf(x / sqrt(2))), erf by Abramowitz & Stegun 7.1.26 in float32."
    why = "MPS has no GELU neuron (it needs erf)"
    metal_body = """  const half4 x = READ(gid.x, gid.y, gid.z);
  for (uint k = 0; k < 4; ++k) {
    const float v = float(x[k]), z = fabs(v * 0.70710678f);
    const float t = 1.0f / (1.0f + 0.3275911f * z);
    const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f
                       + t * (-1.453152027f + t * 1.061405429f))));
    const float erfz = 1.0f - poly * exp(-z * z);
    value[k] = half(0.5f * v * (1.0f + (v < 0.0f ? -erfz : erfz)));
  }"""

    def compute(self, source, arguments, channels):
        return to_f16(gelu(source[:, :, :channels]))
