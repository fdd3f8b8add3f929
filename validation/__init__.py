"""The validation suite: ``pytest validation --model NAME|PATH [--device-dump DIR] ...``.

Public surface (library, for tools and the reports package):

* :class:`validation.pipeline.Settings`, :class:`validation.pipeline.Pipeline` — convert,
  run the reference device or ingest a dump folder, capture golden activations, cached on disk
  (:mod:`validation.cache`: where, how big, pruning);
* :func:`validation.run.evaluate_run` → :class:`validation.run.Evaluation`, whose ``results``
  is the run's :class:`validation.verdicts.Results` (``keras2metal.results/2``): every verdict,
  decided by :mod:`validation.judge` alone and only rendered elsewhere;
* :func:`validation.verdicts.load_results`, :func:`validation.verdicts.verdict_lines`,
  :func:`validation.results.write_results`, :func:`validation.baseline.write`;
* :func:`validation.precheck.cached_precheck` / :func:`validation.precheck.run_precheck` →
  :class:`validation.precheck.Precheck` (``keras2metal.precheck/1``): the float16 range
  pre-check, with :mod:`validation.undumped` computing what the device holds but never dumps
  (``python -m validation precheck MODEL``);
* :mod:`validation.budgets` — the default budget rule and the TOML budget files;
* :mod:`validation.metrics`, :func:`validation.divergence.first_divergence`.

The pytest options are registered in the root ``conftest.py``; the plumbing is in
``validation/conftest.py`` and :mod:`validation.suite`.
"""
__all__ = ["pipeline", "cache", "run", "judge", "verdicts", "results", "baseline", "budgets",
           "metrics", "divergence", "evaluate", "precheck", "undumped"]
