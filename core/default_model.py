"""The embedded default model: a small shape classifier, trained by this project.

The shipped copy lives in ``core/data/default_model/`` (made by ``python -m training.shapes_net
train``) and is the zoo entry ``default`` (``DEFAULT``, Forge name ``shapes_net``, preprocessing
family ``tf``): ``--weights trained`` loads these weights, ``--weights random`` re-initialises the
same architecture from ``--seed``.

The network uses every structural feature the converter and the device must get right on a
small budget: a strided convolution with BatchNorm, a depthwise-separable block with a residual
``Add``, an Inception-style ``Concatenate`` of three branches (1×1 convolution, 3×3 convolution,
max pooling), a strided depthwise convolution, global average pooling and a softmax classifier.
"""
from pathlib import Path

import numpy as np

SIZE = 32
CLASSES = ("circle", "square", "triangle", "cross", "ring", "horizontal_bars", "vertical_bars",
           "diagonal_stripes")
DATA_DIR = Path(__file__).resolve().parent / "data" / "default_model"
MODEL_FILE = "shapes_net.keras"
WEIGHTS_FILE = "shapes_net.weights.npz"   # the same weights by layer name, for Keras 2
FORGE_NAME = "shapes_net"
SEED = 2024


def build_model(seed: int = SEED, classes: int = len(CLASSES)):
    """The shapes_net architecture (untrained, seeded initial weights)."""
    from core.kerasenv import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)                                          # 16×16×16
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="block1_dw")(x)
    y = L.BatchNormalization(name="block1_dw_bn")(y)
    y = L.ReLU(name="block1_dw_relu")(y)
    y = L.Conv2D(16, 1, use_bias=False, name="block1_pw")(y)
    y = L.BatchNormalization(name="block1_pw_bn")(y)
    x = L.Add(name="block1_add")([x, y])
    x = L.ReLU(name="block1_out")(x)
    a = L.Conv2D(16, 1, activation="relu", name="mix_a")(x)
    b = L.Conv2D(16, 3, padding="same", use_bias=False, name="mix_b")(x)
    b = L.BatchNormalization(name="mix_b_bn")(b)
    b = L.ReLU(name="mix_b_relu")(b)
    c = L.MaxPooling2D(3, strides=1, padding="same", name="mix_pool")(x)
    x = L.Concatenate(name="mix")([a, b, c])                                 # 16×16×48
    x = L.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="reduce_conv")(x)
    x = L.BatchNormalization(name="reduce_bn")(x)
    x = L.ReLU(name="reduce_relu")(x)                                        # 8×8×32
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="block2_dw")(x)
    y = L.BatchNormalization(name="block2_dw_bn")(y)
    y = L.ReLU(name="block2_dw_relu")(y)
    y = L.Conv2D(32, 1, use_bias=False, name="block2_pw")(y)
    y = L.BatchNormalization(name="block2_pw_bn")(y)
    x = L.Add(name="block2_add")([x, y])
    x = L.ReLU(name="block2_out")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    out = L.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="shapes_net")


def shipped_model_path() -> Path:
    return DATA_DIR / MODEL_FILE


def save_portable_weights(model, path) -> None:
    """Every layer's weights by layer name (npz): readable by Keras 2 and 3 alike."""
    from core.atomic import write_with

    arrays = {f"{layer.name}/{i}": w for layer in model.layers
              for i, w in enumerate(layer.get_weights())}
    write_with(path, lambda tmp: np.savez(open(tmp, "wb"), **arrays), suffix=".npz")


def load_shipped():
    """The shipped trained model: the .keras file under Keras 3; under Keras 2, which cannot read
    Keras 3's format, the architecture rebuilt here with the portable weights."""
    from core.errors import ConversionError
    from core.kerasenv import KERAS3, keras

    path = shipped_model_path() if KERAS3 else DATA_DIR / WEIGHTS_FILE
    if not path.is_file():
        raise ConversionError(f"{path}: the embedded default model is missing; re-create it with "
                              "`python -m training.shapes_net train --out core/data/default_model`")
    if KERAS3:
        return keras.models.load_model(str(path), compile=False)
    model = build_model()
    with np.load(path) as arrays:
        for layer in model.layers:
            count = len(layer.weights)
            if count:
                layer.set_weights([arrays[f"{layer.name}/{i}"] for i in range(count)])
    return model
