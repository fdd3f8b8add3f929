"""The report over the eight networks and the embedded default: one file, every summary column
filled (a measurement, or the suite's "not judged"), and pictures that open and are not blank.
The report of real suite runs is tested with the suite (tests/validation/test_validation_evidence.py)."""
from reports_helpers import MODELS, all_models, assert_picture

from reports.__main__ import main
from reports.markdown import SUMMARY_COLUMNS


def summary_rows(text):
    lines = text.split("## Summary", 1)[1].strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return header, rows


def test_nine_models(tmp_path):
    paths = all_models(tmp_path / "results")
    out, plots = tmp_path / "REPORT.md", tmp_path / "plots"
    assert main([*map(str, paths), "--out", str(out), "--plots", str(plots)]) == 0
    text = out.read_text()
    header, rows = summary_rows(text)
    assert tuple(header) == SUMMARY_COLUMNS and len(rows) == len(MODELS)
    assert sorted(r["net"].split("`")[1] for r in rows) == sorted(m[0] for m in MODELS)
    for row in rows:
        empty = [c for c in SUMMARY_COLUMNS if row[c] in ("", "n/a")]
        assert not empty, f"{row['net']}: columns without a measurement or verdict: {empty}"
    detectors = {m[0] for m in MODELS if m[6] == "yolo"}
    for row in rows:
        if row["net"].split("`")[1] in detectors:
            assert row["top-1"] == row["agreement top-1/top-5"] == "not judged"
    assert text.count("\n## ") == 2 + len(MODELS) + 2   # summary, regressions, models, env, reproduce
    assert "pytest validation --model inception_resnet_v2" in text
    pictures = sorted(plots.glob("*.png"))
    assert len(pictures) == len(paths)
    for png in pictures:
        assert f"]({png.relative_to(tmp_path).as_posix()})" in text
        assert_picture(png, 800, 500)
