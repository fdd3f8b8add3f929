"""The per-process state of a pytest validation session (one per pytest process / xdist worker).

The test ids come from the manifest, so the conversion happens at collection time
(``pytest_generate_tests`` asks :meth:`SuiteState.manifest`); the device run, the golden capture
and the evaluation happen once per process on first need (the report header, or the first test).
Everything heavy is cached on disk by :mod:`validation.pipeline` under file locks, so with
pytest-xdist the first process to need an artifact produces it and the others reuse it.
"""
import traceback

from validation.pipeline import Pipeline, Settings, ValidationSetupError

STATE_ATTR = "_keras2metal_validation"


class SuiteState:
    def __init__(self, config):
        self.config = config
        self._settings = None
        self._pipeline = None
        self._manifest = None
        self._run = None
        self.error = None          # text of a setup failure, reported by every test

    def option(self, name):
        return self.config.getoption(name, default=None)

    def settings(self) -> Settings:
        if self._settings is None:
            base = str(self.config.invocation_params.dir)
            self._settings = Settings(
                model=self.option("--model") or "default", weights=self.option("--weights"),
                seed=self.option("--seed") or 0, images=self.option("--images"),
                labels=self.option("--labels"), device_dump=self.option("--device-dump"),
                fault=self.option("--fault"), cache_dir=self.option("--validation-cache"),
                base_dir=base)
        return self._settings

    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = Pipeline(self.settings())
        return self._pipeline

    def manifest(self) -> dict:
        if self.error:
            raise ValidationSetupError(self.error)
        if self._manifest is None:
            try:
                self._manifest = self.pipeline().prepare(stores=False).manifest
            except ValidationSetupError as exc:
                self.error = str(exc)
                raise
            except Exception as exc:  # noqa: BLE001 - reported to the user as a setup error
                self.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
                raise ValidationSetupError(self.error) from exc
        return self._manifest

    def run(self):
        if self.error:
            raise ValidationSetupError(self.error)
        if self._run is None:
            from validation.results import command_line
            from validation.run import evaluate_run

            try:
                prepared = self.pipeline().prepare()
                base = self.config.invocation_params.dir
                budget = self.option("--budget")
                baseline = self.option("--baseline")
                self._run = evaluate_run(
                    prepared, budget_path=str(base / budget) if budget else None,
                    baseline_path=str(base / baseline) if baseline else None,
                    command=command_line(self.config.invocation_params.args),
                    update_baseline=bool(self.option("--update-baseline")))
            except ValidationSetupError as exc:
                self.error = str(exc)
                raise
            except Exception as exc:  # noqa: BLE001
                self.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
                raise ValidationSetupError(self.error) from exc
        return self._run

    @property
    def has_run(self) -> bool:
        return self._run is not None


def state(config) -> SuiteState:
    st = getattr(config, STATE_ATTR, None)
    if st is None:
        st = SuiteState(config)
        setattr(config, STATE_ATTR, st)
    return st
