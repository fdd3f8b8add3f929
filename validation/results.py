"""The machine-readable results of a run (``--results OUT.json``) and the human-readable texts.

Results JSON, format ``keras2metal.results/1`` (read by the ``reports`` package)::

    {"format": "keras2metal.results/1", "model": "resnet_50", "source_model": "resnet50",
     "weights": "random", "seed": 0, "input_size": [224, 224],
     "device": "reference device" | "<phone model from the run log>",
     "environment": {"python", "tensorflow", "keras", "numpy", "platform", "host"},
     "command": "pytest validation --model resnet50 ...",
     "totals": {"layers", "tensors", "parameters"},
     "performance": {"fps", "latency_s": {"mean", "min", "max"}, "source": "run log"} | null,
     "accuracy": {"images", "labelled", "device": {"top1", "top5"} | null,
                  "keras": {...} | null, "agreement": {"top1", "top5"} | null},
     "tensors": [{"name", "keras_layer", "forge_type", "index", "shape", "range", "max_abs",
                  "mean_abs", "rmse", "rel_error", "cosine", "nan_inf",
                  "budget": {"rule", "mean_abs", "max_abs", "rel_error", "cosine"} | null,
                  "status": "pass" | "fail" | "missing" | "error", "reason"}],
     "first_divergence": {"tensor", "keras_layer", "index", "hint", ...} | null,
     "worst_tensor": {"tensor", "metric", "value", "budget"} | null,
     "regressions": [{"tensor", "metric", "baseline", "current", "tolerance", "worse_by"}],
     "passed": true | false,
     "images": ["dog.jpg", ...], "budget_file": "<path>" | null}

Only tensors with a Keras counterpart are listed (Forge's input texture and Collect are not).
Non-finite numbers are written as JSON ``null``.  The file is written atomically.
"""
import json
import math
import platform
import socket
from pathlib import Path

from validation.metrics import fmt
from core.atomic import write_text


def environment() -> dict:
    from stores.store import package_version
    import numpy

    return {"python": platform.python_version(), "tensorflow": package_version("tensorflow"),
            "keras": package_version("keras"), "numpy": numpy.__version__,
            "platform": platform.platform(), "host": socket.gethostname()}


def _clean(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_results(path, results: dict) -> Path:
    """Write the results JSON atomically; returns the path."""
    path = Path(path)
    write_text(path, json.dumps(_clean(results), indent=1) + "\n")
    return path


def command_line(invocation_args) -> str:
    """The pytest command of this run, as the user would type it."""
    import shlex

    return " ".join(["pytest", *(shlex.quote(str(a)) for a in invocation_args)])


# -- texts ------------------------------------------------------------------------------------

def tensor_table(row: dict) -> str:
    """The failure table of one tensor: metric, value, budget."""
    from tabulate import tabulate

    b = row.get("budget")
    lines = [
        ["max abs", fmt(row.get("max_abs")), fmt(b.max_abs) if b else "-"],
        ["mean abs", fmt(row.get("mean_abs")), fmt(b.mean_abs) if b else "-"],
        ["RMSE", fmt(row.get("rmse")), "-"],
        ["relative error", fmt(row.get("rel_error")), fmt(b.rel_error) if b else "-"],
        ["cosine similarity", fmt(row.get("cosine")), f">= {fmt(b.cosine)}" if b else "-"],
        ["value range (Keras)", fmt(row.get("range")), "-"],
        ["NaN/Inf count", fmt(row.get("nan_inf")), "0"],
    ]
    text = tabulate(lines, headers=["metric", "device vs Keras", "budget"], tablefmt="simple")
    extra = [f"tensor {row['name']} (Forge {row['forge_type']}, index {row['index']}, shape "
             f"{row.get('shape')}) ↔ Keras layer {row.get('keras_layer')}"]
    if b is not None:
        extra.append(f"budget rule: {b.rule}; inherited relative error from inputs "
                     f"{fmt(b.inherited_rel)}")
    return "\n".join(extra) + "\n" + text


def verdict_lines(run) -> list:
    """The lines printed at the top (report header) and bottom (summary) of the pytest output."""
    r = run.results
    counts = {}
    for t in r["tensors"]:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    lines = [f"keras2metal validation: {r['model']} ({r['source_model']}, weights {r['weights']}, "
             f"seed {r['seed']}) on the {r['device']}, {len(r.get('images', []))} image(s); "
             f"tensors: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))]
    fd = r.get("first_divergence")
    if fd:
        layers = fd.get("forge_layers") or [fd["tensor"]]
        lines.append(f"FIRST DIVERGENCE: tensor {fd['tensor']!r} (#{fd['index']}, Forge "
                     f"{fd.get('forge_type')}"
                     + (f", covering Forge layers {', '.join(layers)}" if len(layers) > 1 else "")
                     + f") ↔ Keras layer {fd.get('keras_layer')!r}: {fd.get('reason', '')}")
        lines.append(f"  typical causes: {fd['hint']}")
    else:
        lines.append("first divergence: none — every compared tensor is within its budget")
    missing = [t["name"] for t in r["tensors"] if t["status"] == "missing"]
    if missing:
        lines.append(f"MISSING: {len(missing)} tensor(s) have no device data: "
                     + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    acc = r.get("accuracy") or {}
    if acc.get("device") or acc.get("agreement"):
        parts = []
        if acc.get("device"):
            parts.append(f"device top-1 {acc['device']['top1']:.3f} top-5 {acc['device']['top5']:.3f}")
        if acc.get("keras"):
            parts.append(f"Keras top-1 {acc['keras']['top1']:.3f} top-5 {acc['keras']['top5']:.3f}")
        if acc.get("agreement"):
            parts.append(f"agreement top-1 {acc['agreement']['top1']:.3f} top-5 "
                         f"{acc['agreement']['top5']:.3f}")
        lines.append("accuracy: " + "; ".join(parts) + f" ({acc.get('labelled', 0)} labelled)")
    perf = r.get("performance")
    if perf and perf.get("fps"):
        lat = perf.get("latency_s") or {}
        lines.append(f"performance: {perf['fps']:.2f} fps, mean latency "
                     f"{(lat.get('mean') or 0) * 1000:.1f} ms ({perf.get('source')})")
    if r.get("regressions"):
        lines.append(f"REGRESSIONS: {len(r['regressions'])} metric(s) worse than the baseline")
    elif run.baseline_note:
        lines.append(f"baseline: {run.baseline_note}")
    else:
        lines.append(f"baseline: no regressions against {run.baseline_path}")
    return lines
