"""Unit tests of the suite's library: metrics, budget files and rule, first divergence, labels,
baseline comparison."""
import math

import numpy as np
import pytest

from validation.budgets import (EPS, BudgetError, BudgetFile, apply_overrides, default_budget,
                                load_budget_file)
from validation.divergence import first_divergence
from validation.metrics import compare as metrics
from validation.verdicts import TensorResult


def test_metrics_of_a_known_error():
    g = np.array([1.0, -2.0, 3.0, 0.0])
    d = g + np.array([0.1, 0.0, -0.1, 0.0])
    m = metrics(g, d)
    assert m["max_abs"] == pytest.approx(0.1)
    assert m["mean_abs"] == pytest.approx(0.05)
    assert m["rmse"] == pytest.approx(math.sqrt(0.02 / 4))
    assert m["rel_error"] == pytest.approx(math.sqrt(0.02) / math.sqrt(14))
    assert m["range"] == [-2.0, 3.0] and m["nan_inf"] == 0
    assert 0.99 < m["cosine"] <= 1.0


def test_metrics_count_nan_inf():
    g = np.ones(6)
    d = np.array([1, np.nan, np.inf, 1, 1, 1.0])
    m = metrics(g, d)
    assert m["nan_inf"] == 2 and m["golden_rms"] == pytest.approx(1.0)


def test_default_rule_scales_with_range_and_inherited_error():
    rule = BudgetFile().rule
    small = default_budget({"golden_rms": 1.0, "golden_max_abs": 5.0}, 0.0, 0.0, "Conv", rule)
    large = default_budget({"golden_rms": 100.0, "golden_max_abs": 500.0}, 0.0, 0.0, "Conv", rule)
    assert small.rel_error == pytest.approx(16 * EPS, rel=1e-3)
    assert large.mean_abs == pytest.approx(100 * small.mean_abs, rel=1e-3)
    deep = default_budget({"golden_rms": 1.0, "golden_max_abs": 5.0}, 0.05, 0.05, "Conv", rule)
    assert deep.rel_error == pytest.approx(16 * EPS + 0.1, rel=1e-3)
    capped = default_budget({"golden_rms": 1.0, "golden_max_abs": 5.0}, 1.0, 1.0, "Conv", rule)
    assert capped.rel_error == 0.25
    soft = default_budget({"golden_rms": 1.0, "golden_max_abs": 1.0}, 0.01, 0.01, "Softmax", rule)
    assert soft.rel_error == pytest.approx(16 * EPS + 0.08, rel=1e-3)
    ok = {"mean_abs": 0.001, "max_abs": 0.01, "rel_error": 0.001, "cosine": 1.0, "nan_inf": 0}
    assert small.violations(ok) == []
    bad = dict(ok, rel_error=0.5, nan_inf=3)
    assert {v[0] for v in small.violations(bad)} == {"rel_error", "nan_inf"}


def test_tiny_values_round_on_float16s_subnormal_spacing():
    """Below 2**-14 float16's spacing stays 2**-24: values of rms 1e-6 round with a relative
    error above ε (up to 2**-24 / 1e-5 ≈ 0.006), which both budgets allow for, and ordinary
    ones ignore."""
    from validation.budgets import local_budget

    rule = BudgetFile().rule
    tiny = {"golden_rms": 1e-5, "golden_max_abs": 4e-5}
    rounding = EPS + 2.0 ** -24 / 1e-5
    assert local_budget(tiny, "GlbAvgPool", rule) == pytest.approx(16 * rounding)
    assert default_budget(tiny, 0.0, 0.0, "Conv", rule).rel_error == pytest.approx(16 * rounding)
    x = np.random.default_rng(0).normal(0, 1e-5, 4096).astype(np.float32)
    measured = np.linalg.norm(x.astype(np.float16).astype(np.float32) - x) / np.linalg.norm(x)
    assert EPS < measured < rounding
    assert local_budget({"golden_rms": 1.0}, "GlbAvgPool", rule) == \
        pytest.approx(16 * EPS, rel=1e-3)


def test_budget_file_patterns_and_errors(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[rule]\na = 8.0\n[tensors]\n"conv*" = { scale = 2.0 }\n'
                    '"conv1" = { rel_error = 0.5, skip = true }\n'
                    '[accuracy]\nmin_device_top1 = 0.5\n[baseline]\ntolerance = 2.0\n')
    bf = load_budget_file(path)
    assert bf.rule["a"] == 8.0 and bf.accuracy["min_device_top1"] == 0.5
    assert bf.baseline["tolerance"] == 2.0
    b = default_budget({"golden_rms": 1.0, "golden_max_abs": 1.0}, 0.0, 0.0, "Conv", bf.rule)
    b = apply_overrides(b, "conv1", bf)
    assert b.rel_error == 0.5 and b.skip and b.rule == "conv*, conv1"
    path.write_text("[tensors]\n\"x\" = { budget = 1 }\n")
    with pytest.raises(BudgetError, match="unknown key"):
        load_budget_file(path)
    path.write_text("[rules]\n")
    with pytest.raises(BudgetError, match="unknown section"):
        load_budget_file(path)
    path.write_text("[rule\n")
    with pytest.raises(BudgetError, match="not valid TOML"):
        load_budget_file(path)


def _row(name, index, verdict, inputs, forge_type="Conv"):
    return TensorResult(name=name, index=index, forge_type=forge_type, keras_layer=name + "_k",
                        shape=[1, 1, 1], inputs=inputs, verdict=verdict, reason="")


def test_first_divergence_looks_through_collect_and_data_problems():
    rows = [_row("resize", 0, "pass", []),
            _row("a", 1, "pass", ["resize"]),
            _row("b", 2, "data_problem", ["a"]),
            _row("__Collect_for_add__", 3, "not_judged", ["a", "b"], "Collect"),
            _row("add", 4, "fail", ["__Collect_for_add__"], "Add"),
            _row("c", 5, "fail", ["add"])]
    fd = first_divergence(rows)
    assert fd.tensor == "add" and fd.keras_layer == "add_k" and "merge" in fd.hint
    rows[4].verdict = "pass"
    assert first_divergence(rows).tensor == "c"
    rows[5].verdict = "pass"
    assert first_divergence(rows) is None


def test_a_data_problem_is_never_the_first_divergence():
    rows = [_row("a", 0, "pass", []), _row("b", 1, "data_problem", ["a"]),
            _row("c", 2, "pass", ["b"])]
    assert first_divergence(rows) is None


def test_first_divergence_covers_the_uncompared_dense_before_softmax():
    rows = [_row("pool", 0, "pass", []), _row("fc", 1, "not_judged", ["pool"], "Dense"),
            _row("fc__act", 2, "fail", ["fc"], "Softmax")]
    fd = first_divergence(rows)
    assert fd.tensor == "fc__act" and fd.forge_layers == ["fc", "fc__act"]


def test_wilson_interval_matches_published_values():
    from validation.judge import wilson

    assert wilson(0, 10) == pytest.approx([0.0, 0.2775], abs=1e-4)
    assert wilson(5, 10) == pytest.approx([0.2366, 0.7634], abs=1e-4)
    assert wilson(10, 10) == pytest.approx([0.7225, 1.0], abs=1e-4)
    assert wilson(0, 0) == [0.0, 1.0]


def test_nan_inf_from_clean_inputs_is_the_first_divergence():
    from validation.verdicts import DataProblem

    nan = _row("conv", 1, "data_problem", ["resize"])
    nan.problems = [DataProblem(kind="nan_inf", image="dog", reason="net-conv.floats: 3 NaN",
                                fix="rescale")]
    later = _row("pool", 2, "data_problem", ["conv"])
    later.problems = [DataProblem(kind="nan_inf", image="dog", reason="NaN", fix="rescale")]
    rows = [_row("resize", 0, "pass", []), nan, later]
    fd = first_divergence(rows)
    assert fd.tensor == "conv" and "float16 overflow" in fd.hint
    truncated = _row("conv", 1, "data_problem", ["resize"])
    truncated.problems = [DataProblem(kind="truncated", image="dog", reason="short", fix="copy")]
    assert first_divergence([rows[0], truncated]) is None
