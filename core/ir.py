"""The IR: a graph of Forge-level nodes, each knowing the Keras tensor it must reproduce.

A node's ``op`` is the IR kind of a Forge op (core/forge_ops), or one of the frontend's
transitional kinds (:data:`TRANSITIONAL_KINDS`) that the passes remove.  Weights stay in Keras
layout until the weight writer lays them out for MPSCNN.

The graph indexes nodes by name and by the names they read, and keeps both indexes up to date
through every change a pass makes (to ``graph.nodes``, to a node's ``inputs`` or ``name``), so
:meth:`Graph.node` and :meth:`Graph.consumers` take constant time.
"""
from typing import Optional

# Kinds the frontend writes that Forge has no layer for; each passes its input's shape through.
TRANSITIONAL_KINDS = {
    "BatchNorm": "folded into the layer before it, or run as a 1x1 depthwise convolution",
    "Identity": "dropped (Flatten, Reshape, Dropout and the like do nothing on Forge)",
    "ChannelAffine": "a per-channel scale and shift (Normalization, LayerScale, a "
                     "LayerNormalization's gamma and beta): folded into the layer before it or "
                     "into the preprocessing, or run as a 1x1 depthwise convolution",
}


class _Inputs(list):
    """A node's input names; every change is reported to the graph holding the node."""

    def __init__(self, node, names):
        super().__init__(names)
        self._node = node

    def _changed(self, old):
        graph = self._node.graph
        if graph is not None:
            graph._reindex_inputs(self._node, old)


def _reporting(method, callback: str):
    """``method`` of list, followed by ``self.<callback>(the list before)``."""
    def changed(self, *args, **kwargs):
        old = list(self)
        result = method(self, *args, **kwargs)
        getattr(self, callback)(old)
        return result
    changed.__name__ = method.__name__
    return changed


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert",
              "pop", "remove", "clear", "sort", "reverse"):
    setattr(_Inputs, _name, _reporting(getattr(list, _name), "_changed"))


class Node:
    """One Forge-level layer (or graph function) of the IR.

    ``golden_source`` says how golden computes the values this node must reproduce (the
    manifest's ``reference``): ``{"kind": "keras", "layer": ..., "output_index": ...,
    "affine": ...}``, ``{"kind": "image"}``, ``{"kind": "preprocessing", "step": k}``,
    ``{"kind": "input_texture"}``, or None (no Keras counterpart).
    """

    def __init__(self, name: str, op: str, inputs, attrs: Optional[dict] = None,
                 weights: Optional[dict] = None, keras_layers: Optional[list] = None,
                 golden_source: Optional[dict] = None, shape: Optional[tuple] = None):
        self.graph = None
        self._name = name
        self.op = op
        self._inputs = _Inputs(self, inputs)
        self.attrs = {} if attrs is None else attrs
        self.weights = {} if weights is None else weights
        self.keras_layers = [] if keras_layers is None else keras_layers
        self.golden_source = golden_source
        self.shape = shape                 # (H, W, C) as Forge computes it

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str):
        old, self._name = self._name, value
        if self.graph is not None:
            self.graph._rename(self, old)

    @property
    def inputs(self) -> list:
        return self._inputs

    @inputs.setter
    def inputs(self, names):
        old = list(self._inputs)
        self._inputs = _Inputs(self, names)
        self._inputs._changed(old)

    def keras_label(self) -> str:
        return ", ".join(self.keras_layers) or self.name

    def __repr__(self):
        return f"Node({self.name!r}, {self.op}, inputs={list(self.inputs)})"


def keras_layer_source(layer_name: str, output_index: int = 0, affine=None) -> dict:
    """The golden source of a node reproducing a Keras layer's output (times a plus b)."""
    return {"kind": "keras", "layer": layer_name, "output_index": output_index, "affine": affine}


class _Nodes(list):
    """The graph's nodes in topological order; adding or removing one updates the indexes."""

    def __init__(self, graph, nodes):
        super().__init__()
        self._graph = graph
        for node in nodes:
            self.append(node)

    def _diff(self, old):
        now = {id(n): n for n in self}
        before = {id(n): n for n in old}
        for key, node in before.items():
            if key not in now:
                self._graph._detach(node)
        for key, node in now.items():
            if key not in before:
                self._graph._attach(node)

    def append(self, node):
        super().append(node)
        self._graph._attach(node)

    def insert(self, index, node):
        super().insert(index, node)
        self._graph._attach(node)

    def remove(self, node):
        super().remove(node)
        self._graph._detach(node)


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "extend", "pop", "clear",
              "sort", "reverse"):
    setattr(_Nodes, _name, _reporting(getattr(list, _name), "_diff"))


class Graph:
    """``output`` is one node name, or the names of all outputs (the primary first): a model
    with several outputs (a detector's heads) keeps them all, in the Keras model's order."""

    def __init__(self, name: str, nodes: list, input: str, output,
                 meta: Optional[dict] = None):
        self.name = name                  # Forge model name
        self._by_name = {}
        self._consumers = {}              # input name -> {id(node): node}, in insertion order
        self._nodes = _Nodes(self, nodes)
        self.input = input
        self.outputs = [output] if isinstance(output, str) else list(output)
        self.meta = {} if meta is None else meta

    @property
    def output(self) -> str:
        """The primary output: what Forge's ``Model(input:output:)`` is given."""
        return self.outputs[0]

    @output.setter
    def output(self, name: str):
        self.outputs[0] = name

    def is_output(self, name: str) -> bool:
        return name in self.outputs

    @property
    def nodes(self) -> list:
        """Topological order.  Changes to this list, to a node's ``inputs`` and to its ``name``
        keep the indexes up to date."""
        return self._nodes

    # -- index maintenance ------------------------------------------------------------------
    def _attach(self, node):
        if node.graph is not None and node.graph is not self:
            node.graph._detach(node)      # a node reports to one graph: the last one given it
        node.graph = self
        self._by_name[node.name] = node
        for name in set(node.inputs):
            self._consumers.setdefault(name, {})[id(node)] = node

    def _detach(self, node):
        if self._by_name.get(node.name) is node:
            del self._by_name[node.name]
        for name in set(node.inputs):
            self._consumers.get(name, {}).pop(id(node), None)
        node.graph = None

    def _reindex_inputs(self, node, old):
        for name in set(old) - set(node.inputs):
            self._consumers.get(name, {}).pop(id(node), None)
        for name in set(node.inputs) - set(old):
            self._consumers.setdefault(name, {})[id(node)] = node

    def _rename(self, node, old):
        if self._by_name.get(old) is node:
            del self._by_name[old]
        self._by_name[node.name] = node

    # -- queries ----------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        return self._by_name[name]

    def has_node(self, name: str) -> bool:
        return name in self._by_name

    def consumers(self, name: str) -> list:
        """The nodes reading ``name`` (each once, however often it reads it)."""
        return list(self._consumers.get(name, {}).values())

    # -- edits ------------------------------------------------------------------------------
    def replace_uses(self, old: str, new: str) -> None:
        for node in self.consumers(old):
            node.inputs = [new if i == old else i for i in node.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove(self, node: Node) -> None:
        """Drop a single-input node, wiring its consumers to its input."""
        self.nodes.remove(node)
        self.replace_uses(node.name, node.inputs[0])

    def insert_after(self, anchor: Node, new: Node) -> None:
        """Insert ``new`` reading ``anchor``, and move all of anchor's consumers onto it."""
        for node in self.consumers(anchor.name):
            if node is not new:
                node.inputs = [new.name if i == anchor.name else i for i in node.inputs]
        self.outputs = [new.name if o == anchor.name else o for o in self.outputs]
        new.inputs = [anchor.name]
        self.nodes.insert(self.nodes.index(anchor) + 1, new)

    def unique_name(self, base: str) -> str:
        if base not in self._by_name:
            return base
        i = 1
        while f"{base}_{i}" in self._by_name:
            i += 1
        return f"{base}_{i}"
