"""Run the validation suite as a user does — ``python -m pytest <repo>/validation ARGS`` in a
subprocess — and read what it printed and wrote (for tests and scripts that drive the suite)."""
import json
import os
import subprocess
import sys
from pathlib import Path

SUITE = Path(__file__).resolve().parent


class SuiteRun:
    """Exit code, output, pytest's last line and the results file of one suite run."""

    def __init__(self, proc, results_path):
        self.returncode = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.summary = (proc.stdout.strip().splitlines() or [""])[-1]
        self.results_path = results_path

    @property
    def results(self) -> dict:
        """The results file as JSON (what a user's tooling reads)."""
        return json.loads(Path(self.results_path).read_text())


class SuiteRunner:
    """``runner(*args, cwd=...)`` runs the suite with ``cache`` as its validation cache."""

    def __init__(self, cache):
        self.cache = cache

    def __call__(self, *args, cwd, results=True, timeout=1800) -> SuiteRun:
        cwd = Path(cwd)
        out = cwd / "results.json"
        cmd = [sys.executable, "-m", "pytest", str(SUITE), "-p", "no:cacheprovider",
               "--validation-cache", str(self.cache), *map(str, args)]
        if results:
            cmd += ["--results", str(out)]
        env = dict(os.environ)
        env.pop("PYTEST_XDIST_WORKER", None)
        env.pop("PYTEST_ADDOPTS", None)
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=env)
        return SuiteRun(proc, out)
