"""Helpers of the validation-suite tests (a module of its own: every test folder has a conftest)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_IMAGE = ROOT / "core" / "data" / "images" / "final1-224.jpg"
DEFAULT_IMAGES = ROOT / "core" / "data" / "default_model" / "images"


def prepared(model, cache, images, **kw):
    """Conversion (+ stores) of a model through the suite's own pipeline, in this process."""
    from validation.pipeline import Pipeline, Settings

    settings = Settings(model=model, cache_dir=str(cache), images=[str(i) for i in images], **kw)
    return Pipeline(settings).prepare()


def evaluate(model, cache, images, fault=None, **kw):
    """The judged :class:`~validation.verdicts.Results` of a run (no baseline)."""
    from validation.run import evaluate_run

    return evaluate_run(prepared(model, cache, images, fault=fault, **kw),
                        baseline_path=str(Path(cache) / f"no-baseline-{model}.json")).results


def reference_dumps(manifest_path, manifest, images, out_dir):
    """Dump folder as the phone writes it, from the reference device (no fault)."""
    from device_pull.reference_device import run_reference_device

    builder = Path(manifest_path).parent / manifest["builder"]["file"]
    run_reference_device(builder, Path(manifest_path).parent, [str(i) for i in images], out_dir)
    return Path(out_dir)


class SuiteRun:
    def __init__(self, proc, results_path):
        self.returncode = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.results_path = results_path

    @property
    def results(self):
        return json.loads(Path(self.results_path).read_text())


class SuiteRunner:
    """``runner(*args, cwd=...)`` runs ``python -m pytest <repo>/validation ...`` in a subprocess
    with the tests' shared cache, and returns its exit code, output and results."""

    def __init__(self, cache):
        self.cache = cache

    def __call__(self, *args, cwd, results=True, timeout=1800):
        cwd = Path(cwd)
        out = cwd / "results.json"
        cmd = [sys.executable, "-m", "pytest", str(ROOT / "validation"), "-p", "no:cacheprovider",
               "--validation-cache", str(self.cache), *map(str, args)]
        if results:
            cmd += ["--results", str(out)]
        env = dict(os.environ)
        env.pop("PYTEST_XDIST_WORKER", None)
        env.pop("PYTEST_ADDOPTS", None)
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=env)
        return SuiteRun(proc, out)
