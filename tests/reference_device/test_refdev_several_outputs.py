"""A model with several outputs, both ways: the builder marks every output
``imageIsTemporary = false`` and lists them in ``outputs``; the reference device reads that back,
keeps and dumps every output, and refuses what the fork could not run (an orphan temporary
tensor, an output whose image is temporary)."""
import numpy as np
import pytest
from test_refdev_registry_roundtrip import SIZE, conv, emit_and_parse, weights

from core.ir import Graph, Node
from core.shapes import infer_shapes
from core.swift import builder_source
from device_pull.reference_device import ReferenceDevice, ReferenceDeviceError, \
    parse_builder_source


def two_heads() -> Graph:
    """image -> resize -> trunk -> (head_a 8x8x6, pool -> head_b 4x4x6): head_a is primary."""
    image = Node("image", "Input", [], {"height": SIZE, "width": SIZE, "channels": 3})
    resize = Node("resize", "Resize", ["image"], {"height": SIZE, "width": SIZE})
    trunk = conv("trunk", "resize", 3, 8, neuron={"type": "relu", "a": 0.1})
    pool = Node("pool", "MaxPooling", ["trunk"], {"kernel": (2, 2), "stride": (2, 2),
                                                  "padding": "valid"})
    head_a = conv("head_a", "trunk", 8, 6)
    head_b = conv("head_b", "pool", 8, 6)
    head_a.weights["kernel"] = weights(1, 1, 8, 6)
    return infer_shapes(Graph("net", [image, resize, trunk, pool, head_b, head_a],
                              input="image", output=["head_a", "head_b"]))


def test_builder_marks_and_lists_every_output(tmp_path):
    graph = two_heads()
    source = builder_source(graph, "NetBuilder", ["two heads"])
    assert "  private(set) public var outputs: [Tensor]\n" in source
    assert "      head_a.imageIsTemporary = false\n      head_b.imageIsTemporary = false\n" \
           "      outputs = [head_a, head_b]\n      model = Model(input: input, output: head_a)" \
           in source
    path, program = emit_and_parse(graph, tmp_path)
    assert [t.short_id for t in program.model.outputs] == ["head_a", "head_b"]
    assert program.model.output.short_id == "head_a"
    device = ReferenceDevice(path, tmp_path)
    image = np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8)
    result = device.forward(image, dump="output")
    assert {k: v.shape for k, v in result["outputs"].items()} == {"head_a": (8, 8, 6),
                                                                  "head_b": (4, 4, 6)}
    assert sorted(result["dumps"]) == ["net-head_a.floats", "net-head_b.floats"]
    every = device.forward(image, dump="all")
    np.testing.assert_array_equal(every["outputs"]["head_b"], result["outputs"]["head_b"])
    np.testing.assert_array_equal(every["dumps"]["net-head_b.floats"][0][0],
                                  result["outputs"]["head_b"].astype(np.float32))


def test_one_output_builders_stay_as_they_were():
    graph = two_heads()
    graph.outputs = ["head_a"]
    graph.nodes.remove(graph.node("head_b"))
    graph.nodes.remove(graph.node("pool"))
    source = builder_source(graph, "NetBuilder", ["one head"])
    assert "outputs" not in source and "imageIsTemporary" not in source


def parse_edited(graph, drop_line: str):
    source = builder_source(graph, "NetBuilder", ["edited"])
    assert drop_line in source
    return parse_builder_source(source.replace(drop_line, ""))


def forge_order(graph) -> list:
    source = builder_source(graph, "NetBuilder", ["order"])
    return [t.short_id for t in parse_builder_source(source).model.complete_graph()]


def test_an_output_left_temporary_is_refused():
    """Forge gives real images to marked tensors and to the last tensor of its order only
    (Model.createComputeForAllLayers), and outputImage reads the model output's real image."""
    graph = two_heads()
    last = forge_order(graph)[-1]
    other = next(name for name in ("head_a", "head_b") if name != last)
    graph.outputs = [other, last]
    program = parse_edited(graph, f"      {other}.imageIsTemporary = false\n")
    with pytest.raises(ReferenceDeviceError, match=rf"Model output '{other}'.*not the last "
                                                   rf"tensor.*`{other}.imageIsTemporary = false`"):
        program.model.complete_graph()
    graph.outputs = [last, other]
    program = parse_edited(graph, f"      {other}.imageIsTemporary = false\n")
    with pytest.raises(ReferenceDeviceError, match=rf"output '{other}'.*keeps a temporary image, "
                                                   "so model.image"):
        program.model.complete_graph()


def test_a_head_nothing_reads_must_keep_its_image():
    graph = two_heads()
    last = forge_order(graph)[-1]
    other = next(name for name in ("head_a", "head_b") if name != last)
    graph.outputs = [last, other]
    program = parse_edited(graph, f"      outputs = [{last}, {other}]\n")
    program.model.complete_graph()           # marked, so not an orphan, though not listed
    source = builder_source(graph, "NetBuilder", ["orphan"])
    for line in (f"      outputs = [{last}, {other}]\n",
                 f"      {other}.imageIsTemporary = false\n"):
        source = source.replace(line, "")
    with pytest.raises(ReferenceDeviceError, match=rf"tensor '{other}'.*feeds nothing and keeps "
                                                   "a temporary image: an orphan tensor"):
        parse_builder_source(source).model.complete_graph()


def test_image_is_temporary_is_checked_when_parsed():
    source = builder_source(two_heads(), "NetBuilder", ["typed"])
    bad = source.replace("head_b.imageIsTemporary = false", "head_b.imageIsTemporary = 0")
    with pytest.raises(ReferenceDeviceError, match="imageIsTemporary must be assigned true or "
                                                   "false"):
        parse_builder_source(bad)
    bad = source.replace("outputs = [head_a, head_b]", "outputs = [head_a, 3]")
    with pytest.raises(ReferenceDeviceError, match="`outputs` must be assigned an array of "
                                                   "tensors"):
        parse_builder_source(bad)
