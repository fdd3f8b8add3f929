"""Fixtures for ingestion tests on real dumps: the embedded default model converted through the
validation pipeline's own cache (shared with the validation suite run as a subprocess), and the
reference device's run folders for a few of its sample images."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phone_layouts import IMAGES, ROOT


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
    summary = run_reference_device(manifest_path.parent / manifest["builder"]["file"],
                                   manifest_path.parent, IMAGES, out)
    return {Path(run["image"]).stem: Path(run["folder"]) for run in summary["runs"]}


class SuiteRun:
    def __init__(self, proc, results_path):
        self.returncode = proc.returncode
        self.summary = (proc.stdout.strip().splitlines() or [""])[-1]   # pytest's last line
        self.output = proc.stdout + proc.stderr
        self.results_path = results_path

    @property
    def results(self):
        import json

        return json.loads(Path(self.results_path).read_text())


@pytest.fixture
def run_suite(suite_cache, tmp_path):
    """``python -m pytest <repo>/validation ARGS`` in a subprocess, as a user runs it."""
    def run(*args):
        out = tmp_path / "results.json"
        cmd = [sys.executable, "-m", "pytest", str(ROOT / "validation"), "-p", "no:cacheprovider",
               "-p", "no:xdist", "--validation-cache", str(suite_cache), "--results", str(out),
               "-rA", *map(str, args)]
        env = dict(os.environ)
        env.pop("PYTEST_XDIST_WORKER", None)
        env.pop("PYTEST_ADDOPTS", None)
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1800,
                              env=env)
        return SuiteRun(proc, out)
    return run
