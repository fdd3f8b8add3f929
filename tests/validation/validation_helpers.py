"""Helpers of the validation-suite tests (a module of its own: every test folder has a conftest)."""
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

    builder = Path(manifest_path).parent / manifest.builder.file
    run_reference_device(builder, Path(manifest_path).parent, [str(i) for i in images], out_dir)
    return Path(out_dir)


def fingerprint(measurement) -> str:
    """What of a :class:`validation.stream.Measurement` must not depend on how it was run
    (workers, shards, retries): every tensor's statistics and problems, the predictions, the
    kept images and the unreadable ones."""
    tally = measurement.tally
    return repr((sorted((name, t.acc.result(), t.problems) for name, t in tally.tensors.items()),
                 sorted(tally.predictions.items()), measurement.kept_because, tally.unreadable))
