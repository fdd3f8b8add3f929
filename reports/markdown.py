"""The markdown report over one or more results files (``python -m reports RESULTS.json...``).

Sections: summary (one row per run), the verdict of each run in the suite's own words,
regressions, one section per run (facts, error-by-depth picture, what did not pass, per-layer
table, the float16 pre-check when the run has one, a detector's box agreement per image),
environment, commands to reproduce.  The
report renders the suite's verdicts and never re-judges: every status, divergence, regression,
"not judged" and pre-check finding comes from the results file.
Rendering is deterministic: runs sorted by (model, device, file), tensors by topological index,
fixed number formats, no timestamp unless ``date`` is given.
"""
import re
import shlex
from pathlib import Path

from reports import fmt
from reports.results import budget_use, load_results
from validation.precheck import summary_line
from validation.verdicts import (box_agreement_line, tensor_counts, verdict_lines,
                                 weights_provenance)

TITLE = "keras2metal validation report"
FULL_TABLE_LIMIT = 30      # longer per-layer tables are collapsed ...
WORST_ROWS = 10            # ... to the rows that did not pass and this many worst rows
FAILING_ROWS = 20          # at most this many rows that did not pass in the collapsed table

SUMMARY_COLUMNS = ("net", "device", "verdict", "tensors judged", "speed", "top-1", "top-5",
                   "agreement top-1/top-5", "layers", "tensors", "parameters", "worst tensor",
                   "first divergence", "first data problem")
SUMMARY_ALIGN = ("left", "left", "left", "left", "right", "right", "right", "right", "right",
                 "right", "right", "left", "left", "left")
LAYER_COLUMNS = ("#", "tensor", "Keras layer", "shape", "range", "max abs", "mean abs",
                 "rel error", "cosine", "budget", "use", "local error", "verdict")
LAYER_ALIGN = ("right", "left", "left", "right", "right", "right", "right", "right", "right",
               "left", "right", "right", "left")
ENV_KEYS = ("python", "tensorflow", "keras", "numpy", "platform", "host")
VERDICT_WORDS = {"pass": "pass", "fail": "**FAIL**", "data_problem": "**data problem**",
                 "not_judged": "not judged"}


def _added(totals) -> str:
    """Of the parameters, those of layers the converter adds to the Keras model's (if any)."""
    added = totals.converter_parameters
    return f" ({fmt.integer(added)} in layers the converter adds)" if added else ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


def _size(results) -> str:
    h, w = results.input_size
    return f"{w}×{h}"


def _worst(results) -> str:
    w = results.worst_tensor
    if w is None:
        return "none judged"
    return f"{fmt.code(w.tensor)} {w.metric} {fmt.err(w.value)} / {fmt.err(w.budget)}"


def _first(results) -> str:
    fd = results.first_divergence
    if fd is None:
        return "none" if results.count("pass") + results.count("fail") else "not judged"
    return f"{fmt.code(fd.tensor)} (#{fd.index})"


def _first_problem(results) -> str:
    dp = results.first_data_problem
    return "none" if dp is None else f"{fmt.code(dp.tensor)} (#{dp.index}) {dp.kind}"


def _accuracy_cell(results, block, key, check_name) -> str:
    value = getattr(results.accuracy, block)
    if value is None:
        return "not judged"
    low, high = getattr(value, f"{key}_ci")
    text = f"{fmt.percent(getattr(value, key))} ({fmt.percent(low)}–{fmt.percent(high)})"
    failed = any(c.name == check_name and c.verdict == "fail" for c in results.checks())
    return f"**{text}**" if failed else text


def _agreement(results) -> str:
    boxes = results.accuracy.boxes
    if boxes is not None:
        text = f"boxes {fmt.percent(boxes.agreement)}"
        failed = any(c.name == "box_agreement" and c.verdict == "fail" for c in results.checks())
        return f"**{text}**" if failed else text
    a = results.accuracy.agreement
    if a is None:
        return "not judged"
    acc = results.accuracy
    ties = (f" ({acc.near_ties} / {acc.near_ties_top5} near ties out)"
            if acc.near_ties or acc.near_ties_top5 else "")
    return f"{fmt.percent(a.top1)} / {fmt.percent(a.top5)}{ties}"


def _speed(results) -> str:
    perf = results.performance
    if perf.fps is not None:
        return f"{fmt.fps(perf.fps)} fps"
    if perf.host_emulation_s is not None:
        return f"host emulation {fmt.num(perf.host_emulation_s.mean * 1000)} ms"
    return "not measured"


def summary_row(results) -> dict:
    return {
        "net": fmt.code(results.model) + f" {_size(results)}",
        "device": fmt.cell(results.device),
        "verdict": VERDICT_WORDS[results.verdict],
        "tensors judged": fmt.cell(tensor_counts(results)),
        "speed": _speed(results),
        "top-1": _accuracy_cell(results, "device", "top1", "device_top1"),
        "top-5": _accuracy_cell(results, "device", "top5", "device_top5"),
        "agreement top-1/top-5": _agreement(results),
        "layers": fmt.integer(results.totals.layers),
        "tensors": fmt.integer(results.totals.tensors),
        "parameters": fmt.integer(results.totals.parameters) + _added(results.totals),
        "worst tensor": _worst(results),
        "first divergence": _first(results),
        "first data problem": _first_problem(results),
    }


def _budget(t) -> str:
    b = t.budget
    if b is None:
        return fmt.NA
    text = f"mean {fmt.err(b.mean_abs)} · max {fmt.err(b.max_abs)} · rel {fmt.err(b.rel_error)}"
    if b.rule != "default":
        text += f" ({fmt.code(b.rule)})"
    return text


def _use(t) -> str:
    use = budget_use(t)
    if use is None:
        return fmt.NA
    return "inf" if use == float("inf") else f"{100 * use:.0f}%"


def _local(t) -> str:
    """The layer's own error (the larger of its replays) / its local budget, and the same for
    its per-channel offset."""
    if t.local is None:
        return fmt.NA
    local = t.local
    text = f"{fmt.err(local.worst())} / {fmt.err(local.budget)}"
    if local.worst_offset() is not None and local.offset_budget is not None:
        text += f"; offset {fmt.err(local.worst_offset())} / {fmt.err(local.offset_budget)}"
    return text


def layer_row(t) -> dict:
    m = t.metrics
    verdict = VERDICT_WORDS[t.verdict]
    if t.verdict == "data_problem":
        verdict += f" ({t.problems[0].kind})"
    if t.blame:
        verdict += f" ({t.blame})"
    return {
        "#": str(t.index), "tensor": fmt.code(t.name), "Keras layer": fmt.code(t.keras_layer),
        "shape": fmt.shape(t.shape), "range": fmt.value_range(m.range) if m else fmt.NA,
        "max abs": fmt.err(m.max_abs) if m else fmt.NA,
        "mean abs": fmt.err(m.mean_abs) if m else fmt.NA,
        "rel error": fmt.err(m.rel_error) if m else fmt.NA,
        "cosine": fmt.cosine(m.cosine) if m else fmt.NA,
        "budget": _budget(t), "use": _use(t), "local error": _local(t), "verdict": verdict,
    }


def sorted_tensors(results) -> list:
    return sorted(results.tensors, key=lambda t: t.index)


def layer_tables(results) -> str:
    tensors = sorted_tensors(results)
    if not tensors:
        return "No per-tensor results in this file."
    full = fmt.table([layer_row(t) for t in tensors], LAYER_COLUMNS, LAYER_ALIGN)
    if len(tensors) <= FULL_TABLE_LIMIT:
        return full
    failing = [i for i, t in enumerate(tensors) if t.verdict in ("fail", "data_problem")]
    keep = set(failing[:FAILING_ROWS])
    ranked = sorted((i for i, t in enumerate(tensors) if budget_use(t) is not None),
                    key=lambda i: (-budget_use(tensors[i]), i))
    keep.update(ranked[:WORST_ROWS])
    fd = results.first_divergence
    keep.update(i for i, t in enumerate(tensors) if fd is not None and t.name == fd.tensor)
    rows = [layer_row(tensors[i]) for i in sorted(keep)]
    more = len(failing) - min(len(failing), FAILING_ROWS)
    lines = [f"Not passing and worst {len(rows)} of {len(tensors)} tensors "
             f"({len(failing)} failing or with data problems"
             + (f", {more} more in the full table" if more else "") + "):", "",
             fmt.table(rows, LAYER_COLUMNS, LAYER_ALIGN), "",
             f"<details><summary>All {len(tensors)} tensors</summary>", "", full, "",
             "</details>"]
    return "\n".join(lines)


def _not_passing(results) -> list:
    lines = []
    for t in sorted_tensors(results):
        if t.verdict in ("fail", "data_problem"):
            lines.append(f"- {fmt.code(t.name)} ({VERDICT_WORDS[t.verdict]}): {fmt.cell(t.reason)}"
                         + (f" — fix: {fmt.cell(t.problems[0].fix)}" if t.problems else ""))
    for c in results.checks():
        if c.verdict == "fail":
            lines.append(f"- check {fmt.code(c.name)} (**FAIL**): {fmt.cell(c.reason)}")
    return lines


def _not_judged(results) -> list:
    grouped = {}
    for c in results.checks():
        if c.verdict == "not_judged":
            grouped.setdefault(c.reason, []).append(c.name)
    if results.baseline.verdict == "not_judged":
        grouped.setdefault(results.baseline.reason, []).append("baseline")
    return [f"- {', '.join(fmt.code(n) for n in names)}: {fmt.cell(reason)}"
            for reason, names in grouped.items()]


PRECHECK_COLUMNS = ("severity", "tensor", "Keras layers", "kind", "measured", "value",
                    "threshold", "advice")
PRECHECK_ALIGN = ("left", "left", "left", "left", "left", "right", "right", "left")
LARGEST_COLUMNS = ("measure", "largest", "limit", "tensor", "measured")
LARGEST_ALIGN = ("left", "right", "right", "left", "left")


def precheck_section(results) -> list:
    """The run's float16 pre-check: its line, the findings and the largest value of each measure."""
    pc = results.precheck
    if pc is None:
        return []
    lines = ["### float16 pre-check", "", fmt.cell(summary_line(pc)), ""]
    if pc.findings:
        rows = [{"severity": "**error**" if f.severity == "error" else "warning",
                 "tensor": f"{fmt.code(f.tensor)} (#{f.index})",
                 "Keras layers": ", ".join(fmt.code(n) for n in f.keras_layers) or fmt.NA,
                 "kind": fmt.cell(f.kind), "measured": fmt.cell(f"{f.quantity}: {f.measure}"),
                 "value": fmt.num(f.value), "threshold": fmt.num(f.threshold),
                 "advice": fmt.cell(f.advice)} for f in pc.findings]
        lines += [fmt.table(rows, PRECHECK_COLUMNS, PRECHECK_ALIGN), ""]
    lines += ["The largest value of each measure over the network, against the threshold of its "
              "finding:", ""]
    rows = [{"measure": fmt.cell(e.measure), "largest": fmt.num(e.value),
             "limit": fmt.num(e.limit), "tensor": fmt.code(e.tensor),
             "measured": fmt.cell(e.quantity)} for e in pc.largest]
    lines += [fmt.table(rows, LARGEST_COLUMNS, LARGEST_ALIGN), ""]
    return lines


BOX_COLUMNS = ("image", "Keras boxes", "device boxes", "paired", "agreement")
BOX_ALIGN = ("left", "right", "right", "right", "right")


def box_section(results) -> list:
    """A detector's box agreement: its line, and each image's counts (worst first)."""
    boxes = results.accuracy.boxes
    if boxes is None:
        return []
    lines = ["### Box agreement", "", fmt.cell(box_agreement_line(boxes)), ""]
    rows = [{"image": fmt.code(i.image), "Keras boxes": fmt.integer(i.keras_boxes),
             "device boxes": fmt.integer(i.device_boxes), "paired": fmt.integer(i.matched),
             "agreement": fmt.percent(i.agreement)}
            for i in sorted(boxes.per_image, key=lambda i: (i.agreement, i.image))]
    if rows:
        lines += [fmt.table(rows[:WORST_ROWS], BOX_COLUMNS, BOX_ALIGN), ""]
        if len(rows) > WORST_ROWS:
            lines += [f"<details><summary>All {len(rows)} images</summary>", "",
                      fmt.table(rows, BOX_COLUMNS, BOX_ALIGN), "", "</details>", ""]
    lines += [f"- {fmt.code(image)} left out: {fmt.cell(why)}"
              for image, why in boxes.unmeasured.items()]
    return lines + ([""] if boxes.unmeasured else [])


def _regressions(all_results) -> list:
    rows, notes = [], []
    for res in all_results:
        b = res.baseline
        for r in b.regressions:
            is_acc = r.what.startswith("accuracy.")
            show = fmt.percent if is_acc else (fmt.fps if r.metric == "fps" else fmt.err)
            rows.append({"model": fmt.code(res.model), "what": fmt.code(r.what),
                         "metric": fmt.cell(r.metric), "baseline": show(r.baseline),
                         "current": show(r.current), "tolerance": fmt.num(r.tolerance),
                         "worse by": fmt.cell(r.worse_by)})
        word = {"pass": "no regressions", "fail": "**regressions**",
                "not_judged": "not judged"}[b.verdict]
        notes.append(f"- {fmt.code(res.model)}: {word} — {fmt.cell(b.reason)}")
    lines = []
    if rows:
        lines += [fmt.table(rows, ("model", "what", "metric", "baseline", "current",
                                   "tolerance", "worse by"),
                            ("left", "left", "left", "right", "right", "right", "right")), ""]
    return lines + notes


def _environment(all_results) -> list:
    envs = []                             # (environment dict, [models])
    for res in all_results:
        for known, models in envs:
            if known == res.environment:
                models.append(res.model)
                break
        else:
            envs.append((res.environment, [res.model]))
    keys = list(ENV_KEYS) + sorted({k for env, _ in envs for k in env} - set(ENV_KEYS))
    columns = [""] + ([", ".join(models) for _, models in envs] if len(envs) > 1 else ["value"])
    rows = []
    for k in keys:
        row = {"": k}
        for (env, _), col in zip(envs, columns[1:]):
            row[col] = fmt.cell(env.get(k, fmt.NA))
        rows.append(row)
    return [fmt.table(rows, columns)]


def _report_command(paths, out_md, plots_dir, date) -> str:
    argv = ["python", "-m", "reports", *[str(p) for p in paths], "--out", str(out_md)]
    if plots_dir is not None:
        argv += ["--plots", str(plots_dir)]
    if date:
        argv += ["--date", str(date)]
    return shlex.join(argv)


def build_report(results_paths, out_md, plots_dir=None, date=None, title=TITLE) -> str:
    """The report's markdown text; writes the pictures into ``plots_dir`` when given."""
    out_md = Path(out_md)
    loaded = [(load_results(p), str(p)) for p in results_paths]
    if not loaded:
        raise ValueError("no results files given")
    loaded.sort(key=lambda rp: (rp[0].model, rp[0].device, rp[1]))
    all_results = [r for r, _ in loaded]
    slugs, seen = [], {}
    for res in all_results:
        base = _slug(res.model)
        seen[base] = seen.get(base, 0) + 1
        slugs.append(base if seen[base] == 1 else f"{base}-{seen[base]}")

    lines = [f"# {title}", ""]
    if date:
        lines += [f"Generated {date}.", ""]
    lines += ["## Summary", "",
              fmt.table([summary_row(r) for r in all_results], SUMMARY_COLUMNS, SUMMARY_ALIGN),
              "", "verdict: the suite's verdict of the run; tensors judged: tensors compared "
              "against a budget (the rest have data problems or nothing to compare); speed: fps "
              "of a phone run, or the reference device's host emulation time (not device fps); "
              "top-1/top-5: the device's accuracy on the labelled images with its 95% interval (not "
              "judged for random weights or without labels); agreement: share of images where the device's top-k "
              "equals Keras's (detectors: share of boxes the device and Keras both find, same class "
              "and IoU >= 0.9); worst tensor: metric value / budget; first divergence: the first "
              "tensor over its budget whose inputs are all within theirs — or, where each layer was "
              "also replayed on its own inputs, the first whose own (local) error is over its local "
              "budget; a layer over its cumulative budget with its own error within budget "
              "inherits; one whose inputs all pass and whose error stays within the absolute caps "
              "amplifies (passes).", "",
              "## Regressions", ""] + _regressions(all_results) + [""]

    for (res, path), slug in zip(loaded, slugs):
        lines += [f"## {res.model} ({_size(res)}, {res.device})", "", "```"]
        lines += verdict_lines(res) + ["```", ""]
        lines += [f"- results: {fmt.code(path)}",
                  f"- source model: {fmt.code(res.source_model)}, "
                  f"{fmt.cell(weights_provenance(res.weights, res.seed))}, "
                  f"{len(res.images)} image(s)",
                  f"- totals: {fmt.integer(res.totals.layers)} layers, "
                  f"{fmt.integer(res.totals.tensors)} tensors, "
                  f"{fmt.integer(res.totals.parameters)} parameters{_added(res.totals)}",
                  f"- budget file: {fmt.code(res.budget_file) if res.budget_file else 'none'}",
                  ""]
        if plots_dir is not None:
            from reports.plots import error_by_depth

            png = Path(plots_dir) / f"{slug}-error-by-depth.png"
            error_by_depth(res, png)
            lines += [f"![{res.model}: error by layer depth]({fmt.relpath(png, out_md.parent)})",
                      ""]
        failures = _not_passing(res)
        if failures:
            lines += ["Not passing:", ""] + failures + [""]
        not_judged = _not_judged(res)
        if not_judged:
            lines += ["Not judged:", ""] + not_judged + [""]
        lines += [layer_tables(res), ""] + precheck_section(res) + box_section(res)

    lines += ["## Environment", ""] + _environment(all_results) + [""]
    commands = []
    for res in all_results:
        if res.command and res.command not in commands:
            commands.append(res.command)
    commands.append(_report_command(results_paths, out_md, plots_dir, date))
    lines += ["## Reproduce", "", "```sh"] + commands + ["```", ""]
    return "\n".join(lines)


def write_report(results_paths, out_md, plots_dir=None, date=None) -> Path:
    """Write the markdown report (atomically) and its pictures; returns the report's path."""
    if isinstance(results_paths, (str, Path)):
        results_paths = [results_paths]
    text = build_report(list(results_paths), out_md, plots_dir, date)
    return fmt.write_markdown(out_md, text)
