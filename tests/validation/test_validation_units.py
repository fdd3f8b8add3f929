"""Unit tests of the suite's library: metrics, budget files and rule, first divergence, labels,
baseline comparison."""
import json
import math

import numpy as np
import pytest

from validation.baseline import compare, mismatch
from validation.budgets import (EPS, BudgetError, BudgetFile, apply_overrides, default_budget,
                                load_budget_file)
from validation.divergence import first_divergence
from validation.evaluate import load_labels
from validation.metrics import compare as metrics


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
    assert small.rel_error == pytest.approx(16 * EPS)
    assert large.mean_abs == pytest.approx(100 * small.mean_abs, rel=1e-3)
    deep = default_budget({"golden_rms": 1.0, "golden_max_abs": 5.0}, 0.05, 0.05, "Conv", rule)
    assert deep.rel_error == pytest.approx(16 * EPS + 0.1)
    capped = default_budget({"golden_rms": 1.0, "golden_max_abs": 5.0}, 1.0, 1.0, "Conv", rule)
    assert capped.rel_error == 0.25
    soft = default_budget({"golden_rms": 1.0, "golden_max_abs": 1.0}, 0.01, 0.01, "Softmax", rule)
    assert soft.rel_error == pytest.approx(16 * EPS + 0.08)
    ok = {"mean_abs": 0.001, "max_abs": 0.01, "rel_error": 0.001, "cosine": 1.0, "nan_inf": 0}
    assert small.violations(ok) == []
    bad = dict(ok, rel_error=0.5, nan_inf=3)
    assert {v[0] for v in small.violations(bad)} == {"rel_error", "nan_inf"}


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


def _row(name, index, status, inputs, forge_type="Conv"):
    return {"name": name, "index": index, "status": status, "inputs": inputs,
            "forge_type": forge_type, "keras_layer": name + "_k", "reason": ""}


def test_first_divergence_looks_through_collect_and_missing():
    rows = [_row("resize", 0, "pass", []),
            _row("a", 1, "pass", ["resize"]),
            _row("b", 2, "missing", ["a"]),
            _row("__Collect_for_add__", 3, "not_compared", ["a", "b"], "Collect"),
            _row("add", 4, "fail", ["__Collect_for_add__"], "Add"),
            _row("c", 5, "fail", ["add"])]
    fd = first_divergence(rows)
    assert fd["tensor"] == "add" and fd["keras_layer"] == "add_k" and "merge" in fd["hint"]
    rows[4]["status"] = "pass"
    assert first_divergence(rows)["tensor"] == "c"
    rows[5]["status"] = "pass"
    assert first_divergence(rows) is None


def test_first_divergence_covers_the_uncompared_dense_before_softmax():
    rows = [_row("pool", 0, "pass", []), _row("fc", 1, "not_compared", ["pool"], "Dense"),
            _row("fc__act", 2, "fail", ["fc"], "Softmax")]
    fd = first_divergence(rows)
    assert fd["tensor"] == "fc__act" and fd["forge_layers"] == ["fc", "fc__act"]


def test_labels_formats(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"labels": {"dog.jpg": 3, "cat": 5}}))
    assert load_labels(a) == {"dog": 3, "cat": 5}
    b = tmp_path / "b.txt"
    b.write_text("# image class\ndog.jpg 3\ncat.png, 5\n")
    assert load_labels(b) == {"dog": 3, "cat": 5}
    b.write_text("dog.jpg three\n")
    with pytest.raises(ValueError, match="not an integer"):
        load_labels(b)


def test_baseline_compare_and_mismatch():
    settings = {"tolerance": 1.5, "floor": 0.0, "metrics": ["mean_abs"], "accuracy_drop": 0.0,
                "fps_drop": 0.5}
    base = {"model": "m", "weights": "random", "seed": 0, "images": ["a"], "device": "iPhone",
            "tensors": {"conv": {"mean_abs": 0.01}, "pool": {"mean_abs": 0.01}},
            "accuracy": {"device": {"top1": 1.0, "top5": 1.0}}, "performance": {"fps": 20.0}}
    cur = {"model": "m", "weights": "random", "seed": 0, "images": ["a"], "device": "iPhone",
           "tensors": [{"name": "conv", "status": "pass", "mean_abs": 0.05},
                       {"name": "pool", "status": "pass", "mean_abs": 0.012}],
           "accuracy": {"device": {"top1": 0.5, "top5": 1.0}}, "performance": {"fps": 5.0}}
    regs = {r["tensor"]: r for r in compare(base, cur, settings)}
    assert set(regs) == {"conv", "accuracy.device.top1", "performance.fps"}
    assert regs["conv"]["worse_by"] == "5.0x"
    assert mismatch(base, cur) is None
    assert "seed" in mismatch(base, dict(cur, seed=1))
