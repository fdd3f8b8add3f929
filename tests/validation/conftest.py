"""Fixtures for the tests of the validation suite's machinery.

``suite_cache``: one cache folder of conversions and stores shared by every test of the session
(and by pytest-xdist workers: it lives next to the per-worker temporary folders; the pipeline
locks what it writes).  ``$KERAS2METAL_TEST_CACHE`` points it at a persistent folder instead.
``run_suite(*args, cwd=...)`` runs ``python -m pytest <repo>/validation ...`` in a subprocess.
"""
import os
from pathlib import Path

import pytest

from validation.testing import SuiteRunner


@pytest.fixture(scope="session")
def suite_cache(tmp_path_factory):
    env = os.environ.get("KERAS2METAL_TEST_CACHE")
    if env:
        path = Path(env)
    else:
        path = tmp_path_factory.getbasetemp().parent / "keras2metal-validation-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def run_suite(suite_cache, tmp_path):
    runner = SuiteRunner(suite_cache)

    def run(*args, cwd=None, results=True, timeout=1800):
        return runner(*args, cwd=cwd or tmp_path, results=results, timeout=timeout)
    return run


@pytest.fixture
def rule_only_budget(tmp_path):
    """A budget file with the default rule and no accuracy or speed thresholds: for machinery
    tests on a few images, where an accuracy minimum measured on all 32 samples does not apply."""
    path = tmp_path / "rule-only.toml"
    path.write_text("[rule]\na = 16.0\n")
    return path
