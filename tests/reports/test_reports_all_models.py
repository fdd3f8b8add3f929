"""The report over the eight networks and the embedded default: one file, every summary column
filled, and pictures that open and are not blank.

``K2M_RESULTS_DIR=DIR`` runs the same checks on the results files the validation suite wrote
(``pytest validation --model M ... --results DIR/M.json`` for every model).
"""
import json
import os
from pathlib import Path

import pytest

from reports_helpers import MODELS, all_models, assert_picture

from reports.__main__ import main
from reports.markdown import SUMMARY_COLUMNS


CLASSIFIER_ONLY = ("top-1", "top-5", "agreement top-1/top-5")


def summary_rows(text):
    lines = text.split("## Summary", 1)[1].strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return header, rows


def check_report(paths, tmp_path, expect_models=None):
    out, plots = tmp_path / "REPORT.md", tmp_path / "plots"
    assert main([*map(str, paths), "--out", str(out), "--plots", str(plots)]) == 0
    text = out.read_text()
    header, rows = summary_rows(text)
    assert tuple(header) == SUMMARY_COLUMNS
    assert len(rows) == len(paths)
    if expect_models:
        assert sorted(r["net"].split("`")[1] for r in rows) == sorted(expect_models)
    detectors = {json.loads(Path(p).read_text())["model"] for p in paths
                 if json.loads(Path(p).read_text())["accuracy"].get("agreement") is None}
    for row in rows:
        # a detector (YOLO) has no class scores: top-k accuracy and agreement do not apply
        exempt = CLASSIFIER_ONLY if row["net"].split("`")[1] in detectors else ()
        empty = [c for c in SUMMARY_COLUMNS if row[c] in ("", "n/a") and c not in exempt]
        assert not empty, f"{row['net']}: columns without a measurement: {empty}"
    pictures = sorted(plots.glob("*.png"))
    assert len(pictures) == len(paths)
    for png in pictures:
        assert f"]({png.relative_to(tmp_path).as_posix()})" in text
        assert_picture(png, 800, 500)
    return text


def test_nine_models(tmp_path):
    paths = all_models(tmp_path / "results")
    text = check_report(paths, tmp_path, [m[0] for m in MODELS])
    assert text.count("\n## ") == 2 + len(MODELS) + 2   # summary, regressions, models, env, reproduce
    assert "pytest validation --model inception_resnet_v2" in text


@pytest.mark.skipif(not os.environ.get("K2M_RESULTS_DIR"),
                    reason="set K2M_RESULTS_DIR to a folder of the validation suite's results")
def test_validation_suite_results(tmp_path):
    paths = sorted(Path(os.environ["K2M_RESULTS_DIR"]).glob("*.json"))
    assert paths, f"{os.environ['K2M_RESULTS_DIR']}: no results files"
    check_report(paths, tmp_path)
