"""The validation suite end to end on the embedded default model (reference device)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from validation_helpers import DEFAULT_IMAGES, prepared, reference_dumps

RESULT_KEYS = {"format", "model", "source_model", "weights", "seed", "input_size", "device",
               "environment", "command", "totals", "performance", "accuracy", "tensors",
               "first_divergence", "first_data_problem", "worst_tensor", "baseline", "verdict",
               "verdict_reason", "budget_file", "images", "unreadable_images", "precheck"}
TENSOR_KEYS = {"name", "keras_layer", "forge_type", "index", "shape", "inputs", "verdict",
               "reason", "metrics", "budget", "violations", "problems", "local", "blame",
               "no_local_check"}
FEW_IMAGES = sorted(DEFAULT_IMAGES.glob("*_00.png"))          # one image per class


def test_default_model_passes_from_any_directory_with_xdist(run_suite, tmp_path):
    run = run_suite("--model", "default", "-n", "2", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    r = run.results
    assert set(r) == RESULT_KEYS
    assert r["format"] == "keras2metal.results/2" and r["verdict"] == "pass"
    assert r["model"] == "shapes_net" and r["source_model"] == "default"
    assert r["weights"] == "trained" and r["device"] == "reference device"
    assert r["input_size"] == [32, 32] and r["first_divergence"] is None
    assert r["totals"]["tensors"] == 22 and len(r["tensors"]) == 22
    assert r["accuracy"]["labelled"] == 32 and r["accuracy"]["device"]["top1"] >= 0.9
    assert r["accuracy"]["agreement"]["top1"] == 1.0 and r["accuracy"]["agreement"]["top5"] == 1.0
    assert r["performance"]["fps"] is None and r["performance"]["source"] == "host emulation"
    assert r["performance"]["host_emulation_s"]["mean"] > 0
    verdicts = {t["name"]: t["verdict"] for t in r["tensors"]}
    assert verdicts["__Input__"] == "not_judged" and verdicts["stem_conv"] == "pass"
    assert list(verdicts.values()).count("pass") == 18
    for t in r["tensors"]:
        assert TENSOR_KEYS == set(t)
        if t["verdict"] == "pass":
            assert t["budget"]["rule"] == "default" and t["metrics"]["images"] == 32
    # -n 2: the workers render the controller's verdicts; the summary counts what was judged
    assert "18 of 22 tensors judged: 18 pass; 4 not judged" in run.output
    assert "first divergence: none among the 18 judged tensors" in run.output
    assert r["precheck"]["format"] == "keras2metal.precheck/1" and r["precheck"]["findings"] == []
    assert "float16 pre-check: clean (19 activations, 6 pre-activations" in run.output
    assert "VERDICT: PASS" in run.output


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
    verdict = {t["name"]: t["verdict"] for t in run.results["tensors"]}
    assert verdict["mix_b"] == "fail" and verdict["mix_a"] == "pass"
    assert "test_tensor[mix_b]" in run.output and "relative error" in run.output


def test_missing_tensors_are_data_problems_not_passes(run_suite, dump_folder, tmp_path):
    for f in dump_folder.rglob("shapes_net-block2_dw.floats"):
        f.unlink()
    for f in dump_folder.rglob("shapes_net-pool.floats"):
        f.unlink()
    run = run_suite("--model", "default", "--device-dump", dump_folder, "--images", *FEW_IMAGES,
                    "-rA", cwd=tmp_path)
    assert run.returncode == 1, run.output[-3000:]
    tensors = {t["name"]: t for t in run.results["tensors"]}
    assert tensors["block2_dw"]["verdict"] == "data_problem"
    assert tensors["block2_dw"]["problems"][0]["kind"] == "missing"
    assert "shapes_net-block2_dw.floats" in tensors["block2_dw"]["reason"]
    assert tensors["pool"]["verdict"] == "data_problem"
    assert tensors["block2_pw"]["verdict"] == "pass"
    r = run.results
    assert r["first_divergence"] is None and r["verdict"] == "fail"
    assert r["first_data_problem"]["tensor"] == "block2_dw"
    assert "DATA PROBLEM: tensor block2_dw" in run.output
    assert "VERDICT: FAIL" in run.output and "with data problems" in run.output
    assert "within" not in run.output.split("VERDICT")[0]   # nothing claims a clean pass
    assert not any(line.startswith("PASSED") and "test_tensor[block2_dw]" in line
                   for line in run.output.splitlines())
    assert any(line.startswith("FAILED") and "test_tensor[block2_dw]" in line
               for line in run.output.splitlines())


def test_baseline_worsened_layer_fails_with_a_diff_and_update_accepts_it(run_suite, dump_folder,
                                                                          tmp_path,
                                                                          rule_only_budget):
    baseline = tmp_path / "baseline.json"
    args = ["--model", "default", "--images", *FEW_IMAGES, "--baseline", baseline,
            "--budget", rule_only_budget]
    first = run_suite(*args, "--device-dump", dump_folder, "--update-baseline", cwd=tmp_path)
    assert first.returncode == 0, first.output[-3000:]
    assert first.results["baseline"]["verdict"] == "not_judged"
    doc = json.loads(baseline.read_text())
    assert doc["format"] == "keras2metal.baseline/2" and "mix_a" in doc["tensors"]
    assert doc["target"]["device"] == "reference device"

    # worsen one layer: 4 ε relative noise — within its budget (16 ε), 2-4x its baseline error
    worse = tmp_path / "worse"
    shutil.copytree(dump_folder, worse)
    rng = np.random.default_rng(1)
    _corrupt(worse, "mix_a", lambda d: d + rng.normal(0, 4 * 2.0 ** -11 * np.sqrt(np.mean(d * d)),
                                                       d.shape))
    second = run_suite(*args, "--device-dump", worse, "-rA", cwd=tmp_path)
    assert second.returncode == 1, second.output[-3000:]
    b = second.results["baseline"]
    assert b["verdict"] == "fail" and "mix_a" in {x["what"] for x in b["regressions"]}
    assert all(t["verdict"] in ("pass", "not_judged") for t in second.results["tensors"])
    assert any(line.startswith("FAILED") and "test_baseline.py::test_baseline" in line
               for line in second.output.splitlines())
    assert "worse by" in second.output and "mix_a" in second.output

    third = run_suite(*args, "--device-dump", worse, "--update-baseline", cwd=tmp_path)
    assert third.returncode == 0, third.output[-3000:]
    fourth = run_suite(*args, "--device-dump", worse, cwd=tmp_path)
    assert fourth.returncode == 0, fourth.output[-3000:]
    assert fourth.results["baseline"]["verdict"] == "pass"
    assert fourth.results["baseline"]["regressions"] == []
