"""The suite passes on the embedded default network and all eight zoo networks (seeded weights) on
the reference device, under whichever Keras the environment has.

With ``$KERAS2METAL_MATRIX_DIR`` set (tox sets it per environment), each test also records what
the environment converted and whether it validated, for the cross-version matrix
(``python -m reports matrix``)."""
import os

import pytest

from validation_helpers import SAMPLE_IMAGE

NETWORKS = ["default", "mobilenet", "tiny_yolo", "resnet50", "inception_v3", "xception",
            "inception_resnet_v2", "vgg16", "yolo"]


def record_for_matrix(model, cache, images, run):
    """The suite's conversion of ``model`` (found by the pipeline's own cache key) and the Keras
    model it converted, as this environment's matrix entry."""
    out_dir = os.environ.get("KERAS2METAL_MATRIX_DIR")
    if not out_dir:
        return
    from reports.matrix import record
    from validation.pipeline import Pipeline, Settings

    pipeline = Pipeline(Settings(model=model, cache_dir=str(cache), images=images))
    folder = pipeline.folder()
    converted = folder.is_dir()
    verdict = run.results["verdict"] if run.results_path.is_file() else None
    detail = None if run.returncode == 0 else run.output.strip().splitlines()[-1][:300]
    record(out_dir, model, folder if converted else None,
           validates=None if verdict is None else (verdict == "pass" and run.returncode == 0),
           detail=detail, keras_model=pipeline.keras_model()[0] if converted else None)


@pytest.mark.slow
@pytest.mark.parametrize("model", NETWORKS)
def test_zoo_network_passes(model, run_suite, suite_cache, tmp_path):
    images = None if model == "default" else [str(SAMPLE_IMAGE)]
    run = run_suite("--model", model, *(["--images", *images] if images else []), "-q",
                    cwd=tmp_path, timeout=3600)
    record_for_matrix(model, suite_cache, images, run)
    assert run.returncode == 0, run.output[-4000:]
    r = run.results
    assert r["verdict"] == "pass" and r["first_divergence"] is None
    assert r["source_model"] == model and r["seed"] == 0
    assert r["weights"] == ("trained" if model == "default" else "random")
    verdicts = {t["verdict"] for t in r["tensors"]}
    assert verdicts <= {"pass", "not_judged"} and "pass" in verdicts
    if r["accuracy"]["agreement"] is not None:
        assert r["accuracy"]["agreement"]["top1"] == 1.0
