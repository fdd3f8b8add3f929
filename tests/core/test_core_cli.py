"""keras2metal's command line on real model files: outputs, errors, hostile names."""
import json
import subprocess
import sys
import urllib.error

import pytest
from core_helpers import small_model

from core.cli import main
from core.kerasenv import KERAS3, keras
from core.manifest import load_manifest, manifest_hash

L = keras.layers


def outputs(tmp_path):
    return ["--param_dir", str(tmp_path / "P"), "--src_out_dir", str(tmp_path / "S"),
            "--model_dir", str(tmp_path / "M")]


def saved_model(tmp_path, build, name="m.keras"):
    model = small_model(build)
    path = tmp_path / name
    model.save(str(path))
    return path, model


def test_converts_a_keras_file_with_its_own_weights(tmp_path, capsys):
    path, model = saved_model(tmp_path, lambda x: L.Conv2D(8, 3, activation="relu",
                                                           name="c")(x))
    assert main([str(path), "--preprocessing", "tf", "-v"] + outputs(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "Number of layers" in out and "folded model matches" in out
    manifest = load_manifest(tmp_path / "P" / "m.manifest.json")
    assert f"manifest hash {manifest_hash(manifest)} (the app's run log carries it" in out
    assert manifest.preprocessing.family == "tf"
    assert manifest.source.weights == "file"
    written = (tmp_path / "P" / "m-c.weights.bin").read_bytes()
    assert written == model.get_layer("c").get_weights()[0].transpose(3, 0, 1, 2).tobytes()


def test_the_manifest_hash_is_what_the_device_runs_not_how_it_was_converted(tmp_path,
                                                                             monkeypatch):
    """A quick conversion (-q, no fold check) of the model named by a relative path, its Swift
    written to an app's sources folder, and a checked one of its absolute path give the device
    the same network: one hash.  A weight differs: another hash."""
    path, _ = saved_model(tmp_path, lambda x: L.Conv2D(8, 3, activation="relu", name="c")(x))
    monkeypatch.chdir(tmp_path)
    app_sources = ["--src_out_dir", str(tmp_path / "App" / "Sources")]
    assert main([path.name, "-q"] + outputs(tmp_path / "quick") + app_sources) == 0
    assert main([str(path)] + outputs(tmp_path / "checked")) == 0
    quick = load_manifest(tmp_path / "quick" / "P" / "m.manifest.json")
    checked = load_manifest(tmp_path / "checked" / "P" / "m.manifest.json")
    assert quick.source != checked.source and quick.builder.file != checked.builder.file
    assert manifest_hash(quick) == manifest_hash(checked)
    data = json.loads((tmp_path / "quick" / "P" / "m.manifest.json").read_text())
    data["weights"][0]["sha256"] = "0" * 64
    assert manifest_hash(data) != manifest_hash(quick)


def test_hostile_layer_names_never_escape_the_output_folder(tmp_path):
    evil = "..__evil name" if KERAS3 else "..__evil-name"  # Keras 2 forbids spaces
    path, _ = saved_model(tmp_path, lambda x: L.Dense(3, name=evil)(
        L.Flatten(name="class")(L.Conv2D(4, 3, name="a-b.c")(x))))
    assert main([str(path), "--name", "net"] + outputs(tmp_path)) == 0
    files = sorted(p.name for p in (tmp_path / "P").iterdir())
    assert all(p.parent == tmp_path / "P" for p in (tmp_path / "P").iterdir())
    assert "net-a_b_c.weights.bin" in files and "net-____evil_name.weights.bin" in files
    swift = (tmp_path / "S" / "NetBuilder.swift").read_text()
    assert 'name: "a_b_c"' in swift


def test_bad_name_option_is_refused(tmp_path, capsys):
    path, _ = saved_model(tmp_path, lambda x: L.Conv2D(4, 3, name="c")(x))
    assert main([str(path), "--name", "../x"] + outputs(tmp_path)) == 2
    assert "plain identifier" in capsys.readouterr().err


def test_missing_and_truncated_model_files(tmp_path, capsys):
    assert main([str(tmp_path / "nope.keras")] + outputs(tmp_path)) == 2
    assert "no such model file" in capsys.readouterr().err
    path, _ = saved_model(tmp_path, lambda x: L.Conv2D(4, 3, name="c")(x))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert main([str(path)] + outputs(tmp_path)) == 2
    err = capsys.readouterr().err
    assert str(path) in err and not (tmp_path / "P").exists()


def test_lambda_needs_unsafe(tmp_path, capsys):
    path, _ = saved_model(tmp_path, lambda x: L.Lambda(lambda t: t + 1.0, name="plus")(x))
    assert main([str(path)] + outputs(tmp_path)) == 2
    assert "--unsafe" in capsys.readouterr().err


def test_imagenet_weights_that_cannot_be_fetched_say_what_to_do(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")
    monkeypatch.setattr(keras.applications, "MobileNet", offline)
    assert main(["MOBILE_NET", "--weights", "imagenet"] + outputs(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "could not fetch the ImageNet weights" in err and "--weights random" in err


def test_unsupported_layer_stops_with_the_layer_named(tmp_path, capsys):
    path, _ = saved_model(tmp_path, lambda x: L.Permute((2, 1, 3), name="swap")(x))
    assert main([str(path)] + outputs(tmp_path)) == 2
    assert "'swap' (Permute)" in capsys.readouterr().err
    assert not (tmp_path / "P").exists() or not list((tmp_path / "P").glob("*.manifest.json"))


def test_help_explains_outputs_and_zoo():
    out = subprocess.run([sys.executable, "-m", "core", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for text in ("RESNET_50", "--weights", "--seed", "manifest.json", "Builder.swift"):
        assert text in out


@pytest.mark.parametrize("weights", ["random"])
def test_same_seed_same_weights(tmp_path, weights):
    from core.zoo import load_model
    a = load_model("mobilenet", weights, seed=3).get_layer("conv1").get_weights()[0]
    b = load_model("mobilenet", weights, seed=3).get_layer("conv1").get_weights()[0]
    c = load_model("mobilenet", weights, seed=4).get_layer("conv1").get_weights()[0]
    assert (a == b).all() and not (a == c).all()


def test_export_original_arrays(tmp_path, capsys):
    """-e writes the unfolded model's arrays (BatchNorm included) as Keras holds them."""
    path, model = saved_model(tmp_path, lambda x: L.BatchNormalization(name="bn")(
        L.Conv2D(4, 3, name="c")(x)))
    orig = tmp_path / "O"
    assert main([str(path), "-e", "--orig_param_dir", str(orig)] + outputs(tmp_path)) == 0
    assert f"wrote 6 original (unfolded) arrays to {orig}" in capsys.readouterr().out
    index = json.loads((orig / "m.original.json").read_text())
    assert index["format"] == "keras2metal.original/1" and index["model"] == "m"
    assert [(a["layer"], a["array"]) for a in index["arrays"]] == [
        ("c", "kernel"), ("c", "bias"), ("bn", "gamma"), ("bn", "beta"), ("bn", "moving_mean"),
        ("bn", "moving_variance")]
    kernel, _ = model.get_layer("c").get_weights()
    assert (orig / "m-c.kernel.bin").read_bytes() == kernel.astype("<f4").tobytes()
    assert index["arrays"][0]["shape"] == [3, 3, 3, 4]
    variance = model.get_layer("bn").get_weights()[3]
    assert (orig / "m-bn.moving_variance.bin").read_bytes() == variance.astype("<f4").tobytes()
    # the converted weights are the folded ones: no BatchNorm file among them
    assert not list((tmp_path / "P").glob("*bn*"))


def test_tiny_yolo_without_its_model_file_warns_of_random_weights(tmp_path, capsys):
    from core.yolo_models import CFG_DIR

    assert main(["TINY_YOLO", "-q"] + outputs(tmp_path)) == 0
    err = capsys.readouterr().err
    wanted = tmp_path / "M" / "tiny_yolo.keras"
    assert err.startswith(f"keras2metal: warning: TINY_YOLO: neither {wanted} nor "
                          f"{wanted.with_suffix('.h5')} exists, so the network gets RANDOM weights")
    assert f"`yad2k {CFG_DIR / 'yolov2-tiny-voc.cfg'} yolov2-tiny-voc.weights {wanted}`" in err
    manifest = load_manifest(tmp_path / "P" / "tiny_yolo.manifest.json")
    assert manifest.source.weights == "random"
    # with the model file in --model_dir it is used, silently (Keras 2 saves it as .h5)
    [folded] = (tmp_path / "M").glob("tiny_yolo_nobn.*")
    model_file = folded.rename(wanted.with_suffix(folded.suffix))
    assert main(["TINY_YOLO", "-q"] + outputs(tmp_path)) == 0
    assert "warning" not in capsys.readouterr().err
    manifest = load_manifest(tmp_path / "P" / "tiny_yolo.manifest.json")
    assert manifest.source.weights == str(model_file)
    # and --weights random is a choice, not a fallback
    assert main(["TINY_YOLO", "-q", "--weights", "random"] + outputs(tmp_path)) == 0
    assert "warning" not in capsys.readouterr().err
