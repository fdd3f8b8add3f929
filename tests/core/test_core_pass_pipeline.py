"""The pass pipeline: passes registered by name, order constraints, options, and the graph check
after every pass that names the pass that broke it."""
import numpy as np
import pytest

from core import passes
from core.ir import Graph, Node
from core.pass_pipeline import (GraphValidationError, PassPipeline, PassPipelineError,
                                register_pass, validate_graph)

RNG = np.random.default_rng(0)


def small_graph():
    """image --> conv (3x3, same) --> relu (the output)."""
    image = Node("image", "Input", [], {"height": 8, "width": 8, "channels": 3})
    conv = Node("conv", "Convolution", ["image"],
                {"kernel": (3, 3), "stride": (1, 1), "padding": "same", "use_bias": True},
                weights={"kernel": RNG.normal(size=(3, 3, 3, 4)).astype(np.float32),
                         "bias": np.zeros(4, np.float32)})
    relu = Node("relu", "Activation", ["conv"], {"neuron": {"type": "relu", "a": 0.0}})
    return Graph("net", [image, conv, relu], input="image", output="relu")


@register_pass("test_drop_without_rewiring")
def drop_without_rewiring(graph):
    """Deliberately broken: removes a node but leaves its consumer reading it."""
    graph.nodes.remove(graph.node("conv"))
    return graph


@register_pass("test_edit_without_shapes")
def edit_without_shapes(graph):
    """Deliberately broken: makes the conv 'valid' after shapes were recorded."""
    passes.infer_shapes(graph)
    graph.node("conv").attrs["padding"] = "valid"
    return graph


@register_pass("test_orphan")
def orphan(graph):
    """Deliberately broken: adds a layer nothing reads."""
    graph.nodes.append(Node("lost", "Softmax", ["conv"]))
    return graph


@pytest.mark.parametrize("broken,problem", [
    ("test_drop_without_rewiring", "'relu' reads 'conv', which no earlier node produces"),
    ("test_edit_without_shapes", r"'conv' \(Convolution\) records shape \(8, 8, 4\), its op's "
                                 r"rule gives \(6, 6, 4\)"),
    ("test_orphan", r"\['lost'\] feed nothing"),
])
def test_a_pass_that_breaks_the_graph_is_named(broken, problem):
    pipeline = PassPipeline(["drop_identity", broken, "fuse_activations"])
    with pytest.raises(GraphValidationError, match=f"graph 'net' is invalid after pass "
                                                   f"'{broken}': .*{problem}"):
        pipeline.run(small_graph())


def test_the_default_pipeline_keeps_a_valid_graph_valid():
    graph = small_graph()
    graph.meta["family"] = "tf"
    graph = passes.default_pipeline().run(graph)
    assert [n.op for n in graph.nodes] == ["Input", "Resize", "Activation", "Convolution"]
    assert graph.node("conv").attrs["neuron"] == {"type": "relu", "a": 0.0}


def test_keep_activations_is_an_option_of_fuse_activations():
    pipeline = passes.default_pipeline().set_options("fuse_activations", keep_activations=True)
    graph = small_graph()
    graph.meta["family"] = "none"
    graph = pipeline.run(graph)
    assert [n.name for n in graph.nodes] == ["image", "resize", "conv", "relu"]


def test_unknown_passes_and_options_are_refused():
    pipeline = passes.default_pipeline()
    with pytest.raises(PassPipelineError, match="no option 'fuse'; its options: keep_activations"):
        pipeline.set_options("fuse_activations", fuse=False)
    pipeline.remove_passes(["fuse_activations"])
    with pytest.raises(PassPipelineError, match="has no pass 'fuse_activations'"):
        pipeline.set_options("fuse_activations", keep_activations=True)
    with pytest.raises(PassPipelineError, match="no pass named 'fold_everything'"):
        PassPipeline(["fold_everything"])


def test_order_constraints_name_both_passes_and_the_reason():
    with pytest.raises(PassPipelineError, match="'fuse_activations' must run after "
                                                "'fold_batchnorm': conv -> BatchNorm"):
        PassPipeline(["fuse_activations", "fold_batchnorm"])
    PassPipeline(["fuse_activations"])          # constraints bind only passes that are present


def test_a_pass_registered_twice_is_refused():
    with pytest.raises(PassPipelineError, match="registered twice"):
        register_pass("fold_batchnorm")(lambda graph: graph)


def test_validation_checks_names_and_the_output():
    graph = small_graph()
    graph.node("relu").name = "conv"
    with pytest.raises(GraphValidationError, match=r"two nodes are named \['conv'\]"):
        validate_graph(graph, "in the test")
    graph = small_graph()
    graph.output = "missing"
    with pytest.raises(GraphValidationError, match="the output 'missing' is not a node"):
        validate_graph(graph, "in the test")
    graph = small_graph()
    with pytest.raises(GraphValidationError,
                       match=rf"shape of output '{graph.output}' changed from \(4, 4, 4\)"):
        validate_graph(graph, "in the test", output_shapes=[(4, 4, 4)])
