"""No pass without evidence, on real runs of the suite: every check without data or threshold is
"not judged" alike in the terminal, the results JSON and the report, and the report renders
exactly the suite's verdicts."""
import json
import re

import pytest

from validation_helpers import DEFAULT_IMAGES, prepared, reference_dumps
from validation.testing import SuiteRunner

FEW_IMAGES = sorted(DEFAULT_IMAGES.glob("*_00.png"))     # one image per class
BUDGET_WITHOUT_THRESHOLDS = "[rule]\na = 16.0\n"          # no [accuracy] or [performance] limits


def _check(results, name):
    return next(c for c in [*results["accuracy"]["checks"], *results["performance"]["checks"]]
                if c["name"] == name)


@pytest.fixture(scope="module")
def random_run(tmp_path_factory, suite_cache):
    """The default model with random weights, no baseline, a budget file without thresholds."""
    tmp = tmp_path_factory.mktemp("evidence")
    budget = tmp / "budget.toml"
    budget.write_text(BUDGET_WITHOUT_THRESHOLDS)
    run = SuiteRunner(suite_cache)(
        "--model", "default", "--weights", "random", "--images", *FEW_IMAGES,
        "--baseline", tmp / "no-baseline.json", "--budget", budget, "--report", tmp / "report.md",
        "-rs", cwd=tmp)
    return run, tmp


def test_random_weights_accuracy_is_not_judged_everywhere(random_run):
    run, tmp = random_run
    assert run.returncode == 0, run.output[-3000:]
    r = run.results
    why = "random weights: accuracy against labels is not meaningful"
    for name in ("device_top1", "device_top5", "device_vs_keras_top1", "device_vs_keras_top5"):
        assert _check(r, name)["verdict"] == "not_judged" and _check(r, name)["reason"] == why
    assert r["accuracy"]["device"] is None and r["accuracy"]["agreement"] is not None
    assert r["accuracy"]["labelled"] == len(FEW_IMAGES)       # the samples' own labels
    assert re.search(r"SKIPPED \[4\] .*test_outputs.py:\d+: not judged: " + why, run.output)
    assert why in (tmp / "report.md").read_text()


def test_reference_device_speed_is_host_emulation_not_fps(random_run):
    run, tmp = random_run
    r = run.results
    assert r["performance"]["fps"] is None and r["performance"]["source"] == "host emulation"
    for name in ("fps", "latency"):
        check = _check(r, name)
        assert check["verdict"] == "not_judged" and "host emulation" in check["reason"]
    assert "not device fps" in run.output
    report = (tmp / "report.md").read_text()
    assert "host emulation" in report and " fps |" not in report.split("## Regressions")[0]


def test_missing_baseline_and_threshold_are_not_judged(random_run):
    run, tmp = random_run
    r = run.results
    assert r["baseline"]["verdict"] == "not_judged"
    assert "nothing compared" in r["baseline"]["reason"]
    assert re.search(r"SKIPPED .*test_baseline.*nothing compared", run.output)
    assert "baseline: not judged" in run.output
    report = (tmp / "report.md").read_text()
    assert "not judged — no baseline at" in report and "Nothing got worse" not in report
    top5 = _check(r, "agreement_top5")
    assert top5["verdict"] == "not_judged" and "no threshold" in top5["reason"]
    assert "no threshold" in report


def test_report_renders_exactly_the_suites_verdicts(random_run):
    run, tmp = random_run
    r = run.results
    report = (tmp / "report.md").read_text()
    words = {"pass": "pass", "fail": "**FAIL**", "not_judged": "not judged",
             "data_problem": "**data problem**"}
    rendered = {}
    columns = None
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and "tensor" in cells and "verdict" in cells:
            columns = cells                                  # a per-tensor table's header
        elif columns and line.startswith("| ") and len(cells) == len(columns) and \
                cells[columns.index("tensor")].startswith("`"):
            rendered[cells[columns.index("tensor")].strip("`")] = cells[columns.index("verdict")]
        elif not line.startswith("|"):
            columns = None
    assert len(rendered) == len(r["tensors"])
    for t in r["tensors"]:
        assert rendered[t["name"]].startswith(words[t["verdict"]]), t["name"]
    # the report's verdict block is the terminal's, line for line
    block = report.split("```\n", 1)[1].split("```", 1)[0].strip().splitlines()
    summary = run.output.split("keras2metal validation ====", 1)[1]
    for line in block:
        assert line in summary, line
    assert f"VERDICT: {r['verdict'].upper()}" in block[-1]


def test_device_accuracy_without_device_outputs_is_not_judged(run_suite, suite_cache, tmp_path):
    p = prepared("default", suite_cache, FEW_IMAGES)
    dumps = reference_dumps(p.manifest_path, p.manifest, FEW_IMAGES, tmp_path / "dumps")
    output = p.manifest.output.tensor
    for f in dumps.rglob(f"shapes_net-{output}.floats"):
        f.unlink()
    for log in dumps.rglob("run-*.json"):       # the app logged no predictions either
        doc = json.loads(log.read_text())
        for entry in doc.get("images", []):
            entry.pop("top5", None)
        doc.pop("top5", None)
        log.write_text(json.dumps(doc))
    run = run_suite("--model", "default", "--device-dump", dumps, "--images", *FEW_IMAGES,
                    "-rs", cwd=tmp_path)
    r = run.results
    assert run.returncode == 1                  # the output tensor's dump is missing
    assert r["tensors"][-1]["verdict"] == "data_problem"
    assert r["accuracy"]["device"] is None and r["accuracy"]["agreement"] is None
    assert _check(r, "device_top1")["reason"] == "no device outputs to score"
    assert _check(r, "agreement_top1")["verdict"] == "not_judged"
    assert "no device outputs to score" in run.output
    assert "device top-1" not in run.output.split("VERDICT")[0]
