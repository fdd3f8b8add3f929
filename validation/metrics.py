"""Error metrics of one tensor: device activations against golden (Keras) activations.

Per tensor, over all images (every element of every image counts once):

* ``max_abs``   — largest |device − golden|;
* ``mean_abs``  — mean |device − golden|;
* ``rmse``      — root mean square of device − golden;
* ``rel_error`` — ‖device − golden‖₂ / ‖golden‖₂ (the whole tensor's relative error; 0 when both
  are zero);
* ``cosine``    — cosine similarity of the flattened tensors (1 = same direction);
* ``range``     — [min, max] of the golden values; ``golden_rms`` and ``golden_max_abs``;
* ``nan_inf``   — NaN/Inf values in the device tensor (the error metrics use finite elements).

Sums are accumulated in float64, image by image, so large tensors need no concatenation.
"""
import math

import numpy as np

METRICS = ("max_abs", "mean_abs", "rmse", "rel_error", "cosine")


class Accumulator:
    """Running sums for one tensor; ``add(golden, device)`` per image, then ``result()``."""

    def __init__(self):
        self.count = 0
        self.sum_abs = 0.0
        self.sum_sq = 0.0
        self.max_abs = 0.0
        self.g_sq = 0.0
        self.d_sq = 0.0
        self.gd = 0.0
        self.g_min = math.inf
        self.g_max = -math.inf
        self.g_max_abs = 0.0
        self.nan_inf = 0
        self.golden_nan_inf = 0
        self.g_count = 0
        self.g_only_sq = 0.0

    def add(self, golden, device):
        g = np.asarray(golden, dtype=np.float64).reshape(-1)
        d = np.asarray(device, dtype=np.float64).reshape(-1)
        if g.size != d.size:
            raise ValueError(f"golden has {g.size} values, device {d.size}")
        finite_d = np.isfinite(d)
        finite_g = np.isfinite(g)
        self.nan_inf += int(d.size - finite_d.sum())
        self.golden_nan_inf += int(g.size - finite_g.sum())
        gf = g[finite_g]
        if gf.size:
            self.g_min = min(self.g_min, float(gf.min()))
            self.g_max = max(self.g_max, float(gf.max()))
            self.g_max_abs = max(self.g_max_abs, float(np.abs(gf).max()))
            self.g_count += gf.size
            self.g_only_sq += float(np.dot(gf, gf))
        keep = finite_d & finite_g
        if not keep.all():
            g, d = g[keep], d[keep]
        if g.size == 0:
            return
        diff = d - g
        absdiff = np.abs(diff)
        self.count += g.size
        self.sum_abs += float(absdiff.sum())
        self.sum_sq += float(np.dot(diff, diff))
        self.max_abs = max(self.max_abs, float(absdiff.max()))
        self.g_sq += float(np.dot(g, g))
        self.d_sq += float(np.dot(d, d))
        self.gd += float(np.dot(g, d))

    def result(self) -> dict:
        if self.count == 0 and self.nan_inf:
            inf = math.inf
            return {"max_abs": inf, "mean_abs": inf, "rmse": inf, "rel_error": inf, "cosine": 0.0,
                    "range": [self.g_min, self.g_max] if self.g_count else [0.0, 0.0],
                    "golden_rms": math.sqrt(self.g_only_sq / max(self.g_count, 1)),
                    "golden_max_abs": self.g_max_abs,
                    "nan_inf": self.nan_inf, "golden_nan_inf": self.golden_nan_inf, "count": 0}
        n = max(self.count, 1)
        g_norm, d_norm = math.sqrt(self.g_sq), math.sqrt(self.d_sq)
        err_norm = math.sqrt(self.sum_sq)
        if g_norm > 0:
            rel = err_norm / g_norm
        else:
            rel = 0.0 if err_norm == 0 else math.inf
        if g_norm > 0 and d_norm > 0:
            cosine = self.gd / (g_norm * d_norm)
        else:
            cosine = 1.0 if g_norm == d_norm else 0.0
        return {
            "max_abs": self.max_abs, "mean_abs": self.sum_abs / n,
            "rmse": math.sqrt(self.sum_sq / n), "rel_error": rel, "cosine": cosine,
            "range": [self.g_min, self.g_max] if self.g_count else [0.0, 0.0],
            "golden_rms": math.sqrt(self.g_only_sq / max(self.g_count, 1)), "golden_max_abs": self.g_max_abs,
            "nan_inf": self.nan_inf, "golden_nan_inf": self.golden_nan_inf, "count": self.count,
        }


def compare(golden, device) -> dict:
    """Metrics of a single pair of arrays (see the module docstring)."""
    acc = Accumulator()
    acc.add(golden, device)
    return acc.result()


def top_k(values, k: int = 5) -> list:
    """Indices of the k largest values of a flattened tensor, ties to the lower index."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    flat = np.where(np.isfinite(flat), flat, -np.inf)
    return [int(i) for i in np.argsort(-flat, kind="stable")[:k]]


def fmt(value) -> str:
    """A metric for tables: 4 significant digits, NaN/Inf spelled out."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.4g}"
