"""The tiled transpose that lays weight files out is numpy's transpose, for any shape."""
import numpy as np
import pytest

from core.forge_ops.numerics import transposed


@pytest.mark.parametrize("shape", [(1, 1), (1, 70), (33, 1), (31, 33), (64, 96), (100, 37)])
def test_transposed_is_numpy_transpose(shape):
    matrix = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = transposed(matrix)
    assert out.flags["C_CONTIGUOUS"] and out.dtype == matrix.dtype
    assert np.array_equal(out, matrix.T)
