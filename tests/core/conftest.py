"""Helpers for the conversion core's tests: small Keras models with seeded, calibrated weights."""
import numpy as np
import pytest

from core.convert import convert
from core.kerasenv import keras
from core.seeding import seeded_init


def small_model(build, shape=(16, 16, 3), seed=0):
    """keras.Model from ``build(inputs) -> outputs`` with calibrated seeded weights."""
    inputs = keras.Input(shape=shape, name="image")
    model = keras.Model(inputs, build(inputs))
    seeded_init(model, seed)
    return model


def random_input(model, seed=1, batch=1):
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(seed).uniform(0, 1, (batch,) + shape).astype(np.float32)


@pytest.fixture
def converted(tmp_path):
    """convert(model) into a temporary folder; returns the ConversionResult."""
    def run(model, name="net", family="none", **kwargs):
        return convert(model, name=name, family=family, param_dir=tmp_path / "P",
                       src_out_dir=tmp_path / "S", model_dir=tmp_path / "M", **kwargs)
    return run
