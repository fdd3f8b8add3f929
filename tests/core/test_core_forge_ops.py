"""The op registry itself: lookups, signatures, versioned behaviour, and that every op module
states its Forge facts with a source and the tests that pin them."""
import importlib
import re
from pathlib import Path

import pytest

from core.forge_ops import (IOS11, ForgeOpError, ForgeTarget, Neuron, custom_kernels, ir_kinds,
                            op_for, op_for_swift, registered_ops)
from core.forge_ops.signature import DEVICE, SignatureError
from core.forge_ops.target import Versioned

ROOT = Path(__file__).resolve().parents[2]


def test_lookup_by_ir_kind_and_by_swift_initialiser():
    assert op_for("Convolution") is op_for_swift("Convolution")
    assert op_for_swift("Add") is op_for_swift("MergeOperation")
    assert op_for_swift("SpaceToDepthX2").kind is None
    assert {"Input", "Resize", "CollectMerge", "Concatenate", "Custom"} <= ir_kinds()
    with pytest.raises(ForgeOpError, match="IR op 'Merge' is no Forge layer; Forge ops: .*"
                                           "CollectMerge"):
        op_for("Merge")


def test_relun_is_never_fused_from_ios_11_on():
    assert not Neuron("ReLUN", 0.0, 6.0).fusable(IOS11)
    assert Neuron("ReLU", 0.0).fusable(IOS11)
    with pytest.raises(ValueError, match="no known behaviour before iOS 11"):
        Neuron("ReLUN", 0.0, 6.0).fusable(ForgeTarget(ios=10))
    assert Versioned({10: "a", 12: "b"}).at(ForgeTarget(ios=11)) == "a"


def test_signature_binds_defaults_and_refuses_what_forge_does_not_take():
    signature = op_for("Convolution").signature
    bound = signature.bind([], {"kernel": (3, 1), "channels": 8, "name": "c"})
    assert bound == {"kernel": (3, 1), "channels": 8, "stride": (1, 1), "padding": "same",
                     "activation": None, "useBias": True, "name": "c"}
    with pytest.raises(SignatureError, match="Convolution has no argument `strides:`"):
        signature.bind([], {"kernel": (3, 3), "channels": 8, "strides": (2, 2)})
    with pytest.raises(SignatureError, match="missing argument `channels:`"):
        signature.bind([], {"kernel": (3, 3)})
    with pytest.raises(SignatureError, match=r"`kernel:` must be an \(x, y\) tuple of integers"):
        signature.bind([], {"kernel": 3, "channels": 8})


def test_layers_leave_defaults_out_but_neurons_and_kernels_spell_them_out():
    convolution = op_for("Convolution")
    arguments = convolution.signature.complete({"kernel": (3, 3), "channels": 8, "name": "c"})
    assert convolution.swift_call(arguments) == 'Convolution(kernel: (3, 3), channels: 8, name: "c")'
    assert Neuron("ReLU", 0.0).swift_initialiser() == "MPSCNNNeuronReLU(device: device, a: 0)"
    mean = [k for k in custom_kernels() if k.swift_class == "SubtractMeanColor"][0]
    call = mean.call({})
    assert call.arguments["device"] is DEVICE
    assert call.swift_reference() == ("SubtractMeanColor(device: device, red: 123.68, "
                                      "green: 116.779, blue: 103.939, scale: 255)")


def _modules():
    modules = {type(op).__module__ for op in registered_ops()}
    modules |= {type(kernel).__module__ for kernel in custom_kernels()}
    return sorted(modules)


@pytest.mark.parametrize("module_name", _modules())
def test_every_op_module_cites_its_source_and_the_tests_pinning_it(module_name):
    doc = importlib.import_module(module_name).__doc__ or ""
    assert re.search(r"Forge/Forge/\w+\.swift|the project's", doc), \
        f"{module_name}: name the Forge source file (or say the op is the project's own)"
    pinned = re.findall(r"tests/[\w/]+\.py", doc)
    assert pinned, f"{module_name}: name the tests that pin its rules"
    for path in pinned:
        assert (ROOT / path).exists(), f"{module_name} cites {path}, which does not exist"
    tests = "".join((ROOT / path).read_text() for path in pinned)
    for name in re.findall(r"\btest_\w+\b\*?(?!\.py)", doc):
        pattern = r"def " + re.escape(name.rstrip("*")) + (r"\w*\(" if name.endswith("*") else r"\(")
        assert re.search(pattern, tests), f"{module_name} cites {name}, which no cited file has"


def test_docs_index_every_op_module_and_cite_tests_that_exist():
    index = (ROOT / "docs" / "forge.md").read_text()
    for module_name in _modules():
        path = module_name.replace(".", "/") + ".py"
        assert path in index, f"docs/forge.md does not list {path}"
    tests = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    for path in re.findall(r"tests/[\w/]+\.py", index):
        assert (ROOT / path).exists(), f"docs/forge.md cites {path}, which does not exist"
    for name in re.findall(r"\btest_\w+\b(?!\.py)", index):
        assert f"def {name}(" in tests, f"docs/forge.md cites {name}, which no test defines"
