"""Fixtures for the tests of the validation suite's machinery.

``suite_cache``: one cache folder of conversions and stores shared by every test of the session
(and by pytest-xdist workers: it lives next to the per-worker temporary folders; the pipeline
locks what it writes).  ``$KERAS2METAL_TEST_CACHE`` points it at a persistent folder instead.
``run_suite(*args, cwd=...)`` runs ``python -m pytest <repo>/validation ...`` in a subprocess.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from validation_helpers import ROOT


@pytest.fixture(scope="session")
def suite_cache(tmp_path_factory):
    env = os.environ.get("KERAS2METAL_TEST_CACHE")
    if env:
        path = Path(env)
    else:
        path = tmp_path_factory.getbasetemp().parent / "keras2metal-validation-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


class SuiteRun:
    def __init__(self, proc, results_path):
        self.returncode = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.results_path = results_path

    @property
    def results(self):
        return json.loads(Path(self.results_path).read_text())


@pytest.fixture
def run_suite(suite_cache, tmp_path):
    def run(*args, cwd=None, results=True, timeout=1800):
        cwd = Path(cwd or tmp_path)
        out = cwd / "results.json"
        cmd = [sys.executable, "-m", "pytest", str(ROOT / "validation"), "-p", "no:cacheprovider",
               "--validation-cache", str(suite_cache), *map(str, args)]
        if results:
            cmd += ["--results", str(out)]
        env = dict(os.environ)
        env.pop("PYTEST_XDIST_WORKER", None)
        env.pop("PYTEST_ADDOPTS", None)
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=env)
        return SuiteRun(proc, out)
    return run
