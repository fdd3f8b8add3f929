"""Fault injection still finds the faulted layer first in a network with custom kernels:
MobileNetV3Small, whose squeeze-and-excitation blocks repeat their factor with the project's
BroadcastKernel before Forge's Multiply; each fault is placed after such a block."""
import pytest

from validation_helpers import SAMPLE_IMAGE, evaluate

FAULTS = {"transpose": "expanded_conv_3_project", "stride": "expanded_conv_3_depthwise",
          "bias": "expanded_conv_3_squeeze_excite_conv", "garbage": "expanded_conv_4_expand"}


@pytest.mark.slow
@pytest.mark.parametrize("kind, layer", sorted(FAULTS.items()))
def test_fault_after_a_custom_kernel_is_the_first_divergence(kind, layer, suite_cache):
    r = evaluate("mobilenetv3small", suite_cache, [SAMPLE_IMAGE], fault=f"{kind}:{layer}")
    assert r.verdict == "fail"
    fd = r.first_divergence
    assert fd is not None, "the fault went unnoticed"
    assert layer in fd.forge_layers, f"first divergence {fd.tensor}, fault in {layer}"
    before = [t for t in r.tensors if t.index < fd.index]
    assert all(t.verdict in ("pass", "not_judged") for t in before)
    # a squeeze-and-excitation product (BroadcastKernel --> Multiply) passed before the fault
    assert any(t.name.endswith("squeeze_excite_mul") and t.verdict == "pass" for t in before)
