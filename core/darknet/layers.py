"""Custom Keras layers for the Darknet operations Keras has no exact built-in for.

Every class is registered as ``keras2metal>ClassName`` so models load in Keras safe mode (import
this module before ``load_model``). The ops are written with TensorFlow ops, which run under
Keras 3 (TensorFlow backend) and tf-keras alike. All tensors are NHWC.

Class names and config attributes are a stable contract with the conversion core:

* ``DarknetReorg(stride)`` -- Darknet's ``[reorg]`` (``reorg_cpu(..., forward=0)``): the CHW
  buffer of shape (C, H, W) is read as (C/s^2, H*s, W*s) and space-to-depth'ed with output
  channel ``(dy*s + dx)*(C/s^2) + c2``; the result buffer is read as (C*s^2, H/s, W/s).
  Per image in CHW: ``x.reshape(C/s^2, H, s, W, s).transpose(2, 4, 0, 1, 3).reshape(C*s^2, H/s, W/s)``.
* ``SpaceToDepth(block_size)`` -- TensorFlow's ``space_to_depth`` (YAD2K's passthrough):
  ``out[y, x, (dy*b + dx)*C + c] = in[b*y + dy, b*x + dx, c]``.
* ``Mish()`` -- ``x * tanh(softplus(x))``.
* ``ChannelSlice(groups, group_id)`` -- ``x[..., g*C/groups:(g+1)*C/groups]`` with ``g = group_id``
  (``[route]`` with ``groups``).
* ``DarknetMaxPool(pool_size, strides, padding)`` -- Darknet max-pool: ``padding//2`` cells
  before and ``padding - padding//2`` after each spatial axis that never win, then a valid
  pool; out = (in + padding - size)//stride + 1. Used only where Keras' 'same'/'valid' differ.
* ``DarknetUpsample(stride, scale)`` -- nearest-neighbour x``stride`` times ``scale`` (used only
  when scale != 1; otherwise ``UpSampling2D``).
* ``DarknetShortcut(alpha, beta, stride)`` -- Darknet's ``[shortcut]`` (``shortcut_cpu``) where
  it is not a plain ``Add``: ``inputs = [prev, src]``, ``src' = src[:, ::stride, ::stride]``,
  ``m = min(C_prev, C_src)``; ``out[..., :m] = alpha*prev[..., :m] + beta*src'[..., :m]`` and
  ``out[..., m:] = prev[..., m:]`` (ResNet cfgs add across different channel counts).
"""
from __future__ import annotations

import tensorflow as tf

from core.kerasenv import keras, register_serializable

PACKAGE = "keras2metal"


def _dim(value, factor_num=1, factor_den=1):
    return None if value is None else value * factor_num // factor_den


@register_serializable(PACKAGE)
class DarknetReorg(keras.layers.Layer):
    def __init__(self, stride=2, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs):
        s = self.stride
        c = inputs.shape[-1]
        shape = tf.shape(inputs)
        n, h, w = shape[0], shape[1], shape[2]
        x = tf.transpose(inputs, [0, 3, 1, 2])
        x = tf.reshape(x, tf.stack([n, c // (s * s), h, s, w, s]))
        x = tf.transpose(x, [0, 3, 5, 1, 2, 4])
        x = tf.reshape(x, tf.stack([n, c * s * s, h // s, w // s]))
        return tf.transpose(x, [0, 2, 3, 1])

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        s = self.stride
        return (n, _dim(h, 1, s), _dim(w, 1, s), c * s * s)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@register_serializable(PACKAGE)
class SpaceToDepth(keras.layers.Layer):
    def __init__(self, block_size=2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        return tf.nn.space_to_depth(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        b = self.block_size
        return (n, _dim(h, 1, b), _dim(w, 1, b), c * b * b)

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@register_serializable(PACKAGE)
class Mish(keras.layers.Layer):
    def call(self, inputs):
        return inputs * tf.math.tanh(tf.math.softplus(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape


@register_serializable(PACKAGE)
class ChannelSlice(keras.layers.Layer):
    def __init__(self, groups=1, group_id=0, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.group_id = int(group_id)

    def call(self, inputs):
        size = inputs.shape[-1] // self.groups
        return inputs[..., self.group_id * size:(self.group_id + 1) * size]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] // self.groups,)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "group_id": self.group_id}


@register_serializable(PACKAGE)
class DarknetMaxPool(keras.layers.Layer):
    def __init__(self, pool_size=2, strides=2, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.strides = int(strides)
        self.padding = int(padding)

    def call(self, inputs):
        before = self.padding // 2
        after = self.padding - before
        x = tf.pad(inputs, [[0, 0], [before, after], [before, after], [0, 0]],
                   constant_values=inputs.dtype.min)
        return tf.nn.max_pool2d(x, self.pool_size, self.strides, "VALID")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape

        def out(v):
            return None if v is None else (v + self.padding - self.pool_size) // self.strides + 1
        return (n, out(h), out(w), c)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


@register_serializable(PACKAGE)
class DarknetUpsample(keras.layers.Layer):
    def __init__(self, stride=2, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)
        self.scale = float(scale)

    def call(self, inputs):
        x = tf.repeat(tf.repeat(inputs, self.stride, axis=1), self.stride, axis=2)
        return x * tf.cast(self.scale, x.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, _dim(h, self.stride), _dim(w, self.stride), c)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "scale": self.scale}


@register_serializable(PACKAGE)
class DarknetShortcut(keras.layers.Layer):
    def __init__(self, alpha=1.0, beta=1.0, stride=1, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.stride = int(stride)

    def call(self, inputs):
        prev, src = inputs
        s = self.stride
        if s > 1:
            src = src[:, ::s, ::s, :]
        c_out, c_src = prev.shape[-1], src.shape[-1]
        minc = min(c_out, c_src)
        mixed = (prev[..., :minc] * tf.cast(self.alpha, prev.dtype)
                 + src[..., :minc] * tf.cast(self.beta, prev.dtype))
        if minc < c_out:
            mixed = tf.concat([mixed, prev[..., minc:]], axis=-1)
        return mixed

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta, "stride": self.stride}


CUSTOM_LAYERS = {cls.__name__: cls for cls in (DarknetReorg, SpaceToDepth, Mish, ChannelSlice,
                                               DarknetMaxPool, DarknetUpsample, DarknetShortcut)}
