"""Proof that the budgets are tight enough: every fault kind of the reference device, injected
into one layer, fails the run and is named as the first divergence — on three networks."""
import pytest

from validation_helpers import DEFAULT_IMAGES, SAMPLE_IMAGE, evaluate

from device_pull.reference_device import FAULT_KINDS

FEW_IMAGES = sorted(DEFAULT_IMAGES.glob("*_00.png"))

# scale / shift (weights / biases 2 % off) are the small ones: tiny_yolo's conv_14 shift (the
# linear detection head) and the default model's stem_conv shift stay within the local budget
# in all, and are caught by their per-channel offset
FAULTS = {
    "default": {"transpose": "block1_pw", "stride": "stem_conv", "bias": "mix_a",
                "garbage": "reduce_conv", "scale": "block2_pw", "shift": "stem_conv"},
    "mobilenet": {"transpose": "conv_pw_5", "stride": "conv_dw_6", "bias": "conv_pw_3",
                  "garbage": "conv_dw_8", "scale": "conv_pw_12", "shift": "conv_pw_6"},
    "tiny_yolo": {"transpose": "conv_4", "stride": "conv_2", "bias": "conv_6",
                  "garbage": "conv_8", "scale": "conv_10", "shift": "conv_14"},
}
CASES = [pytest.param(model, kind, layer, id=f"{model}-{kind}-{layer}",
                      marks=[] if model == "default" else [pytest.mark.slow])
         for model, faults in FAULTS.items() for kind, layer in faults.items()]


def test_every_fault_kind_is_covered():
    for model, faults in FAULTS.items():
        assert set(faults) == set(FAULT_KINDS), model


@pytest.mark.parametrize("model", [pytest.param("default"),
                                   pytest.param("mobilenet", marks=pytest.mark.slow),
                                   pytest.param("tiny_yolo", marks=pytest.mark.slow)])
def test_clean_run_passes(model, suite_cache):
    images = FEW_IMAGES if model == "default" else [SAMPLE_IMAGE]
    r = evaluate(model, suite_cache, images)
    not_passing = [(t.name, t.reason) for t in r.tensors if t.verdict in ("fail", "data_problem")]
    assert not not_passing and r.first_divergence is None
    assert r.count("pass") >= 15


@pytest.mark.parametrize("model, kind, layer", CASES)
def test_fault_is_the_first_divergence(model, kind, layer, suite_cache):
    images = FEW_IMAGES if model == "default" else [SAMPLE_IMAGE]
    r = evaluate(model, suite_cache, images, fault=f"{kind}:{layer}")
    assert r.verdict == "fail"
    fd = r.first_divergence
    assert fd is not None, "the fault went unnoticed"
    assert layer in fd.forge_layers, f"first divergence {fd.tensor}, fault in {layer}"
    faulted = r.tensor(fd.tensor)
    # over budget, or NaN/Inf computed there (garbage weights overflow float16)
    assert faulted.verdict == "fail" or {p.kind for p in faulted.problems} == {"nan_inf"}
    if faulted.verdict == "fail":
        # its own error breaks its local budget; every later tensor over budget inherits it
        assert faulted.blame == "culprit" and faulted.local.verdict == "fail"
        later = [t for t in r.tensors if t.index > fd.index and t.verdict == "fail"]
        assert all(t.blame == "inherits" for t in later), \
            [(t.name, t.blame, t.reason) for t in later if t.blame != "inherits"]
    # everything judged before the faulted layer is within budget
    before = [t for t in r.tensors if t.index < fd.index]
    assert all(t.verdict in ("pass", "not_judged") for t in before)
    assert any(t.verdict == "pass" for t in before)
