"""Model files across Keras versions: Keras 2 (TF 2.15's Keras, tf-keras) cannot read what Keras 3
writes, and says so by name instead of failing deep inside its deserialiser."""
import re
from pathlib import Path

import numpy as np
import pytest
from core_helpers import small_model

from core.cli import main
from core.errors import ConversionError
from core.kerasenv import KERAS3, KERAS_VERSION, keras, saved_keras_version
from core.zoo import load_model_file

KERAS3_FILE = Path(__file__).resolve().parents[2] / "core" / "data" / "default_model" / \
    "shapes_net.keras"   # the shipped default model, saved by Keras 3
REFUSAL = r"written by Keras 3\.\d+\.\d+, whose model format .* \(Keras 2\) cannot read; " \
          r"convert it under Keras 3"


def test_the_saving_keras_is_read_from_keras_and_h5_files(tmp_path):
    assert saved_keras_version(KERAS3_FILE).startswith("3.")
    path = tmp_path / "here.h5"
    small_model(lambda x: keras.layers.Conv2D(2, 3, name="conv")(x)).save(str(path))
    assert saved_keras_version(path) == KERAS_VERSION
    (tmp_path / "junk.h5").write_bytes(b"not a model")
    assert saved_keras_version(tmp_path / "junk.h5") is None


def test_a_keras3_file_loads_under_keras3_and_is_refused_by_name_under_keras2(tmp_path, capsys):
    if KERAS3:
        assert load_model_file(KERAS3_FILE).name == "shapes_net"
        return
    with pytest.raises(ConversionError, match=REFUSAL):
        load_model_file(KERAS3_FILE)
    assert main([str(KERAS3_FILE), "--param_dir", str(tmp_path / "P"), "--src_out_dir",
                 str(tmp_path / "S"), "--model_dir", str(tmp_path / "M")]) == 2
    assert re.search("keras2metal: error: .*" + REFUSAL, capsys.readouterr().err)


@pytest.mark.skipif(KERAS3, reason="Keras 3 registers ConvNeXt's layers itself")
def test_keras2_loads_a_saved_model_with_convnexts_unregistered_layers(tmp_path):
    from core.zoo import unregistered_application_layers

    layers = unregistered_application_layers()
    assert set(layers) == {"LayerScale", "StochasticDepth"}
    inputs = keras.Input((4, 4, 8), name="image")
    scaled = layers["LayerScale"](0.5, 8, name="scale")(keras.layers.Conv2D(8, 1)(inputs))
    model = keras.Model(inputs, scaled, name="convnext_like")
    model.save(str(tmp_path / "convnext_like.h5"))
    loaded = load_model_file(tmp_path / "convnext_like.h5")
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 8)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
