"""SpaceToDepthX2: ``SpaceToDepthX2: Layer`` in Forge/Forge/Layers.swift (the fork's).

Read back from hand-written fork builders only: the converter never emits it, because it is
neither TensorFlow's ``space_to_depth`` nor Darknet's reorg (the project's own kernels in
``kernels/`` are).

* ``init(name: String = "")``; typeName ``SpaceToDepthX2``; ``outputShape``
  ``(W/2, H/2, 4C, numImages)``.
* A blit: quadrant r (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of source slice s
  becomes output slice ``s*4 + r``:
  ``out[y][x][(s*4 + r)*4 + k] = in[y + (r/2)*H/2][x + (r%2)*W/2][s*4 + k]``.
  It needs at least 4 input channels (a blit cannot change the pixel format) and one image.
* It ignores the destination channel offset (so it must be a Concatenate's first input) and
  passes the image number as the blit's ``destinationOrigin.z``; it reads image 0.

Pinned by tests/reference_device/test_refdev_layers.py (test_space_to_depth_x2_quadrants,
test_space_to_depth_layer_in_a_builder).
"""
import numpy as np

from .numerics import F32
from .params import NAME
from .registry import ForgeOp, ForgeOpError, forge_op
from .shape import DataShape
from .signature import Signature


@forge_op
class SpaceToDepthX2(ForgeOp):
    signatures = (Signature("SpaceToDepthX2", NAME),)
    type_name = "SpaceToDepthX2"
    divergence_hint = "space-to-depth channel order (Forge, TensorFlow and Darknet differ)"
    writes_at_destination = False
    reads_source_image = False

    def output_shape(self, arguments, inputs):
        source = inputs[0]
        return DataShape(source.width // 2, source.height // 2, source.channels * 4,
                         source.num_images)

    def compute(self, layer, source, in_shape, out_shape):
        channels = in_shape.channels
        if channels < 4 or channels % 4:
            raise ForgeOpError(f"the input has {channels} channels; Forge's blit needs at least 4 "
                               "and whole 4-channel slices (a multiple of 4)")
        return space_to_depth_x2(source[:in_shape.height, :in_shape.width], channels)


def space_to_depth_x2(src: np.ndarray, channels: int) -> np.ndarray:
    """The quadrant rearrangement of the module doc on an (H, W, C) image."""
    h, w = src.shape[0] // 2, src.shape[1] // 2
    slices = (channels + 3) // 4
    x = np.zeros((src.shape[0], src.shape[1], slices * 4), dtype=F32)
    x[:, :, :channels] = src[:, :, :channels]
    quads = [x[:h, :w], x[:h, w:2 * w], x[h:2 * h, :w], x[h:2 * h, w:2 * w]]
    q = np.stack(quads, axis=2)                      # (h, w, r, slices*4)
    q = q.reshape(h, w, 4, slices, 4)                # (h, w, r, s, k)
    return np.ascontiguousarray(q.transpose(0, 1, 3, 2, 4)).reshape(h, w, slices * 16)
