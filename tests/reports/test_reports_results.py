"""Reading results files, formatting, per-layer collapsing and baseline comparison."""
import json

import pytest

from reports_helpers import DATA, make_results, write_json

from reports import ResultsError, build_report, fmt, load_results
from reports.__main__ import main
from reports.markdown import FULL_TABLE_LIMIT, layer_tables, summary_row
from reports.results import compare_baseline, regressions


def test_rejects_other_format_naming_the_file(tmp_path):
    with pytest.raises(ResultsError, match=r"not_results\.json.*keras2metal\.store/1.*"
                       r"keras2metal\.results/1"):
        load_results(DATA / "not_results.json")
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ResultsError, match="broken.json: not valid JSON"):
        load_results(bad)
    with pytest.raises(ResultsError, match="nowhere.json: no such results file"):
        load_results(tmp_path / "nowhere.json")
    listing = write_json(tmp_path / "list.json", [1, 2])
    with pytest.raises(ResultsError, match="list.json: a list"):
        load_results(listing)


def test_cli_reports_errors_with_exit_code_2(tmp_path, capsys):
    code = main([str(DATA / "not_results.json"), "--out", str(tmp_path / "r.md")])
    assert code == 2
    assert "not_results.json" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()


def test_number_formats_are_fixed():
    assert fmt.num(None) == "n/a"
    assert fmt.num(0) == "0"
    assert fmt.num(0.123456) == "0.123"
    assert fmt.num(12345) == "12345"
    assert fmt.num(123456.0) == "1.23e+05"
    assert fmt.num(0.00012345) == "1.23e-04"
    assert fmt.err(0.05) == "5.00e-02"
    assert fmt.err(float("nan")) == "nan"
    assert fmt.percent(0.875) == "87.5%"
    assert fmt.integer(25530472) == "25,530,472"
    assert fmt.cosine(0.99999912) == "0.999999"
    assert fmt.shape([7, 5, 3]) == "7×5×3"
    assert fmt.code("a|b") == "`a\\|b`"


def test_missing_fields_render_as_na(tmp_path):
    minimal = write_json(tmp_path / "m.json", {"format": "keras2metal.results/1", "model": "m"})
    row = summary_row(load_results(minimal))
    assert row["net"] == "`m`"
    for column in ("device", "fps", "top-1", "top-5", "agreement top-1/top-5", "layers",
                   "tensors", "parameters", "worst tensor", "first divergence", "status"):
        assert row[column] == "n/a", column
    text = build_report([minimal], tmp_path / "r.md")
    assert "No per-tensor results" in text
    assert "no baseline to compare with" in text
    nulls = make_results(n=3)
    nulls.update(first_divergence=None, worst_tensor=None, accuracy=None, performance=None)
    row = summary_row(load_results(write_json(tmp_path / "n.json", nulls)))
    assert row["first divergence"] == "none" and row["worst tensor"] == "none"
    assert row["fps"] == "n/a" and row["top-1"] == "n/a"


def test_long_tables_collapse_to_failing_and_worst(tmp_path):
    data = make_results(n=FULL_TABLE_LIMIT + 20, fail_at=40)
    text = layer_tables(load_results(write_json(tmp_path / "r.json", data)))
    head, details = text.split("<details>")
    assert "Failing and worst" in head
    assert head.count("**fail**") == 10                      # 40..49 fail
    assert "`layer_000`" not in head and "`layer_000`" in details
    assert details.count("\n| ") == FULL_TABLE_LIMIT + 20 + 1   # header + every tensor
    short = make_results(n=5)
    assert "<details>" not in layer_tables(load_results(write_json(tmp_path / "s.json", short)))


def test_tables_are_sorted_by_index_whatever_the_file_order(tmp_path):
    data = make_results(n=6)
    shuffled = dict(data, tensors=list(reversed(data["tensors"])))
    a = layer_tables(load_results(write_json(tmp_path / "a.json", data)))
    b = layer_tables(load_results(write_json(tmp_path / "b.json", shuffled)))
    assert a == b


def test_baseline_comparison_lists_what_got_worse():
    results = load_results(DATA / "tiny_yolo.results.json")
    baseline = json.loads((DATA / "baselines" / "tiny_yolo.json").read_text())
    regs = compare_baseline(results, baseline)
    found = {(r["tensor"], r["metric"]): r for r in regs}
    assert found[("layer_003", "mean_abs")]["worse_by"] == "4.0x"
    assert found[("layer_003", "rel_error")]["worse_by"] == "3.0x"
    assert found[("layer_005", "status")]["current"] == "missing"
    assert found[("performance.fps", "fps")]["worse_by"] == "-28.7%"
    assert len(regs) == 4
    # an identical baseline: nothing got worse
    same = {"tensors": results["tensors"], "performance": results["performance"],
            "accuracy": results["accuracy"]}
    assert compare_baseline(results, same) == []


def test_own_regressions_win_over_baselines():
    results = load_results(DATA / "resnet_50.results.json")
    regs, source = regressions(results, DATA / "baselines")
    assert source == "results" and len(regs) == 3
    regs, source = regressions(load_results(DATA / "tiny_yolo.results.json"), None)
    assert (regs, source) == ([], None)


def test_worst_and_first_divergence_derived_when_absent(tmp_path):
    data = make_results(n=10, fail_at=6)
    del data["worst_tensor"], data["first_divergence"]
    data["tensors"][8]["nan_inf"] = 3
    path = write_json(tmp_path / "r.json", data)
    text = build_report([path], tmp_path / "r.md")
    row = [line for line in text.splitlines() if line.startswith("| `resnet_50`")][0]
    assert "`layer_009` rel_error 1.05e-01 / 5.00e-02" in row
    assert "`layer_006` (#7)" in row
    assert "**fail** (3 NaN/Inf)" in text
