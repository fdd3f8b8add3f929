"""One validation run, evaluated: read the stores, measure, and let the judge decide.

``evaluate_run(prepared, ...)`` → :class:`Evaluation` whose ``results`` is the run's
:class:`~validation.verdicts.Results` (everything the tests assert, the terminal prints, the
results JSON holds and the reports render) and whose ``baseline_doc`` is what
``--update-baseline`` writes.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from validation import baseline as baselines
from validation.budgets import BudgetFile, find_budget_file, load_budget_file
from validation.evaluate import (compare_tensors, device_name, load_labels, open_stores,
                                 predictions, run_log)
from validation.judge import judge_run
from validation.precheck import Precheck
from validation.results import environment
from validation.verdicts import Results


@dataclass
class Evaluation:
    results: Results
    baseline_path: Path
    baseline_doc: dict            # what --update-baseline writes


def budget_candidates(settings, manifest) -> list:
    return [settings.zoo_key, manifest["name"],
            None if settings.zoo_key else Path(settings.model).stem]


def resolve_budget_file(settings, manifest, path=None) -> BudgetFile:
    if path:
        return load_budget_file(path)
    found = find_budget_file(budget_candidates(settings, manifest))
    return load_budget_file(found) if found else BudgetFile()


def _weights_label(settings) -> str:
    return settings.weights if not Path(str(settings.weights)).is_file() else str(settings.weights)


def evaluate_run(prepared, *, budget_path=None, baseline_path=None, command: str = "",
                 update_baseline: bool = False, precheck: Optional[Precheck] = None) -> Evaluation:
    s, manifest = prepared.settings, prepared.manifest
    budget_file = resolve_budget_file(s, manifest, budget_path)
    labels = load_labels(s.labels) if s.labels else {}
    golden, device = open_stores(prepared)
    try:
        comparisons = compare_tensors(manifest, golden, device)
        preds = predictions(manifest, golden, device, labels)
        log, dev_name = run_log(device), device_name(device)
        images = [golden.image_attrs(k).get("image", k) for k in golden.images()]
    finally:
        golden.close()
        device.close()

    path = Path(baseline_path) if baseline_path else baselines.default_path(s.model_label)
    doc: Optional[dict] = None
    note = None
    if update_baseline:
        note = f"--update-baseline: {path} is rewritten with this run"
    else:
        try:
            doc = baselines.load(path)
        except ValueError as exc:
            note = str(exc)
    facts = {"model": manifest["name"], "source_model": s.zoo_key or str(s.model),
             "weights": _weights_label(s), "seed": s.seed, "device": dev_name, "images": images,
             "environment": environment(), "command": command}
    results = judge_run(comparisons=comparisons, predictions=preds, run_log=log,
                        manifest=manifest, budget_file=budget_file, facts=facts,
                        baseline_path=path, baseline_doc=doc, baseline_note=note,
                        precheck=precheck)
    return Evaluation(results, path, baselines.build(results, budget_file.baseline["metrics"]))


__all__ = ["evaluate_run", "Evaluation"]
