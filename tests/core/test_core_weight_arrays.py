"""The frontend reads a layer's weights without copying them, and what it read cannot change."""
import numpy as np
import pytest

from core.kerasenv import keras, weight_arrays


@pytest.fixture
def dense():
    layer = keras.layers.Dense(6)
    layer.build((None, 5))
    rng = np.random.default_rng(3)
    layer.set_weights([rng.standard_normal((5, 6)).astype(np.float32),
                       rng.standard_normal(6).astype(np.float32)])
    return layer


def test_weight_arrays_are_the_layers_weights_without_a_copy(dense):
    first, again = weight_arrays(dense), weight_arrays(dense)
    for array, copy, shared in zip(first, dense.get_weights(), again):
        assert array.dtype == np.float32 and np.array_equal(array, copy)
        assert np.shares_memory(array, shared)          # both read TensorFlow's one buffer


def test_weight_arrays_cannot_write_into_the_model(dense):
    kernel = weight_arrays(dense)[0]
    with pytest.raises(ValueError, match="read-only"):
        kernel *= 2.0
    assert np.array_equal(dense.get_weights()[0], kernel)


def test_weight_arrays_keep_their_values_when_the_model_is_assigned(dense):
    kernel, before = weight_arrays(dense)[0], dense.get_weights()[0]
    dense.set_weights([np.ones((5, 6), np.float32), np.zeros(6, np.float32)])
    assert np.array_equal(kernel, before)
    assert np.array_equal(weight_arrays(dense)[0], np.ones((5, 6), np.float32))
