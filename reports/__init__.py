"""Markdown (and PNG) performance and accuracy reports from the validation suite's results.

Public surface:

* :func:`write_report` (``python -m reports RESULTS.json... --out REPORT.md [--plots DIR]``):
  summary table (net, device, verdict, tensors judged, speed, top-1, top-5, agreement with Keras,
  layers, tensors, parameters, worst tensor, first divergence, first data problem), each run's
  verdict, regressions, per-layer tables, environment and commands to reproduce — all rendered
  from the suite's typed results (:class:`validation.verdicts.Results`), never re-judged;
* ``python -m reports featuremaps A B --tensor NAME --out PNG``: golden | device | |difference|
  feature-map grids (:func:`reports.plots.featuremap_grid`);
* ``python -m reports compare DIR_A DIR_B``: per-file error table of two dump folders
  (:func:`reports.dumps.compare_dirs`);
* ``python -m reports benchmarks BENCH.json... --out MD``: pytest-benchmark JSON → markdown
  (:func:`reports.benchmarks.write_benchmarks`).

Reports read results files, stores and dump folders; of the other packages they import only the
results contract (:mod:`validation.verdicts`) and the stores.
"""
from reports.benchmarks import BenchmarkError, write_benchmarks
from reports.dumps import DumpError, compare_dirs
from reports.markdown import build_report, write_report
from reports.results import FORMAT, ResultsError, load_results

__all__ = ["FORMAT", "BenchmarkError", "DumpError", "ResultsError", "build_report",
           "compare_dirs", "load_results", "write_benchmarks", "write_report"]
