"""Helpers of the reference device tests: the hand-written fork-style builder, an independent
Keras model that computes what it should, and Keras→Forge weight layouts."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
TINY_BUILDER = DATA / "TinyForkStyleBuilder.swift"


def write_floats(path, array):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(array, dtype="<f4").tofile(str(path))


def conv_to_forge(kernel):
    """Keras Conv2D kernel (kH, kW, in, out) → Forge OHWI."""
    return np.transpose(kernel, (3, 0, 1, 2))


def depthwise_to_forge(kernel):
    """Keras DepthwiseConv2D kernel (kH, kW, C, 1) → MPS [C][1][kH][kW]."""
    return np.transpose(kernel, (2, 3, 0, 1))


def dense_to_forge(kernel):
    """Keras Dense kernel (H*W*C, out) → [out][H][W][C]."""
    return kernel.T


def save_png(path, rgb8):
    from PIL import Image

    Image.fromarray(rgb8).save(str(path))
    return path


def tiny_keras_model(seed=0):
    """The Keras network the hand-written TinyForkStyleBuilder reproduces (RGB [0, 1] input)."""
    from core.kerasenv import KERAS3, keras

    L = keras.layers
    rng = np.random.default_rng(seed)
    inp = keras.Input((32, 32, 3), name="image")
    bgr = L.Lambda(lambda x: x[..., ::-1], name="rgb2bgr")(inp)
    mean = np.array([103.939, 116.779, 123.68], np.float32)
    sub = L.Lambda(lambda x: x * 255.0 - mean, name="subtract_mean")(bgr)
    scaled = L.Rescaling(0.0078125, name="input_scale")(sub)
    conv1 = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv1")(scaled)
    pool1 = L.MaxPooling2D(3, strides=1, padding="same", name="pool1")(conv1)
    a = L.Conv2D(8, 1, padding="same", name="branch_a_conv")(pool1)
    slope = {"negative_slope": 0.1} if KERAS3 else {"alpha": 0.1}
    a = L.LeakyReLU(name="branch_a", **slope)(a)
    b = L.Conv2D(8, 1, padding="same", activation="relu", name="branch_b1")(pool1)
    b = L.Conv2D(12, (1, 3), padding="same", name="branch_b2")(b)
    c = L.AveragePooling2D(3, strides=1, padding="same", name="branch_c")(pool1)
    mixed = L.Concatenate(name="mixed")([a, b, c])
    up = L.Conv2D(16, 1, padding="same", name="mixed_up")(mixed)
    scaled_up = L.Rescaling(0.17, name="scale_block")(up)
    block = L.Add(name="block")([pool1, scaled_up])
    block_ac = L.ReLU(name="block_ac")(block)
    pad = L.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(block_ac)
    dw = L.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name="dw")(pad)
    dw_relu = L.ReLU(max_value=6.0, name="dw_relu")(dw)
    pw = L.Conv2D(24, 1, padding="same", name="pw")(dw_relu)
    pool2 = L.AveragePooling2D(2, strides=2, name="pool2")(pw)
    flat = L.Flatten(name="flatten")(pool2)
    fc = L.Dense(10, name="fc")(flat)
    out = L.Softmax(name="softmax")(fc)
    model = keras.Model(inp, out)
    for layer in model.layers:
        new = []
        for w in layer.get_weights():
            fan_in = int(np.prod(w.shape[:-1])) if w.ndim > 1 else 1
            if w.ndim == 1:
                new.append(rng.normal(0, 0.1, w.shape).astype(np.float32))
            else:
                new.append(rng.normal(0, np.sqrt(2.0 / max(fan_in, 1)), w.shape).astype(np.float32))
        if new:
            layer.set_weights(new)
    return model


# Forge tensor (dump name) → Keras layer whose output it reproduces (plus a scale factor).
TINY_REFERENCE = {
    "rgb2bgr": "rgb2bgr", "subtract_mean": "subtract_mean", "input_scale": "input_scale",
    "conv1": "conv1", "pool1": "pool1", "shortcut": "pool1", "branch_a": "branch_a",
    "branch_b1": "branch_b1", "branch_b2": "branch_b2", "branch_c": "branch_c",
    "__Concat_mixed__": "mixed", "mixed_up": "mixed_up", "scale_block": "scale_block",
    "block": "block", "block_ac": "block_ac", "pad": "pad", "dw": "dw", "dw_relu": "dw_relu",
    "pw": "pw", "pool2": "pool2", "fc": "fc", "__Softmax_25__": "softmax",
}


def write_tiny_weights(model, param_dir, prefix="tiny_fork-"):
    param_dir = Path(param_dir)
    get = lambda n: model.get_layer(n).get_weights()  # noqa: E731
    convs = {"conv1": "conv1", "branch_a": "branch_a_conv", "branch_b1": "branch_b1",
             "branch_b2": "branch_b2", "mixed_up": "mixed_up", "pw": "pw"}
    for forge_name, keras_name in convs.items():
        k, b = get(keras_name)
        write_floats(param_dir / f"{prefix}{forge_name}.weights.bin", conv_to_forge(k))
        write_floats(param_dir / f"{prefix}{forge_name}.biases.bin", b)
    (k,) = get("dw")
    write_floats(param_dir / f"{prefix}dw.weights.bin", depthwise_to_forge(k))
    k, b = get("fc")
    write_floats(param_dir / f"{prefix}fc.weights.bin", dense_to_forge(k))
    write_floats(param_dir / f"{prefix}fc.biases.bin", b)


def keras_activations(model, rgb01, layer_names):
    from core.kerasenv import keras

    outs = [model.get_layer(n).output for n in layer_names]
    probe = keras.Model(model.input, outs)
    values = probe.predict(rgb01[None].astype(np.float32), verbose=0)
    return {n: v[0] for n, v in zip(layer_names, values)}


def rel_error(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-6))


ROOT = Path(__file__).resolve().parents[2]


def convert(spec, out: Path) -> Path:
    """``python -m core SPEC --weights random --seed 0`` into ``out``; returns the manifest path."""
    params = out / "P"
    manifests = list(params.glob("*.manifest.json")) if params.exists() else []
    if manifests:
        return manifests[0]
    cmd = [sys.executable, "-m", "core", spec, "--weights", "random", "--seed", "0",
           "--param_dir", str(params), "--src_out_dir", str(out / "S"),
           "--model_dir", str(out / "M")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0:
        pytest.fail(f"conversion of {spec} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return next(params.glob("*.manifest.json"))
