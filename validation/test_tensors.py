"""One test per manifest tensor (ids = Forge tensor names): it renders the judge's verdict."""
import pytest

from validation.verdicts import problem_lines, tensor_table


def test_tensor(tensor_name, results):
    t = results.tensor(tensor_name)
    if t.verdict == "not_judged":
        pytest.skip(f"not judged: {t.reason}")
    if t.verdict == "data_problem":
        pytest.fail(f"DATA PROBLEM: tensor {t.name} (Keras layer {t.keras_layer}) cannot be "
                    "compared:\n" + "\n".join(problem_lines(t)), pytrace=False)
    if t.verdict == "fail":
        fd = results.first_divergence
        where = (f"this is the FIRST DIVERGENCE: {fd.hint}" if fd and fd.tensor == t.name else
                 f"(first divergence: {fd.tensor}, Keras layer {fd.keras_layer})" if fd else "")
        pytest.fail(f"{t.name} is over its budget: {t.reason}\n{tensor_table(t)}\n{where}",
                    pytrace=False)
    assert t.verdict == "pass", f"{t.name}: unexpected verdict {t.verdict!r}"
