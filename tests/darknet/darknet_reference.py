"""A NumPy reference of Darknet's forward pass, written from Darknet's C semantics.

Independent of ``core.darknet``: its own cfg reading (Darknet's read_cfg rules), its own
weights reading (16/20-byte header rule, per-layer arrays in file order) and float64 CHW
layer loops transcribed from ``parser.c``, ``convolutional_layer.c``, ``maxpool_layer.c``,
``blas.c`` (``reorg_cpu``, ``shortcut_cpu``, ``normalize_cpu``, ``upsample_cpu``),
``avgpool_layer.c``, ``route_layer.c``, ``connected_layer.c``. Single image, CHW.
"""
from __future__ import annotations

import struct

import numpy as np

ALIASES = {"net": "net", "network": "net", "conv": "convolutional", "max": "maxpool",
           "avg": "avgpool", "conn": "connected", "soft": "softmax"}


def read_cfg(path):
    sections = []
    for line in open(path, encoding="utf-8").read().split("\n"):
        line = "".join(line.split())
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            t = line[1:-1]
            sections.append((ALIASES.get(t, t), {}))
        else:
            k, v = line.split("=", 1)
            sections[-1][1].setdefault(k, v)
    return sections


def _i(opts, key, default):
    return int(opts[key]) if key in opts else default


def _f(opts, key, default):
    return float(opts[key]) if key in opts else default


def activate(x, act):
    if act == "linear":
        return x
    if act == "leaky":
        return np.where(x > 0, x, 0.1 * x)
    if act == "relu":
        return np.maximum(x, 0)
    if act == "logistic":
        return 1.0 / (1.0 + np.exp(-x))
    if act == "mish":
        return x * np.tanh(np.log1p(np.exp(x)))
    raise ValueError(act)


class Reader:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        major, minor, revision = struct.unpack("<iii", self.data[:12])
        self.pos = 20 if (major * 10 + minor) >= 2 and major < 1000 and minor < 1000 else 16

    def take(self, n):
        out = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos).astype(np.float64)
        self.pos += 4 * n
        return out

    def done(self):
        return self.pos == len(self.data)


def conv2d(x, w, stride, pad, groups):
    """x (C, H, W), w (N, C/groups, k, k); Darknet im2col with symmetric zero padding."""
    c, h, wd = x.shape
    n, cg, k, _ = w.shape
    oh = (h + 2 * pad - k) // stride + 1
    ow = (wd + 2 * pad - k) // stride + 1
    xp = np.zeros((c, h + 2 * pad, wd + 2 * pad))
    xp[:, pad:pad + h, pad:pad + wd] = x
    out = np.empty((n, oh, ow))
    ng = n // groups
    for g in range(groups):
        cols = np.empty((cg, k, k, oh, ow))
        for ky in range(k):
            for kx in range(k):
                cols[:, ky, kx] = xp[g * cg:(g + 1) * cg, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride]
        out[g * ng:(g + 1) * ng] = (w[g * ng:(g + 1) * ng].reshape(ng, -1) @ cols.reshape(cg * k * k, -1)).reshape(ng, oh, ow)
    return out


def maxpool(x, size, stride, padding):
    c, h, w = x.shape
    oh = (h + padding - size) // stride + 1
    ow = (w + padding - size) // stride + 1
    off = -(padding // 2)  # C: w_offset = -l.pad/2
    out = np.full((c, oh, ow), -np.finfo(np.float32).max)
    for i in range(oh):
        for j in range(ow):
            for n in range(size):
                for m in range(size):
                    y, xx = off + i * stride + n, off + j * stride + m
                    if 0 <= y < h and 0 <= xx < w:
                        out[:, i, j] = np.maximum(out[:, i, j], x[:, y, xx])
    return out


def reorg(x, stride):
    """reorg_cpu(x, w, h, c, batch=1, stride, forward=0, out), then reinterpreted."""
    c, h, w = x.shape
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    out_c = c // (stride * stride)
    k, j, i = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    in_index = i + w * (j + h * k)
    c2 = k % out_c
    offset = k // out_c
    w2 = i * stride + offset % stride
    h2 = j * stride + offset // stride
    out_index = w2 + w * stride * (h2 + h * stride * c2)
    out[in_index.reshape(-1)] = flat[out_index.reshape(-1)]
    return out.reshape(c * stride * stride, h // stride, w // stride)


def shortcut(prev, add, alpha, beta):
    """shortcut_cpu(batch, w1, h1, c1 = from, add, w2, h2, c2 = out, s1, s2, out)."""
    out = prev.copy()
    c1, h1, w1 = add.shape
    c2, h2, w2 = out.shape
    stride = max(w1 // w2, 1)
    sample = max(w2 // w1, 1)
    minw, minh, minc = min(w1, w2), min(h1, h2), min(c1, c2)
    # the C loop over k < minc, j < minh, i < minw, vectorised with the same indices
    o = (slice(0, minc), slice(0, minh * sample, sample), slice(0, minw * sample, sample))
    a = (slice(0, minc), slice(0, minh * stride, stride), slice(0, minw * stride, stride))
    out[o] = alpha * out[o] + beta * add[a]
    return out


def forward(cfg_path, weights_path, image_hwc):
    """Run the network on one HWC image in [0, 1]; returns the list of layer outputs (CHW)."""
    sections = read_cfg(cfg_path)
    assert sections[0][0] == "net"
    rd = Reader(weights_path)
    x = np.asarray(image_hwc, dtype=np.float64).transpose(2, 0, 1)
    outs = []
    for idx, (kind, o) in enumerate(sections[1:]):
        if kind == "convolutional":
            n, size, stride = _i(o, "filters", 1), _i(o, "size", 1), _i(o, "stride", 1)
            pad = size // 2 if _i(o, "pad", 0) else _i(o, "padding", 0)
            groups = _i(o, "groups", 1)
            bn = _i(o, "batch_normalize", 0)
            c = x.shape[0]
            biases = rd.take(n)
            if bn:
                scales, mean, var = rd.take(n), rd.take(n), rd.take(n)
            w = rd.take(n * c // groups * size * size).reshape(n, c // groups, size, size)
            y = conv2d(x, w, stride, pad, groups)
            if bn:
                y = (y - mean[:, None, None]) / (np.sqrt(var[:, None, None]) + .000001)
                y = y * scales[:, None, None]
            y = y + biases[:, None, None]
            x = activate(y, o.get("activation", "logistic"))
        elif kind == "maxpool":
            stride = _i(o, "stride", 1)
            size = _i(o, "size", stride)
            x = maxpool(x, size, stride, _i(o, "padding", size - 1))
        elif kind == "avgpool":
            x = x.mean(axis=(1, 2), keepdims=True)
        elif kind == "route":
            parts = []
            groups, gid = _i(o, "groups", 1), _i(o, "group_id", 0)
            for v in o["layers"].split(","):
                v = int(v)
                src = outs[idx + v] if v < 0 else outs[v]
                part = src.shape[0] // groups
                parts.append(src[gid * part:(gid + 1) * part])
            x = np.concatenate(parts, axis=0)
        elif kind == "reorg":
            x = reorg(x, _i(o, "stride", 1))
        elif kind == "shortcut":
            v = int(o["from"])
            src = outs[idx + v] if v < 0 else outs[v]
            x = activate(shortcut(x, src, _f(o, "alpha", 1), _f(o, "beta", 1)), o.get("activation", "linear"))
        elif kind == "upsample":
            s = _i(o, "stride", 2)
            x = _f(o, "scale", 1) * x.repeat(s, axis=1).repeat(s, axis=2)
        elif kind == "connected":
            n = _i(o, "output", 1)
            flat = x.reshape(-1)
            biases = rd.take(n)
            w = rd.take(n * flat.size).reshape(n, flat.size)
            y = w @ flat
            if _i(o, "batch_normalize", 0):
                scales, mean, var = rd.take(n), rd.take(n), rd.take(n)
                y = (y - mean) / (np.sqrt(var) + .000001) * scales
            x = activate(y + biases, o.get("activation", "logistic")).reshape(n, 1, 1)
        elif kind == "softmax":  # softmax_cpu: exp(x/temp - max/temp), over the whole output
            t = _f(o, "temperature", 1)
            e = np.exp(x / t - x.max() / t)
            x = e / e.sum()
        elif kind in ("dropout", "cost", "region", "yolo"):
            pass  # identity at inference (region/yolo: we compare the raw head input)
        else:
            raise ValueError(kind)
        outs.append(x)
    assert rd.done(), "weights not fully consumed"
    return outs


def head_inputs(cfg_path, outs):
    """The raw tensors the Keras model outputs: inputs of [yolo] heads, else the [region]'s,
    else the last output. Returned HWC."""
    kinds = [k for k, _ in read_cfg(cfg_path)[1:]]
    yolo = [outs[i - 1] for i, k in enumerate(kinds) if k == "yolo"]
    region = [outs[i - 1] for i, k in enumerate(kinds) if k == "region"]
    chosen = yolo or region[-1:] or [outs[-1]]
    return [t.transpose(1, 2, 0) for t in chosen]
