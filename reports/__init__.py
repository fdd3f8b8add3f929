"""Markdown (and PNG) performance and accuracy reports from the validation suite's results.

Public surface:

* :func:`write_report` (``python -m reports RESULTS.json... --out REPORT.md [--plots DIR]
  [--baseline-dir DIR]``): summary table (net, device, fps, top-1, top-5, agreement with Keras,
  layers, tensors, parameters, worst tensor, first divergence, pass/fail), per-layer tables,
  regressions against baselines, environment and commands to reproduce;
* ``python -m reports featuremaps A B --tensor NAME --out PNG``: golden | device | |difference|
  feature-map grids (:func:`reports.plots.featuremap_grid`);
* ``python -m reports compare DIR_A DIR_B``: per-file error table of two dump folders
  (:func:`reports.dumps.compare_dirs`);
* ``python -m reports benchmarks BENCH.json... --out MD``: pytest-benchmark JSON → markdown
  (:func:`reports.benchmarks.write_benchmarks`).

Reports read results JSON files, stores and dump folders; they import nothing of ``validation``,
``golden`` or ``device_pull``.
"""
from reports.benchmarks import BenchmarkError, write_benchmarks
from reports.dumps import DumpError, compare_dirs
from reports.markdown import build_report, write_report
from reports.results import FORMAT, ResultsError, load_results

__all__ = ["FORMAT", "BenchmarkError", "DumpError", "ResultsError", "build_report",
           "compare_dirs", "load_results", "write_benchmarks", "write_report"]
