"""Every op of the registry, both ways: the converter's Swift for a small graph using the op,
read back by the reference device's parser, is the same graph (kind, arguments, shapes, names,
inputs); and the executor runs it.  Parametrised over the registry: a new op fails here until it
has an example below."""
import numpy as np
import pytest

from core.forge_ops import (DataShape, custom_kernels, neuron_kinds, op_for, op_for_swift,
                            registered_ops)
from core.ir import Graph, Node
from core.manifest import forge_tensor_names
from core.shapes import infer_shapes
from core.swift import builder_source
from core.weights import write_weights
from device_pull.reference_device import ReferenceDevice, parse_builder_source

RNG = np.random.default_rng(7)
SIZE = 8                                     # the example image: 8x8 RGB


def weights(*shape):
    return RNG.normal(0, 0.3, shape).astype(np.float32)


def conv(name, src, cin, cout, kernel=(1, 1), stride=(1, 1), padding="same", **attrs):
    return Node(name, "Convolution", [src], dict(kernel=kernel, stride=stride, padding=padding,
                                                 use_bias=True, **attrs),
                weights={"kernel": weights(*kernel, cin, cout), "bias": weights(cout)})


def neuron_node(name, src, neuron):
    return Node(name, "Activation", [src], {"neuron": neuron})


# IR graphs read ``resize`` (8x8x3, after ``image``); the last node is the output.
IR_EXAMPLES = {
    "Input": lambda: [],
    "Resize": lambda: [],
    "Convolution": lambda: [conv("conv", "resize", 3, 8, kernel=(1, 3), stride=(2, 1),
                                 padding="valid", neuron={"type": "relu", "a": 0.1})],
    "PointwiseConvolution": lambda: [Node(
        "pw", "PointwiseConvolution", ["resize"],
        {"kernel": (1, 1), "stride": (1, 1), "padding": "same", "use_bias": False,
         "neuron": {"type": "linear", "a": 0.5, "b": -1.0}}, weights={"kernel": weights(1, 1, 3, 4)})],
    "DepthwiseConvolution": lambda: [Node(
        "dw", "DepthwiseConvolution", ["resize"],
        {"kernel": (3, 3), "stride": (2, 2), "padding": "same", "use_bias": True},
        weights={"kernel": weights(3, 3, 3, 1), "bias": weights(3)})],
    "Dense": lambda: [Node("fc", "Dense", ["resize"], {"use_bias": True},
                           weights={"kernel": weights(SIZE * SIZE * 3, 5), "bias": weights(5)})],
    "MaxPooling": lambda: [Node("mp", "MaxPooling", ["resize"],
                                {"kernel": (2, 2), "stride": (2, 2), "padding": "same"})],
    "AveragePooling": lambda: [Node("ap", "AveragePooling", ["resize"],
                                    {"kernel": (3, 3), "stride": (1, 1), "padding": "valid"})],
    "GlobalAveragePooling": lambda: [Node("gap", "GlobalAveragePooling", ["resize"])],
    "Softmax": lambda: [Node("sm", "Softmax", ["resize"])],
    "Activation": lambda: [neuron_node("act", "resize", {"type": "tanh", "a": 1.5, "b": 0.5})],
    "ZeroPadding": lambda: [Node("pad", "ZeroPadding", ["resize"], {"tblr": (1, 0, 2, 1)})],
    "Custom": lambda: [Node("s2d", "Custom", ["resize"],
                            {"kernel_class": "SpaceToDepthKernel", "args": {"blockSize": 2},
                             "out_shape": (4, 4, 12)})],
    "Concatenate": lambda: [conv("a", "resize", 3, 4), conv("b", "resize", 3, 6),
                            Node("cat", "Concatenate", ["a", "b"])],
    "CollectMerge": lambda: [conv("a", "resize", 3, 8), conv("b", "resize", 3, 8),
                             Node("add", "CollectMerge", ["a", "b"], {"operation": "Maximum"})],
}
# Ops that only appear inside another op's Swift, and the IR example that emits them.
EMITTED_WITHIN = {"Collect": "CollectMerge", "MergeOperation": "CollectMerge"}
# Ops the converter never emits: (layers before it, Swift-level arguments).
SWIFT_ONLY_EXAMPLES = {
    "SpaceToDepthX2": ([conv("c4", "resize", 3, 4)], {"name": "s2d"}),
}


def ir_graph(nodes) -> Graph:
    image = Node("image", "Input", [], {"height": SIZE, "width": SIZE, "channels": 3})
    resize = Node("resize", "Resize", ["image"], {"height": SIZE, "width": SIZE})
    all_nodes = [image, resize] + list(nodes)
    return infer_shapes(Graph("net", all_nodes, input="image", output=all_nodes[-1].name))


def emit_and_parse(graph, tmp_path, extra_chain: str = ""):
    """The builder the converter writes for ``graph`` (plus ``--> extra_chain`` on its output),
    its weight files, and the program the reference device reads back."""
    source = builder_source(graph, "NetBuilder", ["round trip"])
    if extra_chain:
        source = source.replace(f"      model = Model(input: input, output: {graph.output})",
                                f"      let extra = {graph.output} --> {extra_chain}\n"
                                "      model = Model(input: input, output: extra)")
    write_weights(graph, tmp_path)
    path = tmp_path / "NetBuilder.swift"
    path.write_text(source)
    program = parse_builder_source(source, path=str(path))
    return path, program


def run_device(path, params, expected_output_hwc):
    device = ReferenceDevice(path, params)
    image = np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8)
    result = device.forward(image, dump="all")
    assert result["output"].shape == tuple(expected_output_hwc)
    assert np.isfinite(result["output"].astype(np.float32)).all()
    return device


def check_same_graph(graph, program):
    """Every Forge tensor the converter means is parsed back with its kind, arguments, shape,
    name and inputs."""
    tensors = {t.short_id: t for t in program.model.complete_graph()}
    names = forge_tensor_names(graph)
    for node in graph.nodes:
        op = op_for(node.op)
        for meant in op.forge_tensors(node, names):
            parsed = tensors.get(meant.name)
            assert parsed is not None, f"{meant.name} missing; parsed: {sorted(tensors)}"
            assert parsed.shape == meant.shape, (meant.name, parsed.shape, meant.shape)
            assert [i.short_id for i in parsed.previous] == list(meant.inputs), meant.name
            assert (parsed.layer is not None) == meant.has_layer, meant.name
            if parsed.layer is not None:
                assert parsed.layer.type_name == meant.type_name
                if meant.is_node_output:
                    assert parsed.layer.arguments == op.forge_arguments(node), meant.name
            else:
                assert parsed.type_name == meant.type_name
    return tensors


def example_ops():
    return [pytest.param(op, id=type(op).__name__) for op in registered_ops()]


@pytest.mark.parametrize("op", example_ops())
def test_every_registered_op_round_trips(op, tmp_path):
    name = type(op).__name__
    if name in SWIFT_ONLY_EXAMPLES:
        check_swift_only_op(op, *SWIFT_ONLY_EXAMPLES[name], tmp_path=tmp_path)
        return
    kind = op.kind or EMITTED_WITHIN.get(name)
    assert kind in IR_EXAMPLES, (f"op {name} has no round-trip example: add one to IR_EXAMPLES, "
                                 "EMITTED_WITHIN or SWIFT_ONLY_EXAMPLES in this file")
    graph = ir_graph(IR_EXAMPLES[kind]())
    path, program = emit_and_parse(graph, tmp_path)
    tensors = check_same_graph(graph, program)
    if op.signatures:                        # an IR composite (CollectMerge) has none of its own
        assert op in {t.op for t in tensors.values()}, f"the example never makes a {name}"
    run_device(path, tmp_path, graph.node(graph.output).shape)


def check_swift_only_op(op, before, arguments, tmp_path):
    graph = ir_graph(before)
    call = op.swift_call(op.signature.complete(arguments))
    path, program = emit_and_parse(graph, tmp_path, extra_chain=call)
    tensors = check_same_graph(graph, program)
    parsed = tensors[arguments["name"]]
    assert parsed.layer.op is op
    assert parsed.layer.arguments == op.signature.complete(arguments)
    before_shape = DataShape.from_hwc(graph.node(graph.output).shape)
    assert parsed.shape == op.output_shape(parsed.layer.arguments, [before_shape])
    run_device(path, tmp_path, parsed.shape.hwc)


KERNEL_ARGUMENTS = {
    "TransposeChannelsKernel": {"featureChannels": 3, "permute": [2, 0, 1]},
    "SubtractMeanColor": {"red": 10.5, "green": 20.0, "blue": 30.25, "scale": 255.0},
    "RGB2BGR": {},
    "SpaceToDepthKernel": {"blockSize": 2},
    "DarknetReorgKernel": {"stride": 2},
    "RGB2Gray": {},
    "GELUKernel": {},
    "LayerNormKernel": {"epsilon": 0.001},
    "BroadcastKernel": {},
    "CropKernel": {"top": 1, "left": 2},
    "UpsampleNearestKernel": {"scaleX": 3, "scaleY": 2},
    "ChannelSliceKernel": {"firstChannel": 1, "channels": 2},
}
# Kernels whose output size is not the input's: the size the layer declares.
DECLARED_SHAPES = {"BroadcastKernel": (SIZE, SIZE, 4), "CropKernel": (SIZE - 3, SIZE - 2, 4),
                   "RGB2Gray": None}


@pytest.mark.parametrize("kernel", [pytest.param(k, id=k.swift_class) for k in custom_kernels()])
def test_every_custom_kernel_round_trips(kernel, tmp_path):
    assert kernel.swift_class in KERNEL_ARGUMENTS, (
        f"kernel {kernel.swift_class} has no round-trip example: add it to KERNEL_ARGUMENTS")
    arguments = KERNEL_ARGUMENTS[kernel.swift_class]
    channels = 3 if kernel.forge_builtin else 4
    attrs = {"kernel_class": kernel.swift_class, "args": arguments}
    if kernel.swift_class in DECLARED_SHAPES:
        if DECLARED_SHAPES[kernel.swift_class]:
            attrs["out_shape"] = DECLARED_SHAPES[kernel.swift_class]
        else:
            attrs["channels"] = 1
    elif not kernel.forge_builtin:
        attrs["out_shape"] = kernel.output_shape(SIZE, SIZE, channels, arguments)
    source = "c"
    if kernel.swift_class == "BroadcastKernel":       # a 1x1 image to repeat
        nodes = [conv("c0", "resize", 3, channels), Node("c", "GlobalAveragePooling", ["c0"])]
    else:
        nodes = [conv("c", "resize", 3, channels)]
    nodes.append(Node("k", "Custom", [source], attrs))
    graph = ir_graph(nodes)
    path, program = emit_and_parse(graph, tmp_path)
    check_same_graph(graph, program)
    run_device(path, tmp_path, graph.node("k").shape)


@pytest.mark.parametrize("kind", [pytest.param(k, id=k.swift_class) for k in neuron_kinds()])
def test_every_neuron_round_trips(kind, tmp_path):
    neuron = {"type": kind.ir_type, **{p: 0.25 + i for i, p in enumerate(kind.parameters)}}
    graph = ir_graph([neuron_node("act", "resize", neuron)])
    path, program = emit_and_parse(graph, tmp_path)
    check_same_graph(graph, program)
    run_device(path, tmp_path, graph.node("act").shape)


def test_parse_only_ops_are_known_to_the_parser():
    """What the converter never emits (SpaceToDepthX2) is still read back by the parser."""
    assert op_for_swift("SpaceToDepthX2") is not None
    assert op_for_swift("SpaceToDepthX2").kind is None
