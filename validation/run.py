"""One validation run, evaluated: tensors against budgets, first divergence, accuracy, speed,
baseline regressions — everything the tests assert and the results JSON records.

``evaluate_run(prepared, ...)`` → :class:`RunResult`; ``RunResult.results`` is the results JSON
(``keras2metal.results/1``, see :mod:`validation.results`).
"""
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from validation import baseline as baselines
from validation.budgets import (BudgetFile, apply_overrides, default_budget, find_budget_file,
                                load_budget_file)
from validation.divergence import first_divergence, judged_inputs
from validation.evaluate import (accuracy, device_name, load_labels, load_stores, performance,
                                 predictions, tensor_metrics)
from validation.metrics import METRICS
from validation.results import environment

RESULT_KEYS = ("max_abs", "mean_abs", "rmse", "rel_error", "cosine", "nan_inf")


@dataclass
class Check:
    name: str
    ok: Optional[bool]            # None: not applicable (skipped)
    message: str


@dataclass
class RunResult:
    results: dict
    rows: dict                     # tensor name -> row (metrics, status, budget object)
    order: list                    # tensor names in manifest order
    prepared: object
    budget_file: BudgetFile
    predictions: list = field(default_factory=list)
    accuracy_checks: list = field(default_factory=list)
    performance_checks: list = field(default_factory=list)
    baseline_path: Optional[Path] = None
    baseline_note: Optional[str] = None   # why no comparison happened
    baseline_doc: Optional[dict] = None   # what --update-baseline writes


def budget_candidates(settings, manifest) -> list:
    return [settings.zoo_key, manifest["name"],
            None if settings.zoo_key else Path(settings.model).stem]


def resolve_budget_file(settings, manifest, path=None) -> BudgetFile:
    if path:
        return load_budget_file(path)
    found = find_budget_file(budget_candidates(settings, manifest))
    return load_budget_file(found) if found else BudgetFile()


def judge(rows: list, budget_file: BudgetFile) -> None:
    """Give every compared tensor a budget and a pass/fail status (rows in manifest order)."""
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        if r["status"] != "compared":
            continue
        inputs = [by_name[i] for i in judged_inputs(r["name"], by_name)]
        inputs = [i for i in inputs if "rel_error" in i]
        inh_rel = max((_finite(i["rel_error"]) for i in inputs), default=0.0)
        inh_max = max((_finite(i["max_abs"] / i["golden_max_abs"]) if i["golden_max_abs"] else 0.0
                       for i in inputs), default=0.0)
        budget = default_budget(r, inh_rel, inh_max, r["forge_type"], budget_file.rule)
        budget = apply_overrides(budget, r["name"], budget_file)
        r["budget"] = budget
        violations = budget.violations(r)
        r["violations"] = violations
        if budget.skip:
            r["status"], r["reason"] = "pass", f"not judged: skipped by {budget.rule}"
        elif violations:
            r["status"] = "fail"
            r["reason"] = "; ".join(f"{k} {_f(v)} > budget {_f(lim)}" if k != "cosine" else
                                    f"cosine {_f(v)} < {_f(lim)}" for k, v, lim in violations)
        else:
            r["status"], r["reason"] = "pass", ""
    # budgets of tensors with errors/missing data, for the report
    for r in rows:
        if r["status"] in ("missing", "error") and "budget" not in r:
            r["budget"] = None


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 1e30


def _f(x) -> str:
    from validation.metrics import fmt
    return fmt(x)


def accuracy_checks(acc: dict, thresholds: dict) -> list:
    checks = []
    dev, ker, agree = acc.get("device"), acc.get("keras"), acc.get("agreement")
    for metric in ("top1", "top5"):
        lim = thresholds.get(f"min_device_{metric}")
        name = f"device_{metric}"
        if dev is None:
            checks.append(Check(name, None, "no labels (--labels FILE) or not a classifier"))
        elif lim is None:
            checks.append(Check(name, True, f"device {metric} {dev[metric]:.3f} (no minimum set)"))
        else:
            checks.append(Check(name, dev[metric] >= lim - 1e-9,
                                f"device {metric} {dev[metric]:.3f}, minimum {lim:.3f}"))
    for metric in ("top1", "top5"):
        lim = thresholds.get(f"max_{metric}_drop")
        name = f"device_vs_keras_{metric}"
        if dev is None or ker is None:
            checks.append(Check(name, None, "no labels (--labels FILE) or not a classifier"))
        else:
            ok = lim is None or dev[metric] >= ker[metric] - lim - 1e-9
            checks.append(Check(name, ok, f"device {metric} {dev[metric]:.3f}, Keras "
                                          f"{ker[metric]:.3f}, allowed drop {lim}"))
    for metric in ("top1", "top5"):
        lim = thresholds.get(f"min_agreement_{metric}")
        name = f"agreement_{metric}"
        if agree is None:
            checks.append(Check(name, None, "no device or Keras predictions to compare"))
        else:
            ok = lim is None or agree[metric] >= lim - 1e-9
            checks.append(Check(name, ok, f"device and Keras agree on {metric} for "
                                          f"{agree[metric]:.3f} of the images, minimum {lim}"))
    return checks


def performance_checks(perf, thresholds: dict) -> list:
    checks = []
    min_fps, max_lat = thresholds.get("min_fps"), thresholds.get("max_latency_s")
    if min_fps is None:
        checks.append(Check("fps", None if perf is None else True,
                            "no min_fps in the budget file" + (
                                f" (measured {perf['fps']:.2f} fps)" if perf and perf.get("fps")
                                else "")))
    elif not perf or perf.get("fps") is None:
        checks.append(Check("fps", False, f"min_fps {min_fps} is set but the run log has no fps"))
    else:
        checks.append(Check("fps", perf["fps"] >= min_fps,
                            f"{perf['fps']:.2f} fps, minimum {min_fps}"))
    if max_lat is None:
        checks.append(Check("latency", None if perf is None else True,
                            "no max_latency_s in the budget file"))
    elif not perf or not (perf.get("latency_s") or {}).get("mean"):
        checks.append(Check("latency", False, f"max_latency_s {max_lat} is set but the run log "
                                              "has no latency"))
    else:
        mean = perf["latency_s"]["mean"]
        checks.append(Check("latency", mean <= max_lat,
                            f"mean latency {mean * 1000:.1f} ms, maximum {max_lat * 1000:.1f} ms"))
    return checks


def evaluate_run(prepared, *, budget_path=None, baseline_path=None, command: str = "",
                 update_baseline: bool = False) -> RunResult:
    s, manifest = prepared.settings, prepared.manifest
    budget_file = resolve_budget_file(s, manifest, budget_path)
    golden, device = load_stores(prepared)
    try:
        rows = tensor_metrics(manifest, golden, device)
        judge(rows, budget_file)
        labels = load_labels(s.labels) if s.labels else {}
        preds = predictions(manifest, golden, device, labels)
        kind = (manifest.get("output") or {}).get("kind", "raw")
        acc = accuracy(preds, kind)
        perf = performance(device)
        dev_name = device_name(device)
    finally:
        golden.close()
        device.close()

    tensors = []
    for r in rows:
        if r["status"] == "not_compared":
            continue
        entry = {"name": r["name"], "keras_layer": r["keras_layer"], "forge_type": r["forge_type"],
                 "index": r["index"], "shape": r["shape"], "range": r.get("range")}
        for key in RESULT_KEYS:
            entry[key] = r.get(key)
        b = r.get("budget")
        entry["budget"] = b.as_dict() if b is not None else None
        entry["status"], entry["reason"] = r["status"], r["reason"]
        tensors.append(entry)

    worst = None
    for r in rows:
        b = r.get("budget")
        if b is None or r["status"] not in ("pass", "fail") or b.skip:
            continue
        ratio = _finite(r["rel_error"]) / b.rel_error if b.rel_error > 0 else math.inf
        if worst is None or ratio > worst[0]:
            worst = (ratio, {"tensor": r["name"], "metric": "rel_error", "value": r["rel_error"],
                             "budget": b.rel_error})
    source = manifest.get("source") or {}
    results = {
        "format": "keras2metal.results/1",
        "model": manifest["name"], "source_model": s.zoo_key or str(s.model),
        "weights": s.weights if not Path(str(s.weights)).is_file() else str(s.weights),
        "seed": s.seed,
        "input_size": [manifest["input"]["height"], manifest["input"]["width"]],
        "device": dev_name,
        "environment": environment(),
        "command": command,
        "totals": dict(manifest["totals"]),
        "performance": perf,
        "accuracy": {k: v for k, v in acc.items() if k != "note"},
        "tensors": tensors,
        "first_divergence": first_divergence([r for r in rows]),
        "worst_tensor": worst[1] if worst else None,
        "regressions": [],
        "passed": True,
        "images": [Path(p).name for p in prepared.image_paths],
        "budget_file": budget_file.path,
        "source": {"keras": source.get("keras"), "tensorflow": source.get("tensorflow")},
    }
    run = RunResult(results, {r["name"]: r for r in rows}, [r["name"] for r in rows], prepared,
                    budget_file, preds)
    run.accuracy_checks = accuracy_checks(acc, budget_file.accuracy)
    run.performance_checks = performance_checks(perf, budget_file.performance)

    path = Path(baseline_path) if baseline_path else baselines.default_path(s.model_label)
    run.baseline_path = path
    if update_baseline:
        run.baseline_note = f"--update-baseline: {path} will be rewritten with this run"
    else:
        try:
            doc = baselines.load(path)
        except ValueError as exc:
            doc, run.baseline_note = None, str(exc)
        if doc is None and run.baseline_note is None:
            run.baseline_note = (f"no baseline at {path}; record one with --update-baseline")
        elif doc is not None:
            why = baselines.mismatch(doc, results)
            if why:
                run.baseline_note = f"{path}: {why}"
            else:
                results["regressions"] = baselines.compare(doc, results, budget_file.baseline)
    run.baseline_doc = baselines.build(results, budget_file.baseline["metrics"])
    results["passed"] = (all(t["status"] == "pass" for t in tensors)
                         and not results["regressions"]
                         and all(c.ok is not False for c in run.accuracy_checks
                                 + run.performance_checks))
    return run


__all__ = ["evaluate_run", "RunResult", "Check", "judge", "METRICS"]
