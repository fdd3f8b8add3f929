"""The validation suite: ``pytest validation --model NAME|PATH [--device-dump DIR] ...``.

Public surface (library, for tools and the reports package):

* :class:`validation.pipeline.Settings`, :class:`validation.pipeline.Pipeline` — convert,
  run the reference device or ingest a dump folder, capture golden activations, cached on disk;
* :func:`validation.run.evaluate_run` → :class:`validation.run.RunResult` — tensors against
  budgets, first divergence, accuracy, performance, baseline regressions; ``.results`` is the
  results JSON (``keras2metal.results/1``, documented in :mod:`validation.results`);
* :func:`validation.results.write_results`, :func:`validation.baseline.write`;
* :mod:`validation.budgets` — the default budget rule and the TOML budget files;
* :mod:`validation.metrics`, :func:`validation.divergence.first_divergence`.

The pytest options are registered in the root ``conftest.py``; the plumbing is in
``validation/conftest.py``.
"""
__all__ = ["pipeline", "run", "results", "baseline", "budgets", "metrics", "divergence",
           "evaluate"]
