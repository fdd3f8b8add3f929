"""The project's custom kernels: their numpy twins against the ops they replace."""
import numpy as np
import pytest
import tensorflow as tf

from core.darknet.layers import DarknetReorg, SpaceToDepth
from core.forge_ops import custom_kernels, kernel_for_swift
from core.forge_ops.collect_merge import merge
from core.forge_ops.kernels.gelu import gelu
from core.forge_ops.kernels.layer_norm import layer_norm
from core.forge_ops.kernels.pixel import PixelKernel
from core.forge_ops.kernels.rgb2gray import luminance255
from core.forge_ops.numerics import to_f16
from core.kerasenv import keras
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


# -- the per-pixel kernels against the Keras ops they replace ---------------------------------
# Odd sizes and channel counts that are not a multiple of 4 (the last slice is partly padding).
EDGE_SHAPES = [(1, 1, 1), (3, 5, 7), (4, 4, 4), (5, 3, 13), (2, 7, 96)]


def f16_values(shape, scale, seed):
    """Random float16-representable values (what a Forge image holds) as float32."""
    x = np.random.default_rng(seed).normal(0.0, scale, shape).astype(np.float16)
    return x.astype(np.float32)


@pytest.mark.parametrize("shape", EDGE_SHAPES)
def test_gelu_twin_matches_keras(shape):
    x = f16_values(shape, 3.0, 1)
    x.flat[:3] = [-9.5, 0.0, 9.5][:x.size]                    # saturated tails and zero
    expected = np.asarray(keras.activations.gelu(x, approximate=False))
    np.testing.assert_allclose(gelu(x), expected, rtol=0, atol=2e-6)
    out = kernel_for_swift("GELUKernel").run(x, {}, shape)
    assert out.shape == shape
    # float16 rounding, plus what Keras's own erf may differ by (2e-6 under Keras 2)
    np.testing.assert_allclose(out, expected, rtol=2 ** -10, atol=4e-6)


@pytest.mark.parametrize("shape", EDGE_SHAPES[1:])
def test_layer_norm_twin_matches_keras(shape):
    x = f16_values(shape, 2.0, 2) + 1.5
    layer = keras.layers.LayerNormalization(epsilon=1e-6, center=False, scale=False)
    expected = np.asarray(layer(x[None]))[0]
    np.testing.assert_allclose(layer_norm(x, 1e-6), expected, rtol=1e-5, atol=1e-5)
    out = kernel_for_swift("LayerNormKernel").run(x, {"epsilon": 1e-6}, shape)
    np.testing.assert_allclose(out, expected, rtol=2 ** -10, atol=1e-4)


@pytest.mark.parametrize("shape", EDGE_SHAPES[1:])
def test_broadcast_and_crop_twins_match_keras(shape):
    h, w, c = shape
    x, factor = f16_values(shape, 1.0, 3), f16_values((1, 1, c), 1.0, 4)
    repeated = kernel_for_swift("BroadcastKernel").run(factor, {}, shape)
    keras_product = np.asarray(keras.layers.Multiply()([x[None], factor[None]]))[0]
    np.testing.assert_array_equal(merge(np.stack([repeated, x]), "Multiply"),
                                  to_f16(keras_product))
    cropping = ((1, 0), (0, 1)) if h > 1 and w > 1 else ((0, 0), (0, 0))
    (top, bottom), (left, right) = cropping
    out_shape = (h - top - bottom, w - left - right, c)
    cropped = kernel_for_swift("CropKernel").run(x, {"top": top, "left": left}, out_shape)
    np.testing.assert_array_equal(cropped, np.asarray(keras.layers.Cropping2D(cropping)(x[None]))[0])


def test_rgb2gray_twin_is_forges_formula():
    """Shaders.metal rgb2Gray in half arithmetic: y = r*0.299h + g*0.587h + b*0.114h, y*255h in R."""
    rgb8 = np.random.default_rng(5).integers(0, 256, (5, 7, 3)).astype(np.float32)
    rgb8[0, 0], rgb8[0, 1] = 255, 0
    h = (rgb8 / 255).astype(np.float16)
    r, g, b = h[..., 0], h[..., 1], h[..., 2]
    y = r * np.float16(0.299) + g * np.float16(0.587) + b * np.float16(0.114)
    expected = (y * np.float16(255)).astype(np.float32)[..., None]
    gray = luminance255(rgb8 / np.float32(255))
    np.testing.assert_array_equal(gray, expected)
    assert gray[0, 1, 0] == 0.0 and abs(gray[0, 0, 0] - 255.0) <= 0.25
    kernel = kernel_for_swift("RGB2Gray")
    np.testing.assert_array_equal(kernel.run(rgb8 / np.float32(255), {}, (5, 7, 1)), expected)
    into_rgba = kernel.run(rgb8 / np.float32(255), {}, (5, 7, 4))      # half4(y*255, 0, 0, 0)
    np.testing.assert_array_equal(into_rgba[..., :1], expected)
    assert not into_rgba[..., 1:].any()


def test_pixel_kernels_have_a_texture2d_and_an_array_shader():
    for kernel in custom_kernels():
        if isinstance(kernel, PixelKernel):
            assert f"kernel void {kernel.metal_function}(" in kernel.metal_source
            assert f"kernel void {kernel.metal_function}_array(" in kernel.metal_source
            assert f'makeFunction(name: "{kernel.metal_function}_array")' in kernel.swift_source
            assert kernel.why, kernel.swift_class
