"""Passes registered by name, and the pipeline that runs them and checks the graph after each.

A pass is a function ``Graph -> Graph`` registered with ``@register_pass(name, after={...})``:
``after`` names the passes that must run before it (when both are in a pipeline), each with the
reason, so the order constraints are written next to the pass they constrain.  Keyword-only
parameters of the function are its options, set per pipeline with
:meth:`PassPipeline.set_options`.

After every pass :func:`validate_graph` checks the graph (names unique, every input produced
earlier, no dangling tensor, the output present with its shape kept, every shape as the op's
shape rule computes it) and a :class:`GraphValidationError` names the pass that broke it.
"""
import inspect
from dataclasses import dataclass, field
from typing import Callable

from core.errors import ConversionError
from core.forge_ops import ForgeOpError
from core.shapes import node_shape

_PASSES = {}


@dataclass(frozen=True)
class RegisteredPass:
    name: str
    function: Callable
    after: dict = field(default_factory=dict)      # pass -> why it must run earlier
    options: dict = field(default_factory=dict)    # option -> default


class PassPipelineError(ValueError):
    """A pipeline asked for an unknown pass or option, or runs passes out of order."""


class GraphValidationError(ConversionError):
    """A pass left a graph that is not a valid IR graph."""


def register_pass(name: str, *, after: dict = None):
    """Register ``function`` as pass ``name``; ``after``: {earlier pass: reason}."""
    def register(function):
        if name in _PASSES:
            raise PassPipelineError(f"pass {name!r} is registered twice")
        options = {p.name: p.default for p in inspect.signature(function).parameters.values()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY}
        _PASSES[name] = RegisteredPass(name, function, dict(after or {}), options)
        return function
    return register


def registered_pass(name: str) -> RegisteredPass:
    if name not in _PASSES:
        raise PassPipelineError(f"no pass named {name!r}; registered: {', '.join(_PASSES)}")
    return _PASSES[name]


class PassPipeline:
    """An ordered list of registered passes with their options."""

    def __init__(self, pass_names, name: str = "custom"):
        self.name = name
        self.passes = [registered_pass(p).name for p in pass_names]
        self._options = {}
        self.check_order()

    def remove_passes(self, names) -> "PassPipeline":
        for name in names:
            if name not in self.passes:
                raise PassPipelineError(f"pipeline {self.name!r} has no pass {name!r}")
            self.passes.remove(name)
            self._options.pop(name, None)
        return self

    def set_options(self, pass_name: str, **options) -> "PassPipeline":
        if pass_name not in self.passes:
            raise PassPipelineError(f"pipeline {self.name!r} has no pass {pass_name!r}")
        known = registered_pass(pass_name).options
        for option in options:
            if option not in known:
                raise PassPipelineError(f"pass {pass_name!r} has no option {option!r}; its "
                                        f"options: {', '.join(known) or 'none'}")
        self._options.setdefault(pass_name, {}).update(options)
        return self

    def options(self, pass_name: str) -> dict:
        return dict(registered_pass(pass_name).options, **self._options.get(pass_name, {}))

    def check_order(self) -> None:
        position = {name: i for i, name in enumerate(self.passes)}
        for name in self.passes:
            for earlier, reason in registered_pass(name).after.items():
                if earlier in position and position[earlier] > position[name]:
                    raise PassPipelineError(f"pipeline {self.name!r}: pass {name!r} must run "
                                            f"after {earlier!r}: {reason}")

    def run(self, graph):
        self.check_order()
        shapes = validate_graph(graph, "before the first pass")
        for name in self.passes:
            output_shapes = [shapes[output] for output in graph.outputs]
            graph = registered_pass(name).function(graph, **self._options.get(name, {}))
            shapes = validate_graph(graph, f"after pass {name!r}", output_shapes)
        return graph

    def __repr__(self):
        return f"PassPipeline({self.name!r}, {self.passes})"


def validate_graph(graph, stage: str, output_shapes: list = None) -> dict:
    """Check ``graph`` and return every node's (H, W, C); the error names the ``stage``
    (``after pass 'fold_batchnorm'``) and, with ``output_shapes``, the outputs' shapes before it."""
    def broken(problem):
        return GraphValidationError(f"graph {graph.name!r} is invalid {stage}: {problem}; this "
                                    "is a converter bug, please report it with the model")

    names = [node.name for node in graph.nodes]
    if len(set(names)) != len(names):
        raise broken(f"two nodes are named {sorted({n for n in names if names.count(n) > 1})}")
    shapes, consumed = {}, set()
    for node in graph.nodes:
        if not graph.has_node(node.name) or graph.node(node.name) is not node:
            raise broken(f"node {node.name!r} is missing from the name index")
        if not node.inputs and node.name != graph.input:
            raise broken(f"node {node.name!r} ({node.op}) has no inputs but is not the input")
        for name in node.inputs:
            if name not in shapes:
                raise broken(f"node {node.name!r} reads {name!r}, which no earlier node produces")
            if node not in graph.consumers(name):
                raise broken(f"node {node.name!r} is missing from the consumers of {name!r}")
            consumed.add(name)
        try:
            shape = node_shape(node, [shapes[i] for i in node.inputs])
        except (ForgeOpError, KeyError, IndexError, ValueError) as exc:
            raise broken(f"the shape of node {node.name!r} ({node.op}) cannot be computed: "
                         f"{exc}") from None
        if node.shape is not None and tuple(node.shape) != tuple(shape):
            raise broken(f"node {node.name!r} ({node.op}) records shape {tuple(node.shape)}, its "
                         f"op's rule gives {tuple(shape)}")
        if min(shape) <= 0:
            raise broken(f"node {node.name!r} ({node.op}) has an empty shape {tuple(shape)}")
        shapes[node.name] = shape
    if graph.input not in shapes or graph.nodes[0].name != graph.input:
        raise broken(f"the input {graph.input!r} is not the first node")
    for output in graph.outputs:
        if output not in shapes:
            raise broken(f"the output {output!r} is not a node of the graph")
    if len(set(graph.outputs)) != len(graph.outputs):
        raise broken(f"the outputs {graph.outputs} name a node twice")
    dangling = [n.name for n in graph.nodes
                if n.name not in consumed and not graph.is_output(n.name)]
    if dangling:
        raise broken(f"nodes {dangling[:5]} feed nothing (Forge cannot compile orphan tensors)")
    for output, before in zip(graph.outputs, output_shapes or []):
        if tuple(shapes[output]) != tuple(before):
            raise broken(f"the shape of output {output!r} changed from {tuple(before)} to "
                         f"{tuple(shapes[output])}")
    return shapes
