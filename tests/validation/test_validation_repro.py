"""``--repro DIR``: a one-layer reproducer of the first diverging layer that shows the same
divergence on the reference device, with an XCTest written only in the fork's API."""
import json

import numpy as np
import pytest

from validation_helpers import DEFAULT_IMAGES

FEW_IMAGES = sorted(DEFAULT_IMAGES.glob("*_00.png"))[:3]

# What the reproducer's Swift may call: the fork's API (Forge/Forge/Model.swift evaluate and
# compile, MPSImage+Floats.swift's init(device:numberOfImages:width:height:featureChannels:
# array:count:) and toFloatArray(), Tensor.swift's Input, Parameters.swift's
# ParameterLoaderBundle, the layer and neuron initialisers), Metal/Foundation and XCTest.
ALLOWED_CALLS = {
    "MTLCreateSystemDefaultDevice", "makeCommandQueue", "MPSImage", "evaluate", "toFloatArray",
    "compile", "Input", "Model", "ParameterLoaderBundle", "Bundle", "url", "Data", "Array",
    "withUnsafeBytes", "bindMemory", "max", "squareRoot", "print", "floats", "type",
    "XCTAssertTrue", "XCTAssertEqual", "XCTAssertLessThanOrEqual", "ShapesNetReproBuilder",
    "Convolution", "PointwiseConvolution", "DepthwiseConvolution", "Dense", "Activation",
    "Softmax", "MPSCNNNeuronReLU", "MPSCNNNeuronLinear",
}


def _calls(source: str) -> set:
    import tree_sitter_swift
    from tree_sitter import Language, Parser

    tree = Parser(Language(tree_sitter_swift.language())).parse(source.encode())
    assert not tree.root_node.has_error, "the Swift does not parse"
    names, stack = set(), [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "call_expression" and node.children[-1].text.decode().startswith("("):
            callee = node.children[0]              # a call, not a subscript: f(...), a.f(...)
            if callee.type in ("simple_identifier", "navigation_expression"):
                names.add(callee.text.decode().split(".")[-1].strip())
        stack.extend(node.children)
    return names


# shift: a 2 % bias error, most of whose local error is a per-channel offset — the reproducer
# and its XCTest check the offset against its own budget too
@pytest.mark.parametrize("fault", ["transpose:block1_pw", "bias:mix_a", "shift:stem_conv"])
def test_reproducer_of_an_injected_fault_reproduces_it(fault, run_suite, tmp_path):
    repro = tmp_path / "repro"
    run = run_suite("--model", "default", "--images", *FEW_IMAGES, "--fault", fault,
                    "--repro", repro, "--workers", "1", "-q", cwd=tmp_path)
    assert run.returncode == 1
    layer = fault.split(":")[1]
    assert f"reproducer of {layer} written" in run.output
    info = json.loads((repro / "reproducer.json").read_text())
    assert info["tensor"] == layer
    from validation.repro import replay_reproducer

    replayed = replay_reproducer(repro)
    assert replayed.relative == pytest.approx(info["local_error"], rel=1e-3)
    assert replayed.offset == pytest.approx(info["local_offset_error"], rel=1e-3)
    if fault.startswith("shift:"):
        assert info["local_offset_error"] > info["local_offset_budget"]
        assert "XCTAssertLessThanOrEqual(offsetRelative" in \
            next(repro.glob("*ReproTests.swift")).read_text()
    else:
        assert info["local_error"] > info["local_budget"]
    from validation.__main__ import main

    assert main(["repro", str(repro)]) == 1                      # it reproduces
    for swift in sorted(repro.glob("*.swift")):
        unknown = _calls(swift.read_text()) - ALLOWED_CALLS
        assert not unknown, f"{swift.name} calls outside the fork's API: {unknown}"
    assert (repro / "keras_layer.keras").is_file() or (repro / "keras_layer.h5").is_file()
    assert (repro / "Parameters" / f"shapes_net-{layer}.weights.bin").is_file()
    given = np.fromfile(repro / "input.floats", "<f4")
    assert given.size and np.fromfile(repro / "input.slices.floats", "<f4").size >= given.size


def test_no_divergence_writes_no_reproducer(run_suite, tmp_path):
    run = run_suite("--model", "default", "--images", *FEW_IMAGES, "--repro", tmp_path / "r",
                    "--workers", "1", "-q", cwd=tmp_path)
    assert run.returncode in (0, 1)
    assert "--repro: nothing written: nothing diverged" in run.output
    assert not (tmp_path / "r").exists()
