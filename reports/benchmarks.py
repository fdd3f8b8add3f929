"""pytest-benchmark JSON (``pytest --benchmark-json FILE``) → markdown tables of times and ratios.

* one table of every benchmark of every file: mean, median, min, stddev, rounds, and the ratio
  of its mean to the fastest of its group in the same file ("× fastest");
* with several files, a table of each benchmark's mean in every file and the ratio to the first
  file (the baseline run): > 1 is slower than the baseline;
* the numbers the benchmarks put in ``extra_info`` (e.g. ``capture_over_predict``).
"""
import json
from pathlib import Path

from reports import fmt


class BenchmarkError(ValueError):
    """A file that is not pytest-benchmark JSON."""


def load_benchmarks(path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchmarkError(f"{path}: no such file; write it with "
                             "`pytest ... --benchmark-enable --benchmark-json FILE`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchmarkError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BenchmarkError(f"{path}: no 'benchmarks' list; not a pytest-benchmark JSON file "
                             "(write it with `pytest --benchmark-json FILE`)")
    data["_path"] = str(path)
    return data


def _seconds(x) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return fmt.NA
    x = float(x)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if abs(x) >= scale or unit == "ns":
            return f"{fmt.num(x / scale)} {unit}"
    return fmt.NA


def _key(b) -> str:
    return str(b.get("fullname") or b.get("name"))


def _labels(runs) -> list:
    labels = []
    for run in runs:
        label = Path(run["_path"]).stem
        commit = (run.get("commit_info") or {}).get("id")
        if commit:
            label += f" ({str(commit)[:8]})"
        labels.append(label)
    return labels


def benchmarks_markdown(paths, title: str = "Performance benchmarks") -> str:
    runs = [load_benchmarks(p) for p in paths]
    labels = _labels(runs)
    lines = [f"# {title}", ""]
    rows = []
    for run, label in zip(runs, labels):
        fastest = {}
        for b in run["benchmarks"]:
            mean = (b.get("stats") or {}).get("mean")
            if isinstance(mean, (int, float)) and mean > 0:
                g = b.get("group")
                fastest[g] = min(fastest.get(g, mean), mean)
        for b in sorted(run["benchmarks"], key=lambda b: (str(b.get("group") or ""), _key(b))):
            stats = b.get("stats") or {}
            mean = stats.get("mean")
            best = fastest.get(b.get("group"))
            ratio = f"{mean / best:.2f}" if isinstance(mean, (int, float)) and best else fmt.NA
            rows.append({"run": fmt.cell(label), "group": fmt.cell(b.get("group") or "-"),
                         "benchmark": fmt.code(b.get("name")), "mean": _seconds(mean),
                         "median": _seconds(stats.get("median")), "min": _seconds(stats.get("min")),
                         "stddev": _seconds(stats.get("stddev")),
                         "rounds": fmt.integer(stats.get("rounds")), "× fastest": ratio})
    columns = ("run", "group", "benchmark", "mean", "median", "min", "stddev", "rounds",
               "× fastest")
    align = ("left", "left", "left") + ("right",) * 6
    lines += ["## Times", "", fmt.table(rows, columns, align), "",
              "× fastest: mean time over the fastest mean of the same group in the same run.", ""]

    if len(runs) > 1:
        means = [{_key(b): (b.get("stats") or {}).get("mean") for b in run["benchmarks"]}
                 for run in runs]
        names = sorted(set().union(*means))
        cols = ["benchmark"] + [f"mean {lab}" for lab in labels] + \
               [f"{lab} / {labels[0]}" for lab in labels[1:]]
        rows = []
        for name in names:
            row = {"benchmark": fmt.code(name)}
            for lab, m in zip(labels, means):
                row[f"mean {lab}"] = _seconds(m.get(name))
            base = means[0].get(name)
            for lab, m in zip(labels[1:], means[1:]):
                cur = m.get(name)
                ok = all(isinstance(v, (int, float)) for v in (base, cur)) and base
                row[f"{lab} / {labels[0]}"] = f"{cur / base:.2f}" if ok else fmt.NA
            rows.append(row)
        lines += [f"## Ratios to {labels[0]}", "",
                  fmt.table(rows, cols, ["left"] + ["right"] * (len(cols) - 1)), "",
                  "A ratio above 1 is slower than the first run.", ""]

    extra = []
    for run, label in zip(runs, labels):
        for b in sorted(run["benchmarks"], key=_key):
            for k, v in sorted((b.get("extra_info") or {}).items()):
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    extra.append({"run": fmt.cell(label), "benchmark": fmt.code(b.get("name")),
                                  "measure": fmt.code(k), "value": fmt.num(v)})
                elif isinstance(v, str):
                    extra.append({"run": fmt.cell(label), "benchmark": fmt.code(b.get("name")),
                                  "measure": fmt.code(k), "value": fmt.cell(v)})
    if extra:
        lines += ["## Measurements", "",
                  fmt.table(extra, ("run", "benchmark", "measure", "value"),
                            ("left", "left", "left", "right")), ""]

    machines = []
    for run, label in zip(runs, labels):
        m = run.get("machine_info") or {}
        machines.append({"run": fmt.cell(label), "host": fmt.cell(m.get("node") or fmt.NA),
                         "cpu": fmt.cell((m.get("cpu") or {}).get("brand_raw") or
                                         m.get("processor") or fmt.NA),
                         "python": fmt.cell(m.get("python_version") or fmt.NA),
                         "pytest-benchmark": fmt.cell(run.get("version") or fmt.NA)})
    lines += ["## Machines", "",
              fmt.table(machines, ("run", "host", "cpu", "python", "pytest-benchmark")), ""]
    return "\n".join(lines)


def write_benchmarks(paths, out_md) -> Path:
    return fmt.write_markdown(out_md, benchmarks_markdown(list(paths)))
