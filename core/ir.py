"""The IR: a graph of Forge-level nodes, each knowing the Keras tensor it must reproduce.

The frontend writes a few transitional kinds (BatchNorm, Identity, a not-yet-fused Activation);
the passes remove them, and ``check_forge_only`` proves that only kinds Forge has are left.
Weights stay in Keras layout until the weight writer lays them out for MPSCNN.
"""
from dataclasses import dataclass, field
from typing import Optional

from core.errors import ConversionError

# Kinds Forge has (Concatenate and Merge become Forge's Concatenate / Collect --> Add functions).
FORGE_OPS = {
    "Input", "Resize", "Custom", "Activation", "Convolution", "PointwiseConvolution",
    "DepthwiseConvolution", "Dense", "MaxPooling", "AveragePooling", "GlobalAveragePooling",
    "Softmax", "ZeroPadding", "SpaceToDepthX2", "Concatenate", "Merge",
}
WEIGHTED_OPS = {"Convolution", "PointwiseConvolution", "DepthwiseConvolution", "Dense"}


@dataclass
class Node:
    name: str
    op: str
    inputs: list
    attrs: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    keras_layers: list = field(default_factory=list)
    reference: Optional[dict] = None
    shape: Optional[tuple] = None          # (H, W, C) as Forge computes it

    def keras_label(self) -> str:
        return ", ".join(self.keras_layers) or self.name


def keras_reference(layer_name: str, output_index: int = 0, affine=None) -> dict:
    return {"kind": "keras", "layer": layer_name, "output_index": output_index, "affine": affine}


@dataclass
class Graph:
    name: str                     # Forge model name
    nodes: list                   # topological order
    input: str
    output: str
    meta: dict = field(default_factory=dict)

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def consumers(self, name: str) -> list:
        return [node for node in self.nodes if name in node.inputs]

    def replace_uses(self, old: str, new: str) -> None:
        for node in self.nodes:
            node.inputs = [new if i == old else i for i in node.inputs]
        if self.output == old:
            self.output = new

    def remove(self, node: Node) -> None:
        """Drop a single-input node, wiring its consumers to its input."""
        self.nodes.remove(node)
        self.replace_uses(node.name, node.inputs[0])

    def insert_after(self, anchor: Node, new: Node) -> None:
        """Insert ``new`` reading ``anchor``, and move all of anchor's consumers onto it."""
        for node in self.nodes:
            if node is not new:
                node.inputs = [new.name if i == anchor.name else i for i in node.inputs]
        if self.output == anchor.name:
            self.output = new.name
        new.inputs = [anchor.name]
        self.nodes.insert(self.nodes.index(anchor) + 1, new)

    def unique_name(self, base: str) -> str:
        taken = {node.name for node in self.nodes}
        if base not in taken:
            return base
        i = 1
        while f"{base}_{i}" in taken:
            i += 1
        return f"{base}_{i}"


def check_forge_only(graph: Graph) -> None:
    for node in graph.nodes:
        if node.op not in FORGE_OPS:
            raise ConversionError(
                f"layer {node.keras_label()!r}: IR op {node.op} is still present after the passes; "
                "this layer pattern cannot run on Forge")
