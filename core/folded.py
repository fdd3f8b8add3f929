"""The folded Keras model (``<name>_nobn``): the original with BatchNorm folded as Forge runs it.

It is rebuilt layer by layer from the original's configs, taking the folded weights from the IR,
so it reproduces exactly what the weight files hold; ``verify_folded`` proves it computes what the
original computes.
"""
import numpy as np

from core.forge_ops import op_for
from core.kerasenv import keras, variable_name
from core.kerasgraph import input_ids, layer_calls, output_ids
from core.seeding import calibration_batch


def _nodes_by_keras_layer(graph):
    owners = {}
    for node in graph.nodes:
        for layer in node.keras_layers:
            owners.setdefault(layer, []).append(node)
    return owners


def _weighted_nodes(owners, layer_name):
    return [n for n in owners.get(layer_name, []) if op_for(n.op).has_weights]


# Per-channel scales folded into the layer before them (or run as a 1x1 depthwise convolution).
FOLDED_AFFINES = ("BatchNormalization", "LayerScale")


def _uninitialised(config: dict) -> dict:
    """The config with zero initialisers: every weight is set right after the layer is built, and
    drawing random initial values (VGG16's Dense kernels alone: 1.5 s) would be wasted."""
    return {key: "zeros" if key.endswith("_initializer") and value is not None else value
            for key, value in config.items()}


def _folded_layer(call, owners):
    """(new layer, weights or None); None as layer means 'alias my input' (folded away)."""
    layer, cls = call.layer, call.class_name
    config = _uninitialised(layer.get_config())
    nodes = _weighted_nodes(owners, layer.name)
    if cls in FOLDED_AFFINES:
        if nodes and nodes[0].keras_layers[0] != layer.name:
            return None, None  # folded into the layer before it
        node = nodes[0]  # standalone: runs as a 1x1 depthwise convolution
        new = keras.layers.DepthwiseConv2D((1, 1), padding="same", use_bias=True, name=layer.name)
        return new, [node.weights["kernel"], node.weights["bias"]]
    if cls == "Conv2D" and int(config.get("groups", 1)) > 1 and nodes:
        config["use_bias"] = True
        return type(layer).from_config(config), _grouped_weights(nodes)
    if cls in ("Conv2D", "DepthwiseConv2D", "Dense") and nodes:
        node = nodes[-1]
        kernel = node.weights["kernel"]
        if cls == "Dense":
            kernel = kernel.reshape(-1, kernel.shape[-1])
        if cls == "Conv2D" and int(config.get("groups", 1)) > 1:    # ran as a depthwise
            kernel = kernel.transpose(0, 1, 3, 2)
        return _with_biases_of(node, type(layer), config, [kernel])
    if cls == "SeparableConv2D" and nodes:
        depthwise, pointwise = nodes       # the frontend's separable handler: depthwise first
        return _with_biases_of(pointwise, type(layer), config,
                               [depthwise.weights["kernel"], pointwise.weights["kernel"]])
    return type(layer).from_config(config), layer.get_weights()


def _with_biases_of(node, layer_class, config, kernels):
    """The layer with a bias exactly when the weight files give the node one (BatchNorm folding
    adds it), so the folded model holds what the device holds."""
    config["use_bias"] = bool(node.attrs.get("use_bias", True))
    weights = kernels + [node.weights["bias"]] if config["use_bias"] else kernels
    return layer_class.from_config(config), weights


def _grouped_weights(nodes) -> list:
    """A grouped Conv2D's kernel (kH, kW, in / groups, out) and bias from its Forge layers: one
    depthwise convolution, or one convolution per group (frontend.grouped_conv2d)."""
    if len(nodes) == 1 and nodes[0].op == "DepthwiseConvolution":
        return [nodes[0].weights["kernel"].transpose(0, 1, 3, 2), nodes[0].weights["bias"]]
    return [np.concatenate([n.weights["kernel"] for n in nodes], axis=-1),
            np.concatenate([n.weights["bias"] for n in nodes])]


def build_folded_model(model, graph):
    owners = _nodes_by_keras_layer(graph)
    tensors, pending = {}, []
    for call in layer_calls(model):
        if call.class_name == "InputLayer":
            shape = tuple(model.inputs[0].shape[1:])
            tensors[call.outputs[0]] = keras.Input(shape=shape, name=call.name)
            continue
        inputs = [tensors[t] for t in call.inputs]
        layer, weights = _folded_layer(call, owners)
        if layer is None:
            tensors[call.outputs[0]] = inputs[0]
            continue
        out = layer(inputs[0] if len(inputs) == 1 else inputs)
        outs = out if isinstance(out, (list, tuple)) else [out]
        for name, tensor in zip(call.outputs, outs):
            tensors[name] = tensor
        pending.append((layer, weights))
    folded = keras.Model(tensors[input_ids(model)[0]], [tensors[o] for o in output_ids(model)],
                         name=f"{model.name}_nobn")
    for layer, weights in pending:
        if weights:
            layer.set_weights([np.asarray(w, np.float32) for w in weights])
            if type(layer).__name__ == "Normalization":
                layer.finalize_state()      # computes with its adapted statistics from now on
    return folded


def _outputs(result) -> list:
    """A model's output(s) as float64 arrays (a detector has one per head)."""
    results = result if isinstance(result, (list, tuple)) else [result]
    return [np.asarray(r, np.float64) for r in results]


FOLD_TOLERANCE = 1e-3      # relative to the largest output: float32 rounding grows with depth
NOISE_NUDGE = 2.0 ** -20   # relative input nudge: a few float32 ulps, as folding's roundings are
NOISE_MARGIN = 64.0        # a wrong fold moves the output by 0.1-1, far beyond 64x the noise
UNVERIFIABLE = 0.1         # a tolerance this wide could not tell a wrong fold from noise


def verify_folded(model, folded, family: str, seed: int = 1) -> dict:
    """Largest output difference of folded vs original on a seeded batch (over every output),
    absolute and relative, and the tolerance it is held to: ``FOLD_TOLERANCE``, or, when the
    difference is larger than that, ``NOISE_MARGIN`` × the model's own float32 noise if that is
    larger still (a network that amplifies rounding — a chaotic one can move its output
    by 1e-4 for an input nudge of 2⁻²⁰ — shows folding's exact algebra as more than 1e-3 of
    difference).  The noise costs one more forward pass, so it is measured only then."""
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    x = calibration_batch(shape, family, seed)[::2]    # one image of each kind is enough
    original = _outputs(model(x, training=False))
    pairs = list(zip(original, _outputs(folded(x, training=False))))
    scale = max(float(np.max(np.abs(a))) for a in original) or 1.0
    max_abs = max(float(np.max(np.abs(a - b))) for a, b in pairs)
    noise = (float32_noise(model, x, original, scale, seed)
             if max_abs / scale > FOLD_TOLERANCE else None)
    tolerance = FOLD_TOLERANCE if noise is None else max(FOLD_TOLERANCE, NOISE_MARGIN * noise)
    return {"max_abs_error": max_abs, "max_relative_error": max_abs / scale,
            "float32_noise": noise, "tolerance": tolerance,
            "verified": tolerance <= UNVERIFIABLE,
            "output_max_abs": scale, "keras_params_original": parameter_count(model),
            "keras_params_folded": parameter_count(folded)}


def float32_noise(model, x, original, scale: float, seed: int) -> float:
    """How far the model's own outputs move (relative to their largest value) when its input
    moves by a few float32 ulps: the float32 rounding differences it amplifies."""
    rng = np.random.default_rng(seed)
    nudged = (x * (1.0 + NOISE_NUDGE * rng.standard_normal(x.shape))).astype(np.float32)
    moved = _outputs(model(nudged, training=False))
    return max(float(np.max(np.abs(a - b))) for a, b in zip(original, moved)) / scale


def layer_parameter_count(layer) -> int:
    """What the device's weight files must hold of a Keras layer: its weights, less
    Normalization's ``count`` (state recording how many samples ``adapt`` saw, which computes
    nothing), plus the mean and variance of a Normalization built with them as constants (Keras
    keeps those out of its weights, the device loads them like any other)."""
    count = sum(int(np.prod(v.shape)) for v in layer.weights
                if variable_name(v) != "count")
    if type(layer).__name__ == "Normalization" and not layer.weights:
        count += int(np.size(layer.mean)) + int(np.size(layer.variance))
    return int(count)


def parameter_count(model) -> int:
    return sum(layer_parameter_count(layer) for layer in _layers(model))


def converter_added_nodes(graph, model) -> set:
    """Weighted nodes that stand for no Keras parameters: layers the converter adds (the
    ImageNet normalisation run as a 1x1 layer, NASNet's channel padding)."""
    with_parameters = {layer.name for layer in _layers(model) if layer_parameter_count(layer)}
    return {node.name for node in graph.nodes
            if node.weights and not with_parameters.intersection(node.keras_layers)}


def _layers(model):
    for layer in model.layers:
        yield from _layers(layer) if hasattr(layer, "layers") else [layer]
