"""Real dumps of the default model (the reference device's numerics) laid out as a phone copy looks:
each accepted layout ingests cleanly, each other layout is one error that names what it found
and the fix, and data problems are recorded per tensor before any numerics."""
import json
import shutil

import numpy as np
import pytest

from core.manifest import load_manifest, manifest_hash
from device_pull.__main__ import main
from device_pull.ingest import IngestError, dump_images, ingest_dump
from phone_layouts import (IMAGES, LAYOUTS, MODEL, SAMPLES, documents_folder, dump_path, lay_out,
                           set_run_log, truncate)
from stores.store import Store

KEYS = [p.stem for p in IMAGES]


def _clean(store, keys):
    assert store.images() == sorted(keys)
    for key in keys:
        for name in store.tensor_names(key):
            _, status, reason = store.tensor(key, name)
            assert status in ("ok", "not_compared"), (key, name, status, reason)


# -- accepted layouts ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", LAYOUTS)
def test_phone_layout_ingests_cleanly(kind, default_conversion, reference_runs, tmp_path):
    manifest_path, manifest = default_conversion
    dump, kwargs, folders = lay_out(kind, reference_runs, tmp_path)
    report = ingest_dump(dump, manifest_path, tmp_path / "device.h5", **kwargs)
    assert report.images == sorted(folders)
    assert not report.ignored and not report.problems
    with Store(tmp_path / "device.h5") as store:
        _clean(store, folders)
        for key, folder in folders.items():
            want = np.fromfile(dump_path(folder, "block1_pw"), dtype="<f4").reshape(16, 16, 16)
            np.testing.assert_array_equal(store.tensor(key, "block1_pw")[0], want)
            assert store.image_attrs(key)["dump_dir"] == str(folder)
            assert store.tensor(key, "__Input__")[0].size == 32 * 32 * 3


@pytest.mark.parametrize("kind, named_by", [
    ("flat-named-by-images", {"circle_00": "--images"}),
    ("flat-named-by-run-log", {"circle_00": "the run log"}),
    ("flat-named-by-console-log", {"circle_00": "the console log"}),
    ("image-folders", {"circle_00": "the folder name", "cross_00": "the folder name",
                       "square_00": "the run log"}),
    ("documents-folders", {"circle_00": "the run log", "cross_00": "the console log",
                           "square_00": "the run log"}),
])
def test_what_names_each_image(kind, named_by, default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump, kwargs, folders = lay_out(kind, reference_runs, tmp_path)
    runs = dump_images(dump, manifest, kwargs.get("images"))
    assert {run.key: run.named_by for run in runs} == named_by
    assert {run.key: run.folder for run in runs} == folders


def test_a_bare_documents_folder_is_named_by_images(default_conversion, reference_runs,
                                                    tmp_path):
    """Only the dumps and the shapes json, as the fork's test app leaves them."""
    manifest_path, _ = default_conversion
    dump = documents_folder(reference_runs["cross_00"], tmp_path / "Documents", run_log=False)
    report = ingest_dump(dump, manifest_path, tmp_path / "d.h5", images=[IMAGES[1]])
    assert report.named_by == {"cross_00": "--images"} and not report.problems
    with Store(tmp_path / "d.h5") as store:
        _clean(store, ["cross_00"])
        assert "fps" not in store.run_attrs() and store.attrs["device"] == "unknown"


def test_another_models_dumps_beside_ours_are_listed_not_used(default_conversion,
                                                              reference_runs, tmp_path):
    """The app's Documents folder after debug runs of two networks: both prefixes, flat."""
    manifest_path, _ = default_conversion
    dump = documents_folder(reference_runs["circle_00"], tmp_path / "Documents")
    for path in reference_runs["cross_00"].glob(f"{MODEL}-*.floats"):
        shutil.copy2(path, dump / path.name.replace(MODEL, "resnet_50"))
    report = ingest_dump(dump, manifest_path, tmp_path / "d.h5")
    assert not report.problems
    assert "resnet_50-stem_conv.floats" in report.ignored["circle_00"]
    with Store(tmp_path / "d.h5") as store:
        _clean(store, ["circle_00"])
        want = np.fromfile(dump_path(dump, "stem_conv"), dtype="<f4").reshape(16, 16, 16)
        np.testing.assert_array_equal(store.tensor("circle_00", "stem_conv")[0], want)


def test_the_cli_names_each_image(default_conversion, reference_runs, tmp_path, capsys):
    manifest_path, _ = default_conversion
    dump, _, _ = lay_out("documents-folders", reference_runs, tmp_path)
    assert main(["ingest", str(dump), "--manifest", str(manifest_path),
                 "--out", str(tmp_path / "d.h5")]) == 0
    out = capsys.readouterr().out
    assert "circle_00 (named by the run log), cross_00 (named by the console log)" in out


def test_the_reference_device_writes_the_phones_layout(default_conversion, reference_runs,
                                                       tmp_path):
    """One image: a flat run folder with its run log; several: one such folder per image."""
    from device_pull.reference_device import run_reference_device

    manifest_path, manifest = default_conversion
    builder = manifest_path.parent / manifest.builder.file
    run_reference_device(builder, manifest_path.parent, IMAGES[1], tmp_path / "one")
    names = {p.name for p in (tmp_path / "one").iterdir()}
    assert {f"run-{MODEL}.json", f"shapes-{MODEL}.json", f"{MODEL}-stem_conv.floats"} <= names
    assert all(not p.is_dir() for p in (tmp_path / "one").iterdir())
    log = json.loads((tmp_path / "one" / f"run-{MODEL}.json").read_text())
    assert log["image"] == "cross_00.png" and log["device"] == "reference device"
    assert log["manifest_sha256"] == manifest_hash(load_manifest(manifest_path))
    assert len(log["latency_s"]) == 1 and len(log["top5"]) == 5
    several = reference_runs["circle_00"].parent
    assert sorted(p.name for p in several.iterdir()) == KEYS       # nothing at the top
    for key in KEYS:
        assert json.loads((several / key / f"run-{MODEL}.json").read_text())["image"] == \
            f"{key}.png"


def test_the_store_records_the_hash_of_the_manifest_it_used(default_conversion, reference_runs,
                                                            tmp_path):
    manifest_path, _ = default_conversion
    dump, _, folders = lay_out("flat-named-by-run-log", reference_runs, tmp_path)
    ingest_dump(dump, manifest_path, tmp_path / "d.h5")
    logged = json.loads((folders["circle_00"] / f"run-{MODEL}.json").read_text())
    with Store(tmp_path / "d.h5") as store:
        assert store.attrs["manifest_sha256"] == manifest_hash(load_manifest(manifest_path))
        assert store.attrs["manifest_sha256"] == logged["manifest_sha256"]
        assert store.image_attrs("circle_00")["manifest_sha256"] == logged["manifest_sha256"]


# -- layouts that are one clear error ----------------------------------------------------------

def _error(dump, manifest, **kwargs) -> str:
    with pytest.raises(IngestError) as info:
        dump_images(dump, manifest, **kwargs)
    return str(info.value)


def test_an_unnamed_flat_folder_asks_which_image(default_conversion, reference_runs, tmp_path,
                                                 capsys):
    manifest_path, manifest = default_conversion
    dump = documents_folder(reference_runs["circle_00"], tmp_path / "Documents", run_log=False)
    text = _error(dump, manifest)
    assert text.startswith(f"{dump} holds one image's dumps") and "nothing names its image" in text
    assert text.endswith("say which image with --images FILE")
    assert "--images gives 2 images: say which one the app ran with --images FILE" in \
        _error(dump, manifest, images=IMAGES[:2])
    rc = main(["ingest", str(dump), "--manifest", str(manifest_path),
               "--out", str(tmp_path / "d.h5")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"device_pull ingest: error: {dump} holds one image's dumps")
    assert not (tmp_path / "d.h5").exists()


def test_dumps_at_the_top_and_in_image_folders(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = documents_folder(reference_runs["circle_00"], tmp_path / "dumps")
    documents_folder(reference_runs["cross_00"], dump / "cross_00")
    text = _error(dump, manifest)
    assert text.startswith(f"{dump}: dumps at the top (one image's run) AND in sub-folders "
                           "(cross_00)")
    assert "move the top-level dump files into a folder named after their image" in text


def test_two_folders_claim_the_same_image(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = tmp_path / "dumps"
    documents_folder(reference_runs["circle_00"], dump / "circle_00", run_log=False)
    documents_folder(reference_runs["circle_00"], dump / "run2")
    text = _error(dump, manifest)
    assert f"{dump / 'circle_00'} (named by the folder name) and {dump / 'run2'} (named by the " \
           "run log) both hold image 'circle_00'" in text
    assert "keep one run per image" in text


def test_a_folder_of_another_models_dumps(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = tmp_path / "dumps"
    documents_folder(reference_runs["circle_00"], dump / "circle_00")
    other = documents_folder(reference_runs["cross_00"], dump / "cross_00")
    for path in other.iterdir():
        if MODEL in path.name:
            path.rename(path.with_name(path.name.replace(MODEL, "resnet_50")))
    text = _error(dump, manifest)
    assert text.startswith(f"{other}: dumps of model 'resnet_50', not of '{MODEL}'")
    assert f"remove the folder from {dump}, or ingest it with that model's manifest" in text


def test_dumps_nested_deeper_than_expected(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = tmp_path / "dumps"
    documents_folder(reference_runs["circle_00"], dump / "all" / "circle_00")
    text = _error(dump, manifest)
    assert text.startswith(f"{dump / 'all' / 'circle_00'}/")
    assert f"dumps nested deeper than expected in {dump}; expected one of:" in text
    assert f"point at {dump / 'all'} instead" in text


def test_an_empty_folder(default_conversion, tmp_path):
    _, manifest = default_conversion
    (tmp_path / "Documents").mkdir()
    (tmp_path / "Documents" / ".DS_Store").write_bytes(b"\0")
    text = _error(tmp_path / "Documents", manifest)
    assert text.startswith(f"{tmp_path / 'Documents'}: the folder is empty")
    assert "copy the app's Documents folder into it after a debug run" in text


def test_a_folder_without_dumps(default_conversion, tmp_path):
    _, manifest = default_conversion
    (tmp_path / "Documents" / "Inbox").mkdir(parents=True)
    (tmp_path / "Documents" / "photo.jpg").write_bytes(b"\xff\xd8")
    text = _error(tmp_path / "Documents", manifest)
    assert "no .floats dumps here or in its sub-folders (found: Inbox, photo.jpg)" in text
    assert "run the app with debug: true and copy its Documents folder" in text


def test_only_a_shapes_json(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = tmp_path / "Documents"
    dump.mkdir()
    shutil.copy2(reference_runs["circle_00"] / f"shapes-{MODEL}.json", dump)
    text = _error(dump, manifest, images=IMAGES[:1])
    assert text == (f"{dump}: only shapes-{MODEL}.json, no .floats dumps: the app wrote the "
                    "shapes but no tensor dumps, or the copy missed them; re-run the app with "
                    "this build (debug: true) and copy the Documents folder again")


def test_a_run_log_at_the_top_of_image_folders(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = tmp_path / "dumps"
    documents_folder(reference_runs["circle_00"], dump / "circle_00", run_log=False)
    shutil.copy2(reference_runs["circle_00"] / f"run-{MODEL}.json", dump)
    text = _error(dump, manifest)
    assert text.startswith(f"{dump / f'run-{MODEL}.json'}: a run log at the top of a folder of "
                           "image folders")
    assert "each run log belongs in its image's folder" in text


def test_the_run_log_and_images_disagree(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = documents_folder(reference_runs["circle_00"], tmp_path / "Documents")
    text = _error(dump, manifest, images=[IMAGES[1]])
    assert text.startswith(f"{dump / f'run-{MODEL}.json'} names image 'circle_00.png', "
                           "--images says 'cross_00.png'")


def test_an_unnamed_copied_documents_folder(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = tmp_path / "dumps"
    documents_folder(reference_runs["circle_00"], dump / "iphone-a" / "Documents")
    documents_folder(reference_runs["cross_00"], dump / "iphone-b" / "Documents", run_log=False)
    text = _error(dump, manifest)
    assert text.startswith(f"{dump / 'iphone-b' / 'Documents'} holds one image's dumps, but "
                           "nothing names its image")
    assert f"rename {dump / 'iphone-b'} after its image" in text
    # a copied folder's label names its image only when that is one of --images
    (dump / "iphone-b").rename(dump / "cross_00")
    assert "nothing names its image" in _error(dump, manifest)
    runs = dump_images(dump, manifest, [SAMPLES / "cross_00.png"])
    assert [(run.key, run.named_by) for run in runs] == [("circle_00", "the run log"),
                                                         ("cross_00", "the folder name")]


def test_image_option_with_several_runs(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = tmp_path / "dumps"
    for key in KEYS[:2]:
        documents_folder(reference_runs[key], dump / key)
    assert _error(dump, manifest, image="circle_00").startswith(
        f"--image circle_00: {dump} holds 2 runs (circle_00, cross_00)")


def test_dumps_in_a_folder_and_its_documents_folder(default_conversion, reference_runs, tmp_path):
    _, manifest = default_conversion
    dump = tmp_path / "dumps"
    documents_folder(reference_runs["circle_00"], dump / "iphone")
    documents_folder(reference_runs["cross_00"], dump / "iphone" / "Documents")
    iphone = dump / "iphone"
    assert _error(dump, manifest).startswith(
        f"{iphone}: dumps both in {iphone} and in {iphone / 'Documents'}")


def test_an_image_the_dump_names_must_be_found(default_conversion, reference_runs, tmp_path,
                                               suite_cache):
    from validation.pipeline import Pipeline, Settings, ValidationSetupError

    dump = documents_folder(reference_runs["circle_00"], tmp_path / "Documents")
    set_run_log(dump, image="holiday.jpg")
    pipeline = Pipeline(Settings(model="default", cache_dir=str(suite_cache),
                                 device_dump=str(dump)))
    with pytest.raises(ValidationSetupError) as info:
        pipeline.image_paths
    text = str(info.value)
    assert text.startswith(f"--device-dump: {dump}: image 'holiday.jpg' (named by the run log) "
                           "is neither among --images nor in the built-in sample images")
    assert text.endswith("pass its file with --images FILE")


# -- integrity before numerics ---------------------------------------------------------------

def test_data_problems_are_recorded_per_tensor_with_the_file_and_the_fix(
        default_conversion, reference_runs, tmp_path):
    manifest_path, _ = default_conversion
    dump = documents_folder(reference_runs["circle_00"], tmp_path / "Documents")
    cut = truncate(dump, "stem_conv")
    with open(dump_path(dump, "mix_a"), "ab") as fh:                  # oversized
        fh.write(b"\0" * 64)
    values = np.fromfile(dump_path(dump, "block1_dw"), dtype="<f4")
    values[[3, 70]] = [np.nan, np.inf]
    values.tofile(dump_path(dump, "block1_dw"))
    shapes = json.loads((dump / f"shapes-{MODEL}.json").read_text())
    shapes[f"{MODEL}-reduce_conv.floats"] = [16, 16, 8, 1]              # another architecture
    (dump / f"shapes-{MODEL}.json").write_text(json.dumps(shapes))
    dump_path(dump, "mix_b").rename(dump / "resnet_50-mix_b.floats")     # another model's file
    half = dump_path(dump, "block2_pw")
    half.write_bytes(half.read_bytes()[:4096])                          # cut at a 4 KiB block
    ingest_dump(dump, manifest_path, tmp_path / "d.h5")
    with Store(tmp_path / "d.h5") as store:
        def problem(tensor):
            _, status, reason = store.tensor("circle_00", tensor)
            return status, reason

        status, reason = problem("stem_conv")
        assert status == "truncated" and reason.startswith(f"{cut}: ")
        assert reason.endswith("the copy is incomplete")
        status, reason = problem("mix_a")
        assert status == "oversized" and str(dump_path(dump, "mix_a")) in reason
        assert reason.endswith("the file comes from another build of the network")
        status, reason = problem("block1_dw")
        assert status == "nan_inf" and "2 NaN/Inf value(s) of 4096" in reason
        assert str(dump_path(dump, "block1_dw")) in reason
        status, reason = problem("reduce_conv")
        assert status == "shape_mismatch" and "[16, 16, 8, 1]" in reason
        assert reason.endswith("the dump comes from another architecture")
        status, reason = problem("mix_b")
        assert status == "wrong_model" and str(dump / "resnet_50-mix_b.floats") in reason
        status, reason = problem("block2_pw")
        assert status == "truncated" and "float16 size" in reason
        assert problem("block2_dw") == ("ok", "")


def test_a_stale_conversion_marks_every_tensor(default_conversion, reference_runs, tmp_path):
    manifest_path, manifest = default_conversion
    dump = tmp_path / "dumps"
    stale = documents_folder(reference_runs["circle_00"], dump / "circle_00")
    documents_folder(reference_runs["cross_00"], dump / "cross_00")
    set_run_log(stale, manifest_sha256="0" * 64)
    report = ingest_dump(dump, manifest_path, tmp_path / "d.h5")
    with Store(tmp_path / "d.h5") as store:
        statuses = {store.tensor("circle_00", t)[1] for t in store.tensor_names("circle_00")}
        assert statuses == {"stale_conversion"}
        _, _, reason = store.tensor("circle_00", "stem_conv")
        assert reason.startswith(f"{stale / f'run-{MODEL}.json'}: the app ran a conversion with "
                                 "manifest hash 000000000000, ")
        assert f"{manifest_path} has {manifest_hash(manifest)[:12]}" in reason
        assert reason.endswith("these dumps come from another conversion")
        assert store.tensor_attrs("circle_00", "stem_conv")["status_before_stale"] == "ok"
        assert {store.tensor("cross_00", t)[1] for t in store.tensor_names("cross_00")} <= \
            {"ok", "not_compared"}
        assert list(store.run_attrs()["stale_conversion"]) == ["circle_00"]
    assert report.statuses["stale_conversion"] == len(manifest.tensors)


def test_dumps_of_tensors_this_conversion_has_not_are_another_conversion(
        default_conversion, reference_runs, tmp_path):
    """Without a run log there is no manifest hash; a dump of a preprocessing tensor the
    manifest has not (here the ``input_normalize`` a conversion with --preprocessing torch adds)
    still tells that the app ran another conversion (an unknown file of another name is only
    reported as ignored: test_ingest_dumps)."""
    manifest_path, manifest = default_conversion
    folder = documents_folder(reference_runs["circle_00"], tmp_path / "Documents", run_log=False)
    extra = folder / f"{MODEL}-input_normalize.floats"
    shutil.copy(dump_path(folder, "stem_conv"), extra)
    report = ingest_dump(folder, manifest_path, tmp_path / "d.h5", image="circle_00.png")
    assert report.statuses["stale_conversion"] == len(manifest.tensors)
    with Store(tmp_path / "d.h5") as store:
        key = store.images()[0]
        _, status, reason = store.tensor(key, "stem_conv")
        assert status == "stale_conversion"
        assert reason == (f"{folder}: {extra.name} is a dump of preprocessing that "
                          f"{manifest_path} does not have: these dumps come from a conversion "
                          f"of {MODEL!r} with other preprocessing (--preprocessing)")
    extra.unlink()                    # the same folder without it is this conversion's run
    report = ingest_dump(folder, manifest_path, tmp_path / "clean.h5", image="circle_00.png")
    assert not report.problems and "stale_conversion" not in report.statuses
