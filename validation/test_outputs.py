"""Output-level checks: top-1/top-5 accuracy (device and Keras against --labels), device/Keras
top-k agreement, a detector's device/Keras box agreement, and fps/latency of a phone run against the budget file's thresholds.  Each
test renders the judge's check: a check without data or threshold is skipped with its reason."""
import pytest

ACCURACY_CHECKS = ["device_top1", "device_top5", "device_vs_keras_top1", "device_vs_keras_top5",
                   "agreement_top1", "agreement_top5", "box_agreement"]
PERFORMANCE_CHECKS = ["fps", "latency"]


def _render(checks, name):
    check = next((c for c in checks if c.name == name), None)
    if check is None:
        pytest.fail(f"the results hold no check named {name}", pytrace=False)
    if check.verdict == "not_judged":
        pytest.skip(f"not judged: {check.reason}")
    assert check.verdict == "pass", check.reason


@pytest.mark.parametrize("check", ACCURACY_CHECKS)
def test_accuracy(check, results):
    _render(results.accuracy.checks, check)


@pytest.mark.parametrize("check", PERFORMANCE_CHECKS)
def test_performance(check, results):
    _render(results.performance.checks, check)
