"""``python -m reports diff A.json B.json``: per-layer differences between two runs or baselines.

A and B are results files (``keras2metal.results/2``) or baselines (``keras2metal.baseline/2``),
e.g. the same model under Keras 2 and Keras 3, or on an iPhone 7 and an iPhone X.  The table lists
every tensor both hold, in network order, with each side's errors and the ratio B/A; tensors only
one side holds are listed apart.  The picture draws both sides' relative error by depth.  This is
a comparison for people to read, not a verdict: nothing here passes or fails a run.
"""
from dataclasses import dataclass
from pathlib import Path

from core.contracts import ContractError, load, read_json
from reports import fmt
from validation.baseline import Baseline
from validation.verdicts import Results

METRICS = ("rel_error", "mean_abs", "max_abs")


@dataclass
class Side:
    label: str                 # what this side is, for the reader
    path: str
    tensors: dict              # name -> {metric: value}, in network order


def load_side(path) -> Side:
    """A results file or a baseline, as the per-tensor errors it holds."""
    path = Path(path)
    data = read_json(path, "give two results files or baselines")
    fmt_name = data.get("format") if isinstance(data, dict) else None
    if fmt_name == Baseline.FORMAT:
        b = load(Baseline, data, str(path))
        label = (f"{b.model} baseline on the {b.target.device}, Keras {b.target.keras}, "
                 f"TensorFlow {b.target.tensorflow} ({len(b.images)} image(s))")
        return Side(label, str(path), dict(b.tensors))
    if fmt_name == Results.FORMAT:
        r = load(Results, data, str(path))
        label = (f"{r.model} run on the {r.device}, Keras {r.environment.get('keras')}, "
                 f"TensorFlow {r.environment.get('tensorflow')} ({len(r.images)} image(s))")
        tensors = {t.name: {m: getattr(t.metrics, m) for m in METRICS}
                   for t in sorted(r.tensors, key=lambda t: t.index) if t.metrics is not None}
        return Side(label, str(path), tensors)
    raise ContractError(f"{path}: format is {fmt_name!r}; expected {Results.FORMAT!r} (a results "
                        f"file) or {Baseline.FORMAT!r} (a baseline)")


def _ratio(a, b) -> str:
    if a is None or b is None:
        return fmt.NA
    if a == 0:
        return "=" if b == 0 else "inf"
    return f"{b / a:.2f}"


def diff_markdown(a: Side, b: Side, plot_link: str = None) -> str:
    common = [n for n in a.tensors if n in b.tensors]
    rows = []
    for name in common:
        row = {"tensor": fmt.code(name)}
        for metric in METRICS:
            va, vb = a.tensors[name].get(metric), b.tensors[name].get(metric)
            row[f"A {metric}"], row[f"B {metric}"] = fmt.err(va), fmt.err(vb)
            row[f"B/A {metric}"] = _ratio(va, vb)
        rows.append(row)
    columns = ["tensor"] + [f"{side} {m}" for m in METRICS for side in ("A", "B", "B/A")]
    lines = ["# keras2metal diff", "", f"- A: {fmt.cell(a.label)} — {fmt.code(a.path)}",
             f"- B: {fmt.cell(b.label)} — {fmt.code(b.path)}", ""]
    ratios = [b.tensors[n]["rel_error"] / a.tensors[n]["rel_error"] for n in common
              if a.tensors[n].get("rel_error") and b.tensors[n].get("rel_error") is not None]
    if ratios:
        worst = max(range(len(ratios)), key=lambda i: ratios[i])
        lines += [f"{len(common)} tensors on both sides; relative error B/A: median "
                  f"{sorted(ratios)[len(ratios) // 2]:.2f}, largest {ratios[worst]:.2f} at "
                  f"{fmt.code(common[worst])}.", ""]
    if plot_link:
        lines += [f"![relative error by depth, A and B]({plot_link})", ""]
    lines += [fmt.table(rows, columns, ["left"] + ["right"] * (len(columns) - 1)), ""]
    for side, other, name in ((a, b, "A"), (b, a, "B")):
        only = [n for n in side.tensors if n not in other.tensors]
        if only:
            lines += [f"Only in {name} ({len(only)}): " + ", ".join(fmt.code(n) for n in only), ""]
    return "\n".join(lines)


def diff_plot(a: Side, b: Side, path) -> Path:
    """Both sides' relative error against the position of the tensor in A's network order."""
    import numpy as np

    from reports.plots import FLOOR, _save, plt

    common = [n for n in a.tensors if n in b.tensors]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    depth = np.arange(len(common))
    for side, name, colour in ((a, "A", "tab:blue"), (b, "B", "tab:orange")):
        values = np.array([side.tensors[n].get("rel_error") or np.nan for n in common], float)
        ax.plot(depth, np.maximum(values, FLOOR), marker="o", markersize=3, linewidth=1,
                color=colour, label=f"{name}: {side.label}")
    if len(common):
        ax.set_yscale("log")
    ax.set_xlabel("tensor (network order)")
    ax.set_ylabel("relative error vs Keras")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def write_diff(path_a, path_b, out_md, plot=None) -> Path:
    a, b = load_side(path_a), load_side(path_b)
    out_md = Path(out_md)
    link = None
    if plot is not None:
        png = diff_plot(a, b, plot)
        link = fmt.relpath(png, out_md.parent)
    return fmt.write_markdown(out_md, diff_markdown(a, b, link))
