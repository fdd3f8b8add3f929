"""One validation run, evaluated: read the stores, measure, and let the judge decide.

``evaluate_run(prepared, ...)`` → :class:`Evaluation` whose ``results`` is the run's
:class:`~validation.verdicts.Results` (everything the tests assert, the terminal prints, the
results JSON holds and the reports render) and whose ``baseline_doc`` is what
``--update-baseline`` writes.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from imagesets import imagenet_classes, load_labels
from validation import baseline as baselines
from validation.budgets import BudgetFile, find_budget_file, load_budget_file
from core.contracts import read
from validation.measurements import Measurements, box_counts, comparisons as comparisons_of, \
    predictions as predictions_of
from validation.judge import judge_run
from validation.pipeline import DEFAULT_MODEL
from validation.precheck import Precheck
from validation.results import environment
from validation.verdicts import Results


@dataclass
class Evaluation:
    results: Results
    baseline_path: Path
    baseline_doc: object          # the Baseline --update-baseline writes
    budget_file: BudgetFile       # the budgets the run was judged by


def budget_candidates(settings, manifest) -> list:
    return [settings.zoo_key, manifest.name,
            None if settings.zoo_key else Path(settings.model).stem]


def resolve_budget_file(settings, manifest, path=None) -> BudgetFile:
    if path:
        return load_budget_file(path)
    found = find_budget_file(budget_candidates(settings, manifest))
    return load_budget_file(found) if found else BudgetFile()


def model_classes(settings, manifest):
    """The model's class names in output order, when known (to read labels given as names)."""
    classes = manifest.output.classes
    if settings.zoo_key == DEFAULT_MODEL:
        from core.default_model import CLASSES

        return list(CLASSES)
    if settings.zoo_key and classes == 1000:
        return imagenet_classes()
    return None


def performance_facts(run) -> dict:
    """The device side's timings as the judge reads them (phone run logs, or host time)."""
    if run.host_latency_s:
        lat = run.host_latency_s
        return {"latency_s": {"mean": sum(lat) / len(lat), "min": min(lat), "max": max(lat)}}
    return {"fps": run.fps, "latency_s": run.latency_s, "compile_s": run.compile_s,
            "run_log": bool(run.run_logs)}


def _weights_label(settings) -> str:
    return settings.weights if not Path(str(settings.weights)).is_file() else str(settings.weights)


def evaluate_run(prepared, *, budget_path=None, baseline_path=None, command: str = "",
                 update_baseline: bool = False, precheck: Optional[Precheck] = None) -> Evaluation:
    s, manifest = prepared.settings, prepared.manifest
    budget_file = resolve_budget_file(s, manifest, budget_path)
    labels = load_labels(s.labels, prepared.image_paths, model_classes(s, manifest)) \
        if s.labels else {}
    m = read(Measurements, prepared.measurements_path)
    comparisons = comparisons_of(m, manifest)
    preds = predictions_of(m, labels)
    log, dev_name = performance_facts(m.run), m.run.device
    images = list(m.images.values())

    facts = {"model": manifest.name, "source_model": s.zoo_key or str(s.model),
             "weights": _weights_label(s), "seed": s.seed, "device": dev_name, "images": images,
             "environment": environment(), "command": command}
    target = baselines.target_of(dev_name, facts["environment"])
    path = Path(baseline_path) if baseline_path else baselines.default_path(s.model_label, target)
    doc: Optional[baselines.Baseline] = None
    note = None
    if update_baseline:
        note = f"--update-baseline: {path} is rewritten with this run"
    else:
        try:
            doc = baselines.load(path)
        except ValueError as exc:
            note = str(exc)
    results = judge_run(comparisons=comparisons, predictions=preds, run_log=log,
                        manifest=manifest, budget_file=budget_file, facts=facts,
                        baseline_path=path, baseline_doc=doc, baseline_note=note,
                        unreadable=m.unreadable, precheck=precheck, boxes=box_counts(m))
    return Evaluation(results, path, baselines.build(results, budget_file.baseline["metrics"]),
                      budget_file)


__all__ = ["evaluate_run", "Evaluation"]
