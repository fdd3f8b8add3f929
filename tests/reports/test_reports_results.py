"""Reading results files, formatting, and rendering the suite's verdicts exactly."""
import json
import re

import pytest

from reports_helpers import DATA, make_results, write_results

from reports import ResultsError, build_report, fmt, load_results
from reports.__main__ import main
from reports.markdown import FULL_TABLE_LIMIT, layer_tables, summary_row


def test_rejects_other_formats_and_bad_fields_naming_the_file(tmp_path):
    with pytest.raises(ResultsError, match=r"not_results\.json: format is 'keras2metal\.store/1', "
                                           r"expected 'keras2metal\.results/2'"):
        load_results(DATA / "not_results.json")
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ResultsError, match="broken.json: not valid JSON"):
        load_results(bad)
    with pytest.raises(ResultsError, match="nowhere.json: no such file"):
        load_results(tmp_path / "nowhere.json")
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ResultsError, match="list.json: a list at the top level"):
        load_results(listing)
    doc = json.loads(write_results(tmp_path / "ok.json", make_results(n=3)).read_text())
    doc["tensors"][1]["verdict"] = "passed"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match=r"wrong.json: field tensors\.1\.verdict"):
        load_results(wrong)


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


def test_every_verdict_is_rendered_as_the_suite_gave_it(tmp_path):
    results = make_results(n=12, fail_at=9, problem_at=4, weights="random", baseline="fail")
    path = write_results(tmp_path / "r.json", results)
    text = build_report([path], tmp_path / "r.md")
    rows = {line.split("|")[2].strip(): line.split("|")[-2].strip()
            for line in text.splitlines() if line.startswith("| ") and "`layer_" in line}
    for t in results.tensors:
        expected = {"pass": "pass", "fail": "**FAIL**", "not_judged": "not judged",
                    "data_problem": "**data problem** (truncated)"}[t.verdict]
        assert rows[f"`{t.name}`"] == expected, t.name
    row = summary_row(load_results(path))
    assert row["verdict"] == "**FAIL**"
    assert row["first divergence"] == "`layer_009` (#10)"
    assert row["first data problem"] == "`layer_004` (#5) truncated"
    assert row["top-1"] == "not judged" and row["speed"] == "host emulation 81 ms"
    assert "random weights: accuracy against labels is not meaningful" in text
    assert re.search(r"\| `layer_003` +\| mean_abs +\|", text) and "4.0x" in text  # its regressions
    assert "Nothing got worse" not in text


def test_no_baseline_and_reference_device_speed_are_not_claimed(tmp_path):
    path = write_results(tmp_path / "r.json", make_results(n=4))
    text = build_report([path], tmp_path / "r.md")
    assert "not judged — no baseline: nothing compared" in text
    assert "fps" not in summary_row(load_results(path))["speed"]


def test_parameters_of_layers_the_converter_adds_are_shown_apart(tmp_path):
    import dataclasses

    results = make_results(parameters=7_971_374)
    added = dataclasses.replace(results, totals=dataclasses.replace(results.totals,
                                                                   converter_parameters=6))
    path = write_results(tmp_path / "r.json", added)
    text = build_report([path], tmp_path / "r.md")
    assert "7,971,374 parameters (6 in layers the converter adds)" in text
    assert summary_row(load_results(path))["parameters"] == \
        "7,971,374 (6 in layers the converter adds)"
    plain = write_results(tmp_path / "p.json", results)
    assert summary_row(load_results(plain))["parameters"] == "7,971,374"


def test_the_header_names_the_device_or_says_none_was_named():
    from device_pull.ingest import UNKNOWN_DEVICE
    from validation.verdicts import verdict_lines

    assert ") on the iPhone X, " in verdict_lines(make_results(device="iPhone X"))[0]
    assert ") on a device no run log names, " in \
        verdict_lines(make_results(device=UNKNOWN_DEVICE))[0]


def test_long_tables_collapse_to_failing_and_worst(tmp_path):
    data = make_results(n=FULL_TABLE_LIMIT + 20, fail_at=40)
    text = layer_tables(load_results(write_results(tmp_path / "r.json", data)))
    head, details = text.split("<details>")
    assert "Not passing and worst" in head
    assert head.count("**FAIL**") == 10                      # 40..49 fail
    assert "`layer_000`" not in head and "`layer_000`" in details
    assert details.count("\n| ") == FULL_TABLE_LIMIT + 20 + 1   # header + every tensor
    short = make_results(n=5)
    assert "<details>" not in layer_tables(load_results(write_results(tmp_path / "s.json", short)))


def test_tables_are_sorted_by_index_whatever_the_file_order(tmp_path):
    data = make_results(n=6)
    shuffled = make_results(n=6)
    shuffled.tensors = list(reversed(shuffled.tensors))
    a = layer_tables(load_results(write_results(tmp_path / "a.json", data)))
    b = layer_tables(load_results(write_results(tmp_path / "b.json", shuffled)))
    assert a == b


def test_a_detectors_box_agreement_is_rendered_as_judged(tmp_path):
    from validation.verdicts import BoxAgreement, Check, ImageBoxAgreement

    results = make_results(n=3)
    per_image = [ImageBoxAgreement(image=f"img{k:02d}.jpg", keras_boxes=10, device_boxes=10,
                                   matched=10 - k % 3, agreement=(10 - k % 3) / 10)
                 for k in range(12)]
    results.accuracy.boxes = BoxAgreement(
        score_threshold=0.5, match_iou=0.9, images=12, keras_boxes=120, device_boxes=120,
        matched=108, agreement=0.9, per_image=per_image, unmeasured={"bad.jpg": "missing head"})
    results.accuracy.checks.append(Check(name="box_agreement", verdict="fail", value=0.9,
                                         threshold=0.95, reason="device and Keras boxes agree "
                                         "on 0.900, minimum 0.95"))
    text = build_report([write_results(tmp_path / "det.json", results)], tmp_path / "r.md")
    assert "**boxes 90.0%**" in summary_row(load_results(tmp_path / "det.json"))["agreement top-1/top-5"]
    assert "### Box agreement" in text
    assert "boxes: device and Keras agree on 0.900 (108 of 120 boxes paired by class and IoU >= " \
           "0.9" in text
    worst = text.index("`img02.jpg`")
    assert worst < text.index("`img00.jpg`")                     # worst images first
    assert "<summary>All 12 images</summary>" in text
    assert "- `bad.jpg` left out: missing head" in text
    assert "check `box_agreement` (**FAIL**)" in text
