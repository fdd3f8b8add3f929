"""The float16 range pre-check: its measures on known numbers, a model built to break float16 in
known places, what Keras computes before a fused activation, silence on the default model and the
zoo, the command line, and what the judge, the terminal and the report make of its findings."""
import math
from dataclasses import dataclass

import numpy as np
import pytest

from core.contracts import read
from precheck_models import late_norm_net, overflow_net
from validation.pipeline import Pipeline, Settings
from validation.precheck import (BITS_LOST_BUDGET, FLOAT16_MAX, SMALLEST_NORMAL,
                                 SUBNORMAL_SHARE_LIMIT, Precheck, Spread, cached_precheck,
                                 describe, summary_line)
from validation_helpers import DEFAULT_IMAGES, SAMPLE_IMAGE

FEW_IMAGES = [str(p) for p in sorted(DEFAULT_IMAGES.glob("*_00.png"))[:2]]
NETWORKS = ["tiny_yolo", "yolo", "vgg16", "resnet50", "inception_v3", "inception_resnet_v2",
            "mobilenet", "xception"]


def precheck_of(model, cache, images, **settings):
    """(pipeline, prepared, pre-check) as the CLI does it: conversion and golden store only."""
    pipeline = Pipeline(Settings(model=model, images=images, cache_dir=str(cache), **settings))
    prepared = pipeline.prepare(stores=False)
    prepared.golden_path = pipeline.golden(prepared.manifest_path, prepared.manifest)
    return pipeline, prepared, cached_precheck(pipeline, prepared)


# -- the measures, on numbers worked out by hand ---------------------------------------------

def test_normal_numbers_lose_no_bit():
    s = Spread().add(np.linspace(-3.0, 3.0, 1001))
    assert s.over == 0 and s.subnormals == 0 and s.max_abs == 3.0
    assert 0.0 < s.rounding_error < 1.0 and s.bits_lost == 0.0


def test_overflow_is_counted_and_left_out_of_the_precision_measures():
    s = Spread().add([1.0, -70000.0, FLOAT16_MAX, np.inf])
    assert (s.over, s.nonfinite, s.max_abs) == (1, 1, 70000.0)
    assert s.energy == pytest.approx(1.0 + FLOAT16_MAX ** 2)
    assert s.rounding == 0.0          # 1 and 65504 are float16 numbers


def test_bits_lost_deep_in_the_subnormals():
    value = float(np.float32(1e-7))   # 1.68 quanta of 2^-24: float16 rounds it to 2 quanta
    s = Spread().add(np.full(10, value, np.float32))
    error_in_eps = abs(2 * 2.0 ** -24 - value) / value / 2.0 ** -11
    assert s.rounding_error == pytest.approx(error_in_eps, rel=1e-6)
    assert s.bits_lost == pytest.approx(math.log2(error_in_eps))
    assert s.bits_lost > BITS_LOST_BUDGET
    assert s.subnormal_share == pytest.approx(1.0)


def test_subnormal_share_is_the_energy_below_the_smallest_normal():
    tiny = float(np.float32(3e-5))
    assert 0 < tiny < SMALLEST_NORMAL
    s = Spread().add(np.array([1.0] + [tiny] * 1000, np.float32))
    below = 1000 * tiny ** 2
    assert s.subnormal_share == pytest.approx(below / (1.0 + below), rel=1e-6)
    assert s.subnormals == 1000


# -- a model built to break float16 ----------------------------------------------------------

@dataclass
class OverflowRun:
    path: object
    pipeline: Pipeline
    prepared: object
    precheck: Precheck

    def finding(self, tensor, kind):
        found = [f for f in self.precheck.findings if f.tensor == tensor and f.kind == kind]
        assert len(found) == 1, [describe(f) for f in self.precheck.findings]
        return found[0]


@pytest.fixture(scope="module")
def overflow_run(tmp_path_factory, suite_cache):
    path = overflow_net(tmp_path_factory.mktemp("precheck") / "overflow_net.keras")
    pipeline = Pipeline(Settings(model=str(path), images=FEW_IMAGES, cache_dir=str(suite_cache)))
    prepared = pipeline.prepare()           # with the reference device's store, for the judge
    return OverflowRun(path, pipeline, prepared, cached_precheck(pipeline, prepared))


def test_overflow_model_is_flagged_at_the_right_layers(overflow_run):
    found = {(f.tensor, f.kind, f.severity) for f in overflow_run.precheck.findings}
    assert found == {("loud_conv", "preactivation_overflow", "error"),
                     ("cancel_conv", "sum_overflow", "warning"),
                     ("capped_conv", "overflow", "error"),
                     ("quiet_conv", "precision", "warning"),
                     ("pool", "precision", "warning"),          # the average of quiet_conv
                     ("logits", "overflow", "error")}
    assert overflow_run.precheck.first().tensor == "loud_conv"
    assert [f.index for f in overflow_run.precheck.findings] == \
        sorted(f.index for f in overflow_run.precheck.findings)


def test_pre_activation_overflow_under_a_small_sigmoid_says_split_it(overflow_run):
    f = overflow_run.finding("loud_conv", "preactivation_overflow")
    assert f.keras_layers == ["loud_conv"] and f.threshold == FLOAT16_MAX
    assert f.value > 2 * FLOAT16_MAX and "before the fused sigmoid" in f.quantity
    assert f.advice.startswith("split the fused sigmoid: emit it as its own layer")
    # the sigmoid's output itself (the golden tensor) is in [0, 1]: nothing else at loud_conv
    assert [g.kind for g in overflow_run.precheck.findings if g.tensor == "loud_conv"] == \
        ["preactivation_overflow"]


def test_overflow_before_a_relu6_says_rescale_with_the_cap(overflow_run):
    f = overflow_run.finding("capped_conv", "overflow")
    assert f.quantity == "activation" and f.value > 4 * FLOAT16_MAX
    assert "the relu6 'capped_relu6' after it saturates" in f.advice
    assert "multiply the weights and bias of 'capped_conv' by 2^-" in f.advice
    assert "multiply the cap of the relu6 'capped_relu6'" in f.advice
    assert not [g for g in overflow_run.precheck.findings if g.tensor == "capped_relu6"]


def test_partial_sums_that_cancel_are_a_warning(overflow_run):
    f = overflow_run.finding("cancel_conv", "sum_overflow")
    # ±4e4 times two equal sigmoid outputs of 1, plus 1 times the channel itself
    assert f.value == pytest.approx(80001.0, rel=1e-4)
    assert "input 'loud_conv'" in f.quantity and "rescale the layer" in f.advice


def test_mostly_subnormal_layer_loses_bits(overflow_run):
    f = overflow_run.finding("quiet_conv", "precision")
    assert f.keras_layers == ["quiet_conv"] and f.value > BITS_LOST_BUDGET
    assert "1 of its energy in subnormals" in f.detail
    assert "multiply the weights and bias of 'quiet_conv' by 2^1" in f.advice
    # its weights are small but normal float16 numbers
    assert not [g for g in overflow_run.precheck.findings
                if g.tensor == "quiet_conv" and "weights file" in g.quantity]


def test_weights_beyond_float16_in_the_output_layer(overflow_run):
    f = overflow_run.finding("logits", "overflow")
    assert f.quantity == "weights file overflow_net-logits.weights.bin"
    assert f.advice.startswith("MPS converts overflow_net-logits.weights.bin to half")
    assert "it is the network's output" in f.advice


def test_the_judge_explains_the_overflow_the_device_shows(overflow_run):
    from validation.run import evaluate_run
    from validation.verdicts import verdict_lines

    baseline = str(overflow_run.prepared.folder / "no-baseline.json")
    plain = evaluate_run(overflow_run.prepared, baseline_path=baseline).results
    results = evaluate_run(overflow_run.prepared, baseline_path=baseline,
                           precheck=overflow_run.precheck).results
    # the reference device rounds capped_conv to float16: ±inf computed from finite inputs
    assert plain.first_divergence.tensor == results.first_divergence.tensor == "capped_conv"
    assert plain.precheck is None and "float16 pre-check" not in plain.first_divergence.hint
    hint = results.first_divergence.hint
    assert hint.startswith("float16 pre-check: tensor 'capped_conv'") and "capped_relu6" in hint
    problem = results.first_data_problem
    assert problem.tensor == "capped_conv" and problem.kind == "nan_inf"
    assert problem.fix.startswith("float16 pre-check:")
    assert "float16 pre-check: 3 overflow error(s), first preactivation_overflow at tensor " \
           "'loud_conv'" in results.verdict_reason
    lines = verdict_lines(results)
    assert any(line.startswith("float16 pre-check: 6 finding(s) (3 error(s), 3 warning(s)): "
                               "first ERROR preactivation_overflow: tensor 'loud_conv'")
               for line in lines)
    assert not any(line.startswith("float16 pre-check") for line in verdict_lines(plain))


def test_results_and_report_carry_the_findings(overflow_run, tmp_path):
    from reports import write_report
    from validation.results import write_results
    from validation.run import evaluate_run
    from validation.verdicts import load_results

    results = evaluate_run(overflow_run.prepared,
                           baseline_path=str(overflow_run.prepared.folder / "no-baseline.json"),
                           precheck=overflow_run.precheck).results
    path = write_results(tmp_path / "results.json", results)
    assert load_results(path).precheck == overflow_run.precheck
    text = write_report([path], tmp_path / "report.md").read_text()
    section = text[text.index("### float16 pre-check"):text.index("## Environment")]
    assert "6 finding(s) (3 error(s), 3 warning(s))" in section
    for f in overflow_run.precheck.findings:
        assert f"`{f.tensor}` (#{f.index})" in section
    assert "| **error**" in section and "split the fused sigmoid" in section
    assert "| partial-sum bound " in section          # the table of largest values

    plain = evaluate_run(overflow_run.prepared,
                         baseline_path=str(overflow_run.prepared.folder / "no-baseline.json"))
    plain_path = write_results(tmp_path / "plain.json", plain.results)
    assert "float16 pre-check" not in write_report([plain_path], tmp_path / "plain.md").read_text()


def test_overflow_before_an_unfoldable_batchnorm_says_move_it(suite_cache, tmp_path):
    path = late_norm_net(tmp_path / "late_norm_net.keras")
    _, prepared, precheck = precheck_of(str(path), suite_cache, FEW_IMAGES[:1])
    forge = {t.name: t for t in prepared.manifest.tensors}
    assert forge["late_bn"].forge_type == "DepthwConv"       # the BatchNorm on its own
    assert [(f.tensor, f.kind) for f in precheck.findings] == [("wide_conv", "overflow")]
    advice = precheck.findings[0].advice
    assert "multiply the weights and bias of 'wide_conv' by 2^-" in advice
    assert "or move the BatchNorm 'late_bn' right after the convolution" in advice
    largest = {e.measure: e for e in precheck.largest}
    assert largest["partial-sum bound"].tensor == "wide_conv"  # the BatchNorm's scale: tiny


# -- what the device computes but Keras does not show ----------------------------------------

def test_a_layer_the_converter_adds_is_named_as_not_bounded(suite_cache, tmp_path):
    """torch-mode preprocessing runs the ImageNet normalisation as a 1x1 layer with no Keras
    layer behind it: the pre-check still runs, and says which tensor it could not bound."""
    from core.kerasenv import keras
    from core.seeding import seeded_init

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(
        keras.layers.GlobalAveragePooling2D(name="pool")(x))
    model = keras.Model(inputs, outputs, name="torch_net")
    seeded_init(model, 0, "torch")
    path = tmp_path / "torch_net.keras"
    model.save(path)
    _, prepared, precheck = precheck_of(str(path), suite_cache, FEW_IMAGES[:1],
                                        preprocessing="torch")
    assert [describe(f) for f in precheck.findings] == []
    assert precheck.checked.not_bounded == ["input_normalize"]
    assert precheck.checked.partial_sum_bounds == 2                     # conv and predictions
    assert summary_line(precheck).startswith("float16 pre-check: clean (")
    assert "not bounded: 1 weighted tensor(s) with no Keras kernel or BatchNorm behind them " \
           "(input_normalize)" in summary_line(precheck)


def test_pre_activations_and_logits_are_what_keras_computes(suite_cache):
    """stem_conv covers Keras [stem_conv, stem_bn, stem_relu]: its pre-activation, computed from
    the folded weight files, is stem_bn's output; the Dense before the softmax gives the logits."""
    from core.kerasenv import keras
    from golden import preprocess_steps
    from imagesets.images import load_rgb01
    from validation.undumped import measure_undumped, plan_weighted_layers

    pipeline, prepared, _ = precheck_of("default", suite_cache, FEW_IMAGES)
    model, manifest = pipeline.keras_model()[0], prepared.manifest
    plan = {p.entry.name: p for p in plan_weighted_layers(model, manifest)}
    measure_undumped(model, manifest, prepared.image_paths, list(plan.values()))

    dense = model.get_layer("predictions")
    probe = keras.Model(model.inputs, [model.get_layer("stem_bn").output, dense.input])
    bn, logits = [], []
    for path in prepared.image_paths:
        rgb = load_rgb01(path, manifest.input.width, manifest.input.height)
        x = preprocess_steps(rgb, manifest.preprocessing.steps)[-1][None]
        bn_out, pooled = probe.predict_on_batch(x)
        kernel, bias = dense.get_weights()
        bn.append(np.asarray(bn_out, np.float64))
        logits.append(np.asarray(pooled, np.float64) @ kernel + bias)
    for name, expected, role in (("stem_conv", bn, "pre-activation"),
                                 ("predictions", logits, "undumped")):
        value = plan[name].value
        assert value.role == role
        assert value.spread.max_abs == pytest.approx(max(np.abs(e).max() for e in expected),
                                                     rel=1e-4)
        assert value.spread.energy == pytest.approx(sum((e ** 2).sum() for e in expected),
                                                    rel=1e-4)
        assert plan[name].bound.spread.max_abs >= value.spread.max_abs
    assert "output of Keras layer 'stem_bn', before the fused relu" in \
        plan["stem_conv"].value.quantity


def test_default_model_is_clean(suite_cache):
    _, _, precheck = precheck_of("default", suite_cache, FEW_IMAGES)
    assert [describe(f) for f in precheck.findings] == []
    c = precheck.checked
    assert (c.pre_activations, c.undumped, c.partial_sum_bounds, c.weight_files) == (6, 1, 9, 18)
    largest = {e.measure: e for e in precheck.largest}
    assert largest["partial-sum bound"].value < FLOAT16_MAX / 2 ** 8
    assert largest["subnormal share (activations)"].value < SUBNORMAL_SHARE_LIMIT / 2 ** 10


@pytest.mark.slow
@pytest.mark.parametrize("model", NETWORKS)
def test_zoo_network_with_seeded_weights_is_clean(model, suite_cache):
    _, _, precheck = precheck_of(model, suite_cache, [str(SAMPLE_IMAGE)], weights="random",
                                 seed=0)
    assert [describe(f) for f in precheck.findings] == []
    assert precheck.checked.partial_sum_bounds > 0 and precheck.checked.weight_files > 0


# -- the command line ------------------------------------------------------------------------

def test_cli_help_names_the_checks_and_the_exit_status(capsys):
    from validation.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["precheck", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for text in ("MODEL", "--weights", "--seed", "--images", "--json", "65504", "subnormals",
                 "exit status: 0 no error finding"):
        assert text in out


def test_cli_bad_model_is_one_error_line(capsys, tmp_path):
    from validation.__main__ import main

    assert main(["precheck", "no_such_net", "--validation-cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ERROR: precheck: --model no_such_net: neither a zoo name (DEFAULT, RESNET_50, "
                   "...; see `keras2metal --help`) nor an existing .keras/.h5 file"]


def test_cli_writes_the_findings_and_fails_on_an_error(overflow_run, suite_cache, tmp_path,
                                                      capsys):
    from validation.__main__ import main

    out = tmp_path / "precheck.json"
    assert main(["precheck", str(overflow_run.path), "--images", *FEW_IMAGES, "--json", str(out),
                 "--validation-cache", str(suite_cache)]) == 1
    assert read(Precheck, out) == overflow_run.precheck
    text = capsys.readouterr().out
    assert "ERROR preactivation_overflow: tensor 'loud_conv' (#2, Keras layers loud_conv)" in text
    assert "  advice: split the fused sigmoid" in text and f"findings written: {out}" in text
