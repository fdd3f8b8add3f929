"""Small Keras models with seeded, calibrated weights for the conversion core's tests."""
import numpy as np

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
