"""``pytest validation --model default --device-dump DIR`` on each phone layout, as a user runs it:
it passes on a clean run of the conversion, and on a corrupted copy a truncated file is a data
problem naming the file while a scaled tensor is the failing (first diverging) tensor."""
import pytest

from stores.store import FIXES

from phone_layouts import (IMAGES, LAYOUTS, documents_folder, lay_out, scale, set_run_log,
                           truncate)

TRUNCATED, SCALED = "reduce_conv", "block1_pw"


def _suite_args(kind, dump):
    extra = ["--images", IMAGES[0]] if kind == "flat-named-by-images" else []
    return ["--model", "default", "--device-dump", dump, *extra]


@pytest.mark.parametrize("kind", LAYOUTS)
def test_validation_passes_on_a_clean_run(kind, reference_runs, run_suite, tmp_path):
    dump, _, folders = lay_out(kind, reference_runs, tmp_path / "layout")
    run = run_suite(*_suite_args(kind, dump))
    assert run.returncode == 0, run.output[-3000:]
    results = run.results
    assert results["verdict"] == "pass" and results["first_divergence"] is None
    assert results["accuracy"]["images"] == len(folders)       # Keras ran on exactly these
    assert {t["verdict"] for t in results["tensors"]} == {"pass", "not_judged"}


@pytest.mark.parametrize("kind", LAYOUTS)
def test_validation_tells_a_data_problem_from_a_divergence(kind, reference_runs, run_suite,
                                                            tmp_path):
    dump, _, folders = lay_out(kind, reference_runs, tmp_path / "layout")
    first, last = sorted(folders)[0], sorted(folders)[-1]
    cut = truncate(folders[first], TRUNCATED)
    scale(folders[last], SCALED, 1.5)
    run = run_suite(*_suite_args(kind, dump))
    assert run.returncode == 1, run.output[-3000:]
    rows = {t["name"]: t for t in run.results["tensors"]}
    problem = rows[TRUNCATED]
    assert problem["verdict"] == "data_problem"
    assert problem["problems"][0]["kind"] == "truncated"
    assert problem["problems"][0]["image"] == first and str(cut) in problem["reason"]
    assert problem["problems"][0]["fix"] == FIXES["truncated"]
    assert FIXES["truncated"] not in problem["reason"]         # said once, by the judge
    assert f"fix: {FIXES['truncated']}" in run.output
    assert f"DATA PROBLEM: tensor {TRUNCATED}" in run.output
    assert rows[SCALED]["verdict"] == "fail"
    assert run.results["first_divergence"]["tensor"] == SCALED
    # the add after the scaled dump was computed on the phone from the unscaled values: replayed
    # on the dumped (scaled) input it disagrees too, the one other tensor that fails
    assert {name for name, row in rows.items() if row["verdict"] in ("fail", "data_problem")} \
        == {TRUNCATED, SCALED, "block1_add"}
    assert rows["block1_add"]["local"]["device_rel_error"] > rows["block1_add"]["local"]["budget"]


def test_an_unnamed_dump_is_one_setup_error(reference_runs, run_suite, tmp_path):
    dump = documents_folder(reference_runs["circle_00"], tmp_path / "Documents", run_log=False)
    run = run_suite("--model", "default", "--device-dump", dump)
    assert run.returncode != 0
    assert (f"ERROR: keras2metal validation: --device-dump: {dump} holds one image's dumps, but "
            "nothing names its image") in run.output
    assert run.output.count("nothing names its image") == 1
    assert "say which image with --images FILE" in run.output
    assert "During handling" not in run.output and "Traceback" not in run.output


def test_a_stale_conversion_is_a_data_problem_of_every_tensor(reference_runs, run_suite,
                                                               tmp_path):
    dump = documents_folder(reference_runs["circle_00"], tmp_path / "Documents")
    set_run_log(dump, manifest_sha256="f" * 64)
    run = run_suite("--model", "default", "--device-dump", dump)
    assert run.returncode == 1, run.output[-3000:]
    results = run.results
    judged = [t for t in results["tensors"] if t["verdict"] != "not_judged"]
    assert judged and all(t["verdict"] == "data_problem" for t in judged)
    assert {p["kind"] for t in judged for p in t["problems"]} == {"stale_conversion"}
    assert results["first_divergence"] is None and results["verdict"] == "fail"
    assert results["first_data_problem"]["reason"].endswith("these dumps come from another "
                                                             "conversion")
    assert results["first_data_problem"]["fix"] == FIXES["stale_conversion"]
    assert "DATA PROBLEMS" in run.output and "stale_conversion" in run.output
