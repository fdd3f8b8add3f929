"""Regression gating: no per-tensor error, accuracy or fps worse than the accepted baseline
beyond the budget file's tolerance (``--update-baseline`` rewrites the baseline instead)."""
import pytest

from validation.baseline import diff_table


def test_baseline(validation_run, pytestconfig):
    if pytestconfig.getoption("--update-baseline"):
        return  # the baseline is rewritten at the end of the session
    regressions = validation_run.results["regressions"]
    if not regressions and validation_run.baseline_note:
        pytest.skip(validation_run.baseline_note)
    if regressions:
        pytest.fail(f"{len(regressions)} metric(s) worse than the baseline "
                    f"{validation_run.baseline_path} beyond tolerance:\n{diff_table(regressions)}\n"
                    "accept the new values with --update-baseline", pytrace=False)
