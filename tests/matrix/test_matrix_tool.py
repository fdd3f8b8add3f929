"""The Keras-version matrix tool: entries recorded per environment, differences explained, the
table written between the README's markers (re-runnable)."""
import json
import shutil

import numpy as np
import pytest

from reports.__main__ import main
from reports.matrix import BEGIN, END, MatrixError, compare, load_environment, record, \
    update_readme

MANIFEST = {"name": "net", "tensors": [{"name": "conv1", "shape": [8, 8, 4]}],
            "source": {"keras": "3.15.1", "tensorflow": "2.21.0", "fold_check": 1e-7},
            "folded_model": "../models/net_nobn.keras"}


def conversion(folder, *, weights=None, swift="let conv1 = Convolution(kernel: (3, 3))\n",
               manifest=None):
    """A folder laid out as the converter writes one: Parameters/ (weights, manifest), src/."""
    weights = weights or {"net-conv1.weights.bin": np.arange(108, dtype="<f4") / 7}
    (folder / "Parameters").mkdir(parents=True)
    (folder / "src").mkdir()
    (folder / "models").mkdir()
    for name, values in weights.items():
        (folder / "Parameters" / name).write_bytes(np.asarray(values, "<f4").tobytes())
    (folder / "Parameters" / "net.manifest.json").write_text(json.dumps(manifest or MANIFEST))
    (folder / "src" / "NetBuilder.swift").write_text(swift)
    (folder / "models" / "net_nobn.keras").write_bytes(b"the Keras version's own format")
    return folder


def entry(tmp_path, env, monkeypatch, network="net", validates=True, **files):
    monkeypatch.setenv("TOX_ENV_NAME", env)
    folder = conversion(tmp_path / "conversions" / env / network, **files)
    return json.loads(record(tmp_path / "matrix" / env, network, folder,
                             validates=validates).read_text())


def test_record_digests_the_device_files_only(tmp_path, monkeypatch):
    e = entry(tmp_path, "keras3-tf221", monkeypatch)
    assert e["environment"]["name"] == "keras3-tf221" and e["converts"] and e["validates"]
    assert sorted(e["files"]) == ["Parameters/net-conv1.weights.bin",
                                  "Parameters/net.manifest.json", "src/NetBuilder.swift"]
    weights = e["files"]["Parameters/net-conv1.weights.bin"]
    assert weights["bytes"] == 108 * 4 and len(weights["sample"]) == 108
    assert "src/NetBuilder.swift" in e["texts"]


def test_the_same_files_are_identical_whatever_the_provenance(tmp_path, monkeypatch):
    a = entry(tmp_path, "keras3-tf221", monkeypatch)
    other = dict(MANIFEST, source={"keras": "2.15.0", "tensorflow": "2.15.1", "fold_check": 2e-7},
                 folded_model="../models/net_nobn.h5")
    b = entry(tmp_path, "keras2-tf215", monkeypatch, manifest=other)
    assert compare(a, b) == []


def test_renamed_weights_are_told_apart_from_changed_values(tmp_path, monkeypatch):
    values = np.arange(108, dtype="<f4") / 7
    a = entry(tmp_path, "keras3-tf221", monkeypatch)
    renamed = entry(tmp_path, "keras2-tf215", monkeypatch,
                    weights={"net-conv2d_1.weights.bin": values})
    changed = entry(tmp_path, "keras2-tfkeras-tf221", monkeypatch,
                    weights={"net-conv1.weights.bin": values * 1.5})
    note = compare(a, renamed)[0]
    assert "same bytes under another name" in note
    assert "`net-conv1.weights.bin` → `net-conv2d_1.weights.bin`" in note
    note = compare(a, changed)[0]
    assert note.startswith("1 weight file(s) hold different values, by up to 5.0e-01 of")


def test_source_and_manifest_differences_are_quoted(tmp_path, monkeypatch):
    a = entry(tmp_path, "keras3-tf221", monkeypatch)
    manifest = dict(MANIFEST, tensors=[{"name": "conv2d_1", "shape": [8, 8, 4]}])
    b = entry(tmp_path, "keras2-tf215", monkeypatch, manifest=manifest,
              swift="let conv2d_1 = Convolution(kernel: (3, 3))\n")
    notes = compare(a, b)
    assert "manifest: 1 value(s) differ: 'conv1' → 'conv2d_1' (1×, e.g. `tensors.0.name`)" in notes
    assert any("`NetBuilder.swift`: 2 line(s) differ" in n and "let conv2d_1" in n
               for n in notes)


def test_manifest_weight_digests_are_left_to_the_weight_files(tmp_path, monkeypatch):
    values = np.arange(108, dtype="<f4") / 7
    digest = dict(MANIFEST, weights=[{"file": "net-conv1.weights.bin", "sha256": "aaa"}])
    a = entry(tmp_path, "keras3-tf221", monkeypatch, manifest=digest)
    b = entry(tmp_path, "keras2-tf215", monkeypatch, weights={"net-conv1.weights.bin": values * 2},
              manifest=dict(digest, weights=[{"file": "net-conv1.weights.bin", "sha256": "bbb"}]))
    notes = compare(a, b)
    assert not any(n.startswith("manifest") for n in notes)
    assert notes[-1] == "the builder Swift and custom kernels are identical"


class FakeLayer:
    def __init__(self, name, *arrays):
        self.name, self.arrays = name, [np.asarray(a, "float32") for a in arrays]

    def get_weights(self):
        return self.arrays


class FakeModel:
    def __init__(self, *layers):
        self.layers = layers


def test_the_keras_models_given_to_the_converter_are_compared(tmp_path, monkeypatch):
    """Different device files from the same Keras weights are the converter's fault; from
    different Keras weights, the note says how far apart those are."""
    def recorded(env, kernel, device_values, input_name="input_layer"):
        monkeypatch.setenv("TOX_ENV_NAME", env)
        folder = conversion(tmp_path / env, weights={"net-conv1.weights.bin": device_values})
        model = FakeModel(FakeLayer(input_name), FakeLayer("conv1", kernel, [0.5]))
        path = record(tmp_path / "matrix" / env, "net", folder, validates=True, keras_model=model)
        return json.loads(path.read_text())

    kernel = np.linspace(-1, 1, 27)
    reference = recorded("keras3-tf221", kernel, kernel)
    same_model = recorded("keras2-tf215", kernel, kernel + 1)
    other_weights = recorded("keras2-tfkeras-tf221", kernel * (1 + 2 ** -20), kernel + 1)
    other_names = recorded("keras2", kernel, kernel + 1, input_name="input_1")
    assert compare(reference, same_model)[0] == \
        "**the converter wrote different files from the same Keras model**"
    assert compare(reference, other_weights)[0].startswith(
        "the Keras models differ in 1 of 2 weight arrays, by up to 9.5e-07 of the array's "
        "largest value (in `conv1/0`)")
    assert compare(reference, other_names)[0] == (
        "the Keras models differ in layer names (`input_layer` → `input_1`; Keras names unnamed "
        "layers its own way)")


def readme_with_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# project\n\n{BEGIN}\nold table\n{END}\n\nmore text\n")
    return readme


def test_cli_writes_the_table_into_the_readme_and_can_run_again(tmp_path, monkeypatch):
    entry(tmp_path, "keras3-tf221", monkeypatch)
    entry(tmp_path, "keras2-tf215", monkeypatch, weights={
        "net-conv1.weights.bin": np.arange(108, dtype="<f4") / 7 + 1})
    entry(tmp_path, "keras2-tfkeras-tf221", monkeypatch, validates=False)
    readme = readme_with_markers(tmp_path)
    folders = [str(tmp_path / "matrix" / env)
               for env in ("keras3-tf221", "keras2-tf215", "keras2-tfkeras-tf221")]
    assert main(["matrix", *folders, "--readme", str(readme)]) == 0
    first = readme.read_text()
    assert "old table" not in first and first.endswith(f"{END}\n\nmore text\n")
    row = next(line for line in first.splitlines() if line.startswith("| `net`"))
    assert row == ("| `net` | converts · validates · reference | converts · validates · "
                   "Swift identical · weights differ [1] | converts · **fails validation** · "
                   "identical |")
    assert "1. `net` on keras2-tf215: 1 weight file(s) hold different values" in first
    assert main(["matrix", *folders, "--readme", str(readme)]) == 0
    assert readme.read_text() == first


def test_a_network_that_does_not_convert_says_why(tmp_path, monkeypatch):
    entry(tmp_path, "keras3-tf221", monkeypatch)
    monkeypatch.setenv("TOX_ENV_NAME", "keras2-tf215")
    record(tmp_path / "matrix" / "keras2-tf215", "net", None, validates=None,
           detail="conversion of net failed: unsupported layer")
    out = tmp_path / "MATRIX.md"
    assert main(["matrix", str(tmp_path / "matrix" / "keras3-tf221"),
                 str(tmp_path / "matrix" / "keras2-tf215"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| `net` | converts · validates · reference | **does not convert** |" in text
    assert "* `net` on keras2-tf215: conversion of net failed: unsupported layer" in text


def test_missing_folder_or_markers_say_what_to_do(tmp_path, monkeypatch, capsys):
    assert main(["matrix", str(tmp_path / "nowhere")]) == 2
    assert "run the whole-network tests there first" in capsys.readouterr().err
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(MatrixError, match="no matrix markers; put the lines"):
        update_readme(readme, "table\n")


def test_a_real_conversion_records_the_same_digests_twice(tmp_path, monkeypatch):
    """The converter is deterministic: two conversions of one model in one environment match."""
    from core.convert import convert
    from core.kerasenv import keras
    from core.seeding import seeded_init

    monkeypatch.setenv("TOX_ENV_NAME", "here")
    inputs = keras.Input(shape=(8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, keras.layers.ReLU(name="relu")(x))
    seeded_init(model, 0)
    entries = []
    for run in ("a", "b"):
        folder = tmp_path / run
        convert(model, name="net", family="none", param_dir=folder / "Parameters",
                src_out_dir=folder / "src", model_dir=folder / "models")
        record(tmp_path / "matrix" / run, "net", folder, validates=None, keras_model=model)
        entries.append(load_environment(tmp_path / "matrix" / run)["net"])
        shutil.rmtree(folder)
    assert any(name.endswith(".weights.bin") for name in entries[0]["files"])
    assert compare(*entries) == []
