"""Numerics shared by the ops' MPS kernels in numpy.

Conventions every kernel follows:

* images are HWC numpy arrays holding float16 values (every Forge image is an
  ``MPSImageFeatureChannelFormat.float16`` image; Forge/Forge/DataShape.swift
  ``createImageDescriptor``).  For speed they are kept in ``float32`` arrays, but every value
  stored is rounded to float16 exactly as the GPU stores it (:func:`to_f16`), so the numbers are
  those of a float16 image; kernels compute in float32 from those values and round their result
  to float16 once, after the fused neuron;
* window placement follows MPS (``MPSCNNKernel.offset``, Apple's MPSCNNKernel documentation):
  for destination pixel ``d`` the window starts at source pixel
  ``offset + d * stride - (kernel >> 1)`` per axis (:func:`window_start`), with Forge's offsets
  (``offsetForConvolution`` / ``offsetForPooling`` in their op modules).
"""
import threading

import numpy as np

F16 = np.float16
F32 = np.float32


def swift_divide(a: int, b: int) -> int:
    """Swift's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def window_start(offset: int, kernel: int) -> int:
    """First source pixel of destination pixel 0's window: ``offset - (kernel >> 1)``."""
    return offset - (kernel >> 1)


def to_f16(x: np.ndarray) -> np.ndarray:
    """Round to the float16 image format (round to nearest even; overflow gives ±inf as on the
    GPU) and return the values as float32 (a new array)."""
    x = np.array(x, dtype=F32, copy=True, order="C")
    round_f16_(x)
    return x


_SCRATCH = threading.local()


def _scratch(n: int) -> np.ndarray:
    buf = getattr(_SCRATCH, "u32", None)
    if buf is None or buf.size < n:
        buf = _SCRATCH.u32 = np.empty(max(n, 1 << 16), dtype=np.uint32)
    return buf[:n]


_EXP_MASK = np.uint32(0x7F800000)
_MIN_EXP = np.uint32(0x38800000)                 # 2**-14, the smallest normal float16
_MAGIC = np.uint32((13 << 23) | 0x00400000)      # exponent + 13, mantissa 1.5


def round_f16_(x: np.ndarray) -> np.ndarray:
    """In place: round a C-contiguous float32 array to float16 values (exactly ``astype(float16)``).

    numpy's float32→float16 cast has no hardware path here and is slow, so the rounding adds and
    subtracts ``c = 1.5 * 2**(e + 13)`` (e: the value's binary exponent, at least -14): the sum's
    unit in the last place is then the float16 quantum of the value (11 significant bits, or
    2**-24 in the subnormal range), so float32's round-to-nearest-even does float16's rounding
    and the subtraction is exact.  Arrays holding values beyond ±65504 or NaN take numpy's cast.
    """
    if x.size == 0:
        return x
    hi, lo = x.max(), x.min()
    if not (hi <= 65504.0 and lo >= -65504.0):           # also catches NaN
        with np.errstate(over="ignore", invalid="ignore"):
            x[...] = x.astype(F16)
        return x
    flat = x.reshape(-1)
    c = _scratch(flat.size)
    np.bitwise_and(flat.view(np.uint32), _EXP_MASK, out=c)
    np.maximum(c, _MIN_EXP, out=c)
    np.add(c, _MAGIC, out=c)
    cf = c.view(F32)
    np.add(flat, cf, out=flat)
    np.subtract(flat, cf, out=flat)
    return x


_TILE = 64                # transposed in tiles of 64x64 floats (16 KB): both sides stay in cache
_BAND_BYTES = 8 << 20     # a band of at least _TILE file rows, up to this size


class Transposed:
    """A weight file that is a Keras kernel ``matrix`` transposed, in ``shape``, made band by band.

    Weight files need Keras kernels transposed (VGG16's first Dense kernel is 25088x4096, 411 MB).
    numpy's own copy of a transposed view walks one side with a stride of a whole row and takes
    several times as long as a copy tile by tile; and the writer takes the file band by band
    (:meth:`bands`, through reused buffers), so a file is written and hashed without a copy of its
    own, which on a large model costs as much again in fresh memory as the copying.

    Each band takes two numpy calls, not one per tile: the writer runs on a thread beside Keras,
    and every numpy call gives up the interpreter lock and must wait for it back — up to the
    switch interval (5 ms) while the other thread runs Python, which made a 25,000-tile loop
    take a minute instead of 0.2 s.
    """

    def __init__(self, matrix: np.ndarray, shape: tuple):
        if int(np.prod(shape)) != matrix.size:
            raise ValueError(f"a {matrix.shape} kernel cannot be laid out as {shape}")
        self.matrix, self.shape = matrix, tuple(shape)

    @property
    def size(self) -> int:
        return self.matrix.size

    def bands(self):
        """The file's rows (``matrix``'s columns) a band at a time, as one reused 2-D buffer.

        A band is copied first tile-major (``tiles[t, j, i] = matrix[t·64 + i, j]``: numpy walks
        it tile by tile, so both sides stay in cache), then into file order with 64-float runs
        on both sides."""
        rows, cols = self.matrix.shape
        whole_tiles, rest = divmod(rows, _TILE)
        width = min(cols, max(_TILE, _BAND_BYTES // (rows * self.matrix.itemsize) // _TILE * _TILE))
        buffer = np.empty((width, rows), dtype=self.matrix.dtype)
        tiles = np.empty((whole_tiles, width, _TILE), dtype=self.matrix.dtype)
        tiled_rows = whole_tiles * _TILE
        for c in range(0, cols, width):
            w = min(width, cols - c)
            band, tile_major = buffer[:w], tiles[:, :w]
            source = self.matrix[:tiled_rows, c:c + w]
            np.copyto(tile_major, source.reshape(whole_tiles, _TILE, w).transpose(0, 2, 1))
            np.copyto(band[:, :tiled_rows].reshape(w, whole_tiles, _TILE),
                      tile_major.transpose(1, 0, 2))
            if rest:
                band[:, tiled_rows:] = self.matrix[tiled_rows:, c:c + w].T
            yield band


def padded_window_source(src: np.ndarray, start_y: int, start_x: int, span_y: int,
                         span_x: int, fill=0.0) -> np.ndarray:
    """float32 copy of src rows [start_y, start_y+span_y) x cols [start_x, ...), zero/fill
    outside (edge mode zero)."""
    h, w = src.shape[:2]
    if start_y >= 0 and start_x >= 0 and start_y + span_y <= h and start_x + span_x <= w:
        return src[start_y:start_y + span_y, start_x:start_x + span_x]     # no padding needed
    out = np.full((span_y, span_x) + src.shape[2:], fill, dtype=F32)
    y0, y1 = max(start_y, 0), min(start_y + span_y, h)
    x0, x1 = max(start_x, 0), min(start_x + span_x, w)
    if y1 > y0 and x1 > x0:
        out[y0 - start_y:y1 - start_y, x0 - start_x:x1 - start_x] = src[y0:y1, x0:x1]
    return out


def clamped_index(start: int, n_out: int, stride: int, k: int, size: int):
    """(k, n_out) source indices clamped into [0, size) and the matching in-bounds mask (edge
    mode clamp)."""
    idx = start + np.arange(n_out)[None, :] * stride + np.arange(k)[:, None]
    return np.clip(idx, 0, size - 1), (idx >= 0) & (idx < size)
