"""Build a Keras model from a :class:`~core.darknet.plan.NetworkPlan`.

Layer names are ``<kind>_<darknet layer index>`` for the main op of each section (``conv_3``,
``maxpool_1``, ``route_9``, ``reorg_10``, ``shortcut_4``, ``upsample_20``, ``connected_5``,
``softmax_7``...) and ``bn_<i>``, ``pad_<i>``, ``<activation>_<i>`` (``leaky_3``, ``relu_3``,
``logistic_3``, ``mish_3``), ``flatten_<i>``, ``reshape_<i>`` for the helpers. The input is
``input``: float32 RGB in [0, 1], NHWC.

The model's outputs are the raw inputs of the detection heads (one per ``[yolo]``, the last
``[region]``), or the last layer's output for other networks.
"""
from __future__ import annotations

import re

from core.kerasenv import KERAS3, keras

from . import layers as dl
from .errors import DarknetError
from .plan import NetworkPlan
from .weights import BN_EPSILON, keras_weights

L = keras.layers


def _darknet_pool_geometry(n, size, stride, padding):
    return (n + padding - size) // stride + 1, padding // 2


def _tf_same_geometry(n, size, stride):
    out = -(-n // stride)
    total = max((out - 1) * stride + size - n, 0)
    return out, total // 2


def maxpool_mode(size, stride, padding, sizes) -> str:
    """'same', 'valid' or 'darknet': the Keras padding that reproduces Darknet on ``sizes``."""
    if all(_tf_same_geometry(n, size, stride) == _darknet_pool_geometry(n, size, stride, padding)
           and (_tf_same_geometry(n, size, stride)[1] < size) for n in sizes):
        return "same"
    if padding == 0:
        return "valid"
    return "darknet"


def _activation(x, act, i):
    if act == "linear":
        return x
    if act == "leaky":
        layer = (L.LeakyReLU(negative_slope=0.1, name=f"leaky_{i}") if KERAS3
                 else L.LeakyReLU(alpha=0.1, name=f"leaky_{i}"))
    elif act == "relu":
        layer = L.ReLU(name=f"relu_{i}")
    elif act == "logistic":
        layer = L.Activation("sigmoid", name=f"logistic_{i}")
    elif act == "mish":
        layer = dl.Mish(name=f"mish_{i}")
    else:  # pragma: no cover - the plan rejects others
        raise DarknetError(f"activation {act} not supported")
    return layer(x)


def _spatial(x, i):
    if len(x.shape) == 2:
        return L.Reshape((1, 1, x.shape[-1]), name=f"reshape_{i}")(x)
    return x


def model_name(path: str) -> str:
    stem = re.sub(r"\.cfg$", "", str(path).replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[^0-9A-Za-z_]", "_", stem) or "darknet"
    return name if name[0].isalpha() else "darknet_" + name


def build_keras_model(plan: NetworkPlan, weights=None, *, reorg: str = "darknet"):
    """Create the Keras model for ``plan``; ``weights`` = ``{layer index: {name: array}}`` or a
    :class:`~core.darknet.weights.DarknetWeights`. ``reorg='space_to_depth'`` builds YAD2K's
    TensorFlow passthrough instead of Darknet's exact reorg."""
    if reorg not in ("darknet", "space_to_depth"):
        raise DarknetError(f"reorg must be 'darknet' or 'space_to_depth', not {reorg!r}")
    h, w, c = plan.input_shape
    fc = plan.fully_convolutional
    inp = keras.Input(shape=(None, None, c) if fc else (h, w, c), name="input")
    tensors = {-1: inp}
    heads = []
    for spec in plan.layers:
        i, a, kind = spec.index, spec.attrs, spec.kind
        x = tensors[spec.inputs[0]]
        if kind == "convolutional":
            x = _spatial(x, i)
            size, stride, pad = a["size"], a["stride"], a["padding"]
            if stride == 1 and 2 * pad == size - 1:
                mode = "same"
            else:
                mode = "valid"
                if pad:
                    x = L.ZeroPadding2D(pad, name=f"pad_{i}")(x)
            kw = dict(groups=a["groups"]) if a["groups"] > 1 else {}
            x = L.Conv2D(a["filters"], size, strides=stride, padding=mode,
                         use_bias=not a["batch_normalize"], name=f"conv_{i}", **kw)(x)
            if a["batch_normalize"]:
                x = L.BatchNormalization(epsilon=BN_EPSILON, name=f"bn_{i}")(x)
            x = _activation(x, a["activation"], i)
        elif kind == "maxpool":
            x = _spatial(x, i)
            size, stride, pad = a["size"], a["stride"], a["padding"]
            sizes = range(1, 4 * (size + stride) + 16) if fc else {spec.in_shape[0], spec.in_shape[1]}
            mode = maxpool_mode(size, stride, pad, sizes)
            if mode == "darknet":
                x = dl.DarknetMaxPool(size, stride, pad, name=f"maxpool_{i}")(x)
            else:
                x = L.MaxPooling2D(size, stride, padding=mode, name=f"maxpool_{i}")(x)
        elif kind == "avgpool":
            if len(x.shape) == 4:
                x = L.GlobalAveragePooling2D(name=f"avgpool_{i}")(x)
        elif kind == "route":
            ins = [tensors[r] for r in a["layers"]]
            if any(len(t.shape) == 4 for t in ins):
                ins = [_spatial(t, f"{i}_{k}") for k, t in enumerate(ins)]
            if a["groups"] > 1:
                ins = [dl.ChannelSlice(a["groups"], a["group_id"], name=f"route_{i}_slice_{k}")(t)
                       for k, t in enumerate(ins)]
            x = ins[0] if len(ins) == 1 else L.Concatenate(axis=-1, name=f"route_{i}")(ins)
        elif kind == "reorg":
            x = _spatial(x, i)
            if reorg == "darknet":
                x = dl.DarknetReorg(a["stride"], name=f"reorg_{i}")(x)
            else:
                x = dl.SpaceToDepth(a["stride"], name=f"reorg_{i}")(x)
        elif kind == "shortcut":
            other = tensors[a["source"]]
            src_shape = plan.layers[a["source"]].out_shape
            if a["alpha"] == 1.0 and a["beta"] == 1.0 and src_shape == spec.in_shape:
                x = L.Add(name=f"shortcut_{i}")([x, other])
            else:
                x = dl.DarknetShortcut(a["alpha"], a["beta"], a["stride"], name=f"shortcut_{i}")([x, other])
            x = _activation(x, a["activation"], i)
        elif kind == "upsample":
            x = _spatial(x, i)
            if a["scale"] == 1.0:
                x = L.UpSampling2D(a["stride"], interpolation="nearest", name=f"upsample_{i}")(x)
            else:
                x = dl.DarknetUpsample(a["stride"], a["scale"], name=f"upsample_{i}")(x)
        elif kind in ("region", "yolo"):
            heads.append((spec, x))
        elif kind == "connected":
            if len(x.shape) == 4:
                x = L.Flatten(name=f"flatten_{i}")(x)
            x = L.Dense(a["output"], use_bias=not a["batch_normalize"], name=f"connected_{i}")(x)
            if a["batch_normalize"]:
                x = L.BatchNormalization(epsilon=BN_EPSILON, name=f"bn_{i}")(x)
            x = _activation(x, a["activation"], i)
        elif kind == "dropout":
            x = L.Dropout(a["probability"], name=f"dropout_{i}")(x)
        elif kind == "softmax":
            if a["temperature"] != 1.0:
                x = L.Rescaling(1.0 / a["temperature"], name=f"temperature_{i}")(x)
            x = L.Softmax(axis=-1, name=f"softmax_{i}")(x)
        tensors[i] = x
    if any(s.kind == "yolo" for s, _ in heads):
        outputs = [t for s, t in heads if s.kind == "yolo"]
    elif heads:
        outputs = [heads[-1][1]]
    else:
        out = tensors[plan.layers[-1].index]
        if len(out.shape) == 4 and tuple(out.shape[1:3]) == (1, 1):
            out = L.Flatten(name="flatten_out")(out)
        outputs = [out]
    model = keras.Model(inp, outputs if len(outputs) > 1 else outputs[0], name=model_name(plan.path))
    if weights is not None:
        set_darknet_weights(model, plan, weights)
    return model


def set_darknet_weights(model, plan: NetworkPlan, weights):
    layers = getattr(weights, "layers", weights)
    for spec in plan.layers:
        if not spec.weights:
            continue
        for name, values in keras_weights(spec, layers[spec.index]).items():
            model.get_layer(name).set_weights(values)
