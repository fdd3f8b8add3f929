"""The markdown report over one or more results files (``python -m reports RESULTS.json...``).

Sections: summary (one row per model), regressions against baselines, one section per model
(facts, error-by-depth picture, failures, per-layer table), environment, commands to reproduce.
Rendering is deterministic: models sorted by (model, device, file), tensors by topological
index, fixed number formats, no timestamp unless ``date`` is given.
"""
import re
import shlex
from pathlib import Path

from reports import fmt
from reports.results import (budget_use, get, load_results, model_name, regressions)

TITLE = "keras2metal validation report"
FULL_TABLE_LIMIT = 30      # longer per-layer tables are collapsed ...
WORST_ROWS = 10            # ... to the failing rows and this many worst rows
FAILING_ROWS = 20          # at most this many failing rows in the collapsed table

SUMMARY_COLUMNS = ("net", "device", "fps", "top-1", "top-5", "agreement top-1/top-5", "layers",
                   "tensors", "parameters", "worst tensor", "first divergence", "status")
SUMMARY_ALIGN = ("left", "left", "right", "right", "right", "right", "right", "right", "right",
                 "left", "left", "left")
LAYER_COLUMNS = ("#", "tensor", "Keras layer", "shape", "range", "max abs", "mean abs",
                 "rel error", "cosine", "budget", "use", "status")
LAYER_ALIGN = ("right", "left", "left", "right", "right", "right", "right", "right", "right",
               "left", "right", "left")
ENV_KEYS = ("python", "tensorflow", "keras", "numpy", "platform", "host")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


def _size(results) -> str:
    size = results.get("input_size")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return f"{size[0]}×{size[1]}"
    return ""


def _status(status) -> str:
    if status is None:
        return fmt.NA
    return "**fail**" if status == "fail" else fmt.cell(status)


def _passed(results) -> str:
    passed = results.get("passed")
    if passed is True:
        return "pass"
    if passed is False:
        return "**FAIL**"
    return fmt.NA


def _worst(results) -> str:
    worst = results.get("worst_tensor")
    if "worst_tensor" in results and worst is None:
        return "none"
    if not isinstance(worst, dict):
        return fmt.NA
    text = f"{fmt.code(worst.get('tensor'))} {fmt.cell(worst.get('metric') or fmt.NA)} " \
           f"{fmt.err(worst.get('value'))}"
    if worst.get("budget") is not None:
        text += f" / {fmt.err(worst.get('budget'))}"
    return text


def _first(results) -> str:
    first = results.get("first_divergence")
    if "first_divergence" in results and first is None:
        return "none"
    if not isinstance(first, dict):
        return fmt.NA
    text = fmt.code(first.get("tensor"))
    if isinstance(first.get("index"), int):
        text += f" (#{first['index']})"
    return text


def _agreement(results) -> str:
    a = get(results, "accuracy", "agreement")
    if not isinstance(a, dict):
        return fmt.NA
    return f"{fmt.percent(a.get('top1'))} / {fmt.percent(a.get('top5'))}"


def summary_row(results) -> dict:
    size = _size(results)
    return {
        "net": fmt.code(model_name(results)) + (f" {size}" if size else ""),
        "device": fmt.cell(results.get("device") or fmt.NA),
        "fps": fmt.fps(get(results, "performance", "fps")),
        "top-1": fmt.percent(get(results, "accuracy", "device", "top1")),
        "top-5": fmt.percent(get(results, "accuracy", "device", "top5")),
        "agreement top-1/top-5": _agreement(results),
        "layers": fmt.integer(get(results, "totals", "layers")),
        "tensors": fmt.integer(get(results, "totals", "tensors")),
        "parameters": fmt.integer(get(results, "totals", "parameters")),
        "worst tensor": _worst(results),
        "first divergence": _first(results),
        "status": _passed(results),
    }


def _budget(t) -> str:
    budget = t.get("budget")
    if not isinstance(budget, dict):
        return fmt.NA
    parts = [f"{label} {fmt.err(budget.get(key))}"
             for key, label in (("mean_abs", "mean"), ("max_abs", "max"), ("rel_error", "rel"))
             if budget.get(key) is not None]
    text = " · ".join(parts) if parts else fmt.NA
    rule = budget.get("rule")
    if rule and rule != "default":
        text += f" ({fmt.code(rule)})"
    return text


def _use(t) -> str:
    use = budget_use(t)
    if use is None:
        return fmt.NA
    if use == float("inf"):
        return "inf"
    return f"{100 * use:.0f}%"


def layer_row(t) -> dict:
    return {
        "#": str(t["index"]) if isinstance(t.get("index"), int) else fmt.NA,
        "tensor": fmt.code(t.get("name")),
        "Keras layer": fmt.code(t.get("keras_layer")),
        "shape": fmt.shape(t.get("shape")),
        "range": fmt.value_range(t.get("range")),
        "max abs": fmt.err(t.get("max_abs")),
        "mean abs": fmt.err(t.get("mean_abs")),
        "rel error": fmt.err(t.get("rel_error")),
        "cosine": fmt.cosine(t.get("cosine")),
        "budget": _budget(t),
        "use": _use(t),
        "status": _status(t.get("status")) + (f" ({t['nan_inf']} NaN/Inf)"
                                              if isinstance(t.get("nan_inf"), int)
                                              and t["nan_inf"] > 0 else ""),
    }


def _order(t, position):
    return (t["index"] if isinstance(t.get("index"), int) else 10**9, position)


def sorted_tensors(results) -> list:
    tensors = [t for t in results.get("tensors") or [] if isinstance(t, dict)]
    return [t for _, t in sorted(enumerate(tensors), key=lambda p: _order(p[1], p[0]))]


def layer_tables(results) -> str:
    tensors = sorted_tensors(results)
    if not tensors:
        return "No per-tensor results in this file."
    full = fmt.table([layer_row(t) for t in tensors], LAYER_COLUMNS, LAYER_ALIGN)
    if len(tensors) <= FULL_TABLE_LIMIT:
        return full
    failing = [i for i, t in enumerate(tensors) if t.get("status") not in (None, "pass")]
    keep = set(failing[:FAILING_ROWS])
    ranked = sorted((i for i, t in enumerate(tensors) if budget_use(t) is not None),
                    key=lambda i: (-budget_use(tensors[i]), i))
    keep.update(ranked[:WORST_ROWS])
    first = get(results, "first_divergence", "tensor")
    keep.update(i for i, t in enumerate(tensors) if first is not None and t.get("name") == first)
    rows = [layer_row(tensors[i]) for i in sorted(keep)]
    more = len(failing) - min(len(failing), FAILING_ROWS)
    lines = [f"Failing and worst {len(rows)} of {len(tensors)} tensors "
             f"({len(failing)} not passing"
             + (f", {more} more in the full table" if more else "") + "):", "",
             fmt.table(rows, LAYER_COLUMNS, LAYER_ALIGN), "",
             f"<details><summary>All {len(tensors)} tensors</summary>", "", full, "",
             "</details>"]
    return "\n".join(lines)


def _failures(results) -> list:
    lines = []
    for t in sorted_tensors(results):
        if t.get("status") in (None, "pass"):
            continue
        reason = fmt.cell(t.get("reason") or "no reason given")
        lines.append(f"- {fmt.code(t.get('name'))} ({_status(t.get('status'))}): {reason}")
    return lines


def _s(seconds) -> str:
    text = fmt.num(seconds)
    return text if text == fmt.NA else text + " s"


def _fact_lines(results) -> list:
    acc = results.get("accuracy") or {}
    perf = results.get("performance") or {}
    lat = perf.get("latency_s") if isinstance(perf.get("latency_s"), dict) else {}
    lines = [
        f"- results: {fmt.code(results['_path'])}",
        f"- source model: {fmt.code(results.get('source_model'))}, weights "
        f"{fmt.cell(results.get('weights') or fmt.NA)}, seed {fmt.cell(results.get('seed', fmt.NA))}"
        f", input {_size(results) or fmt.NA} (width×height)",
        f"- device: {fmt.cell(results.get('device') or fmt.NA)}; fps {fmt.fps(perf.get('fps'))}; "
        f"latency mean {_s(lat.get('mean'))}, min {_s(lat.get('min'))}, "
        f"max {_s(lat.get('max'))} (source: {fmt.cell(perf.get('source') or fmt.NA)})",
        f"- accuracy on {fmt.integer(acc.get('images'))} images ({fmt.integer(acc.get('labelled'))}"
        f" labelled): device top-1 {fmt.percent(get(acc, 'device', 'top1'))}, top-5 "
        f"{fmt.percent(get(acc, 'device', 'top5'))}; Keras top-1 "
        f"{fmt.percent(get(acc, 'keras', 'top1'))}, top-5 {fmt.percent(get(acc, 'keras', 'top5'))}"
        f"; device agrees with Keras on top-1 {fmt.percent(get(acc, 'agreement', 'top1'))}, "
        f"top-5 {fmt.percent(get(acc, 'agreement', 'top5'))}",
        f"- totals: {fmt.integer(get(results, 'totals', 'layers'))} layers, "
        f"{fmt.integer(get(results, 'totals', 'tensors'))} tensors, "
        f"{fmt.integer(get(results, 'totals', 'parameters'))} parameters",
    ]
    counts = {}
    for t in results.get("tensors") or []:
        if isinstance(t, dict):
            key = t.get("status") or fmt.NA
            counts[key] = counts.get(key, 0) + 1
    if counts:
        lines.append("- tensor statuses: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    first = results.get("first_divergence")
    if isinstance(first, dict):
        text = f"- first divergence: {_first(results)}, Keras layer {fmt.code(first.get('keras_layer'))}"
        if first.get("hint"):
            text += f": {fmt.cell(first['hint'])}"
        lines.append(text)
    elif "first_divergence" in results:
        lines.append("- first divergence: none")
    lines.append(f"- worst tensor: {_worst(results)}")
    lines.append(f"- result: {_passed(results)}")
    return lines


def _regression_rows(model, regs) -> list:
    rows = []
    for r in regs:
        value = r.get("baseline"), r.get("current")
        is_acc = str(r.get("tensor", "")).startswith("accuracy.")
        show = fmt.percent if is_acc else (fmt.fps if r.get("metric") == "fps" else
                                           (fmt.cosine if r.get("metric") == "cosine" else fmt.err))
        rows.append({
            "model": fmt.code(model),
            "what": fmt.code(r.get("tensor")),
            "metric": fmt.cell(r.get("metric") or fmt.NA),
            "baseline": show(value[0]) if not isinstance(value[0], str) else fmt.cell(value[0]),
            "current": show(value[1]) if not isinstance(value[1], str) else fmt.cell(value[1]),
            "tolerance": fmt.num(r.get("tolerance")),
            "worse by": fmt.cell(r.get("worse_by") or fmt.NA),
        })
    return rows


def _environment(all_results) -> list:
    envs = []                             # (environment dict, [models])
    for res in all_results:
        env = res.get("environment") if isinstance(res.get("environment"), dict) else {}
        for known, models in envs:
            if known == env:
                models.append(model_name(res))
                break
        else:
            envs.append((env, [model_name(res)]))
    keys = list(ENV_KEYS) + sorted({k for env, _ in envs for k in env} - set(ENV_KEYS))
    if len(envs) == 1:
        env = envs[0][0]
        rows = [{"": k, "value": fmt.cell(env.get(k) if env.get(k) is not None else fmt.NA)}
                for k in keys]
        return [fmt.table(rows, ("", "value"))]
    columns = [""] + [", ".join(models) for _, models in envs]
    rows = []
    for k in keys:
        row = {"": k}
        for (env, _), col in zip(envs, columns[1:]):
            row[col] = fmt.cell(env.get(k) if env.get(k) is not None else fmt.NA)
        rows.append(row)
    return [fmt.table(rows, columns)]


def _report_command(paths, out_md, plots_dir, baseline_dir, date) -> str:
    argv = ["python", "-m", "reports", *[str(p) for p in paths], "--out", str(out_md)]
    if plots_dir is not None:
        argv += ["--plots", str(plots_dir)]
    if baseline_dir is not None:
        argv += ["--baseline-dir", str(baseline_dir)]
    if date:
        argv += ["--date", str(date)]
    return shlex.join(argv)


def _derive(results) -> dict:
    """Fill ``worst_tensor`` / ``first_divergence`` from the tensors when the file lacks the key
    (a null value is kept: it means "none")."""
    tensors = sorted_tensors(results)
    if "worst_tensor" not in results:
        used = [(budget_use(t), i) for i, t in enumerate(tensors) if budget_use(t) is not None]
        if used:
            t = tensors[max(used, key=lambda p: (p[0], -p[1]))[1]]
            budget = t.get("budget") or {}
            metric = max((m for m in ("rel_error", "mean_abs", "max_abs")
                          if isinstance(t.get(m), (int, float)) and budget.get(m)),
                         key=lambda m: t[m] / budget[m])
            results["worst_tensor"] = {"tensor": t.get("name"), "metric": metric,
                                       "value": t[metric], "budget": budget[metric]}
    if "first_divergence" not in results and tensors and all(t.get("status") for t in tensors):
        failing = [t for t in tensors if t.get("status") == "fail"]
        results["first_divergence"] = None if not failing else {
            "tensor": failing[0].get("name"), "keras_layer": failing[0].get("keras_layer"),
            "index": failing[0].get("index"), "hint": None}
    return results


def build_report(results_paths, out_md, plots_dir=None, baseline_dir=None, date=None,
                 title=TITLE) -> str:
    """The report's markdown text; writes the pictures into ``plots_dir`` when given."""
    out_md = Path(out_md)
    md_dir = out_md.parent
    all_results = [_derive(load_results(p)) for p in results_paths]
    if not all_results:
        raise ValueError("no results files given")
    order = sorted(range(len(all_results)),
                   key=lambda i: (model_name(all_results[i]), str(all_results[i].get("device")),
                                  str(all_results[i]["_path"])))
    all_results = [all_results[i] for i in order]
    slugs, seen = [], {}
    for res in all_results:
        base = _slug(model_name(res))
        seen[base] = seen.get(base, 0) + 1
        slugs.append(base if seen[base] == 1 else f"{base}-{seen[base]}")

    lines = [f"# {title}", ""]
    if date:
        lines += [f"Generated {date}.", ""]
    lines += ["## Summary", "",
              fmt.table([summary_row(r) for r in all_results], SUMMARY_COLUMNS, SUMMARY_ALIGN), "",
              "fps: frames per second on the device; top-1/top-5: the device's accuracy on the "
              "labelled images; agreement: share of images where the device's top-k equals "
              "Keras's; worst tensor: metric value / budget; first divergence: the first tensor "
              "(topological index) over its budget.", ""]

    # regressions
    lines += ["## Regressions", ""]
    reg_rows, notes = [], []
    for res in all_results:
        regs, source = regressions(res, baseline_dir)
        reg_rows += _regression_rows(model_name(res), regs)
        if source is None:
            notes.append(f"{fmt.code(model_name(res))}: no baseline to compare with")
        elif source.startswith("baseline "):
            notes.append(f"{fmt.code(model_name(res))}: compared with "
                         f"{fmt.code(source[len('baseline '):])}")
    if reg_rows:
        lines += [fmt.table(reg_rows, ("model", "what", "metric", "baseline", "current",
                                       "tolerance", "worse by"),
                            ("left", "left", "left", "right", "right", "right", "right")), ""]
    else:
        lines += ["Nothing got worse than the baselines.", ""]
    if notes:
        lines += [f"- {n}" for n in notes] + [""]

    # per model
    for res, slug in zip(all_results, slugs):
        size = _size(res)
        heading = model_name(res) + (f" ({size}, {res.get('device') or fmt.NA})" if size
                                     else f" ({res.get('device') or fmt.NA})")
        lines += [f"## {heading}", ""]
        lines += _fact_lines(res) + [""]
        if plots_dir is not None:
            from reports.plots import error_by_depth

            png = Path(plots_dir) / f"{slug}-error-by-depth.png"
            error_by_depth(res, png)
            lines += [f"![{model_name(res)}: error by layer depth]({fmt.relpath(png, md_dir)})", ""]
        failures = _failures(res)
        if failures:
            lines += ["Not passing:", ""] + failures + [""]
        lines += [layer_tables(res), ""]

    # environment and reproduction
    lines += ["## Environment", ""] + _environment(all_results) + [""]
    commands = []
    for res in all_results:
        if res.get("command") and str(res["command"]) not in commands:
            commands.append(str(res["command"]))
    commands.append(_report_command(results_paths, out_md, plots_dir, baseline_dir, date))
    lines += ["## Reproduce", "", "```sh"] + commands + ["```", ""]
    return "\n".join(lines)


def write_report(results_paths, out_md, plots_dir=None, baseline_dir=None, date=None) -> Path:
    """Write the markdown report (atomically) and its pictures; returns the report's path."""
    if isinstance(results_paths, (str, Path)):
        results_paths = [results_paths]
    text = build_report(list(results_paths), out_md, plots_dir, baseline_dir, date)
    return fmt.write_markdown(out_md, text)
