"""The per-process state of a pytest validation session.

The controlling process (plain pytest, or the xdist controller) prepares the run — conversion,
device results, golden capture and the float16 pre-check (:mod:`validation.precheck`), all cached
on disk — and lets the judge evaluate it once, in
``pytest_configure``; a setup failure there is one usage error with the fix, printed once.  It
writes the :class:`~validation.verdicts.Results` to a file in the cache and hands its path to the
xdist workers, which load it instead of judging again: every test renders the same verdicts.
"""
import traceback
from pathlib import Path

from core.contracts import ContractError

from validation.pipeline import Pipeline, Settings, ValidationSetupError

STATE_ATTR = "_keras2metal_validation"
WORKER_KEY = "keras2metal_results"


class SuiteState:
    def __init__(self, config):
        self.config = config
        self.evaluation = None     # controller: the Evaluation (results + baseline document)
        self._results = None
        self.results_file = None   # the judged results, for the workers
        self.notes = []

    def option(self, name):
        return self.config.getoption(name, default=None)

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def settings(self) -> Settings:
        return Settings(
            model=self.option("--model") or "default", weights=self.option("--weights"),
            seed=self.option("--seed") or 0, preprocessing=self.option("--preprocessing"),
            images=self.option("--images"),
            labels=self.option("--labels"), limit=self.option("--limit"),
            sample=self.option("--sample"), sample_seed=self.option("--sample-seed") or 0,
            keep_activations=self.option("--keep-activations"),
            workers=self.option("--workers"), scheduler=self.option("--scheduler"),
            progress=self.config.get_verbosity() >= 0,
            device_dump=self.option("--device-dump"),
            fault=self.option("--fault"), cache_dir=self.option("--validation-cache"),
            base_dir=str(self.config.invocation_params.dir))

    def prepare(self):
        """Controller: prepare, judge and keep the results (raises ValidationSetupError)."""
        from core.atomic import write_text
        from core.contracts import dumps
        from validation.precheck import PrecheckError, cached_precheck
        from validation.results import command_line
        from validation.run import evaluate_run

        try:
            settings = self.settings()
            self.pipeline = Pipeline(settings)
            prepared = self.pipeline.prepare()
            try:
                precheck = cached_precheck(self.pipeline, prepared)
            except PrecheckError as exc:          # the device's evidence is judged without it
                precheck = None
                self.notes.append(f"float16 pre-check not run: {exc}")
            base = self.config.invocation_params.dir
            budget, baseline = self.option("--budget"), self.option("--baseline")
            self.evaluation = evaluate_run(
                prepared, budget_path=str(base / budget) if budget else None,
                baseline_path=str(base / baseline) if baseline else None,
                command=command_line(self.config.invocation_params.args),
                update_baseline=bool(self.option("--update-baseline")), precheck=precheck)
        except ValidationSetupError:
            raise
        except (ValueError, OSError) as exc:     # bad budget/labels/baseline files, stale stores
            raise ValidationSetupError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - an unexpected error: its traceback, once
            raise ValidationSetupError(
                f"unexpected {type(exc).__name__}: {exc}\n{traceback.format_exc()}") from None
        self._results = self.evaluation.results
        self.prepared = prepared
        self.results_file = Path(prepared.folder) / f"results-{id(self)}.json"
        write_text(self.results_file, dumps(self._results))

    def results(self):
        if self._results is None:
            if not self.is_worker:
                raise ValidationSetupError("the validation run was not prepared")
            from validation.verdicts import load_results

            try:
                self._results = load_results(self.config.workerinput[WORKER_KEY])
            except (KeyError, ContractError) as exc:
                raise ValidationSetupError(f"worker could not read the judged results: {exc}")
        return self._results


def state(config) -> SuiteState:
    st = getattr(config, STATE_ATTR, None)
    if st is None:
        st = SuiteState(config)
        setattr(config, STATE_ATTR, st)
    return st
