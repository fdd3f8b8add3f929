"""The project's custom kernels: their numpy index arithmetic against the ops they replace."""
import numpy as np
import tensorflow as tf

from core.darknet.layers import DarknetReorg, SpaceToDepth
from core.forge_ops import custom_kernels
from core.forge_ops.kernels.darknet_reorg import darknet_reorg
from core.forge_ops.kernels.project import ProjectKernel
from core.forge_ops.kernels.space_to_depth import space_to_depth


def literal_reorg_cpu(x_flat, w, h, c, stride):
    """Darknet's reorg_cpu with forward = 0, transcribed loop for loop from its semantics."""
    out = np.zeros_like(x_flat)
    out_c = c // (stride * stride)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                in_index = i + w * (j + h * k)
                c2, offset = k % out_c, k // out_c
                w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                out[in_index] = x_flat[w2 + w * stride * (h2 + h * stride * c2)]
    return out


def test_space_to_depth_is_tensorflows():
    x = np.random.default_rng(0).normal(size=(6, 8, 5)).astype(np.float32)
    np.testing.assert_array_equal(space_to_depth(x, 2), tf.nn.space_to_depth(x[None], 2)[0])
    np.testing.assert_array_equal(space_to_depth(x, 2), SpaceToDepth(2)(x[None])[0])


def test_darknet_reorg_matches_reorg_cpu_and_the_keras_layer():
    h, w, c = 4, 6, 8
    x = np.arange(h * w * c, dtype=np.float32).reshape(h, w, c)
    flat = x.transpose(2, 0, 1).reshape(-1)
    expected = literal_reorg_cpu(flat, w, h, c, 2).reshape(4 * c, h // 2, w // 2).transpose(1, 2, 0)
    np.testing.assert_array_equal(darknet_reorg(x, 2), expected)
    np.testing.assert_array_equal(np.asarray(DarknetReorg(stride=2)(x[None]))[0], expected)


def test_the_three_rearrangements_differ():
    """Forge's quadrant SpaceToDepthX2, TF's space_to_depth and Darknet's reorg are different."""
    x = np.arange(4 * 4 * 4, dtype=np.float32).reshape(4, 4, 4)
    tf_style, darknet = space_to_depth(x, 2), darknet_reorg(x, 2)
    quadrant = np.concatenate([x[:2, :2], x[:2, 2:], x[2:, :2], x[2:, 2:]], axis=-1)
    assert not np.array_equal(tf_style, darknet)
    assert not np.array_equal(tf_style, quadrant) and not np.array_equal(darknet, quadrant)


def test_output_shapes():
    for kernel in custom_kernels():
        if isinstance(kernel, ProjectKernel):
            shape = kernel.output_shape(26, 26, 64, {kernel.parameter_name: 2})
            assert shape == (13, 13, 256), kernel.swift_class
