"""pytest plumbing of the validation suite: setup once, parametrisation, header, summary, outputs.

* ``pytest_configure`` (controller only) prepares and judges the run; a setup failure (bad
  ``--model``, empty dump folder, unreadable model, ...) is one usage error with the fix;
* ``pytest_generate_tests`` parametrises ``tensor_name`` with the run's tensors (ids = Forge
  tensor names, so ``-k conv1`` works);
* ``pytest_report_header`` / the summary print the verdict lines; the tests render the verdicts;
* at the end the controller writes ``--results``, ``--report`` and, with ``--update-baseline``,
  the baseline, reports the cache's size and prunes it to its limit.
"""
from pathlib import Path

import pytest

from validation.pipeline import ValidationSetupError
from validation.suite import WORKER_KEY, state


def pytest_configure(config):
    st = state(config)
    if st.is_worker:
        return
    try:
        st.prepare()
    except ValidationSetupError as exc:
        raise pytest.UsageError(f"keras2metal validation: {exc}") from None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist: give each worker the judged results instead of judging again."""
    node.workerinput[WORKER_KEY] = str(state(node.config).results_file)


def pytest_generate_tests(metafunc):
    if "tensor_name" not in metafunc.fixturenames:
        return
    names = [t.name for t in state(metafunc.config).results().tensors]
    metafunc.parametrize("tensor_name", names, ids=names)


def pytest_report_header(config):
    from validation.verdicts import verdict_lines

    return verdict_lines(state(config).results())


def pytest_collection_finish(session):
    """With -q there is no report header: print the verdict once collection is done instead."""
    config = session.config
    if state(config).is_worker or config.get_verbosity() >= 0 or not session.items:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in pytest_report_header(config):
            reporter.write_line(line)


@pytest.fixture(scope="session")
def results(pytestconfig):
    return state(pytestconfig).results()


def _write_outputs(config, st):
    from validation import baseline as baselines
    from validation.cache import default_limit, parse_size, prune
    from validation.results import write_results

    base = Path(config.invocation_params.dir)
    evaluation = st.evaluation
    if config.getoption("--update-baseline", default=False):
        baselines.write(evaluation.baseline_path, evaluation.baseline_doc)
        st.notes.append(f"baseline rewritten: {evaluation.baseline_path}")
    results_path = config.getoption("--results", default=None)
    report_path = config.getoption("--report", default=None)
    if report_path and not results_path:        # the report is made from a results file
        results_path = Path(report_path).with_suffix(".results.json")
    if results_path:
        results_path = write_results(base / results_path, evaluation.results)
        st.notes.append(f"results written: {results_path}")
    if report_path:
        from reports import write_report

        report = base / report_path
        try:
            write_report([results_path], report, plots_dir=report.parent / "plots")
            st.notes.append(f"report written: {report}")
        except (ValueError, OSError) as exc:      # the report must not hide the verdict
            st.notes.append(f"--report {report}: not written: {exc}")
    repro = config.getoption("--repro", default=None)
    if repro:
        from validation.repro import ReproError, write_reproducer

        try:
            written = write_reproducer(st.prepared, evaluation.results, base / repro,
                                       evaluation.budget_file)
            st.notes.append(f"reproducer of {written.tensor} written: {written.folder} (local "
                            f"error {written.local.relative:.4g} on image {written.image}; run it "
                            f"here with `python -m validation repro {written.folder}`)")
        except ReproError as exc:
            st.notes.append(f"--repro: nothing written: {exc}")
    st.results_file.unlink(missing_ok=True)
    limit = config.getoption("--cache-limit", default=None)
    st.notes.append(prune(st.pipeline.s.cache_dir, parse_size(limit) if limit else
                          default_limit(), keep=[st.prepared.folder]).line())


def pytest_sessionfinish(session, exitstatus):
    st = state(session.config)
    if not st.is_worker and st.evaluation is not None:
        _write_outputs(session.config, st)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    st = state(config)
    if st.is_worker or st.evaluation is None:
        return
    from validation.baseline import diff_table
    from validation.verdicts import verdict_lines

    results = st.results()
    terminalreporter.section("keras2metal validation")
    for line in verdict_lines(results):
        terminalreporter.write_line(line)
    if results.baseline.regressions:
        terminalreporter.write_line(diff_table(results.baseline.regressions))
    for line in st.notes:
        terminalreporter.write_line(line)
