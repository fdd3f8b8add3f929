"""A small Keras model built to break float16 in known places, for the pre-check's tests.

``overflow_net`` (16×16×3 input in [0, 1], no preprocessing):

* ``loud_conv`` — 3×3, positive weights ≈ 1e4, fused sigmoid: the pre-activation reaches ≈ 3e5
  while the sigmoid's output is 1;
* ``cancel_conv`` — 1×1, each output adds ±4e4 times two equal inputs (they cancel) plus its own
  input: the result is ≈ 1 but the partial sums reach 8e4;
* ``capped_conv`` → ``capped_relu6`` — positive weights ≈ 5e3: the convolution's own tensor
  reaches ≈ 4e5 (ReLU6 is never fused), the ReLU6 caps it at 6;
* ``shrink_conv`` (weights ≈ ±3e-4) → ``quiet_conv`` (1×1, weights ≈ ±8e-5, all normal in
  float16): the quiet tensor's values are ≈ 1e-6, almost all of them float16 subnormals;
* ``logits`` — a Dense whose weights (≈ 1e5) are beyond float16's range.

``late_norm_net``: a convolution with a ReLU (weights ≈ 2e4, outputs ≈ 3e5) whose BatchNorm comes
after the ReLU, so it cannot fold into the convolution and runs as its own per-channel scale.
"""
import numpy as np

from core.kerasenv import keras


def overflow_net(path):
    """Build, weight and save the model at ``path`` (.keras); returns the path."""
    layers = keras.layers
    inp = keras.Input((16, 16, 3), name="image")
    loud = layers.Conv2D(8, 3, padding="same", activation="sigmoid", name="loud_conv")(inp)
    cancel = layers.Conv2D(8, 1, name="cancel_conv")(loud)
    capped = layers.Conv2D(8, 3, padding="same", name="capped_conv")(cancel)
    relu6 = layers.ReLU(6.0, name="capped_relu6")(capped)
    shrink = layers.Conv2D(8, 3, padding="same", name="shrink_conv")(relu6)
    quiet = layers.Conv2D(8, 1, name="quiet_conv")(shrink)
    pool = layers.GlobalAveragePooling2D(name="pool")(quiet)
    logits = layers.Dense(4, name="logits")(pool)
    model = keras.Model(inp, logits, name="overflow_net")

    rng = np.random.default_rng(0)

    def magnitudes(shape, low, high, signed=True):
        values = rng.uniform(low, high, shape)
        return values * rng.choice([-1.0, 1.0], shape) if signed else values

    cancel_kernel = np.eye(8)[None, None]
    cancel_kernel[0, 0, 0, :] += 4e4
    cancel_kernel[0, 0, 1, :] -= 4e4
    kernels = {
        "loud_conv": magnitudes((3, 3, 3, 8), 0.5e4, 1.5e4, signed=False),
        "cancel_conv": cancel_kernel,
        "capped_conv": magnitudes((3, 3, 8, 8), 0.5e4, 1.0e4, signed=False),
        "shrink_conv": magnitudes((3, 3, 8, 8), 2e-4, 4e-4),
        "quiet_conv": magnitudes((1, 1, 8, 8), 0.7e-4, 1.0e-4),
        "logits": magnitudes((8, 4), 0.8e5, 1.2e5),
    }
    for name, kernel in kernels.items():
        layer = model.get_layer(name)
        bias = np.zeros(layer.get_weights()[1].shape, np.float32)
        layer.set_weights([kernel.astype(np.float32), bias])
    model.save(str(path))
    return path


def late_norm_net(path):
    """Build, weight and save ``late_norm_net`` at ``path`` (.keras); returns the path."""
    layers = keras.layers
    inp = keras.Input((8, 8, 3), name="image")
    conv = layers.Conv2D(4, 3, padding="same", activation="relu", name="wide_conv")(inp)
    norm = layers.BatchNormalization(name="late_bn")(conv)
    pool = layers.GlobalAveragePooling2D(name="pool")(norm)
    model = keras.Model(inp, layers.Dense(2, name="logits")(pool), name="late_norm_net")
    rng = np.random.default_rng(1)
    model.get_layer("wide_conv").set_weights([rng.uniform(1e4, 3e4, (3, 3, 3, 4)).astype("float32"),
                                              np.zeros(4, np.float32)])
    model.get_layer("late_bn").set_weights([np.ones(4, np.float32), np.zeros(4, np.float32),
                                            np.full(4, 1e5, np.float32),
                                            np.full(4, 1e8, np.float32)])   # scale 1e-4
    model.save(str(path))
    return path
