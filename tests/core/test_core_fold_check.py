"""The folded model is checked against the original within the model's own float32 noise: a wrong
fold is refused, a well-conditioned model is held to 1e-3, and a model that amplifies rounding
too much to tell is reported as not verified rather than blamed on the converter."""
import numpy as np

from core.convert import convert_graph
from core.folded import FOLD_TOLERANCE, build_folded_model, float32_noise, verify_folded
from core.kerasenv import keras
from core.seeding import calibration_batch, seeded_init

L = keras.layers


def conv_bn_model(depth: int, name: str):
    inputs = keras.Input((16, 16, 3), name="image")
    x = inputs
    for k in range(depth):
        x = L.Conv2D(8, 3, padding="same", name=f"c{k}")(x)
        x = L.BatchNormalization(name=f"bn{k}")(x)
        x = L.Activation("relu", name=f"r{k}")(x)
    outputs = L.Dense(4, name="logits")(L.GlobalAveragePooling2D(name="gap")(x))
    model = keras.Model(inputs, outputs, name=name)
    seeded_init(model, 0, "none")
    return model


def folded_of(model):
    return build_folded_model(model, convert_graph(model, model.name, "none"))


def test_a_well_conditioned_model_is_held_to_float32_noise():
    model = conv_bn_model(3, "calm")
    check = verify_folded(model, folded_of(model), "none")
    assert check["verified"] and check["tolerance"] == FOLD_TOLERANCE
    assert check["max_relative_error"] < 1e-5
    x = calibration_batch((16, 16, 3), "none", 1)
    original = [np.asarray(model(x, training=False), np.float64)]
    assert float32_noise(model, x, original, float(np.abs(original[0]).max()), 1) < 1e-5


def test_a_wrong_fold_is_outside_the_tolerance():
    model = conv_bn_model(3, "calm")
    folded = folded_of(model)
    layer = folded.get_layer("c1")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + 0.5 * np.abs(bias).max()])     # a BatchNorm shift lost
    check = verify_folded(model, folded, "none")
    assert check["verified"] and check["max_relative_error"] > check["tolerance"]


def test_a_model_too_sensitive_to_tell_is_not_verified():
    inputs = keras.Input((4, 4, 3), name="image")
    x = L.Flatten(name="flat")(inputs)
    for k in range(16):           # tanh of large weights: each layer multiplies a nudge
        x = L.Dense(64, activation="tanh", name=f"d{k}",
                    kernel_initializer=keras.initializers.RandomNormal(stddev=1.2, seed=k))(x)
    model = keras.Model(inputs, L.Dense(4, name="out")(x), name="chaotic")
    folded = keras.models.clone_model(model)          # a fold exact up to float32 rounding
    folded.set_weights([w * np.float32(1 + 2 ** -20) for w in model.get_weights()])
    check = verify_folded(model, folded, "none")
    assert check["max_relative_error"] > FOLD_TOLERANCE   # the rounding, amplified
    assert check["float32_noise"] > 1e-3 and not check["verified"]


def test_a_conversion_whose_fold_fails_the_check_keeps_no_folded_model(tmp_path, monkeypatch):
    """The check runs while the folded model is saved; a model that fails it leaves no file that
    looks like a folded model, and no manifest."""
    import pytest

    import core.convert
    from core.errors import ConversionError

    def wrongly_folded(model, graph):
        folded = build_folded_model(model, graph)
        layer = folded.get_layer("c1")
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, bias + 0.5 * np.abs(bias).max()])
        return folded

    monkeypatch.setattr(core.convert, "build_folded_model", wrongly_folded)
    model = conv_bn_model(3, "calm")
    with pytest.raises(ConversionError, match="folded wrongly"):
        core.convert.convert(model, name="calm", family="none", param_dir=tmp_path / "P",
                             src_out_dir=tmp_path / "S", model_dir=tmp_path / "M")
    assert not list((tmp_path / "M").iterdir())
    assert not list((tmp_path / "P").glob("*.manifest.json"))
    assert list((tmp_path / "P").glob("*.weights.bin"))      # the weight files are complete
