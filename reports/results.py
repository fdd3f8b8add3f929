"""Reading the validation suite's results files (``keras2metal.results/2``).

The reports render :class:`validation.verdicts.Results` as the suite's one judge decided them;
nothing here computes a verdict, a regression or a first divergence.  A file of another format,
or one that does not match the schema, is a :class:`ResultsError` naming the file and the field.
"""
from core.contracts import ContractError
from validation.verdicts import FORMAT, Results, load_results as _load

ResultsError = ContractError


def load_results(path) -> Results:
    """Read one results file (the error names the file, the field and what to do)."""
    return _load(path)


def budget_use(t):
    """max over budgeted metrics of value / budget (> 1 means over budget), or None."""
    if t.metrics is None or t.budget is None:
        return None
    uses = []
    for metric in ("mean_abs", "max_abs", "rel_error"):
        value, limit = getattr(t.metrics, metric), getattr(t.budget, metric)
        uses.append(value / limit if limit > 0 else (float("inf") if value > 0 else 0.0))
    return max(uses)


__all__ = ["FORMAT", "ResultsError", "load_results", "budget_use"]
