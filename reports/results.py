"""Reading the validation suite's results JSON (``keras2metal.results/1``) and baselines.

A results file is written by ``pytest validation ... --results FILE``; a baseline
(``<baseline-dir>/<model>.json``) has the same per-tensor metrics as ``tensors`` plus
``accuracy`` and ``performance``.  Missing or null fields are tolerated everywhere (they render
as ``n/a``); a file of another format is rejected with an error naming it.
"""
import json
import math
from pathlib import Path

FORMAT = "keras2metal.results/1"

# error metrics compared against baselines: worse when current > baseline * tolerance
ERROR_METRICS = ("max_abs", "mean_abs", "rel_error")
BUDGET_METRICS = ("mean_abs", "max_abs", "rel_error")
DEFAULT_TOLERANCE = 1.5
# below this an error metric is float noise: a rise from 1e-9 to 1e-8 is no regression
ERROR_FLOOR = 1e-6
# a drop of cosine similarity larger than this is a regression
COSINE_DROP = 1e-4
# fps: a regression when current < baseline / FPS_TOLERANCE
FPS_TOLERANCE = 1.1


class ResultsError(ValueError):
    """A results or baseline file that is missing, unreadable or not of this format."""


def _num(x):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return None if math.isnan(x) else x


def get(data, *keys, default=None):
    """``data[k1][k2]...`` or ``default`` when any level is missing or null."""
    for key in keys:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return default
        if data is None:
            return default
    return data


def load_results(path) -> dict:
    """Read one results file; the error names the file and what to do."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file; write it with "
                           "`pytest validation --model MODEL --results FILE`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc}); write it again with "
                           "`pytest validation ... --results FILE`") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: a {type(data).__name__} at the top level, expected an object "
                           f"of format {FORMAT!r}")
    if data.get("format") != FORMAT:
        raise ResultsError(f"{path}: format is {data.get('format')!r}, expected {FORMAT!r} (a "
                           "results file of `pytest validation ... --results FILE`)")
    if not isinstance(data.get("tensors"), list):
        data["tensors"] = []
    data["_path"] = str(path)
    return data


def model_name(results: dict) -> str:
    return str(results.get("model") or results.get("source_model") or Path(results["_path"]).stem)


def budget_use(tensor: dict):
    """max over budgeted metrics of value / budget (> 1 means over budget), or None."""
    budget = tensor.get("budget") or {}
    uses = []
    for metric in BUDGET_METRICS:
        value, limit = _num(tensor.get(metric)), _num(budget.get(metric))
        if value is None or limit is None:
            continue
        if limit > 0:
            uses.append(value / limit)
        elif value > 0:
            uses.append(math.inf)
        else:
            uses.append(0.0)
    return max(uses) if uses else None


# -- baselines ----------------------------------------------------------------------------
def load_baseline(baseline_dir, model: str):
    """``<baseline_dir>/<model>.json`` or None when there is none."""
    if baseline_dir is None:
        return None
    path = Path(baseline_dir) / f"{model}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: baseline is not valid JSON ({exc}); write it again with the "
                           "validation suite's baseline update") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: baseline is a {type(data).__name__}, expected an object")
    data["_path"] = str(path)
    return data


def _baseline_tensors(baseline: dict) -> dict:
    tensors = baseline.get("tensors")
    if isinstance(tensors, dict):
        return {str(k): v for k, v in tensors.items() if isinstance(v, dict)}
    out = {}
    for t in tensors or []:
        if isinstance(t, dict) and t.get("name") is not None:
            out[str(t["name"])] = t
    return out


def _ratio(current, baseline) -> str:
    if baseline == 0:
        return "inf"
    return f"{current / baseline:.1f}x"


def compare_baseline(results: dict, baseline: dict, tolerance: float = DEFAULT_TOLERANCE) -> list:
    """What got worse than the baseline, as entries of the results' ``regressions`` shape."""
    out = []
    base_tensors = _baseline_tensors(baseline)
    for t in results.get("tensors") or []:
        name = t.get("name")
        base = base_tensors.get(str(name))
        if base is None:
            continue
        if base.get("status") == "pass" and t.get("status") not in (None, "pass"):
            out.append({"tensor": name, "metric": "status", "baseline": "pass",
                        "current": t.get("status"), "tolerance": None, "worse_by": "pass → "
                        + str(t.get("status"))})
        for metric in ERROR_METRICS:
            cur, old = _num(t.get(metric)), _num(base.get(metric))
            if cur is None or old is None:
                continue
            if cur > max(old * tolerance, ERROR_FLOOR):
                out.append({"tensor": name, "metric": metric, "baseline": old, "current": cur,
                            "tolerance": tolerance, "worse_by": _ratio(cur, old)})
        cur, old = _num(t.get("cosine")), _num(base.get("cosine"))
        if cur is not None and old is not None and old - cur > COSINE_DROP:
            out.append({"tensor": name, "metric": "cosine", "baseline": old, "current": cur,
                        "tolerance": COSINE_DROP, "worse_by": f"-{old - cur:.2e}"})
    for side in ("device", "keras"):
        for k in ("top1", "top5"):
            cur = _num(get(results, "accuracy", side, k))
            old = _num(get(baseline, "accuracy", side, k))
            if cur is not None and old is not None and cur < old - 1e-9:
                out.append({"tensor": f"accuracy.{side}.{k}", "metric": k, "baseline": old,
                            "current": cur, "tolerance": 0.0,
                            "worse_by": f"-{100 * (old - cur):.1f} pp"})
    for k in ("top1", "top5"):
        cur = _num(get(results, "accuracy", "agreement", k))
        old = _num(get(baseline, "accuracy", "agreement", k))
        if cur is not None and old is not None and cur < old - 1e-9:
            out.append({"tensor": f"accuracy.agreement.{k}", "metric": k, "baseline": old,
                        "current": cur, "tolerance": 0.0,
                        "worse_by": f"-{100 * (old - cur):.1f} pp"})
    cur, old = _num(get(results, "performance", "fps")), _num(get(baseline, "performance", "fps"))
    if cur is not None and old is not None and old > 0 and cur < old / FPS_TOLERANCE:
        out.append({"tensor": "performance.fps", "metric": "fps", "baseline": old, "current": cur,
                    "tolerance": FPS_TOLERANCE, "worse_by": f"-{100 * (old - cur) / old:.1f}%"})
    return out


def regressions(results: dict, baseline_dir=None):
    """(regressions, source): the results' own list, else computed against the baseline dir.

    ``source`` is "results", "baseline <path>", or None when there is nothing to compare with.
    """
    own = results.get("regressions")
    if own:
        return [r for r in own if isinstance(r, dict)], "results"
    baseline = load_baseline(baseline_dir, model_name(results))
    if baseline is not None:
        return compare_baseline(results, baseline), "baseline " + baseline["_path"]
    if own is not None:
        return [], "results"
    return [], None
