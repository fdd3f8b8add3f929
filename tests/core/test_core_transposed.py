"""The tiled transpose that lays weight files out is numpy's transpose, for any shape, band by band
as the writer takes it."""
import numpy as np
import pytest

from core.forge_ops.numerics import Transposed


def whole(kernel: Transposed) -> np.ndarray:
    bands = [band.copy() for band in kernel.bands()]         # the buffer is reused: copy each
    return np.concatenate(bands).reshape(kernel.shape)


@pytest.mark.parametrize("shape", [(1, 1), (1, 70), (33, 1), (63, 65), (64, 128), (200, 37),
                                   (130, 129),
                                   (300, 9000),         # bands of 6976 file rows (8 MB), then 2024
                                   (70001, 70)])        # bands of 64 file rows, then 6
def test_transposed_is_numpy_transpose(shape):
    matrix = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    kernel = Transposed(matrix, shape[::-1])
    assert all(band.flags["C_CONTIGUOUS"] and band.dtype == matrix.dtype
               for band in kernel.bands())
    assert np.array_equal(whole(kernel), matrix.T)


def test_transposed_takes_the_layout_shape_of_the_file():
    matrix = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2 * 3 * 4, 5)   # (kH·kW·in, out)
    kernel = Transposed(matrix, (5, 2, 3, 4))
    assert kernel.shape == (5, 2, 3, 4) and kernel.size == matrix.size
    assert np.array_equal(whole(kernel), matrix.T.reshape(5, 2, 3, 4))
    with pytest.raises(ValueError, match="cannot be laid out"):
        Transposed(matrix, (5, 2, 3, 5))
