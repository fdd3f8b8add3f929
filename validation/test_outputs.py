"""Output-level tests: top-1/top-5 accuracy (device and Keras against --labels), device/Keras
top-k agreement, and fps/latency from the run log against the budget file's thresholds."""
import pytest

ACCURACY_CHECKS = ["device_top1", "device_top5", "device_vs_keras_top1", "device_vs_keras_top5",
                   "agreement_top1", "agreement_top5"]
PERFORMANCE_CHECKS = ["fps", "latency"]


def _check(checks, name):
    for check in checks:
        if check.name == name:
            if check.ok is None:
                pytest.skip(check.message)
            assert check.ok, check.message
            return
    pytest.fail(f"no check named {name}", pytrace=False)


@pytest.mark.parametrize("check", ACCURACY_CHECKS)
def test_accuracy(check, validation_run):
    _check(validation_run.accuracy_checks, check)


@pytest.mark.parametrize("check", PERFORMANCE_CHECKS)
def test_performance(check, validation_run):
    _check(validation_run.performance_checks, check)
