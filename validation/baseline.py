"""Regression baselines: the accepted per-tensor errors, accuracy and fps of one model setup.

``golden/baselines/<model>.json`` (or ``--baseline FILE``), machine-written by
``--update-baseline`` (atomically) and read by every run::

    {"format": "keras2metal.baseline/1", "model": "resnet_50", "source_model": "resnet50",
     "weights": "random", "seed": 0, "images": ["dog.jpg", ...], "device": "reference device",
     "tensors": {"conv1_conv": {"mean_abs": .., "max_abs": .., "rel_error": ..}, ...},
     "accuracy": {"device": {"top1": .., "top5": ..} | null, "agreement": {...} | null},
     "performance": {"fps": ..} | null}

A run regresses when a tensor metric exceeds ``baseline × tolerance + floor``, when an accuracy
falls by more than ``accuracy_drop``, or (phone runs only: the reference device records no fps)
when fps falls by more than the fraction ``fps_drop`` — all from the budget file's
``[baseline]`` section.  A baseline recorded for other weights, seed, images or device is not
compared, and neither is a missing one: the run reports the comparison as not judged.
"""
import json
import math
import time
from pathlib import Path
from core.atomic import write_text

FORMAT = "keras2metal.baseline/1"
BASELINE_DIR = Path(__file__).resolve().parent.parent / "golden" / "baselines"  # DESIGN.md


def default_path(model_label: str) -> Path:
    return BASELINE_DIR / f"{model_label}.json"


def build(results, metrics) -> dict:
    """The baseline document of a finished run (its :class:`~validation.verdicts.Results`)."""
    tensors = {}
    for t in results.tensors:
        if t.verdict in ("pass", "fail") and t.metrics is not None:
            tensors[t.name] = {m: getattr(t.metrics, m) for m in metrics
                               if getattr(t.metrics, m) is not None}
    acc, perf = results.accuracy, results.performance
    return {"format": FORMAT, "model": results.model, "source_model": results.source_model,
            "weights": results.weights, "seed": results.seed, "images": list(results.images),
            "device": results.device, "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "tensors": tensors,
            "accuracy": {"device": _topk(acc.device), "agreement": _topk(acc.agreement)},
            "performance": {"fps": perf.fps} if perf.fps is not None else None}


def _topk(block):
    return None if block is None else {"top1": block.top1, "top5": block.top5}


def load(path):
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: baseline is not valid JSON ({exc}); fix it or rewrite it with "
                         "--update-baseline") from None
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r}, expected {FORMAT!r}; rewrite it "
                         "with --update-baseline")
    return data


def write(path, doc: dict):
    """Write atomically (temporary file in the same folder, then rename)."""
    write_text(path, json.dumps(doc, indent=1, sort_keys=False) + "\n")


def mismatch(baseline: dict, results):
    """Why the baseline does not apply to this run (text), or None when it does."""
    for key in ("model", "weights", "seed", "images", "device"):
        current = getattr(results, key)
        if baseline.get(key) != current:
            return (f"the baseline was recorded with {key} = {baseline.get(key)!r}, this run has "
                    f"{current!r}; pass --baseline FILE for this setup or record one with "
                    "--update-baseline")
    return None


def _ratio(cur, base):
    if base and base > 0 and math.isfinite(cur):
        return f"{cur / base:.1f}x"
    return "new" if not base else "inf"


def compare(baseline: dict, results, settings: dict) -> list:
    """What got worse than the baseline beyond tolerance, as Regression fields (empty: nothing)."""
    tol, floor = float(settings["tolerance"]), float(settings["floor"])
    out = []
    current = {t.name: t for t in results.tensors}
    for name, base in baseline.get("tensors", {}).items():
        t = current.get(name)
        if t is None or t.verdict not in ("pass", "fail") or t.metrics is None:
            continue
        for metric in settings["metrics"]:
            b, c = base.get(metric), getattr(t.metrics, metric, None)
            if b is None or c is None:
                continue
            if not math.isfinite(c) or c > b * tol + floor:
                out.append({"what": name, "metric": metric, "baseline": b, "current": c,
                            "tolerance": tol, "worse_by": _ratio(c, b)})
    drop = float(settings["accuracy_drop"])
    for block in ("device", "agreement"):
        base_block = (baseline.get("accuracy") or {}).get(block) or {}
        cur_block = _topk(getattr(results.accuracy, block)) or {}
        for metric in ("top1", "top5"):
            b, c = base_block.get(metric), cur_block.get(metric)
            if b is None or c is None:
                continue
            if c < b - drop - 1e-9:
                out.append({"what": f"accuracy.{block}.{metric}", "metric": metric,
                            "baseline": b, "current": c, "tolerance": drop,
                            "worse_by": f"-{(b - c) * 100:.1f} points"})
    base_fps = (baseline.get("performance") or {}).get("fps")
    cur_fps = results.performance.fps
    if base_fps and cur_fps:       # phone runs only: the reference device records no fps
        frac = float(settings["fps_drop"])
        if cur_fps < base_fps * (1.0 - frac):
            out.append({"what": "performance.fps", "metric": "fps", "baseline": base_fps,
                        "current": cur_fps, "tolerance": frac,
                        "worse_by": f"-{(1 - cur_fps / base_fps) * 100:.0f}%"})
    return out


def diff_table(regressions: list) -> str:
    """A readable diff of the regressions (Regression objects)."""
    from tabulate import tabulate

    from validation.verdicts import fmt

    rows = [[r.what, r.metric, fmt(r.baseline), fmt(r.current), r.worse_by, fmt(r.tolerance)]
            for r in regressions]
    return tabulate(rows, headers=["what", "metric", "baseline", "current", "worse by",
                                   "tolerance"], tablefmt="simple")
