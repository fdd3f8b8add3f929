"""Darknet `.weights` reader and writer, and the Darknet <-> Keras weight mappings.

File format (`parser.c: load_weights_upto`): int32 major, minor, revision, then ``seen`` as a
64-bit integer when ``major*10 + minor >= 2`` and both are below 1000 (20-byte header), else as
a 32-bit integer (16-byte header); then every weighted layer's float32 arrays in cfg order:

* convolutional: biases[n], (scales[n], rolling_mean[n], rolling_variance[n] if
  batch_normalize), weights[n * c/groups * k * k] in OIHW order;
* connected: biases[n], weights[n * inputs] (row-major (n, inputs), inputs in CHW order),
  (scales, rolling_mean, rolling_variance if batch_normalize) -- after the weights.

Batch normalisation: Darknet computes ``gamma*(x - mean)/(sqrt(var) + 1e-6) + beta``, Keras
``gamma'*(x - mean)/sqrt(var + eps) + beta`` with ``eps = BN_EPSILON``. The reader keeps mean,
variance and beta as they are and stores ``gamma' = gamma*sqrt(var + eps)/(sqrt(var) + 1e-6)``
(computed in float64, rounded once), so the two agree to float32 rounding for every variance,
tiny ones included. The writer inverts this exactly (it picks the float32 ``gamma`` whose image
is bit-identical to ``gamma'``), so Keras -> Darknet -> Keras is bit-exact for every Keras model
made by this package, and Darknet -> Keras -> Darknet reproduces the file byte for byte.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from .errors import (WeightsCfgMismatchError, WeightsError, WeightsExtraBytesError,
                     WeightsHeaderError, WeightsTruncatedError)
from .plan import NetworkPlan, build_plan
from core.atomic import write_chunks

#: epsilon of every Keras BatchNormalization this package creates (Keras' default)
BN_EPSILON = 1e-3
#: the constant Darknet adds to sqrt(variance) (`blas.c: normalize_cpu`)
DARKNET_BN_EPS = 1e-6


# ------------------------------------------------------------------------------------- header
@dataclass(frozen=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int = 0

    @staticmethod
    def size_for(major: int, minor: int) -> int:
        return 20 if (major * 10 + minor) >= 2 and major < 1000 and minor < 1000 else 16

    @property
    def size(self) -> int:
        return self.size_for(self.major, self.minor)

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision}"

    def pack(self) -> bytes:
        head = struct.pack("<iii", self.major, self.minor, self.revision)
        return head + (struct.pack("<Q", self.seen) if self.size == 20 else struct.pack("<I", self.seen))

    def as_dict(self) -> dict:
        return dict(major=self.major, minor=self.minor, revision=self.revision, seen=self.seen,
                    header_bytes=self.size)


def read_header(path) -> WeightsHeader:
    """Read and sanity-check the header of a weights file (Darknet's 16/20-byte rule)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read the weights file ({exc.strerror or exc}); check the path") from None
    if len(head) < 12:
        raise WeightsHeaderError(f"{path}: only {len(head)} bytes, too short for a Darknet weights "
                                 "header (at least 16 bytes); the file is empty or truncated")
    major, minor, revision = struct.unpack("<iii", head[:12])
    if major < 0 or minor < 0 or revision < 0 or major >= 1000 or minor >= 1000 or revision >= 1 << 20:
        hint = ("major/minor above 1000 mark transposed [connected] weights, which this converter "
                "does not read" if (major > 1000 or minor > 1000) and major >= 0 and minor >= 0 else
                "this is not a Darknet weights file, or one written before 2016 (float header)")
        raise WeightsHeaderError(f"{path}: implausible weights header version {major}.{minor}.{revision}; "
                                 f"{hint}. Check that WEIGHTS is a .weights file from Darknet")
    size = WeightsHeader.size_for(major, minor)
    if len(head) < size:
        raise WeightsHeaderError(f"{path}: header version {major}.{minor}.{revision} needs {size} "
                                 f"bytes but the file has only {len(head)}; the file is truncated")
    seen = struct.unpack("<Q", head[12:20])[0] if size == 20 else struct.unpack("<I", head[12:16])[0]
    return WeightsHeader(major, minor, revision, seen)


# ------------------------------------------------------------------------------ BN numerics
def _bn_ratio(var):
    v = np.maximum(np.asarray(var, dtype=np.float32).astype(np.float64), 0.0)
    return np.sqrt(v + BN_EPSILON) / (np.sqrt(v) + DARKNET_BN_EPS)


def darknet_to_keras_gamma(gamma, var) -> np.ndarray:
    """Keras gamma' with ``gamma'/sqrt(var + eps) == gamma/(sqrt(var) + 1e-6)`` (float64, rounded)."""
    g = np.asarray(gamma, dtype=np.float32).astype(np.float64)
    return (g * _bn_ratio(var)).astype(np.float32)


def keras_to_darknet_gamma(kgamma, var) -> np.ndarray:
    """Exact inverse of :func:`darknet_to_keras_gamma` wherever a float32 preimage exists."""
    kg = np.asarray(kgamma, dtype=np.float32)
    ratio = _bn_ratio(var)
    best = (kg.astype(np.float64) / ratio).astype(np.float32)
    found = darknet_to_keras_gamma(best, var) == kg
    if not found.all():
        lo, hi = best.copy(), best.copy()
        for _ in range(16):
            lo = np.nextafter(lo, np.float32(-np.inf))
            hi = np.nextafter(hi, np.float32(np.inf))
            for cand in (lo, hi):
                ok = (~found) & (darknet_to_keras_gamma(cand, var) == kg)
                best = np.where(ok, cand, best)
                found |= ok
            if found.all():
                break
    return best.astype(np.float32)


# -------------------------------------------------------------- Darknet <-> Keras weight maps
def _conv_kernel_to_keras(w, spec):
    a = spec.attrs
    n, k, cin = a["filters"], a["size"], spec.in_shape[2] // a["groups"]
    return w.reshape(n, cin, k, k).transpose(2, 3, 1, 0)


def _dense_kernel_to_keras(w, spec):
    n = spec.attrs["output"]
    h, wd, c = spec.in_shape
    return w.reshape(n, c, h, wd).transpose(2, 3, 1, 0).reshape(h * wd * c, n)


def keras_weights(spec, arrays: dict) -> dict:
    """Darknet arrays of one layer -> {keras layer name: [weights]} as the builder names them."""
    i = spec.index
    bn = spec.attrs.get("batch_normalize")
    if spec.kind == "convolutional":
        kernel = _conv_kernel_to_keras(arrays["weights"], spec)
        main = f"conv_{i}"
    elif spec.kind == "connected":
        kernel = _dense_kernel_to_keras(arrays["weights"], spec)
        main = f"connected_{i}"
    else:
        return {}
    if not bn:
        return {main: [kernel, arrays["biases"]]}
    return {main: [kernel],
            f"bn_{i}": [darknet_to_keras_gamma(arrays["scales"], arrays["rolling_variance"]),
                        arrays["biases"], arrays["rolling_mean"], arrays["rolling_variance"]]}


def darknet_arrays(spec, kweights: dict) -> dict:
    """Inverse of :func:`keras_weights`: {keras layer name: [weights]} -> Darknet arrays."""
    i = spec.index
    bn = spec.attrs.get("batch_normalize")
    main = f"conv_{i}" if spec.kind == "convolutional" else f"connected_{i}"
    kernel = np.asarray(kweights[main][0], dtype=np.float32)
    if spec.kind == "convolutional":
        w = kernel.transpose(3, 2, 0, 1)
    else:
        h, wd, c = spec.in_shape
        n = spec.attrs["output"]
        w = kernel.reshape(h, wd, c, n).transpose(3, 2, 0, 1)
    out = {"weights": np.ascontiguousarray(w).reshape(-1)}
    if bn:
        kgamma, beta, mean, var = (np.asarray(x, dtype=np.float32) for x in kweights[f"bn_{i}"])
        out.update(biases=beta, scales=keras_to_darknet_gamma(kgamma, var), rolling_mean=mean,
                   rolling_variance=var)
    else:
        out["biases"] = np.asarray(kweights[main][1], dtype=np.float32)
    return out


# ----------------------------------------------------------------------------------- reading
@dataclass
class DarknetWeights:
    header: WeightsHeader
    layers: dict  # layer index -> {array name: float32 ndarray}
    floats: int
    extra_bytes: int = 0


def _describe(spec) -> str:
    return f"layer {spec.index} [{spec.section.raw}] (cfg line {spec.section.line})"


def _offsets(plan):
    pos = 0
    for spec in plan.layers:
        for name, count in spec.weights:
            yield spec, name, pos, count
            pos += count


def _check_values(path, plan, spec, name, arr, need, avail):
    bad = None
    if not np.isfinite(arr).all():
        bad = "NaN or infinite values"
    elif name == "rolling_variance" and (arr < 0).any():
        bad = "negative batch-norm variances"
    if bad:
        raise WeightsCfgMismatchError(
            f"{path}: {_describe(spec)} of {plan.path}: its '{name}' holds {bad}, so the file does "
            f"not hold weights for this cfg (the cfg needs {need} bytes after the header, the file "
            f"has {avail}). Likely cause: the weights were trained with a different cfg; use the "
            "cfg the weights were published with")


def read_weights(path, plan: NetworkPlan, *, allow_extra: bool = False) -> DarknetWeights:
    """Read a weights file for ``plan``; sizes are checked before anything is allocated."""
    path = os.fspath(path)
    header = read_header(path)
    total = os.path.getsize(path)
    hdr = header.size
    avail = total - hdr
    need = plan.n_floats * 4
    if avail != need:
        alt = 36 - hdr
        if total - alt == need:
            raise WeightsHeaderError(
                f"{path}: header version {header.version} means a {hdr}-byte header, but the file "
                f"size ({total} bytes) fits {plan.path} only with a {alt}-byte header ({need} bytes "
                f"of weights): the header's 'seen' counter is {(alt - 12) * 8}-bit, which disagrees "
                "with its version. Rewrite the header with the matching version (0.1.0 = 32-bit seen, "
                "0.2.0 = 64-bit seen)")
        # content check in what is there: a wrong cfg misaligns the arrays
        with open(path, "rb") as fh:
            for spec, name, start, count in _offsets(plan):
                if name != "rolling_variance":
                    continue
                if (start + count) * 4 > avail:
                    break
                fh.seek(hdr + start * 4)
                arr = np.frombuffer(fh.read(count * 4), dtype="<f4")
                _check_values(path, plan, spec, name, arr, need, avail)
        if avail < need:
            for spec, name, start, count in _offsets(plan):
                if (start + count) * 4 > avail:
                    break
            cause = ("the file ends in the middle of a float: most likely a truncated download; "
                     "download the weights again" if avail % 4 else
                     "a truncated download (download it again), or a cfg describing a bigger network "
                     "than the one the weights were trained for (check the cfg/weights pair)")
            raise WeightsTruncatedError(
                f"{path}: too short for {plan.path}: {_describe(spec)} needs bytes "
                f"{start * 4}..{(start + count) * 4} of its '{name}' array after the {hdr}-byte header, "
                f"but only {avail} bytes are available (the cfg needs {need} bytes, a file of "
                f"{need + hdr} bytes; this one has {total}). Likely cause: {cause}")
        if not allow_extra:
            raise WeightsExtraBytesError(
                f"{path}: {avail - need} bytes left over after the last layer of {plan.path} "
                f"(the cfg needs {need} bytes after the {hdr}-byte header, the file has {avail}). "
                "Likely cause: the cfg describes a smaller network than the weights (wrong cfg, "
                "e.g. a tiny cfg with full weights) or the file has trailing data; pass "
                "--allow-extra (allow_extra=True) to ignore the rest")
    data = np.fromfile(path, dtype="<f4", count=plan.n_floats, offset=hdr).astype(np.float32, copy=False)
    layers: dict = {}
    for spec, name, start, count in _offsets(plan):
        arr = data[start:start + count]
        _check_values(path, plan, spec, name, arr, need, avail)
        layers.setdefault(spec.index, {})[name] = arr
    return DarknetWeights(header=header, layers=layers, floats=plan.n_floats,
                          extra_bytes=max(avail - need, 0))


# ----------------------------------------------------------------------------------- writing
def _as_header(header_version, seen) -> WeightsHeader:
    if isinstance(header_version, WeightsHeader):
        return header_version
    major, minor, revision = (int(x) for x in header_version)
    return WeightsHeader(major, minor, revision, int(seen))


def write_weights(path, plan: NetworkPlan, layers: dict, *, header_version=(0, 2, 0), seen: int = 0):
    """Write Darknet arrays (``{layer index: {name: array}}``) for ``plan`` to ``path``."""
    header = _as_header(header_version, seen)

    def chunks():
        yield header.pack()
        for spec in plan.layers:
            for name, count in spec.weights:
                try:
                    arr = np.asarray(layers[spec.index][name], dtype="<f4").reshape(-1)
                except KeyError:
                    raise WeightsError(f"{plan.path}: no '{name}' array given for {_describe(spec)}") from None
                if arr.size != count:
                    raise WeightsError(f"{plan.path}: {_describe(spec)} '{name}' has {arr.size} "
                                       f"values, the cfg needs {count}")
                yield arr.tobytes()

    write_chunks(path, chunks())
    return header


def _random_layer(spec, rng, damp):
    out = {}
    a = spec.attrs
    if spec.kind == "convolutional":
        fan_in = spec.in_shape[2] // a["groups"] * a["size"] ** 2
    else:
        fan_in = a["inputs"]
    for name, count in spec.weights:
        if name == "weights":
            arr = rng.standard_normal(count, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in) * damp)
        elif name == "biases":
            arr = rng.normal(0.0, 0.1, count).astype(np.float32)
        elif name == "scales":
            arr = rng.uniform(0.5, 1.0, count).astype(np.float32)
        elif name == "rolling_mean":
            arr = rng.normal(0.0, 0.1, count).astype(np.float32)
        else:  # rolling_variance
            arr = rng.uniform(0.5, 1.5, count).astype(np.float32)
        out[name] = arr
    return out


def random_darknet_arrays(plan: NetworkPlan, seed: int) -> dict:
    """Seeded, realistic arrays for every weighted layer (He-scaled kernels, positive variances;
    branches feeding a [shortcut] are damped so deep residual nets keep O(1) activations)."""
    rng = np.random.default_rng(seed)
    feeds_shortcut = {s.inputs[0] for s in plan.layers if s.kind == "shortcut"}
    feeds_shortcut |= {s.attrs["source"] for s in plan.layers if s.kind == "shortcut"}
    out = {}
    for spec in plan.layers:
        if spec.weights:
            out[spec.index] = _random_layer(spec, rng, 0.3 if spec.index in feeds_shortcut else 1.0)
    return out


def write_random_weights(cfg_path, out_path, seed: int = 0, header_version=(0, 2, 0), seen: int = 0):
    """Write a seeded weights file of exactly the size ``cfg_path`` needs; returns the plan."""
    plan = build_plan(cfg_path)
    write_weights(out_path, plan, random_darknet_arrays(plan, seed), header_version=header_version,
                  seen=seen)
    return plan


def write_keras_weights(model, cfg, out_path, *, header_version=(0, 2, 0), seen: int = 0):
    """Write the weights of a Keras model built by this package for ``cfg`` as a Darknet file."""
    plan = cfg if isinstance(cfg, NetworkPlan) else build_plan(cfg)
    layers = {}
    for spec in plan.layers:
        if not spec.weights:
            continue
        names = [f"conv_{spec.index}" if spec.kind == "convolutional" else f"connected_{spec.index}"]
        if spec.attrs.get("batch_normalize"):
            names.append(f"bn_{spec.index}")
        try:
            kw = {nm: model.get_layer(nm).get_weights() for nm in names}
        except ValueError:
            raise WeightsError(f"the Keras model has no layer {names} for {_describe(spec)}; was it "
                               f"built from {plan.path}?") from None
        layers[spec.index] = darknet_arrays(spec, kw)
    return write_weights(out_path, plan, layers, header_version=header_version, seen=seen)
