"""pytest plumbing of the validation suite: parametrisation, fixtures, header, summary, outputs.

* ``pytest_generate_tests`` parametrises ``tensor_name`` with the manifest's tensors (ids = tensor
  names), converting the model at collection time (cached; see validation.pipeline);
* ``pytest_report_header`` prints the verdict (first divergence first) at the top of the output;
* the session fixture ``validation_run`` gives the evaluated run to the tests;
* at the end, the controller process (not xdist workers) writes ``--results``, ``--report`` and,
  with ``--update-baseline``, the baseline, and prints the verdict again in a summary section.
"""
from pathlib import Path

import pytest

from validation.pipeline import ValidationSetupError
from validation.suite import state


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_generate_tests(metafunc):
    if "tensor_name" not in metafunc.fixturenames:
        return
    st = state(metafunc.config)
    try:
        manifest = st.manifest()
    except ValidationSetupError:
        metafunc.parametrize("tensor_name", [pytest.param(None, id="setup")])
        return
    names = [t["name"] for t in manifest["tensors"]]
    metafunc.parametrize("tensor_name", names, ids=names)


def pytest_report_header(config):
    st = state(config)
    try:
        from validation.results import verdict_lines

        return verdict_lines(st.run())
    except ValidationSetupError as exc:
        return [f"keras2metal validation: SETUP FAILED: {str(exc).splitlines()[0]}"]


def pytest_collection_finish(session):
    """With -q there is no report header: print the verdict once collection is done instead."""
    config = session.config
    if _is_worker(config) or config.get_verbosity() >= 0 or not session.items:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    for line in pytest_report_header(config):
        reporter.write_line(line)


@pytest.fixture(scope="session")
def validation_run(pytestconfig):
    st = state(pytestconfig)
    try:
        return st.run()
    except ValidationSetupError as exc:
        error = str(exc)
    pytest.fail(f"validation setup failed: {error}", pytrace=False)   # once, not chained


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if _is_worker(config):
        return
    st = state(config)
    try:
        run = st.run()
    except ValidationSetupError:
        return
    from validation import baseline as baselines
    from validation.results import write_results

    notes = []
    results_path = config.getoption("--results", default=None)
    base = Path(config.invocation_params.dir)
    if config.getoption("--update-baseline", default=False):
        baselines.write(run.baseline_path, run.baseline_doc)
        notes.append(f"baseline rewritten: {run.baseline_path}")
    report_path = config.getoption("--report", default=None)
    if report_path and not results_path:  # the report is made from a results file
        results_path = Path(report_path).with_suffix(".results.json")
    if results_path:
        results_path = write_results(base / results_path, run.results)
        notes.append(f"results written: {results_path}")
    if report_path:
        try:
            from reports import write_report
        except ImportError:
            notes.append("--report: the reports package is not available here (reports."
                         "write_report); write the results with --results and run the reports "
                         "package on them")
        else:
            try:
                report = base / report_path
                out = write_report([results_path], report, plots_dir=report.parent / "plots")
                notes.append(f"report written: {out or base / report_path}")
            except Exception as exc:  # noqa: BLE001 - the report must not hide the verdict
                notes.append(f"--report failed: {type(exc).__name__}: {exc}")
    st.notes = notes


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _is_worker(config):
        return
    st = state(config)
    if not st.has_run:
        if st.error:
            terminalreporter.section("keras2metal validation")
            terminalreporter.write_line(f"SETUP FAILED: {st.error}")
        return
    from validation.baseline import diff_table
    from validation.results import verdict_lines

    run = st.run()
    terminalreporter.section("keras2metal validation")
    for line in verdict_lines(run):
        terminalreporter.write_line(line)
    if run.results.get("regressions"):
        terminalreporter.write_line(diff_table(run.results["regressions"]))
    for line in getattr(st, "notes", []):
        terminalreporter.write_line(line)
