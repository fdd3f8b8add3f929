"""The report of a fixed pair of results files is pinned byte for byte.

Regenerate the expected file after an intended change with
``K2M_REGEN_GOLDEN=1 pytest tests/reports/test_reports_golden.py`` and review the diff.
"""
import os
import shutil

import pytest

from reports_helpers import DATA

from reports import write_report

GOLDEN = DATA / "expected_report.md"
INPUTS = ["resnet_50.results.json", "tiny_yolo.results.json"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    for name in INPUTS:
        shutil.copy(DATA / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _render():
    out = write_report(INPUTS, "report.md", plots_dir="plots")
    return out.read_text()


def test_report_matches_golden(workdir):
    text = _render()
    if os.environ.get("K2M_REGEN_GOLDEN"):
        GOLDEN.write_text(text)
        pytest.skip(f"regenerated {GOLDEN}")
    assert GOLDEN.is_file(), f"{GOLDEN} is missing; run with K2M_REGEN_GOLDEN=1 to write it"
    expected = GOLDEN.read_text()
    assert text == expected, ("report differs from the golden file; if intended, regenerate it "
                              "with K2M_REGEN_GOLDEN=1 and review the diff")


def test_report_is_deterministic_and_order_independent(workdir):
    first = _render()
    second = write_report(list(reversed(INPUTS)), "report.md", plots_dir="plots").read_text()
    # only the reproduce command (which echoes the arguments) may differ
    strip = [line for line in first.splitlines() if not line.startswith("python -m reports")]
    assert strip == [line for line in second.splitlines()
                     if not line.startswith("python -m reports")]
    assert _render() == first
    assert (workdir / "plots" / "resnet_50-error-by-depth.png").is_file()
    assert (workdir / "plots" / "tiny_yolo-error-by-depth.png").is_file()
    assert not list(workdir.glob(".*part*")), "temporary files left behind"
