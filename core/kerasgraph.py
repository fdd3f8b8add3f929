"""A Keras functional model as a flat list of layer calls in topological order, for Keras 2 and 3.

Everything that walks a Keras graph (the frontend, the seeded initialiser) reads this one view, so
the differences between Keras 2 and Keras 3 node objects live here only.
"""
from dataclasses import dataclass

import tensorflow as tf

from core.errors import ConversionError
from core.kerasenv import keras


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
            if isinstance(layer, keras.Model):
                raise ConversionError(
                    f"layer {layer.name!r} is a nested model ({type(layer).__name__}); flatten it "
                    "into one functional model before converting")
            inputs = [_history_id(t) for t in _node_inputs(node)]
            n_outputs = len(tf.nest.flatten(node.outputs))
            outputs = [tensor_id(layer.name, i) for i in range(n_outputs)]
            calls.append(LayerCall(layer, inputs, outputs))
    return calls


def output_ids(model) -> list:
    return [_history_id(t) for t in model.outputs]


def input_ids(model) -> list:
    return [_history_id(t) for t in model.inputs]
