"""Regression gating: no per-tensor error, accuracy or fps worse than the accepted baseline
beyond the budget file's tolerance (``--update-baseline`` rewrites the baseline instead)."""
import pytest

from validation.baseline import diff_table


def test_baseline(results):
    b = results.baseline
    if b.verdict == "not_judged":
        pytest.skip(f"not judged: {b.reason}")
    if b.verdict == "fail":
        pytest.fail(f"{len(b.regressions)} metric(s) worse than the baseline {b.path} beyond "
                    f"tolerance:\n{diff_table(b.regressions)}\naccept the new values with "
                    "--update-baseline", pytrace=False)
