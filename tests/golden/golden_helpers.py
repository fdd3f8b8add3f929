"""Small Keras models with hand-written manifests (core/manifest.py layout) for golden tests."""
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "core" / "data" / "images"
SIZE = 32


def build_model(seed=0):
    """conv-bn-relu, a branch pair concatenated, a scaled residual add, GAP, dense softmax."""
    from core.kerasenv import keras

    rng = np.random.default_rng(seed)
    inp = keras.Input((SIZE, SIZE, 3), name="input_layer")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    a = keras.layers.Conv2D(4, 1, activation="relu", name="branch_a")(x)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="branch_b")(x)
    cat = keras.layers.Concatenate(name="cat")([a, b])
    y = keras.layers.Add(name="add")([x, cat])
    g = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    out = keras.layers.Dense(5, activation="softmax", name="fc")(g)
    model = keras.Model(inp, out, name="tiny")
    weights = []
    for w in model.get_weights():
        weights.append(rng.normal(0, 0.3, w.shape).astype(np.float32))
    # BatchNorm: gamma, beta, moving mean, moving variance (> 0)
    bn = model.get_layer("bn1")
    names = [getattr(v, "path", v.name) for v in model.weights]  # Keras 3: path, Keras 2: name
    for i, name in enumerate(names):
        if "bn1" in name and ("variance" in name or "gamma" in name):
            weights[i] = np.abs(weights[i]) + 0.5
    model.set_weights(weights)
    assert bn is not None
    return model


def build_folded(model):
    """The folded (_nobn) model: BN folded into conv1, ReLU fused; other layers keep names."""
    from core.kerasenv import keras

    conv, bn = model.get_layer("conv1"), model.get_layer("bn1")
    kernel, bias = conv.get_weights()
    gamma, beta, mean, var = bn.get_weights()
    scale = gamma / np.sqrt(var + bn.epsilon)
    inp = keras.Input((SIZE, SIZE, 3), name="input_layer")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(inp)
    a = keras.layers.Conv2D(4, 1, activation="relu", name="branch_a")(x)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="branch_b")(x)
    cat = keras.layers.Concatenate(name="cat")([a, b])
    y = keras.layers.Add(name="add")([x, cat])
    g = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    out = keras.layers.Dense(5, activation="softmax", name="fc")(g)
    folded = keras.Model(inp, out, name="tiny_nobn")
    folded.get_layer("conv1").set_weights([kernel * scale, (bias - mean) * scale + beta])
    for name in ("branch_a", "branch_b", "fc"):
        folded.get_layer(name).set_weights(model.get_layer(name).get_weights())
    return folded


STEPS = [
    {"op": "swap_channels", "permute": [2, 1, 0], "tensor": "rgb2bgr"},
    {"op": "subtract_mean", "scale": 255.0, "mean": [103.939, 116.779, 123.68],
     "tensor": "subtract_mean"},
    {"op": "linear", "a": 0.01, "b": 0.0, "tensor": "input_scale"},
]


def _tensor(name, index, forge_type, shape, reference, *, prefix="tiny", dump=True, inputs=(),
            keras_layers=(), compare=True):
    forge_shape = [shape[1], shape[0], shape[2], 1] if shape[0] > 0 else [-1, -1, -1, 1]
    return {"name": name, "index": index, "forge_type": forge_type, "shape": list(shape),
            "forge_shape": forge_shape,
            "dump_file": f"{prefix}-{name}.floats" if dump else None,
            "inputs": list(inputs), "keras_layers": list(keras_layers), "reference": reference,
            "compare": compare, "weights": []}


def tiny_manifest_dict(folded_model="tiny_nobn.keras"):
    h = SIZE // 2
    keras_ref = lambda layer, affine=None: {"kind": "keras", "layer": layer,  # noqa: E731
                                            "output_index": 0, "affine": affine}
    tensors = [
        _tensor("__Input__", 0, "Input", [-1, -1, 3], {"kind": "input_texture"}, compare=False),
        _tensor("__Resize_1__", 1, "Resize", [SIZE, SIZE, 3], {"kind": "image"}),
        _tensor("rgb2bgr", 2, "Custom", [SIZE, SIZE, 3], {"kind": "preprocessing", "step": 0}),
        _tensor("subtract_mean", 3, "Custom", [SIZE, SIZE, 3],
                {"kind": "preprocessing", "step": 1}),
        _tensor("input_scale", 4, "Custom", [SIZE, SIZE, 3], {"kind": "preprocessing", "step": 2}),
        _tensor("conv1", 5, "Conv", [h, h, 8], keras_ref("relu1"),
                keras_layers=["conv1", "bn1", "relu1"]),
        _tensor("branch_a", 6, "Conv", [h, h, 4], keras_ref("branch_a"), keras_layers=["branch_a"]),
        _tensor("branch_b", 7, "Conv", [h, h, 4], keras_ref("branch_b"), keras_layers=["branch_b"]),
        _tensor("__Concat_cat__", 8, "Concat", [h, h, 8], keras_ref("cat"),
                inputs=["branch_a", "branch_b"], keras_layers=["cat"]),
        _tensor("scaled_cat", 9, "Custom", [h, h, 8], keras_ref("cat", [0.5, 1.0]),
                keras_layers=["cat"]),
        _tensor("__Collect_add__", 10, "Collect", [h, h, 8], None, dump=False,
                inputs=["conv1", "__Concat_cat__"]),
        _tensor("add", 11, "Add", [h, h, 8], keras_ref("add"), keras_layers=["add"]),
        _tensor("gap", 12, "GlbAvgPool", [1, 1, 8], keras_ref("gap"),
                keras_layers=["gap"]),
        _tensor("fc", 13, "Dense", [1, 1, 5], keras_ref("fc"), keras_layers=["fc"]),
    ]
    return {
        "format": "keras2metal.manifest/1", "name": "tiny",
        "builder": {"class": "TinyBuilder", "file": "TinyBuilder.swift"},
        "source": {"model": "tiny.keras", "weights": "file", "seed": 0, "keras": "3",
                   "tensorflow": "2", "folded_model": folded_model},
        "input": {"width": SIZE, "height": SIZE, "channels": 3, "keras_input": "input_layer"},
        "preprocessing": {"family": "caffe", "steps": STEPS},
        "output": {"tensor": "fc", "kind": "classifier", "classes": 5},
        "tensors": tensors, "weights": [],
        "totals": {"layers": 10, "tensors": len(tensors), "parameters": 0},
    }
