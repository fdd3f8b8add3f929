"""Metal Performance Shaders numerics in numpy: what each MPS kernel computes, vectorised.

Conventions shared by every function here:

* images are HWC numpy arrays holding float16 values (every Forge image is an
  ``MPSImageFeatureChannelFormat.float16`` image).  For speed they are kept in ``float32``
  arrays, but every value stored is rounded to float16 exactly as the GPU stores it
  (:func:`to_f16`), so the numbers are those of a float16 image; kernels compute in float32
  from those values and round their result to float16 once, after the fused neuron;
* window placement follows MPS: for destination pixel ``d`` the filter window starts at source
  pixel ``offset + d * stride - (kernel >> 1)`` (per axis), with Forge's offsets
  (:func:`conv_offset`, :func:`pool_offset`);
* convolutions use edge mode *zero* (reads outside the source are 0); pooling uses edge mode
  *clamp*: a max-pool read outside the source returns the nearest edge pixel, an average pool
  leaves outside pixels out of the average.
"""
import threading

import numpy as np

F16 = np.float16
F32 = np.float32

# Largest im2col block (float32 elements) built at once; bounds the memory of big convolutions.
_IM2COL_BLOCK = 1 << 22


# --------------------------------------------------------------------------------------------
# Forge's window offsets (Layers.swift: offsetForConvolution / offsetForPooling)


def _cdiv_trunc(a: int, b: int) -> int:
    """Swift's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def conv_offset(same: bool, src: int, dst: int, kernel: int, stride: int) -> int:
    """Forge's MPSOffset component for a convolution (the fork clamps negative padding to 0)."""
    if same:
        pad = max((dst - 1) * stride + kernel - src, 0)
        return _cdiv_trunc(kernel - pad, 2)
    return kernel // 2


def pool_offset(same: bool, src: int, kernel: int, stride: int) -> int:
    """Forge's MPSOffset component for a pooling layer."""
    if same:
        if kernel % 2 == 0:
            return ((src - 1) % stride) // 2 + 1
        return ((src - 1) % stride + 1) // 2
    return kernel // 2


def window_start(offset: int, kernel: int) -> int:
    """First source pixel of destination pixel 0's window: ``offset - (kernel >> 1)``."""
    return offset - (kernel >> 1)


# --------------------------------------------------------------------------------------------
# Neurons (MPSCNNNeuron* formulas as documented by Apple)


class Neuron:
    """One MPSCNNNeuron: ``kind`` is the class name without the prefix, a and b its parameters."""

    KINDS = ("ReLU", "ReLUN", "Linear", "Sigmoid", "HardSigmoid", "TanH", "ELU", "Absolute",
             "SoftPlus", "SoftSign")

    def __init__(self, kind: str, a: float = 0.0, b: float = 0.0):
        if kind not in self.KINDS:
            raise ValueError(f"unknown neuron {kind}")
        self.kind, self.a, self.b = kind, float(a), float(b)

    def __repr__(self):
        return f"MPSCNNNeuron{self.kind}(a={self.a:g}, b={self.b:g})"

    @property
    def preserves_f16(self) -> bool:
        """True when float16 inputs give float16-exact outputs (no rounding needed)."""
        exact_b = float(np.float16(self.b)) == self.b
        return ((self.kind == "ReLU" and self.a == 0.0) or self.kind == "Absolute"
                or (self.kind == "ReLUN" and self.a == 0.0 and exact_b))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply to a float32 array (in place where possible) and return it."""
        a, b, k = F32(self.a), F32(self.b), self.kind
        if k == "ReLU":                       # x >= 0 ? x : a*x
            if self.a == 0.0:
                return np.maximum(x, F32(0), out=x)
            return np.where(x >= 0, x, a * x)
        if k == "ReLUN":                      # min(x >= 0 ? x : a*x, b)
            if self.a == 0.0:
                y = np.maximum(x, F32(0), out=x)
            else:
                y = np.where(x >= 0, x, a * x).astype(F32, copy=False)
            return np.minimum(y, b, out=y)
        if k == "Linear":                     # a*x + b
            x *= a
            x += b
            return x
        if k == "Sigmoid":
            return F32(1) / (F32(1) + np.exp(-x))
        if k == "HardSigmoid":                # clamp(a*x + b, 0, 1)
            return np.clip(a * x + b, F32(0), F32(1))
        if k == "TanH":                       # a * tanh(b*x)
            return a * np.tanh(b * x)
        if k == "ELU":                        # x >= 0 ? x : a*(exp(x) - 1)
            return np.where(x >= 0, x, a * np.expm1(np.minimum(x, F32(0))))
        if k == "Absolute":
            return np.abs(x)
        if k == "SoftPlus":                   # a * log(1 + exp(b*x))
            return a * np.logaddexp(F32(0), b * x).astype(F32)
        if k == "SoftSign":                   # x / (1 + |x|)
            return x / (F32(1) + np.abs(x))
        raise AssertionError(k)


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


# --------------------------------------------------------------------------------------------
# Convolution family


def _padded_window_source(src: np.ndarray, start_y: int, start_x: int, span_y: int,
                          span_x: int, fill=0.0) -> np.ndarray:
    """float32 copy of src rows [start_y, start_y+span_y) x cols [start_x, ...), zero/fill outside."""
    h, w = src.shape[:2]
    if start_y >= 0 and start_x >= 0 and start_y + span_y <= h and start_x + span_x <= w:
        return src[start_y:start_y + span_y, start_x:start_x + span_x]     # no padding needed
    out = np.full((span_y, span_x) + src.shape[2:], fill, dtype=F32)
    y0, y1 = max(start_y, 0), min(start_y + span_y, h)
    x0, x1 = max(start_x, 0), min(start_x + span_x, w)
    if y1 > y0 and x1 > x0:
        out[y0 - start_y:y1 - start_y, x0 - start_x:x1 - start_x] = src[y0:y1, x0:x1]
    return out


def _patches(xp: np.ndarray, out_h: int, out_w: int, kh: int, kw: int, sy: int, sx: int):
    """Strided view (out_h, out_w, kh, kw, C) of a padded float32 source."""
    s0, s1, s2 = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, shape=(out_h, out_w, kh, kw, xp.shape[2]),
        strides=(s0 * sy, s1 * sx, s0, s1, s2), writeable=False)


def weight_matrix(weights: np.ndarray) -> np.ndarray:
    """OHWI weights as the (kH*kW*Cin, Cout) matrix the im2col product uses."""
    return np.ascontiguousarray(weights.reshape(weights.shape[0], -1).T)


def convolution(src: np.ndarray, weights: np.ndarray, bias, kernel: tuple, stride: tuple,
                offset: tuple, out_hw: tuple, neuron=None, wmat=None) -> np.ndarray:
    """MPSCNNConvolution, edge mode zero.

    src: (Hs, Ws, Cin) float16; weights: (Cout, kH, kW, Cin) float32 (OHWI); bias: (Cout,) or
    None; kernel/stride/offset: (x, y) tuples as Forge passes them; out_hw: (H, W).
    """
    kw, kh = kernel
    sx, sy = stride
    oh, ow = out_hw
    cout = weights.shape[0]
    cin = weights.shape[3]
    y0 = window_start(offset[1], kh)
    x0 = window_start(offset[0], kw)
    span_y = (oh - 1) * sy + kh
    span_x = (ow - 1) * sx + kw
    xp = _padded_window_source(src[:, :, :cin], y0, x0, span_y, span_x)
    if wmat is None:
        wmat = weight_matrix(weights)
    out = np.empty((oh, ow, cout), dtype=F32)
    if kh == 1 and kw == 1:
        view = xp[::sy, ::sx][:oh, :ow]
        np.matmul(view.reshape(oh * ow, cin), wmat, out=out.reshape(oh * ow, cout))
    else:
        patches = _patches(xp, oh, ow, kh, kw, sy, sx)
        rows = max(1, min(oh, _IM2COL_BLOCK // max(1, ow * kh * kw * cin)))
        for r in range(0, oh, rows):
            block = patches[r:r + rows].reshape(-1, kh * kw * cin)
            np.matmul(block, wmat, out=out[r:r + rows].reshape(-1, cout))
    if bias is not None:
        out += bias.astype(F32)
    if neuron is not None:
        out = neuron(out)
    return round_f16_(np.ascontiguousarray(out, dtype=F32))


def depthwise_convolution(src: np.ndarray, weights: np.ndarray, bias, kernel: tuple,
                          stride: tuple, offset: tuple, out_hw: tuple, multiplier: int = 1,
                          neuron=None) -> np.ndarray:
    """MPS depthwise convolution, edge mode zero.

    weights: (C, multiplier, kH, kW) float32 (MPS order); output channel ``k*multiplier + q``.
    """
    kw, kh = kernel
    sx, sy = stride
    oh, ow = out_hw
    c = weights.shape[0]
    y0 = window_start(offset[1], kh)
    x0 = window_start(offset[0], kw)
    xp = _padded_window_source(src[:, :, :c], y0, x0, (oh - 1) * sy + kh, (ow - 1) * sx + kw)
    if multiplier != 1:
        xp = np.repeat(xp, multiplier, axis=2)
    w = weights.reshape(c * multiplier, kh, kw).astype(F32)
    out = np.zeros((oh, ow, c * multiplier), dtype=F32)
    tmp = np.empty_like(out)
    for i in range(kh):
        for j in range(kw):
            tap = xp[i:i + (oh - 1) * sy + 1:sy, j:j + (ow - 1) * sx + 1:sx]
            np.multiply(tap, w[:, i, j], out=tmp)
            out += tmp
    if bias is not None:
        out += bias.astype(F32)
    if neuron is not None:
        out = neuron(out)
    return round_f16_(np.ascontiguousarray(out, dtype=F32))


def fully_connected(src: np.ndarray, weights: np.ndarray, bias, neuron=None) -> np.ndarray:
    """MPSCNNFullyConnected: kernel = the whole input; weights (N, H, W, C) → output (1, 1, N)."""
    n = weights.shape[0]
    h, w, c = weights.shape[1:]
    x = src[:h, :w, :c].astype(F32).reshape(-1)
    out = weights.reshape(n, -1).astype(F32, copy=False) @ x
    if bias is not None:
        out = out + bias.astype(F32)
    if neuron is not None:
        out = neuron(out.astype(F32))
    return to_f16(out.reshape(1, 1, n))


# --------------------------------------------------------------------------------------------
# Pooling (edge mode clamp)


def _clamped_index(start: int, n_out: int, stride: int, k: int, size: int):
    """(k, n_out) source indices clamped into [0, size) and the matching in-bounds mask."""
    idx = start + np.arange(n_out)[None, :] * stride + np.arange(k)[:, None]
    return np.clip(idx, 0, size - 1), (idx >= 0) & (idx < size)


def max_pooling(src: np.ndarray, kernel: tuple, stride: tuple, offset: tuple,
                out_hw: tuple, channels: int) -> np.ndarray:
    """MPSCNNPoolingMax, edge mode clamp (an outside read returns the nearest edge pixel)."""
    kw, kh = kernel
    sx, sy = stride
    oh, ow = out_hw
    src = src[:, :, :channels]
    ry, _ = _clamped_index(window_start(offset[1], kh), oh, sy, kh, src.shape[0])
    rx, _ = _clamped_index(window_start(offset[0], kw), ow, sx, kw, src.shape[1])
    out = None
    for i in range(kh):
        rows = src[ry[i]]
        for j in range(kw):
            tap = rows[:, rx[j]]
            out = tap.copy() if out is None else np.maximum(out, tap, out=out)
    return out


def average_pooling(src: np.ndarray, kernel: tuple, stride: tuple, offset: tuple,
                    out_hw: tuple, channels: int) -> np.ndarray:
    """MPSCNNPoolingAverage, edge mode clamp: outside pixels are left out of the average."""
    kw, kh = kernel
    sx, sy = stride
    oh, ow = out_hw
    src = src[:, :, :channels]
    ry, my = _clamped_index(window_start(offset[1], kh), oh, sy, kh, src.shape[0])
    rx, mx = _clamped_index(window_start(offset[0], kw), ow, sx, kw, src.shape[1])
    acc = np.zeros((oh, ow, channels), dtype=F32)
    for i in range(kh):
        rows = src[ry[i]].astype(F32) * my[i][:, None, None]
        for j in range(kw):
            acc += rows[:, rx[j]] * mx[j][None, :, None]
    count = my.sum(axis=0)[:, None] * mx.sum(axis=0)[None, :]
    acc /= np.maximum(count, 1)[:, :, None].astype(F32)
    return round_f16_(acc)


def global_average_pooling(src: np.ndarray, hw: tuple, channels: int) -> np.ndarray:
    """Average pooling with kernel = stride = the input size, offset (W/2, H/2): the mean."""
    h, w = hw
    x = src[:h, :w, :channels].astype(F32)
    return to_f16(x.mean(axis=(0, 1), dtype=np.float64).astype(F32).reshape(1, 1, channels))


# --------------------------------------------------------------------------------------------
# Other kernels


def softmax(src: np.ndarray, channels: int) -> np.ndarray:
    """MPSCNNSoftMax over the feature channels of each pixel."""
    x = src[:, :, :channels].astype(F32)
    x = x - x.max(axis=2, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=2, keepdims=True)
    return round_f16_(x)


def neuron_layer(src: np.ndarray, neuron: Neuron, channels: int) -> np.ndarray:
    """An MPSCNNNeuron kernel used as a layer of its own (Forge's Activation)."""
    x = src[:, :, :channels]
    if neuron.kind in ("ReLU", "ReLUN") and neuron.a == 0.0:       # one pass, no copy first
        y = np.maximum(x, F32(0))
        if neuron.kind == "ReLUN":
            np.minimum(y, F32(neuron.b), out=y)
    else:
        y = neuron(np.array(x, dtype=F32, copy=True, order="C"))
    if neuron.preserves_f16:
        return y
    return round_f16_(np.ascontiguousarray(y, dtype=F32))


def zero_padding(src: np.ndarray, tblr: tuple, pad_value: float, channels: int) -> np.ndarray:
    """Forge's PadKernel: the image framed by (top, bottom, left, right) pixels of pad_value."""
    t, b, l, r = tblr
    h, w = src.shape[:2]
    out = np.full((h + t + b, w + l + r, channels), F16(pad_value), dtype=F32)
    out[t:t + h, l:l + w] = src[:, :, :channels]
    return out


def space_to_depth_x2(src: np.ndarray, channels: int) -> np.ndarray:
    """Forge's SpaceToDepthX2 blit: quadrant r of source slice s becomes output slice s*4 + r.

    ``out[y][x][(s*4 + r)*4 + k] = in[y + (r//2)*H/2][x + (r%2)*W/2][s*4 + k]`` with r = 0
    top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
    """
    h, w = src.shape[0] // 2, src.shape[1] // 2
    slices = (channels + 3) // 4
    x = np.zeros((src.shape[0], src.shape[1], slices * 4), dtype=F32)
    x[:, :, :channels] = src[:, :, :channels]
    quads = [x[:h, :w], x[:h, w:2 * w], x[h:2 * h, :w], x[h:2 * h, w:2 * w]]
    q = np.stack(quads, axis=2)                      # (h, w, r, slices*4)
    q = q.reshape(h, w, 4, slices, 4)                # (h, w, r, s, k)
    return np.ascontiguousarray(q.transpose(0, 1, 3, 2, 4)).reshape(h, w, slices * 16)


def merge(images: np.ndarray, op: str) -> np.ndarray:
    """Forge's MergeOpKernel over the images (axis 0) of a Collect: Add/Multiply/Maximum/Average."""
    x = images
    if op == "Add":
        out = np.add(x[0], x[1]) if x.shape[0] == 2 else x.sum(axis=0, dtype=F32)
    elif op == "Multiply":
        out = np.prod(x, axis=0)
    elif op == "Maximum":
        out = x.max(axis=0)
    elif op == "Average":
        out = (x / F32(x.shape[0])).sum(axis=0)
    else:
        raise ValueError(f"unknown merge operation {op}")
    return round_f16_(np.ascontiguousarray(out, dtype=F32))


def transpose_channels(src: np.ndarray, permute, channels: int) -> np.ndarray:
    """Forge's TransposeChannelsKernel: ``out[i] = in[permute[i]]``."""
    perm = list(permute)[:channels] + [0] * max(0, channels - len(permute))
    perm = [p if p < src.shape[2] else 0 for p in perm]
    return np.ascontiguousarray(src[:, :, perm])


def subtract_mean_color(src: np.ndarray, red, green, blue, scale, channels: int) -> np.ndarray:
    """Forge's SubtractMeanColor in half precision: ``out = in * (s, s, s, 1) - (r, g, b, 0)``."""
    mean = np.zeros(max(4, channels), dtype=F32)
    mean[:3] = to_f16(np.array([red, green, blue], dtype=F32))
    mul = np.ones(max(4, channels), dtype=F32)
    mul[:3] = to_f16(np.array([scale], dtype=F32))
    scaled = to_f16(src[:, :, :channels] * mul[:channels])
    return to_f16(scaled - mean[:channels])
