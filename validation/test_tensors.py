"""One test per manifest tensor (ids = tensor names): device vs Keras within the tensor's budget."""
import pytest

from validation.results import tensor_table


def test_tensor(tensor_name, validation_run):
    if tensor_name is None:
        pytest.fail("validation setup failed (see the report header)", pytrace=False)
    row = validation_run.rows[tensor_name]
    status = row["status"]
    if status == "not_compared":
        pytest.skip(f"{tensor_name}: {row['reason']}")
    if status == "missing":
        pytest.fail(f"MISSING: tensor {tensor_name} (Keras layer {row.get('keras_layer')}) has no "
                    f"device data: {row['reason']}", pytrace=False)
    if status == "error":
        pytest.fail(f"ERROR: tensor {tensor_name} (Keras layer {row.get('keras_layer')}): "
                    f"{row['reason']}", pytrace=False)
    if status == "fail":
        fd = validation_run.results.get("first_divergence") or {}
        where = ("this is the FIRST DIVERGENCE: " + fd.get("hint", "")
                 if fd.get("tensor") == tensor_name else
                 f"(first divergence: {fd.get('tensor')}, Keras layer {fd.get('keras_layer')})"
                 if fd else "")
        pytest.fail(f"{tensor_name} is over its budget: {row['reason']}\n{tensor_table(row)}\n"
                    f"{where}", pytrace=False)
    assert status == "pass", f"{tensor_name}: unexpected status {status!r}"
