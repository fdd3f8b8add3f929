"""DarknetReorgKernel (the project's): Darknet's ``reorg`` layer exactly as ``reorg_cpu(forward
= 0)`` computes it: its flat CHW buffer viewed as (C/s², H·s, W·s) and space-to-depth'ed.  It is
neither TensorFlow's nor Forge's SpaceToDepthX2 rearrangement.

Pinned by tests/core/test_core_custom_kernels.py::test_darknet_reorg_matches_reorg_cpu_and_the_keras_layer
and ::test_the_three_rearrangements_differ.
"""
from . import custom_kernel
from .project import ProjectKernel


def darknet_reorg(x_hwc, stride: int = 2):
    h, w, c = x_hwc.shape
    s = stride
    view = x_hwc.transpose(2, 0, 1).reshape(c // (s * s), h, s, w, s)
    out = view.transpose(2, 4, 0, 1, 3).reshape(c * s * s, h // s, w // s)
    return out.transpose(1, 2, 0)


@custom_kernel
class DarknetReorgKernel(ProjectKernel):
    swift_class = "DarknetReorgKernel"
    parameter_name = "stride"
    metal_function = "darknetReorg"
    why = "Forge has no layer for Darknet's reorg rearrangement"
    doc = "Darknet's reorg layer (reorg_cpu, forward = 0), element for element."
    metal_body = """    // CHW-flat output element F = (a, b, c2, h, w) over dims (s, s, inC/s^2, inH, inW)
    const uint F = (oc * outH + gid.y) * outW + gid.x, q = inC / (s * s);
    const uint w = F % inW, h = (F / inW) % inH, c2 = (F / (inW * inH)) % q;
    const uint b = (F / (inW * inH * q)) % s, a = F / (inW * inH * q * s);
    const uint src = (((c2 * inH + h) * s + a) * inW + w) * s + b;   // CHW-flat input element
    const uint sc = src / (inW * inH), sy = (src / inW) % inH, sx = src % inW;"""
    forward = staticmethod(darknet_reorg)
