"""The judge alone, on hand-made measurements: integrity before numerics, no pass without
evidence, baselines, and the run's overall verdict."""
import json

import pytest

from core.contracts import dumps
from validation.budgets import BudgetFile
from validation.evaluate import Comparison, Prediction, Problem
from validation.judge import (judge_accuracy, tie_margin, judge_baseline, judge_boxes, judge_performance,
                              judge_run, judge_tensors)
from validation.metrics import compare as measure
from validation.verdicts import box_agreement_line, verdict_lines

MANIFEST = {"format": "keras2metal.manifest/1", "name": "net",
            "builder": {"class": "NetBuilder", "file": "NetBuilder.swift"},
            "source": {"model": "net.keras", "weights": "file", "seed": 0, "keras": "3",
                       "tensorflow": "2"},
            "input": {"width": 8, "height": 8, "channels": 3, "keras_input": "image"},
            "preprocessing": {"family": "none", "steps": []},
            "output": {"tensor": "conv", "kind": "classifier", "classes": 10},
            "tensors": [], "weights": [], "totals": {"layers": 3, "tensors": 4, "parameters": 10}}
FACTS = {"model": "net", "source_model": "net.keras", "weights": "file", "seed": 0,
         "device": "reference device", "images": ["a.png"], "environment": {"python": "3"},
         "command": "pytest validation"}


def _metrics(rel):
    """Metrics of a tensor of ones measured with relative error ``rel``."""
    import numpy as np

    g = np.ones(100)
    return dict(measure(g, g * (1 + rel)), images=1)


def _cmp(name, index, inputs, rel=None, problems=(), comparable=True):
    return Comparison(name=name, index=index, forge_type="Conv", shape=[10, 10, 1],
                      inputs=inputs, keras_layer=name, comparable=comparable,
                      not_comparable_reason="" if comparable else "no Keras counterpart",
                      metrics=None if rel is None else _metrics(rel), problems=list(problems))


def test_integrity_before_numerics():
    comparisons = [
        _cmp("resize", 0, [], rel=1e-4),
        _cmp("conv1", 1, ["resize"], rel=1e-4,
             problems=[Problem("truncated", "a", "net-conv1.floats: 12 bytes is shorter")]),
        _cmp("conv2", 2, ["conv1"], rel=0.5),
        _cmp("__Collect__", 3, ["conv2"], comparable=False),
    ]
    tensors = judge_tensors(comparisons, BudgetFile())
    verdicts = {t.name: t.verdict for t in tensors}
    assert verdicts == {"resize": "pass", "conv1": "data_problem", "conv2": "fail",
                        "__Collect__": "not_judged"}
    conv1 = tensors[1]
    assert conv1.problems[0].kind == "truncated" and "copy the Documents folder" in \
        conv1.problems[0].fix
    assert "net-conv1.floats" in conv1.reason
    # a 16 ε budget for a first layer: rel 1e-4 passes, 0.5 fails
    assert tensors[2].budget.rel_error == pytest.approx(16 * 2 ** -11 + 2 * 1e-4, rel=1e-3)


def test_run_without_any_compared_tensor_is_not_a_pass():
    missing = [Problem("missing", "a", "net-conv.floats not found in DIR")]
    results = judge_run(comparisons=[_cmp("conv", 0, [], problems=missing)], predictions=[],
                        run_log={}, manifest=MANIFEST, budget_file=BudgetFile(), facts=FACTS)
    assert results.verdict == "fail" and results.first_divergence is None
    assert results.first_data_problem.tensor == "conv"
    text = "\n".join(verdict_lines(results))
    assert "within" not in text and "0 of 1 tensors judged" in text
    assert "DATA PROBLEMS" in text and "net-conv.floats not found" in text

    nothing = judge_run(comparisons=[_cmp("x", 0, [], comparable=False)], predictions=[],
                        run_log={}, manifest=MANIFEST, budget_file=BudgetFile(), facts=FACTS)
    assert nothing.verdict == "not_judged"
    assert "NOT JUDGED" in "\n".join(verdict_lines(nothing))


def _replayed(comparison, local_rel):
    comparison.local = {"device": _metrics(local_rel)}
    return comparison


def test_amplifying_passing_inputs_within_the_caps_passes_and_says_so():
    """MobileNetV3Large's expanded_conv_14_squeeze_excite_conv_1: 2.1x over its max_abs budget,
    inputs passing, own error a tenth of an ulp: amplification, not a defect."""
    def run(input_rel, rel, local_rel=5e-5):
        comparisons = [_cmp("squeeze", 0, [], rel=input_rel),
                       _replayed(_cmp("excite", 1, ["squeeze"], rel=rel), local_rel)]
        return judge_tensors(comparisons, BudgetFile())[1]

    amplified = run(1e-3, 0.05)          # budget 16 ε + 2·1e-3 ≈ 0.0098; caps 0.25 / 0.5
    assert amplified.verdict == "pass" and amplified.blame == "amplifies"
    assert "only by amplifying its inputs' error" in amplified.reason
    assert amplified.violations                   # the excess stays on record

    beyond_caps = run(1e-3, 0.3)
    assert beyond_caps.verdict == "fail" and beyond_caps.blame == "inherits"
    failing_input = run(0.3, 0.35)
    assert failing_input.verdict == "fail" and failing_input.blame == "inherits"
    own_error = run(1e-3, 0.05, local_rel=0.05)
    assert own_error.verdict == "fail" and own_error.blame == "culprit"

    results = judge_run(comparisons=[_cmp("squeeze", 0, [], rel=1e-3),
                                     _replayed(_cmp("excite", 1, ["squeeze"], rel=0.05), 5e-5)],
                        predictions=[], run_log={}, manifest=MANIFEST, budget_file=BudgetFile(),
                        facts=FACTS)
    assert results.first_divergence is None
    header = "\n".join(verdict_lines(results))
    assert "1 tensor(s) over their cumulative budget pass as amplifying" in header
    assert "first divergence: none among the 2 judged tensors" in header
    assert "NOT JUDGED" not in header


def _pred(label, keras, device):
    return Prediction("img", label, keras, device)


def test_accuracy_needs_labels_device_outputs_and_trained_weights():
    rows = [_pred(1, [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]), _pred(2, [2, 1, 3, 4, 5], [1, 2, 3, 4, 5])]
    thresholds = {"min_device_top1": 0.5, "min_device_top5": None, "max_top1_drop": 0.0,
                  "max_top5_drop": 0.0, "min_agreement_top1": 1.0, "min_agreement_top5": None}
    acc = judge_accuracy(rows, "classifier", "trained", thresholds)
    checks = {c.name: c for c in acc.checks}
    assert acc.device.top1 == 0.5 and acc.keras.top1 == 1.0
    assert checks["device_top1"].verdict == "pass"
    assert checks["device_top5"].verdict == "not_judged"            # no threshold set
    assert "no threshold" in checks["device_top5"].reason
    assert checks["device_vs_keras_top1"].verdict == "fail"         # 0.5 < 1.0 - 0
    assert checks["agreement_top1"].verdict == "fail"               # 1 of 2 images
    assert checks["agreement_top5"].verdict == "not_judged"

    random = judge_accuracy(rows, "classifier", "random", thresholds)
    assert random.device is None
    for name in ("device_top1", "device_top5", "device_vs_keras_top1", "device_vs_keras_top5"):
        check = next(c for c in random.checks if c.name == name)
        assert check.verdict == "not_judged"
        assert "random weights: accuracy against labels is not meaningful" in check.reason

    no_device = judge_accuracy([_pred(1, [1, 2, 3, 4, 5], None)], "classifier", "trained",
                               thresholds)
    assert {c.name: c.verdict for c in no_device.checks}["device_top1"] == "not_judged"
    assert "no device outputs" in no_device.checks[0].reason
    assert no_device.agreement is None

    no_labels = judge_accuracy([_pred(None, [1], [1])], "classifier", "trained", thresholds)
    assert "no labels" in no_labels.checks[0].reason

    detector = judge_accuracy(rows, "yolo", "trained", thresholds)
    assert all(c.verdict == "not_judged" for c in detector.checks)


def test_a_near_tie_within_the_output_budget_is_left_out_of_the_agreement():
    """ResNet101 with seeded weights: Keras gives 0.365 and 0.296 to its top two classes, the
    device (off by up to 0.064, within the output's budget) swaps them.  No evidence of a bug."""
    thresholds = {"min_agreement_top1": 1.0, "min_agreement_top5": None}
    swapped = Prediction("tie", None, [976, 595, 380, 124, 310], [595, 976, 380, 124, 310],
                         keras_gap=0.069)
    decided = Prediction("clear", None, [3, 1, 2, 4, 5], [3, 1, 2, 4, 5], keras_gap=0.6)
    acc = judge_accuracy([swapped, decided], "classifier", "random", thresholds, tie_margin=0.064)
    checks = {c.name: c for c in acc.checks}
    assert acc.near_ties == 1 and acc.agreement.images == 1 and acc.agreement.top1 == 1.0
    assert checks["agreement_top1"].verdict == "pass"
    assert "1 near tie(s) left out" in checks["agreement_top1"].reason

    # the same swap with a tighter budget, or a wider Keras margin, is a real disagreement
    for margin, gap in ((0.03, 0.069), (0.064, 0.2)):
        swapped.keras_gap = gap
        acc = judge_accuracy([swapped], "classifier", "random", thresholds, tie_margin=margin)
        assert acc.near_ties == 0
        assert {c.name: c.verdict for c in acc.checks}["agreement_top1"] == "fail"

    # an output over budget (or not judged): nothing is a tie; only ties: not judged, not passed
    swapped.keras_gap = 0.069
    strict = judge_accuracy([swapped], "classifier", "random", thresholds, tie_margin=None)
    assert {c.name: c.verdict for c in strict.checks}["agreement_top1"] == "fail"
    only_ties = judge_accuracy([swapped], "classifier", "random", thresholds, tie_margin=0.064)
    check = next(c for c in only_ties.checks if c.name == "agreement_top1")
    assert check.verdict == "not_judged" and "no image decides it" in check.reason


def test_a_near_tie_at_the_top5_boundary_is_left_out_of_the_top5_agreement_only():
    """The embedded 8-class model on 1,000 images: Keras's 5th and 6th probabilities are
    ~1e-6 apart, the device (off by up to 0.0014, within budget) swaps them on 7 images, and
    the top-5 agreement failed at 0.993.  Such images leave the top-5 agreement, not the top-1."""
    thresholds = {"min_agreement_top1": 1.0, "min_agreement_top5": 1.0}
    tail_swap = Prediction("tail", None, [2, 0, 5, 7, 1], [2, 0, 5, 7, 4], keras_gap=0.9,
                           keras_gap5=2e-6)
    clear = Prediction("clear", None, [3, 1, 2, 4, 5], [3, 1, 2, 4, 5], keras_gap=0.6,
                       keras_gap5=0.05)
    acc = judge_accuracy([tail_swap, clear], "classifier", "random", thresholds,
                         tie_margin=0.0014)
    checks = {c.name: c for c in acc.checks}
    assert (acc.near_ties, acc.near_ties_top5) == (0, 1)
    assert acc.agreement.images == 2 and acc.agreement.top5_images == 1
    assert checks["agreement_top1"].verdict == checks["agreement_top5"].verdict == "pass"
    assert "5th and 6th scores" in checks["agreement_top5"].reason
    assert "near tie" not in checks["agreement_top1"].reason

    # the same swap with a wide 5th-6th gap is a real disagreement
    tail_swap.keras_gap5 = 0.01
    acc = judge_accuracy([tail_swap, clear], "classifier", "random", thresholds,
                         tie_margin=0.0014)
    assert {c.name: c.verdict for c in acc.checks}["agreement_top5"] == "fail"

    # only top-5 ties: the top-5 agreement is not judged (no share), the top-1 one is
    tail_swap.keras_gap5 = 2e-6
    acc = judge_accuracy([tail_swap], "classifier", "random", thresholds, tie_margin=0.0014)
    verdicts = {c.name: c.verdict for c in acc.checks}
    assert verdicts == {**verdicts, "agreement_top1": "pass", "agreement_top5": "not_judged"}
    assert acc.agreement.top5 is None and acc.agreement.top1 == 1.0


def test_only_an_output_within_budget_leaves_room_for_ties():
    from types import SimpleNamespace as T

    def output(verdict):
        return T(name="probs", verdict=verdict, metrics=T(max_abs=0.064))

    assert tie_margin([output("pass")], "probs") == 0.064
    assert tie_margin([output("fail")], "probs") is None        # a fault upstream: strict
    assert tie_margin([output("not_judged")], "probs") is None
    assert tie_margin([], "probs") is None


def test_fps_is_judged_only_on_a_phone():
    thresholds = {"min_fps": 10.0, "max_latency_s": None}
    reference = judge_performance({"latency_s": {"mean": 0.03, "min": 0.02, "max": 0.04},
                                   "fps": 33.0}, "reference device", thresholds)
    assert reference.fps is None and reference.source == "host emulation"
    assert reference.host_emulation_s.mean == 0.03
    assert all(c.verdict == "not_judged" and "host emulation" in c.reason
               for c in reference.checks)

    phone = judge_performance({"fps": 8.0, "latency_s": 0.125, "run_log": "run.json"},
                              "iPhone X", thresholds)
    checks = {c.name: c for c in phone.checks}
    assert phone.source == "phone run log" and phone.fps == 8.0
    assert checks["fps"].verdict == "fail" and checks["latency"].verdict == "not_judged"

    silent = judge_performance({"compile_s": 0.3}, "iPhone X", thresholds)
    assert silent.fps is None and all(c.verdict == "not_judged" for c in silent.checks)


def test_no_baseline_is_not_judged_and_says_nothing_was_compared():
    results = judge_run(comparisons=[_cmp("conv", 0, [], rel=1e-4)], predictions=[],
                        run_log={}, manifest=MANIFEST, budget_file=BudgetFile(), facts=FACTS,
                        baseline_path="golden/baselines/net.json")
    assert results.baseline.verdict == "not_judged"
    assert "nothing compared" in results.baseline.reason
    assert results.verdict == "pass" and "baseline" in results.verdict_reason

    from validation.baseline import build

    settings = BudgetFile().baseline
    doc = build(results, settings["metrics"])
    assert judge_baseline("b.json", doc, None, results, settings).verdict == "pass"
    doc.tensors["conv"]["rel_error"] = 1e-6             # the accepted error was much smaller
    worse = judge_baseline("b.json", doc, None, results, settings)
    assert worse.verdict == "fail" and worse.regressions[0].what == "conv"
    assert worse.regressions[0].metric == "rel_error"
    doc.seed = 3
    other = judge_baseline("b.json", doc, None, results, settings)
    assert other.verdict == "not_judged" and "seed" in other.reason
    doc.seed = 0
    doc.target.keras = "2.15"
    elsewhere = judge_baseline("b.json", doc, None, results, settings)
    assert elsewhere.verdict == "not_judged" and "target" in elsewhere.reason


def test_baselines_are_kept_per_target(tmp_path):
    from validation.baseline import default_path, target_of

    phone = target_of("iPhone X (iOS 11.2)", {"keras": "3.15.1", "tensorflow": "2.21.0"})
    assert phone.slug() == "iphone-x-ios-11.2_keras-3.15_tf-2.21"
    here = target_of("reference device", {"keras": "2.15.0", "tensorflow": "2.15.1"})
    assert default_path("mobilenet", here).parts[-2:] == (
        "mobilenet", "reference-device_keras-2.15_tf-2.15.json")


def test_schema_command_prints_the_results_schema(capsys):
    from validation.__main__ import main

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "verdict" in schema["properties"] and "tensors" in schema["required"]
    assert schema["additionalProperties"] is False


def _boxes(keras, device, matched, problem=None):
    from validation.detections import ImageBoxCount

    return ImageBoxCount(keras, device, matched, problem)


def test_box_agreement_is_judged_for_detectors_against_the_budget_threshold():
    counts = {"dog.jpg": _boxes(10, 8, 8), "eagle.jpg": _boxes(0, 0, 0),
              "person.jpg": _boxes(5, 5, 4), "bad.jpg": _boxes(0, 0, 0, "device head 'h': missing")}
    boxes, check = judge_boxes(counts, "yolo", True, {"min_box_agreement": 0.8})
    assert (boxes.images, boxes.keras_boxes, boxes.device_boxes, boxes.matched) == (3, 15, 13, 12)
    assert boxes.agreement == pytest.approx(12 / 15)           # over each image's larger count
    assert [(i.image, i.agreement) for i in boxes.per_image] == [
        ("dog.jpg", 0.8), ("eagle.jpg", 1.0), ("person.jpg", 0.8)]
    assert boxes.unmeasured == {"bad.jpg": "device head 'h': missing"}
    assert check.verdict == "pass" and check.value == pytest.approx(0.8)
    _, strict = judge_boxes(counts, "yolo", True, {"min_box_agreement": 0.81})
    assert strict.verdict == "fail" and "minimum 0.81" in strict.reason
    _, unset = judge_boxes(counts, "yolo", True, {"min_box_agreement": None})
    assert unset.verdict == "not_judged" and "no threshold in the budget file" in unset.reason
    line = box_agreement_line(boxes)
    assert line.startswith("boxes: device and Keras agree on 0.800 (12 of 15 boxes paired")
    assert "worst image dog.jpg 0.800" in line and "1 image(s) left out" in line


def test_box_agreement_is_not_judged_without_detection_heads():
    boxes, check = judge_boxes({}, "classifier", False, {"min_box_agreement": 0.9})
    assert boxes is None and check.verdict == "not_judged" and "applies to detectors" in check.reason
    _, yolo2 = judge_boxes({}, "yolo", False, {"min_box_agreement": 0.9})
    assert "records no detection heads" in yolo2.reason
    _, empty = judge_boxes({"a.jpg": _boxes(0, 0, 0, "the device results hold no such image")},
                           "yolo", True, {"min_box_agreement": 0.9})
    assert empty.verdict == "not_judged" and "no image has usable head tensors" in empty.reason


def test_a_detectors_box_agreement_is_part_of_its_baseline():
    from validation.baseline import build
    from validation.verdicts import BoxAgreement

    results = judge_run(comparisons=[_cmp("conv", 0, [], rel=1e-4)], predictions=[],
                        run_log={}, manifest=MANIFEST, budget_file=BudgetFile(), facts=FACTS)
    settings = BudgetFile().baseline
    assert "box_agreement" not in json.loads(dumps(build(results, settings["metrics"])))
    results.accuracy.boxes = BoxAgreement(score_threshold=0.5, match_iou=0.9, images=1,
                                          keras_boxes=10, device_boxes=10, matched=9,
                                          agreement=0.9, per_image=[])
    doc = build(results, settings["metrics"])
    assert doc.box_agreement == 0.9
    assert judge_baseline("b.json", doc, None, results, settings).verdict == "pass"
    doc.box_agreement = 0.95
    worse = judge_baseline("b.json", doc, None, results, settings)
    assert worse.verdict == "fail"
    assert (worse.regressions[0].what, worse.regressions[0].worse_by) == (
        "accuracy.boxes.agreement", "-5.0 points")


def test_a_softmax_on_the_devices_own_logits_gets_no_logit_rounding_allowance():
    """The device-input replay of a softmax reads the logits the device dumped, already rounded:
    2 % noise on its probabilities breaks 16 ε.  Replayed through the Dense that makes the logits
    (or on Keras's logits rounded to float16), their rounding is allowed for."""
    import numpy as np

    p = np.exp(np.linspace(0, -12, 100))
    p /= p.sum()

    def softmax(covers):
        metrics = dict(measure(p, p), images=1)
        noisy = dict(measure(p, p * (1 + 0.02 * np.cos(np.arange(100)))), images=1)
        c = Comparison(name="prob", index=0, forge_type="Softmax", shape=[1, 1, 100], inputs=[],
                       keras_layer="prob", comparable=True, not_comparable_reason="",
                       metrics=metrics, local={"device": noisy}, covers=covers)
        return judge_tensors([c], BudgetFile())[0]

    own_logits = softmax([])
    assert own_logits.blame == "culprit" and own_logits.local.budget < 17 * 2 ** -11
    through_dense = softmax(["logits"])
    assert through_dense.local.budget > 2 * own_logits.local.budget
