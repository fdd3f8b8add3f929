"""Forge's shapes on the IR: each node's (H, W, C) by its op's shape rule (core/forge_ops)."""
from core.forge_ops import op_for
from core.ir import TRANSITIONAL_KINDS


def node_shape(node, input_shapes: list) -> tuple:
    """The (H, W, C) Forge computes for ``node`` from its inputs' (H, W, C)."""
    if node.op in TRANSITIONAL_KINDS:
        return tuple(input_shapes[0])
    return tuple(op_for(node.op).ir_shape(node, input_shapes))


def infer_shapes(graph):
    """Set every node's ``shape``, in topological order."""
    for node in graph.nodes:
        node.shape = node_shape(node, [graph.node(i).shape for i in node.inputs])
    return graph
