"""A Keras functional model as a flat list of layer calls in topological order, for Keras 2 and 3.

Everything that walks a Keras graph (the frontend, the seeded initialiser) reads this one view, so
the differences between Keras 2 and Keras 3 node objects live here only.

:func:`canonical_model` first rewrites a model into the form this view takes: one level of
layers.  Nested models (``Sequential`` or functional sub-models, as ConvNeXt's stem) are inlined,
and arithmetic on tensors written in the model's Python code (Keras 3 operations such as
``x + 3.0``, Keras 2 ``TFOpLambda`` layers) becomes the equivalent layer (``Add``, ``Multiply``,
``Subtract``, ``Rescaling``) named as the operation was, so every tensor has a layer whose output
golden capture can record.
"""
from dataclasses import dataclass

import tensorflow as tf

from core.errors import ConversionError
from core.kerasenv import keras

# Layers that pass their input through unchanged at inference (training-time regularisers).
INFERENCE_IDENTITIES = frozenset({"Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
                                  "AlphaDropout", "ActivityRegularization", "StochasticDepth"})


@dataclass
class LayerCall:
    """One call of a layer: the tensors it reads and writes, named ``layer`` or ``layer:index``."""

    layer: object
    inputs: list
    outputs: list

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def class_name(self) -> str:
        return type(self.layer).__name__


def tensor_id(layer_name: str, tensor_index: int) -> str:
    return layer_name if tensor_index == 0 else f"{layer_name}:{tensor_index}"


def _node_layer(node):
    return getattr(node, "operation", None) or getattr(node, "layer", None)


def _node_inputs(node):
    if hasattr(node, "keras_inputs"):  # Keras 2: input_tensors may be a bare tensor
        return list(node.keras_inputs)
    return list(node.input_tensors)


def _history_id(tensor) -> str:
    history = tensor._keras_history
    layer = history[0]
    return tensor_id(layer.name, history[2])


def layer_calls(model) -> list:
    """The model's layer calls, inputs first; refuses shared layers and nested models."""
    if not hasattr(model, "_nodes_by_depth"):
        raise ConversionError(
            f"model {model.name!r} is a {type(model).__name__}, not a functional model; "
            "rebuild it with the functional API (keras.Model(inputs, outputs)) before converting")
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    seen = set()
    calls = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        nodes = sorted(model._nodes_by_depth[depth],
                       key=lambda node: order.get(_node_layer(node).name, -1))
        for node in nodes:
            layer = _node_layer(node)
            if layer.name in seen:
                raise ConversionError(
                    f"layer {layer.name!r} ({type(layer).__name__}) is called more than once; "
                    "Forge layers own their weights per call: give each call its own layer")
            seen.add(layer.name)
            if isinstance(layer, keras.Model) or _operator_of(layer) is not None:
                raise ConversionError(
                    f"layer {layer.name!r} ({type(layer).__name__}) is a nested model or tensor "
                    "arithmetic; pass the model through core.kerasgraph.canonical_model first "
                    "(keras2metal and the zoo do)")
            inputs = [_history_id(t) for t in _node_inputs(node)]
            n_outputs = len(tf.nest.flatten(node.outputs))
            outputs = [tensor_id(layer.name, i) for i in range(n_outputs)]
            calls.append(LayerCall(layer, inputs, outputs))
    return calls


# -- canonical form ------------------------------------------------------------------------

_OPERATORS = {"add": "add", "__operators__.add": "add", "math.add": "add",
              "subtract": "subtract", "__operators__.sub": "subtract", "math.subtract": "subtract",
              "multiply": "multiply", "math.multiply": "multiply",
              "true_divide": "divide", "divide": "divide", "math.truediv": "divide",
              "math.divide": "divide"}


def _operation(node):
    return getattr(node, "operation", None) or getattr(node, "layer", None)


def _operator_of(operation):
    """'add'/'subtract'/'multiply'/'divide' for tensor arithmetic written in Python, else None."""
    if isinstance(operation, keras.layers.Layer):
        symbol = getattr(operation, "symbol", None)          # Keras 2 TFOpLambda
        return _OPERATORS.get(symbol) if type(operation).__name__ == "TFOpLambda" else None
    name = type(operation).__name__                          # Keras 3 keras.ops.numpy.*
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return _OPERATORS.get(snake, "unknown")


def _call_arguments(node) -> list:
    """The positional and keyword values of a node's call, tensors and constants, in order."""
    if hasattr(node, "arguments"):                          # Keras 3
        args, kwargs = node.arguments.args, node.arguments.kwargs
    else:                                                   # Keras 2
        args, kwargs = node.call_args, node.call_kwargs
    return list(args) + [v for k, v in (kwargs or {}).items() if k != "name"]


def needs_canonical_form(model) -> bool:
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            operation = _operation(node)
            if isinstance(operation, keras.Model) or _operator_of(operation) is not None:
                return True
    return False


def _clone(layer):
    """A fresh copy of ``layer`` (same class, config and name); weights are set once it is built."""
    return type(layer).from_config(layer.get_config())


def _arithmetic_layer(operation, node, name: str):
    """(layer, its inputs' positions among the call's tensors) for ``a + b``, ``x * 3`` etc."""
    operator = _operator_of(operation)
    values = _call_arguments(node)
    is_tensor = [hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, (int, float))
                 for v in values]
    tensors = [k for k, t in enumerate(is_tensor) if t]
    constants = [v for v, t in zip(values, is_tensor) if not t]
    layers = keras.layers
    if operator in ("add", "subtract", "multiply") and len(tensors) == 2 and not constants:
        cls = {"add": layers.Add, "subtract": layers.Subtract, "multiply": layers.Multiply}[operator]
        return cls(name=name)
    if operator != "unknown" and len(tensors) == 1 and len(constants) == 1 \
            and isinstance(constants[0], (int, float)):
        c, first = float(constants[0]), tensors[0] == 0
        scale, offset = {"add": (1.0, c), "multiply": (c, 0.0),
                         "subtract": (1.0, -c) if first else (-1.0, c),
                         "divide": (1.0 / c, 0.0) if first else (None, None)}[operator]
        if scale is not None:
            return layers.Rescaling(scale=scale, offset=offset, name=name)
    raise ConversionError(
        f"operation {name!r} ({type(operation).__name__}) in the model's code has no Forge "
        "equivalent; write it with Keras layers (Add, Multiply, Rescaling, ...) instead")


def _rebuild(model, inputs: list, built: list) -> list:
    """Call copies of ``model``'s layers on ``inputs`` (one tensor per model input); returns the
    output tensors.  ``built`` collects (copy, original) to copy the weights into."""
    if isinstance(model, keras.Sequential):
        x = inputs[0]
        for layer in model.layers:
            if type(layer).__name__ != "InputLayer":
                x = _rebuild_call(layer, None, [x], built)[0]
        return [x]
    tensors = dict(zip(input_ids(model), inputs))
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in sorted(model._nodes_by_depth[depth],
                           key=lambda n: order.get(_operation(n).name, -1)):
            operation = _operation(node)
            if type(operation).__name__ == "InputLayer":
                continue
            outputs = _rebuild_call(operation, node, [tensors[_history_id(t)]
                                                      for t in _node_inputs(node)], built)
            for i, tensor in enumerate(outputs):
                tensors[tensor_id(operation.name, i)] = tensor
    return [tensors[i] for i in output_ids(model)]


def _rebuild_call(operation, node, inputs: list, built: list) -> list:
    if isinstance(operation, keras.Model):
        return _rebuild(operation, inputs, built)
    if node is not None and _operator_of(operation) is not None:
        layer, original = _arithmetic_layer(operation, node, operation.name), None
    else:
        layer, original = _clone(operation), operation
    out = layer(inputs[0] if len(inputs) == 1 else inputs)
    if original is not None:
        built.append((layer, original))
    return list(out) if isinstance(out, (list, tuple)) else [out]


def canonical_model(model):
    """``model`` with nested models inlined and tensor arithmetic made layers (module doc); the
    model itself when it has neither.  Same layer names and weights, same outputs."""
    if not hasattr(model, "_nodes_by_depth") or not needs_canonical_form(model):
        return model
    inputs = [keras.Input(shape=tuple(t.shape[1:]), name=_history_id(t).split(":")[0])
              for t in model.inputs]
    built = []
    outputs = _rebuild(model, inputs, built)
    rebuilt = keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)
    for layer, original in built:
        layer.set_weights(original.get_weights())
    return rebuilt


def output_ids(model) -> list:
    return [_history_id(t) for t in model.outputs]


def input_ids(model) -> list:
    return [_history_id(t) for t in model.inputs]
