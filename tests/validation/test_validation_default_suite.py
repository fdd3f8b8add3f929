"""The validation suite end to end on the embedded default model (reference device)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from validation_helpers import DEFAULT_IMAGES, prepared, reference_dumps

RESULT_KEYS = {"format", "model", "source_model", "weights", "seed", "input_size", "device",
               "environment", "command", "totals", "performance", "accuracy", "tensors",
               "first_divergence", "worst_tensor", "regressions", "passed"}
TENSOR_KEYS = {"name", "keras_layer", "forge_type", "index", "shape", "range", "max_abs",
               "mean_abs", "rmse", "rel_error", "cosine", "nan_inf", "budget", "status", "reason"}
FEW_IMAGES = sorted(DEFAULT_IMAGES.glob("*_00.png"))          # one image per class


def test_default_model_passes_from_any_directory_with_xdist(run_suite, tmp_path):
    run = run_suite("--model", "default", "-n", "2", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    r = run.results
    assert RESULT_KEYS <= set(r)
    assert r["format"] == "keras2metal.results/1" and r["passed"] is True
    assert r["model"] == "shapes_net" and r["source_model"] == "default"
    assert r["weights"] == "trained" and r["device"] == "reference device"
    assert r["input_size"] == [32, 32] and r["first_divergence"] is None
    assert r["totals"]["tensors"] == 22
    assert r["accuracy"]["labelled"] == 32 and r["accuracy"]["device"]["top1"] >= 0.9
    assert r["accuracy"]["agreement"] == {"top1": 1.0, "top5": 1.0}
    assert r["performance"]["fps"] > 0 and r["performance"]["source"] == "run log"
    assert {t["status"] for t in r["tensors"]} == {"pass"}
    for t in r["tensors"]:
        assert TENSOR_KEYS <= set(t)
        assert t["budget"]["rule"] == "default" or t["budget"]["rule"]
    names = [t["name"] for t in r["tensors"]]
    assert "stem_conv" in names and "__Input__" not in names
    assert "first divergence: none" in run.output


def _corrupt(folder, tensor, fn):
    files = list(Path(folder).rglob(f"shapes_net-{tensor}.floats"))
    assert files, f"no dumps of {tensor} in {folder}"
    for f in files:
        data = np.fromfile(f, dtype="<f4")
        fn(data).astype("<f4").tofile(f)
    return files


@pytest.fixture
def dump_folder(suite_cache, tmp_path):
    p = prepared("default", suite_cache, FEW_IMAGES)
    return reference_dumps(p.manifest_path, p.manifest, FEW_IMAGES, tmp_path / "dumps")


def test_corrupted_layer_in_a_dump_folder_is_the_first_divergence(run_suite, dump_folder,
                                                                  tmp_path):
    rng = np.random.default_rng(0)
    _corrupt(dump_folder, "mix_b", lambda d: d + rng.normal(0, 0.3, d.shape))
    run = run_suite("--model", "default", "--device-dump", dump_folder, "--images", *FEW_IMAGES,
                    cwd=tmp_path)
    assert run.returncode == 1, run.output[-3000:]
    fd = run.results["first_divergence"]
    assert fd["tensor"] == "mix_b" and fd["keras_layer"] == "mix_b_relu"
    assert "FIRST DIVERGENCE: tensor 'mix_b'" in run.output
    status = {t["name"]: t["status"] for t in run.results["tensors"]}
    assert status["mix_b"] == "fail" and status["mix_a"] == "pass"
    assert "test_tensor[mix_b]" in run.output and "relative error" in run.output


def test_missing_tensors_are_reported_as_missing_not_passes(run_suite, dump_folder, tmp_path):
    for f in dump_folder.rglob("shapes_net-block2_dw.floats"):
        f.unlink()
    for f in dump_folder.rglob("shapes_net-pool.floats"):
        f.unlink()
    run = run_suite("--model", "default", "--device-dump", dump_folder, "--images", *FEW_IMAGES,
                    "-rA", cwd=tmp_path)
    assert run.returncode == 1, run.output[-3000:]
    status = {t["name"]: t for t in run.results["tensors"]}
    assert status["block2_dw"]["status"] == "missing"
    assert status["pool"]["status"] == "missing"
    assert status["block2_pw"]["status"] == "pass"
    assert run.results["first_divergence"] is None and run.results["passed"] is False
    assert "FAILED" in run.output and "MISSING: tensor block2_dw" in run.output
    assert not any(line.startswith("PASSED") and "test_tensor[block2_dw]" in line
                   for line in run.output.splitlines())
    assert any(line.startswith("FAILED") and "test_tensor[block2_dw]" in line
               for line in run.output.splitlines())


def test_baseline_worsened_layer_fails_with_a_diff_and_update_accepts_it(run_suite, dump_folder,
                                                                          tmp_path):
    baseline = tmp_path / "baseline.json"
    args = ["--model", "default", "--images", *FEW_IMAGES, "--baseline", baseline]
    first = run_suite(*args, "--device-dump", dump_folder, "--update-baseline", cwd=tmp_path)
    assert first.returncode == 0, first.output[-3000:]
    doc = json.loads(baseline.read_text())
    assert doc["format"] == "keras2metal.baseline/1" and "mix_a" in doc["tensors"]

    # worsen one layer: 4 ε relative noise — within its budget (16 ε), 2-4x its baseline error
    worse = tmp_path / "worse"
    shutil.copytree(dump_folder, worse)
    rng = np.random.default_rng(1)
    _corrupt(worse, "mix_a", lambda d: d + rng.normal(0, 4 * 2.0 ** -11 * np.sqrt(np.mean(d * d)),
                                                       d.shape))
    second = run_suite(*args, "--device-dump", worse, "-rA", cwd=tmp_path)
    assert second.returncode == 1, second.output[-3000:]
    regressed = {x["tensor"] for x in second.results["regressions"]}
    assert "mix_a" in regressed
    assert all(t["status"] == "pass" for t in second.results["tensors"])   # budgets still hold
    assert any(line.startswith("FAILED") and "test_baseline.py::test_baseline" in line
               for line in second.output.splitlines())
    assert "worse by" in second.output and "mix_a" in second.output

    third = run_suite(*args, "--device-dump", worse, "--update-baseline", cwd=tmp_path)
    assert third.returncode == 0, third.output[-3000:]
    fourth = run_suite(*args, "--device-dump", worse, cwd=tmp_path)
    assert fourth.returncode == 0, fourth.output[-3000:]
    assert fourth.results["regressions"] == []
