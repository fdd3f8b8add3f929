"""Fixtures for ingestion tests on real dumps: the embedded default model converted through the
validation pipeline's own cache (shared with the validation suite run as a subprocess), and the
reference device's run folders for a few of its sample images."""
import os
from pathlib import Path

import pytest

from phone_layouts import IMAGES
from validation.testing import SuiteRunner


@pytest.fixture(scope="session")
def suite_cache(tmp_path_factory):
    """The validation cache folder, the same one tests/validation uses in a session."""
    env = os.environ.get("KERAS2METAL_TEST_CACHE")
    path = Path(env) if env else \
        tmp_path_factory.getbasetemp().parent / "keras2metal-validation-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def default_conversion(suite_cache):
    """(manifest path, manifest) of the default model with its trained weights."""
    from validation.pipeline import Pipeline, Settings

    prepared = Pipeline(Settings(model="default", cache_dir=str(suite_cache))).prepare(
        stores=False)
    return prepared.manifest_path, prepared.manifest


@pytest.fixture(scope="session")
def reference_runs(default_conversion, tmp_path_factory):
    """image key -> the reference device's run folder of that image (dumps, shapes json, run
    log)."""
    from device_pull.reference_device import run_reference_device

    manifest_path, manifest = default_conversion
    out = tmp_path_factory.mktemp("reference_runs")
    summary = run_reference_device(manifest_path.parent / manifest.builder.file,
                                   manifest_path.parent, IMAGES, out)
    return {Path(run["image"]).stem: Path(run["folder"]) for run in summary["runs"]}


@pytest.fixture
def run_suite(suite_cache, tmp_path):
    """``python -m pytest <repo>/validation ARGS`` in a subprocess, as a user runs it."""
    runner = SuiteRunner(suite_cache)

    def run(*args):
        return runner("-p", "no:xdist", "-rA", *args, cwd=tmp_path)
    return run
