"""Ingestion of hand-written dump folders: every file layout and every bad-input case per tensor.

The folder layouts of a real phone copy (and their errors) are tested on real dumps of the
default model in test_ingest_phone_layouts.py."""
import json

import numpy as np
import pytest

from stores.store import FIXES, Store
from device_pull.__main__ import main
from device_pull.ingest import (IngestError, candidates, decode, deslice, ingest_dump,
                                parse_console_log)
from ingest_helpers import (IMAGES, MODEL, H, W, TENSORS, expected_arrays, manifest_dict,
                            values, write_dump, write_interleaved, write_manifest, write_padded)

NAMES = [t["name"] for t in TENSORS]


@pytest.fixture()
def manifest_path(tmp_path):
    return write_manifest(tmp_path / "params")


def _ingest(tmp_path, manifest_path, dump, **kwargs):
    out = tmp_path / "device.h5"
    report = ingest_dump(dump, manifest_path, out, **kwargs)
    return report, Store(out)


# -- decoding ------------------------------------------------------------------------------

def test_deslice_inverts_the_padded_layout(tmp_path):
    arr = values(1, (3, 5, 7))
    write_padded(tmp_path / "p.floats", arr)
    flat = np.fromfile(tmp_path / "p.floats", dtype="<f4")
    assert flat.size == 3 * 5 * 8
    np.testing.assert_array_equal(deslice(flat, 3, 5, 7), arr)


def test_candidate_sizes_and_the_ambiguity_rule():
    sizes = {name: n for name, _, _, n in candidates(2, 3, 5)}
    assert sizes == {"interleaved-float32": 120, "padded-float32": 192,
                     "interleaved-float16": 60, "padded-float16": 96}
    assert [c[0] for c in candidates(2, 3, 2)] == ["interleaved-float32", "interleaved-float16"]
    arr = values(2, (2, 3, 8))
    dec = decode(arr.tobytes(), (2, 3, 8), "x.floats")
    assert dec.status == "ok" and dec.layout == "interleaved-float32"
    assert "padded-float32" in dec.note and "--layout padded" in dec.note
    np.testing.assert_array_equal(dec.data, arr)


# -- well-formed dumps in every layout -----------------------------------------------------

def test_interleaved_float32_dump(tmp_path, manifest_path):
    arrays = write_dump(tmp_path / "dump" / "dog", input_size=(5, 3))
    report, store = _ingest(tmp_path, manifest_path, tmp_path / "dump", device="iPhone X",
                            images=[IMAGES / "dog.jpg"])
    with store:
        assert store.attrs["kind"] == "device" and store.attrs["device"] == "iPhone X"
        assert store.attrs["model"] == MODEL and store.attrs["precision"] == "float16"
        assert store.images() == ["dog"]
        assert store.tensor_names("dog") == NAMES
        for name, arr in arrays.items():
            data, status, reason = store.tensor("dog", name)
            if name == "__Input__":
                # the json has [-1, -1, -1, 1]; the image file says 768x576, which does not fit
                # the 5x3 texture written here, so it stays flat
                assert status == "not_compared" and data.shape == (45,)
                continue
            assert status == "ok", reason
            assert data.shape == arr.shape
            np.testing.assert_array_equal(data, arr)
        data, status, reason = store.tensor("dog", "__Collect_add__")
        assert status == "not_compared" and data.shape == (0,) and "no dump file" in reason
        assert store.tensor_attrs("dog", "odd")["layout"] == "interleaved-float32"
        assert "layout_note" in store.tensor_attrs("dog", "conv1")
        assert "layout_note" not in store.tensor_attrs("dog", "odd")
    assert report.statuses["ok"] == 6 and report.layout_rule == 1   # conv1 only (C % 4 == 0)
    assert report.problems == []


def test_input_texture_takes_the_image_size(tmp_path, manifest_path):
    folder = tmp_path / "dump" / "final0-224"
    write_dump(folder)
    bgr = values(9, (224, 224, 3))
    write_interleaved(folder / f"{MODEL}-__Input__.floats", bgr)
    _, store = _ingest(tmp_path, manifest_path, tmp_path / "dump",
                       images=[IMAGES / "final0-224.jpg"])
    with store:
        data, status, _ = store.tensor("final0-224", "__Input__")
        assert status == "not_compared"
        np.testing.assert_array_equal(data, bgr)


@pytest.mark.parametrize("writer, dtype, layout_name, files", [
    (write_padded, "<f4", "padded-float32", 4),         # C = 8 and C = 2 read as interleaved
    (write_interleaved, "<f2", "interleaved-float16", 6),
    (write_padded, "<f2", "padded-float16", 4),
])
def test_padded_and_float16_layouts(tmp_path, manifest_path, writer, dtype, layout_name, files):
    layouts = {name: (writer, dtype) for name in expected_arrays()}     # one writer per run
    arrays = write_dump(tmp_path / "dump", layouts=layouts)
    report, store = _ingest(tmp_path, manifest_path, tmp_path / "dump", image="dog")
    with store:
        for name in ("odd", "__Resize_1__", "two"):
            data, status, reason = store.tensor("dog", name)
            assert status == "ok", reason
            np.testing.assert_array_equal(data, arrays[name])
        assert store.tensor_attrs("dog", "odd")["layout"] == layout_name
        assert store.tensor_attrs("dog", "__Resize_1__")["layout"] == layout_name
        # C = 2: MPS keeps 2 components per pixel, padded == interleaved
        assert store.tensor_attrs("dog", "two")["layout"].startswith("interleaved")
    assert report.layouts[layout_name] == files


def test_a_float32_run_cut_to_half_is_truncated_not_float16(tmp_path, manifest_path):
    """A copy stopped at a block boundary can leave exactly the float16 size of a float32 dump."""
    folder = tmp_path / "dump"
    arrays = write_dump(folder)
    path = folder / f"{MODEL}-odd.floats"
    path.write_bytes(path.read_bytes()[: H * W * 5 * 2])
    _, store = _ingest(tmp_path, manifest_path, folder, image="dog")
    with store:
        data, status, reason = store.tensor("dog", "odd")
        assert status == "truncated" and str(path) in reason and "float16 size" in reason
        assert "the copy was cut short" in reason and "--dtype float16" in reason
        np.testing.assert_array_equal(store.tensor("dog", "conv1")[0], arrays["conv1"])
    _, store = _ingest(tmp_path, manifest_path, folder, image="dog", dtype="float16")
    with store:
        assert store.tensor("dog", "odd")[1] == "ok"      # the user says the file is float16


def test_padded_option_for_ambiguous_sizes(tmp_path, manifest_path):
    layouts = {"conv1": (write_padded, "<f4"), "__Concat_cat__": (write_padded, "<f4"),
               "odd": (write_padded, "<f4"), "__Resize_1__": (write_padded, "<f4"),
               "fc": (write_padded, "<f4")}
    arrays = write_dump(tmp_path / "dump", layouts=layouts)
    _, auto = _ingest(tmp_path, manifest_path, tmp_path / "dump", image="dog")
    with auto:
        # C % 4 == 0: read as interleaved by the rule, which scrambles a padded file, and says so
        assert not np.array_equal(auto.tensor("dog", "conv1")[0], arrays["conv1"])
        assert "--layout padded" in auto.tensor_attrs("dog", "conv1")["layout_note"]
    report, padded = _ingest(tmp_path, manifest_path, tmp_path / "dump", image="dog",
                             layout="padded")
    with padded:
        for name in layouts:
            data, status, reason = padded.tensor("dog", name)
            assert status == "ok", (name, reason)
            np.testing.assert_array_equal(data, arrays[name])
        assert padded.attrs["layout_option"] == "padded"
    assert report.layout_rule == 0


# -- bad input: recorded per tensor, never a crash ---------------------------------------------

def test_every_bad_input_is_recorded(tmp_path, manifest_path, capsys):
    folder = tmp_path / "dump"
    arrays = write_dump(folder)
    shapes_path = folder / f"shapes-{MODEL}.json"
    shapes = json.loads(shapes_path.read_text())
    # truncated: half of conv1
    raw = (folder / f"{MODEL}-conv1.floats").read_bytes()
    (folder / f"{MODEL}-conv1.floats").write_bytes(raw[: len(raw) // 2 + 2])
    # oversized: odd with extra bytes
    with open(folder / f"{MODEL}-odd.floats", "ab") as fh:
        fh.write(b"\0" * 12)
    # shape mismatch: the shapes json says another size for two (and the file fits it)
    write_interleaved(folder / f"{MODEL}-two.floats", values(5, (3, 6, 2)))
    shapes[f"{MODEL}-two.floats"] = [6, 3, 2, 1]
    # missing: fc
    (folder / f"{MODEL}-fc.floats").unlink()
    # NaN/Inf in the concat
    cat = arrays["__Concat_cat__"].copy()
    cat[0, 0, 0], cat[1, 2, 3], cat[3, 5, 12] = np.nan, np.inf, -np.inf
    write_interleaved(folder / f"{MODEL}-__Concat_cat__.floats", cat)
    # another model's dump of __Resize_1__
    (folder / f"{MODEL}-__Resize_1__.floats").rename(folder / "other_net-__Resize_1__.floats")
    # an unknown extra file
    write_interleaved(folder / f"{MODEL}-debug_extra.floats", values(6, (2, 2, 2)))
    shapes_path.write_text(json.dumps(shapes))

    rc = main(["ingest", str(folder), "--manifest", str(manifest_path),
               "--out", str(tmp_path / "bad.h5"), "--image", "dog"])
    assert rc == 0                                   # bad tensors are recorded, not fatal
    text = capsys.readouterr().out
    for status in ("truncated", "oversized", "shape_mismatch", "missing", "nan_inf",
                   "wrong_model", "not_compared"):
        assert f"\n{status} " in text                  # a row of the status table
    for status in ("truncated", "oversized", "shape_mismatch", "missing", "nan_inf",
                   "wrong_model"):
        assert text.count(f"fix ({status}): {FIXES[status]}") == 1      # once, after the list
    assert "debug_extra" in text and "ignored" in text

    with Store(tmp_path / "bad.h5") as store:
        assert store.tensor_names("dog") == NAMES     # nothing silently dropped
        data, status, reason = store.tensor("dog", "conv1")
        assert status == "truncated" and str(folder / f"{MODEL}-conv1.floats") in reason
        assert "the copy is incomplete" in reason
        assert data.size == (len(raw) // 2 + 2) // 4  # bytes kept, flat
        data, status, reason = store.tensor("dog", "odd")
        assert status == "oversized" and str(H * W * 5 * 4 + 12) in reason
        assert "another build of the network" in reason
        data, status, reason = store.tensor("dog", "two")
        assert status == "shape_mismatch" and "[6, 3, 2, 1]" in reason
        assert reason.endswith("the dump comes from another architecture")
        assert data.shape == (3, 6, 2)
        data, status, reason = store.tensor("dog", "fc")
        assert status == "missing" and data.shape == (0,) and f"{MODEL}-fc.floats" in reason
        data, status, reason = store.tensor("dog", "__Concat_cat__")
        assert status == "nan_inf" and "3 NaN/Inf" in reason
        assert np.isnan(data[0, 0, 0]) and np.isinf(data[1, 2, 3])
        data, status, reason = store.tensor("dog", "__Resize_1__")
        assert status == "wrong_model" and "other_net" in reason
        np.testing.assert_array_equal(data, arrays["__Resize_1__"])
        data, status, reason = store.tensor("dog", "__Input__")
        assert status == "missing"
        assert store.image_attrs("dog")["ignored_files"] == [f"{MODEL}-debug_extra.floats"]
        counts = store.status_counts()
        assert counts["ok"] == 0 and counts["not_compared"] == 1 and counts["missing"] == 2


def test_dump_of_another_model(tmp_path, manifest_path):
    write_dump(tmp_path / "dump", model="other")
    report, store = _ingest(tmp_path, manifest_path, tmp_path / "dump", image="dog")
    with store:
        for name in ("conv1", "odd", "__Concat_cat__", "fc"):
            data, status, reason = store.tensor("dog", name)
            assert status == "wrong_model" and "'other'" in reason
            assert data.size > 0
    assert any("shapes-other.json" in w for w in report.warnings)


def test_unusable_input_exits_non_zero(tmp_path, manifest_path, capsys):
    rc = main(["ingest", str(tmp_path / "nowhere"), "--manifest", str(manifest_path),
               "--out", str(tmp_path / "x.h5")])
    assert rc == 2 and "no such dump folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    rc = main(["ingest", str(tmp_path / "empty"), "--manifest", str(manifest_path),
               "--out", str(tmp_path / "x.h5")])
    assert rc == 2 and "the folder is empty" in capsys.readouterr().err
    write_dump(tmp_path / "dump")
    rc = main(["ingest", str(tmp_path / "dump"), "--manifest", str(tmp_path / "none.json"),
               "--out", str(tmp_path / "x.h5")])
    assert rc == 2 and "no such manifest" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(IngestError, match="layout"):
        ingest_dump(tmp_path / "dump", manifest_path, tmp_path / "x.h5", layout="slices")


# -- run logs, several images, console log ------------------------------------------------

def _run_log(key, index, **extra):
    """A phone app's run log (the fields device_pull.ingest documents)."""
    return {"model": MODEL, "image": f"{key}.jpg", "device": "iPhone X", "ios_version": "11.4",
            "latency_s": [0.01 * (index + 1), 0.01 * (index + 1) + 0.002],
            "top5": [{"index": 3, "probability": 0.5}, {"index": 1, "probability": 0.2}],
            "warnings": ["Concat input with C % 4 != 0"], **extra}


def test_one_folder_per_image_with_run_logs(tmp_path, manifest_path):
    dump = tmp_path / "dump"
    arrays = {}
    for i, (folder, key) in enumerate([("a", "dog"), ("b", "eagle")]):
        arrays[key] = write_dump(dump / folder, seed=i)
        (dump / folder / f"run-{MODEL}.json").write_text(json.dumps(_run_log(key, i)))
    report, store = _ingest(tmp_path, manifest_path, dump)
    with store:
        assert store.images() == ["dog", "eagle"]
        assert store.attrs["device"] == "iPhone X"
        run = store.run_attrs()
        assert run["ios_version"] == "11.4"
        assert run["latency_s"] == pytest.approx({"mean": 0.016, "min": 0.01, "max": 0.022,
                                                  "runs": 4})
        assert run["fps"] == pytest.approx(1 / 0.016)
        assert run["warnings"] == ["Concat input with C % 4 != 0"]
        for key in ("dog", "eagle"):
            attrs = store.image_attrs(key)
            assert attrs["image"] == f"{key}.jpg" and attrs["top5"][0]["index"] == 3
            assert attrs["top5_source"] == "run log" and attrs["named_by"] == "the run log"
            np.testing.assert_array_equal(store.tensor(key, "odd")[0], arrays[key]["odd"])
        assert store.image_attrs("eagle")["latency_s"] == pytest.approx(0.021)
    # the folder names ("a", "b") differ from the images the run logs name: said so
    assert sum("the folder name differs" in w for w in report.warnings) == 2


def test_subfolders_named_after_their_images(tmp_path, manifest_path):
    dump = tmp_path / "dump"
    write_dump(dump / "horses", seed=0)
    write_dump(dump / "giraffe.jpg", seed=1)         # the file name works as well as the stem
    report, store = _ingest(tmp_path, manifest_path, dump)
    with store:
        assert sorted(store.images()) == ["giraffe", "horses"]
        assert store.image_attrs("giraffe")["named_by"] == "the folder name"
    assert report.named_by == {"giraffe": "the folder name", "horses": "the folder name"}


CONSOLE = """
-----Running Tests-----
ForgeTests.ModelTests.testResnet50(debug:)
ForgeTests.ModelTests.testModel(net:testImageName:correctTop:debug:) resnet_50
Compiling took 0.31 seconds
Successfully compiled model resnet_50
predictions:[(label: "n03930630 pickup, pickup truck", probability: 0.87, index: 717), (label: "n03777568 Model T", probability: 0.05, index: 661)]
ForgeTests.ModelTests.testToy(debug:)
ForgeTests.ModelTests.testModel(net:testImageName:correctTop:debug:) toy
Compiling took 0.0421 seconds
Successfully compiled model toy
image: final1-224.jpg
predictions:[(label: "n01440764 tench, \\"Tinca\\" tinca", probability: 0.625, index: 0), (label: "n03930630 pickup, pickup truck", probability: 1.5e-01, index: 717)]
All tests successful!
"""


def test_console_log_parsing():
    resnet, toy = parse_console_log(CONSOLE)
    assert resnet["model"] == "resnet_50" and resnet["test"] == "testResnet50"
    assert resnet["compile_s"] == 0.31
    assert resnet["image"] == "final1-224.jpg"        # the fork's ModelTests fix its image
    assert resnet["predictions"][0][0] == {
        "label": "n03930630 pickup, pickup truck", "probability": 0.87, "index": 717}
    assert toy["model"] == "toy" and toy["compile_s"] == 0.0421
    assert toy["image"] == "final1-224.jpg"           # the app's own "image:" line
    assert [p["index"] for p in toy["predictions"][0]] == [0, 717]
    assert toy["predictions"][0][0]["label"] == 'n01440764 tench, "Tinca" tinca'
    assert toy["predictions"][0][1]["probability"] == pytest.approx(0.15)


def test_console_log_without_an_image_line_names_no_image():
    text = CONSOLE.replace("image: final1-224.jpg\n", "")
    assert [run["image"] for run in parse_console_log(text)] == ["final1-224.jpg", None]
    # an "image:" line printed before the model compiles belongs to the run that follows
    text = text.replace("ForgeTests.ModelTests.testToy(debug:)\n",
                        "ForgeTests.ModelTests.testToy(debug:)\nimage: dog.jpg\n")
    assert [run["image"] for run in parse_console_log(text)] == ["final1-224.jpg", "dog.jpg"]


def test_console_log_names_the_image_and_gives_the_predictions(tmp_path, manifest_path):
    dump = tmp_path / "Documents"
    write_dump(dump)
    (dump / "xcode-console.log").write_text(CONSOLE)
    report, store = _ingest(tmp_path, manifest_path, dump)
    with store:
        attrs = store.image_attrs("final1-224")
        assert attrs["named_by"] == "the console log"
        assert attrs["top5_source"] == "console log"
        assert attrs["top5"][0]["index"] == 0
        assert attrs["compile_s"] == pytest.approx(0.0421)
    assert report.images == ["final1-224"]


def test_golden_and_device_stores_line_up(tmp_path):
    """Round trip: float16-rounded golden values written as Forge dumps ingest to the same names."""
    from stores.store import StoreWriter
    from core.manifest import load_manifest

    manifest = load_manifest(write_manifest(tmp_path / "params"))
    arrays = expected_arrays()
    golden = tmp_path / "golden.h5"
    with StoreWriter(golden, "golden", manifest) as writer:
        for t in manifest.tensors:
            data = arrays.get(t.name)
            status = "ok" if data is not None else "not_compared"
            writer.write("dog", t.name, data, status, "")
    write_dump(tmp_path / "dump" / "dog", layouts={"odd": (write_padded, "<f4")})
    ingest_dump(tmp_path / "dump", manifest, tmp_path / "device.h5")
    with Store(golden) as g, Store(tmp_path / "device.h5") as d:
        assert g.attrs["manifest_sha256"] == d.attrs["manifest_sha256"]
        assert g.images() == d.images() == ["dog"]
        assert g.tensor_names("dog") == d.tensor_names("dog")
        for name in g.tensor_names("dog"):
            gd, gs, _ = g.tensor("dog", name)
            dd, ds, _ = d.tensor("dog", name)
            if gs == "ok":
                assert ds == "ok" and gd.shape == dd.shape
                np.testing.assert_array_equal(gd, dd)


def test_manifest_dict_without_input_tensor(tmp_path):
    tensors = [t for t in TENSORS if t["name"] != "__Input__"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest_dict(tensors=tensors)))
    write_dump(tmp_path / "dump")
    report = ingest_dump(tmp_path / "dump", path, tmp_path / "s.h5", image="x")
    assert report.statuses["ok"] == 6 and sum(report.statuses.values()) == len(tensors)
    assert (H, W) == (4, 6)


def test_malformed_shapes_json_and_run_log(tmp_path, manifest_path):
    folder = tmp_path / "dump"
    arrays = write_dump(folder)
    shapes = json.loads((folder / f"shapes-{MODEL}.json").read_text())
    shapes[f"{MODEL}-odd.floats"] = "four by six"
    (folder / f"shapes-{MODEL}.json").write_text(json.dumps(shapes))
    report, store = _ingest(tmp_path, manifest_path, folder, image="dog")
    with store:
        data, status, _ = store.tensor("dog", "odd")
        assert status == "ok"
        np.testing.assert_array_equal(data, arrays["odd"])
    assert any("four by six" in w for w in report.warnings)
    (folder / f"shapes-{MODEL}.json").write_text("[1, 2")
    (folder / f"run-{MODEL}.json").write_text("{broken")
    report, store = _ingest(tmp_path, manifest_path, folder, image="dog")
    store.close()
    assert report.statuses["ok"] == 6
    assert sum("unreadable JSON" in w for w in report.warnings) == 2
