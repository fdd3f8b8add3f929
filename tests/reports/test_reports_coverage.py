"""The README's coverage table: rows from results files and manifests, one column per Keras
major version ("not run here" without results), written between the markers only."""
import dataclasses

import pytest
from reports_helpers import converted_manifest, make_results, write_results

from reports.__main__ import main
from reports.coverage import BEGIN, END, coverage_rows, coverage_table
from reports.results import ResultsError


def results_under(keras_version, tmp_path, name, **kwargs):
    results = make_results(**kwargs)
    results = dataclasses.replace(results, environment=dict(results.environment,
                                                            keras=keras_version))
    return write_results(tmp_path / name, results)


def manifest(tmp_path, model, gelus):
    return converted_manifest(tmp_path, model, gelus=gelus)


def test_rows_join_results_and_manifests_per_keras_version(tmp_path):
    files = [results_under("3.15.1", tmp_path, "a3.json", model="efficientnet_b0",
                           source="efficientnetb0", layers=240, tensors=300, parameters=5_000),
             results_under("2.15.0", tmp_path, "a2.json", model="efficientnet_b0",
                           source="efficientnetb0", layers=240, tensors=300, parameters=5_000,
                           fail_at=3),
             results_under("3.15.1", tmp_path, "b3.json", model="resnet_50", source="resnet50"),
             manifest(tmp_path, "efficientnetb0", 2)]
    rows = {r.model: r for r in coverage_rows(files)}
    assert rows["efficientnetb0"].family == "EfficientNet" and rows["resnet50"].family == "ResNet"
    assert rows["efficientnetb0"].kernels == {"GELUKernel": 2}
    assert rows["efficientnetb0"].results["3"].startswith("pass")
    assert rows["efficientnetb0"].results["2"].startswith("fail")
    table = coverage_table(rows.values())
    assert "| EfficientNet | efficientnetb0 | 224x224 | 240 | GELUKernel ×2 | 300 | 5,000 |" in table
    assert "| ResNet | resnet50 | 224x224 |" in table and "not run here" in table


def test_parameters_show_the_folded_keras_count_and_what_the_converter_adds(tmp_path):
    results = make_results(model="densenet_121", parameters=7_971_374)
    results = dataclasses.replace(
        results, environment=dict(results.environment, keras="3.15.1"),
        totals=dataclasses.replace(results.totals, converter_parameters=6))
    write_results(tmp_path / "d.json", results)
    table = coverage_table(coverage_rows([tmp_path / "d.json"]))
    assert "| 7,971,368 + 6 added |" in table


def test_readme_is_rewritten_between_the_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold table\n{END}\noutro\n")
    files = [str(results_under("3.15.1", tmp_path, "r.json", source="mobilenetv2",
                               model="mobilenet_v2"))]
    assert main(["coverage", *files, "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    assert "| MobileNetV2 | mobilenetv2 |" in text


def test_without_markers_or_results_the_error_says_what_to_do(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    files = [str(results_under("3.15.1", tmp_path, "r.json"))]
    with pytest.raises(ResultsError, match="coverage markers"):
        from reports.coverage import write_coverage
        write_coverage(files, readme)
    with pytest.raises(ResultsError, match="no results files"):
        coverage_rows([manifest(tmp_path, "x", 0)])
