"""Every convolutional keras.applications family passes the suite with seeded weights on the
reference device, and so does a grayscale model.

The smallest member of each family not in test_validation_zoo.py runs in CI (``slow``); the rest
are marked ``coverage`` (not run by default: ``pytest -m coverage tests/validation`` runs them).
Each run leaves its results file and the conversion's manifest in ``$KERAS2METAL_COVERAGE_DIR``
(default: a temporary folder), from which ``python -m reports coverage DIR/*.json --readme
README.md`` writes the README's coverage table.
"""
import os
import shutil
from pathlib import Path

import pytest

from core.manifest import load_manifest
from validation_helpers import SAMPLE_IMAGE

SMALLEST = ["resnet50v2", "mobilenetv2", "mobilenetv3small", "densenet121", "nasnetmobile",
            "efficientnetb0", "efficientnetv2b0", "convnexttiny"]
# The largest members need 10-13 GB each (golden activations of every layer at 600x600 for
# EfficientNetB7): with ``-n 2 --dist loadgroup`` they run one after another on one worker.
LARGE = pytest.mark.xdist_group("large")
REST = ["vgg19", "resnet101", "resnet152", "resnet101v2", "resnet152v2", "mobilenetv3large",
        "densenet169", "densenet201", pytest.param("nasnetlarge", marks=LARGE),
        *(f"efficientnetb{k}" for k in range(1, 6)),
        *(pytest.param(f"efficientnetb{k}", marks=LARGE) for k in (6, 7)),
        "efficientnetv2b1", "efficientnetv2b2", "efficientnetv2b3", "efficientnetv2s",
        "convnextsmall", pytest.param("convnextbase", marks=LARGE)]


@pytest.fixture(scope="session")
def coverage_dir(tmp_path_factory):
    env = os.environ.get("KERAS2METAL_COVERAGE_DIR")
    path = Path(env) if env else tmp_path_factory.mktemp("coverage")
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_for_the_table(model, run, suite_cache, coverage_dir):
    """The run's results file and its conversion's manifest, named after the model."""
    assert Path(run.results_path).is_file(), f"no results written:\n{run.output[-4000:]}"
    shutil.copy(run.results_path, coverage_dir / f"{model}.results.json")
    manifests = sorted((Path(suite_cache)).glob(f"{model}-*/Parameters/*.manifest.json"),
                       key=lambda p: p.stat().st_mtime)
    if manifests:
        shutil.copy(manifests[-1], coverage_dir / f"{model}.manifest.json")


def check_family_member(model, run_suite, suite_cache, coverage_dir, tmp_path):
    run = run_suite("--model", model, "--images", SAMPLE_IMAGE, "-q", cwd=tmp_path, timeout=5400)
    keep_for_the_table(model, run, suite_cache, coverage_dir)
    assert run.returncode == 0, run.output[-4000:]
    r = run.results
    assert r["verdict"] == "pass" and r["first_divergence"] is None
    assert r["source_model"] == model and r["weights"] == "random" and r["seed"] == 0
    verdicts = {t["verdict"] for t in r["tensors"]}
    assert verdicts <= {"pass", "not_judged"} and "pass" in verdicts
    # the device loads the folded Keras model's parameters, and those of the layers the
    # converter adds besides (counted apart)
    manifest = load_manifest(coverage_dir / f"{model}.manifest.json")
    totals = manifest.totals
    assert totals.parameters - totals.converter_parameters == \
        manifest.source.fold_check.keras_params_folded


@pytest.mark.slow
@pytest.mark.parametrize("model", SMALLEST)
def test_smallest_family_member_passes(model, run_suite, suite_cache, coverage_dir, tmp_path):
    check_family_member(model, run_suite, suite_cache, coverage_dir, tmp_path)


@pytest.mark.slow
@pytest.mark.coverage
@pytest.mark.parametrize("model", REST)
def test_family_member_passes(model, run_suite, suite_cache, coverage_dir, tmp_path):
    check_family_member(model, run_suite, suite_cache, coverage_dir, tmp_path)


@pytest.mark.slow
def test_grayscale_model_converts_and_passes(run_suite, tmp_path):
    """A one-channel model: Forge's RGB2Gray then [0, 1], golden from the same luminance."""
    from core.kerasenv import KERAS3, keras
    from core.seeding import seeded_init

    L = keras.layers
    inputs = keras.Input((64, 64, 1), name="gray")
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv1")(inputs)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Activation("swish", name="act")(x)
    x = L.Conv2D(32, 1, name="conv2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, L.Dense(10, activation="softmax", name="logits")(x), name="gray_net")
    seeded_init(model, 0, "none")
    path = tmp_path / ("gray_net.keras" if KERAS3 else "gray_net.h5")
    model.save(str(path))
    run = run_suite("--model", path, "--images", SAMPLE_IMAGE, "-q", cwd=tmp_path)
    assert run.returncode == 0, run.output[-4000:]
    r = run.results
    assert r["verdict"] == "pass" and r["first_divergence"] is None
    gray = next(t for t in r["tensors"] if t["forge_type"] == "Custom")
    assert gray["verdict"] == "pass" and gray["shape"] == [64, 64, 1]
