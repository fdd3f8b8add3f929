"""SpaceToDepthKernel (the project's): TensorFlow's ``space_to_depth``,
``out[y][x][(dy*b + dx)*C + c] = in[b*y + dy][b*x + dx][c]``.  Forge's SpaceToDepthX2 moves
quadrants instead, so the converter writes this kernel for Keras's SpaceToDepth and the
``space_to_depth*`` Lambda of YAD2K's YOLO.

Pinned by tests/core/test_core_custom_kernels.py::test_space_to_depth_is_tensorflows and
tests/reference_device/test_refdev_layers.py::test_project_custom_kernel_from_core.
"""
from . import custom_kernel
from .project import ProjectKernel


def space_to_depth(x_hwc, blockSize: int = 2):  # noqa: N803 (the Swift label)
    h, w, c = x_hwc.shape
    b = blockSize
    blocks = x_hwc.reshape(h // b, b, w // b, b, c).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(h // b, w // b, b * b * c)


@custom_kernel
class SpaceToDepthKernel(ProjectKernel):
    swift_class = "SpaceToDepthKernel"
    parameter_name = "blockSize"
    metal_function = "spaceToDepth"
    why = "Forge's SpaceToDepthX2 moves quadrants, not TensorFlow's space_to_depth blocks"
    doc = "TensorFlow space_to_depth: out[y][x][(dy*b+dx)*C+c] = in[b*y+dy][b*x+dx][c]."
    metal_body = """    const uint block = oc / inC, sc = oc % inC;
    const uint sx = gid.x * s + block % s, sy = gid.y * s + block / s;"""
    forward = staticmethod(space_to_depth)
