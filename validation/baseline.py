"""Regression baselines: the accepted per-tensor errors, accuracy and fps of one model setup.

``golden/baselines/<model>.json`` (or ``--baseline FILE``), machine-written by
``--update-baseline`` (atomically) and read by every run::

    {"format": "keras2metal.baseline/1", "model": "resnet_50", "source_model": "resnet50",
     "weights": "random", "seed": 0, "images": ["dog.jpg", ...], "device": "reference device",
     "tensors": {"conv1_conv": {"mean_abs": .., "max_abs": .., "rel_error": ..}, ...},
     "accuracy": {"device": {"top1": .., "top5": ..} | null, "agreement": {...} | null},
     "performance": {"fps": ..} | null}

A run regresses when a tensor metric exceeds ``baseline × tolerance + floor``, when an accuracy
falls by more than ``accuracy_drop``, or (on a phone, not the reference device) when fps falls
by more than the fraction ``fps_drop`` — all from the budget file's ``[baseline]`` section.  A
baseline recorded for other weights, seed, images or device is not compared (the run says so).
"""
import json
import math
import time
from pathlib import Path
from core.atomic import write_text

FORMAT = "keras2metal.baseline/1"
BASELINE_DIR = Path(__file__).resolve().parent.parent / "golden" / "baselines"  # DESIGN.md
REFERENCE_DEVICE = "reference device"


def default_path(model_label: str) -> Path:
    return BASELINE_DIR / f"{model_label}.json"


def build(results: dict, metrics) -> dict:
    """The baseline document of a finished run (its results JSON dict)."""
    tensors = {}
    for t in results["tensors"]:
        if t["status"] in ("pass", "fail"):
            tensors[t["name"]] = {m: t.get(m) for m in metrics if t.get(m) is not None}
    acc = results.get("accuracy") or {}
    perf = results.get("performance") or {}
    return {"format": FORMAT, "model": results["model"], "source_model": results["source_model"],
            "weights": results["weights"], "seed": results["seed"],
            "images": results.get("images", []), "device": results["device"],
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "tensors": tensors,
            "accuracy": {"device": acc.get("device"), "agreement": acc.get("agreement")},
            "performance": {"fps": perf.get("fps")} if perf else None}


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


def mismatch(baseline: dict, results: dict):
    """Why the baseline does not apply to this run (text), or None when it does."""
    for key in ("model", "weights", "seed", "images", "device"):
        if baseline.get(key) != results.get(key):
            return (f"the baseline was recorded with {key} = {baseline.get(key)!r}, this run has "
                    f"{results.get(key)!r}; pass --baseline FILE for this setup or record one "
                    "with --update-baseline")
    return None


def _ratio(cur, base):
    if base and base > 0 and math.isfinite(cur):
        return f"{cur / base:.1f}x"
    return "new" if not base else "inf"


def compare(baseline: dict, results: dict, settings: dict) -> list:
    """The results JSON's ``regressions`` list (empty: nothing got worse beyond tolerance)."""
    tol, floor = float(settings["tolerance"]), float(settings["floor"])
    out = []
    current = {t["name"]: t for t in results["tensors"]}
    for name, base in baseline.get("tensors", {}).items():
        t = current.get(name)
        if t is None or t["status"] not in ("pass", "fail"):
            continue
        for metric in settings["metrics"]:
            b, c = base.get(metric), t.get(metric)
            if b is None or c is None:
                continue
            if not math.isfinite(c) or c > b * tol + floor:
                out.append({"tensor": name, "metric": metric, "baseline": b, "current": c,
                            "tolerance": tol, "worse_by": _ratio(c, b)})
    drop = float(settings["accuracy_drop"])
    acc = results.get("accuracy") or {}
    for block in ("device", "agreement"):
        base_block = (baseline.get("accuracy") or {}).get(block) or {}
        cur_block = acc.get(block) or {}
        for metric in ("top1", "top5"):
            b, c = base_block.get(metric), cur_block.get(metric)
            if b is None or c is None:
                continue
            if c < b - drop - 1e-9:
                out.append({"tensor": f"accuracy.{block}.{metric}", "metric": metric,
                            "baseline": b, "current": c, "tolerance": drop,
                            "worse_by": f"-{(b - c) * 100:.1f} points"})
    base_perf = baseline.get("performance") or {}
    cur_perf = results.get("performance") or {}
    if results.get("device") != REFERENCE_DEVICE and base_perf.get("fps") and cur_perf.get("fps"):
        b, c = base_perf["fps"], cur_perf["fps"]
        frac = float(settings["fps_drop"])
        if c < b * (1.0 - frac):
            out.append({"tensor": "performance.fps", "metric": "fps", "baseline": b, "current": c,
                        "tolerance": frac, "worse_by": f"-{(1 - c / b) * 100:.0f}%"})
    return out


def diff_table(regressions: list) -> str:
    """A readable diff of the regressions."""
    from tabulate import tabulate

    from validation.metrics import fmt

    rows = [[r["tensor"], r["metric"], fmt(r["baseline"]), fmt(r["current"]), r["worse_by"],
             fmt(r["tolerance"])] for r in regressions]
    return tabulate(rows, headers=["what", "metric", "baseline", "current", "worse by",
                                   "tolerance"], tablefmt="simple")
