"""The suite passes on all eight zoo networks with seeded weights on the reference device."""
import pytest

from validation_helpers import SAMPLE_IMAGE

NETWORKS = ["mobilenet", "tiny_yolo", "resnet50", "inception_v3", "xception",
            "inception_resnet_v2", "vgg16", "yolo"]


@pytest.mark.slow
@pytest.mark.parametrize("model", NETWORKS)
def test_zoo_network_passes(model, run_suite, tmp_path):
    run = run_suite("--model", model, "--images", SAMPLE_IMAGE, "-q", cwd=tmp_path, timeout=3600)
    assert run.returncode == 0, run.output[-4000:]
    r = run.results
    assert r["verdict"] == "pass" and r["first_divergence"] is None
    assert r["source_model"] == model and r["weights"] == "random" and r["seed"] == 0
    verdicts = {t["verdict"] for t in r["tensors"]}
    assert verdicts <= {"pass", "not_judged"} and "pass" in verdicts
    if r["accuracy"]["agreement"] is not None:
        assert r["accuracy"]["agreement"]["top1"] == 1.0
