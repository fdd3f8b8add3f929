"""Error metrics of one tensor: device activations against golden (Keras) activations.

Per tensor, over all images (every element of every image counts once):

* ``max_abs``   — largest |device − golden|;
* ``mean_abs``  — mean |device − golden|;
* ``rmse``      — root mean square of device − golden;
* ``rel_error`` — ‖device − golden‖₂ / ‖golden‖₂ (the whole tensor's relative error; 0 when both
  are zero);
* ``cosine``    — cosine similarity of the flattened tensors (1 = same direction);
* ``range``     — [min, max] of the golden values; ``golden_rms`` and ``golden_max_abs``;
* ``nan_inf``   — NaN/Inf values in the device tensor (the error metrics use finite elements);
* the per-image relative error's distribution: ``rel_error_p50/p90/p99`` and the
  largest (``rel_error_worst`` in image ``worst_image``), so a budget can be judged on a quantile;
* given the tensor's channel count (local errors), ``offset_rel_error`` — the part of the error
  that is a constant per channel, ‖channel means of device − golden over every image‖ (each
  counted at every one of the ``positions``, H·W × images) / ‖golden‖₂.  A wrong bias or
  BatchNorm shift is all offset; rounding noise averages out of a channel mean, to about
  rel_error / √positions, so the more images, the smaller an offset that stands out.

Images are measured one at a time (:func:`image_partials`) and folded into an
:class:`Accumulator` *exactly*: float sums are kept as integers in units of 2⁻¹⁰⁷⁴ (every finite
float64 is such a multiple), maxima and counts are order-free, and the per-image errors go into
a fixed logarithmic histogram.  So accumulators of any split of the images into shards merge, in
any order, to bit-identical metrics — and memory does not grow with the number of images.
"""
import math

import numpy as np

METRICS = ("max_abs", "mean_abs", "rmse", "rel_error", "cosine")
SUMS = ("sum_abs", "sum_sq", "g_sq", "d_sq", "gd", "g_only_sq")
_ONE = 1 << 1074                      # 2**-1074 is the smallest float64 step
# per-image relative errors: 20 bins per decade from 1e-8 to 1e2, plus zero and non-finite bins
HIST_LOW, HIST_DECADES, HIST_PER_DECADE = -8, 10, 20
HIST_BINS = HIST_DECADES * HIST_PER_DECADE + 2


def _exact(x: float) -> int:
    """``x`` in units of 2⁻¹⁰⁷⁴: its denominator is a power of two, so a shift (a third of the
    time of dividing ``_ONE`` by it and multiplying; 51,000 channel sums an image on MobileNet)."""
    n, d = float(x).as_integer_ratio()
    return n << (1075 - d.bit_length())


def _value(total: int) -> float:
    return total / _ONE               # int / int is correctly rounded


def image_partials(golden, device, channels: int = 0) -> dict:
    """The sums, extremes and counts of one image's pair of arrays (float64 partials); with
    ``channels`` (HWC arrays, channels last) also each channel's sum of device − golden.

    Measuring costs as much as running the reference device, so each pass over the data is made
    once.  The squared norms come first: both finite means every value is (a NaN or ±inf makes
    them NaN or inf; float32 values cannot overflow a float64 square), so the masks and their
    copies are made only when a value is not finite; |diff| is taken once, and the golden's
    largest |value| is max(|max|, |min|) exactly.  Every sum is the same operation on the same
    float64 array as the plain formula, so the partials stay bit for bit what it gives.
    """
    g = np.asarray(golden, dtype=np.float64).reshape(-1)
    d = np.asarray(device, dtype=np.float64).reshape(-1)
    if g.size != d.size:
        raise ValueError(f"golden has {g.size} values, device {d.size}")
    g_sq, d_sq = float(np.dot(g, g)), float(np.dot(d, d))
    nan_inf = golden_nan_inf = 0
    gf = g
    if not (math.isfinite(g_sq) and math.isfinite(d_sq)):
        finite_g, finite_d = np.isfinite(g), np.isfinite(d)
        nan_inf, golden_nan_inf = int((~finite_d).sum()), int((~finite_g).sum())
        if golden_nan_inf:
            gf = g[finite_g]
        if nan_inf or golden_nan_inf:
            keep = finite_d & finite_g
            g, d = g[keep], d[keep]
            g_sq, d_sq = float(np.dot(g, g)), float(np.dot(d, d))
    diff = d - g
    sum_sq = float(np.dot(diff, diff))
    channel_sums = (diff.reshape(-1, channels).sum(axis=0)
                    if channels and g.size == np.size(golden) and g.size % channels == 0 else None)
    abs_diff = np.abs(diff, out=diff)
    g_min = float(gf.min()) if gf.size else math.inf
    g_max = float(gf.max()) if gf.size else -math.inf
    return {"nan_inf": nan_inf, "golden_nan_inf": golden_nan_inf, "count": int(g.size),
            "g_count": int(gf.size), "sum_abs": float(abs_diff.sum()), "sum_sq": sum_sq,
            "g_sq": g_sq, "d_sq": d_sq, "gd": float(np.dot(g, d)),
            "g_only_sq": g_sq if gf is g else float(np.dot(gf, gf)),
            "max_abs": float(abs_diff.max()) if abs_diff.size else 0.0,
            "g_min": g_min, "g_max": g_max,
            "g_max_abs": max(abs(g_min), abs(g_max)) if gf.size else 0.0,
            "channel_sums": channel_sums}


def _rel(sum_sq: float, g_sq: float) -> float:
    if g_sq > 0:
        return math.sqrt(sum_sq) / math.sqrt(g_sq)
    return 0.0 if sum_sq == 0 else math.inf


def _bin(rel: float) -> int:
    if rel == 0:
        return 0
    if not math.isfinite(rel):
        return HIST_BINS - 1
    k = math.floor((math.log10(rel) - HIST_LOW) * HIST_PER_DECADE)
    return 1 + min(max(k, 0), HIST_DECADES * HIST_PER_DECADE - 1)


def _bin_top(k: int) -> float:
    """The upper edge of histogram bin ``k`` (what a quantile reports: an upper bound)."""
    if k == 0:
        return 0.0
    if k == HIST_BINS - 1:
        return math.inf
    return 10.0 ** (HIST_LOW + k / HIST_PER_DECADE)


class Accumulator:
    """Exact running statistics of one tensor; ``add(golden, device, image)`` per image, then
    ``result()``; ``merge`` folds another accumulator in (any order gives the same result)."""

    def __init__(self):
        self.sums = {k: 0 for k in SUMS}
        self.max_abs = 0.0
        self.g_min, self.g_max, self.g_max_abs = math.inf, -math.inf, 0.0
        self.count = self.g_count = self.nan_inf = self.golden_nan_inf = self.images = 0
        self.hist = np.zeros(HIST_BINS, np.int64)
        self.worst = None                 # (per-image relative error, image)
        # each channel's sum of device - golden, exact as the sums (None until an image brings
        # them; False once one could not: NaN/Inf, or no channel count)
        self.channel_sums = None
        self.positions = 0

    def add(self, golden, device, image: str = "", channels: int = 0) -> None:
        self.add_partials(image_partials(golden, device, channels), image)

    def add_partials(self, p: dict, image: str = "") -> None:
        for k in SUMS:
            self.sums[k] += _exact(p[k])
        self.max_abs = max(self.max_abs, p["max_abs"])
        self.g_min, self.g_max = min(self.g_min, p["g_min"]), max(self.g_max, p["g_max"])
        self.g_max_abs = max(self.g_max_abs, p["g_max_abs"])
        for k in ("count", "g_count", "nan_inf", "golden_nan_inf"):
            setattr(self, k, getattr(self, k) + p[k])
        self.images += 1
        sums = p["channel_sums"]
        self._add_channel_sums(False if sums is None else [_exact(v) for v in sums.tolist()],
                               p["count"] // len(sums) if sums is not None else 0)
        rel = _rel(p["sum_sq"], p["g_sq"]) if p["count"] else math.inf
        self.hist[_bin(rel)] += 1
        self._worse((rel, image))

    def _worse(self, candidate) -> None:
        """Keep the image with the largest per-image error (NaN counts as largest; ties go to
        the first image by name, so the choice does not depend on the order of merging)."""
        if candidate is None:
            return
        if self.worst is None:
            self.worst = candidate
            return

        def size(rel):
            return math.inf if math.isnan(rel) else rel

        (rel, image), (best, best_image) = candidate, self.worst
        if size(rel) > size(best) or (size(rel) == size(best) and image < best_image):
            self.worst = candidate

    def merge(self, other: "Accumulator") -> "Accumulator":
        for k in SUMS:
            self.sums[k] += other.sums[k]
        self.max_abs = max(self.max_abs, other.max_abs)
        self.g_min, self.g_max = min(self.g_min, other.g_min), max(self.g_max, other.g_max)
        self.g_max_abs = max(self.g_max_abs, other.g_max_abs)
        for k in ("count", "g_count", "nan_inf", "golden_nan_inf", "images"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.hist += other.hist
        self._worse(other.worst)
        if other.channel_sums is not None:
            self._add_channel_sums(other.channel_sums, other.positions)
        return self

    def _add_channel_sums(self, sums, positions: int) -> None:
        if self.channel_sums is False or sums is False or (
                self.channel_sums is not None and len(self.channel_sums) != len(sums)):
            self.channel_sums = False
            return
        self.channel_sums = (list(sums) if self.channel_sums is None
                             else [a + b for a, b in zip(self.channel_sums, sums)])
        self.positions += positions

    def _offset_rel_error(self, g_sq: float) -> float:
        means_sq = sum(_value(v) ** 2 for v in self.channel_sums) / self.positions
        return _rel(means_sq, g_sq)

    def quantile(self, q: float) -> float:
        """Upper bound of the q-quantile of the per-image relative error (within 12%)."""
        n = int(self.hist.sum())
        if n == 0:
            return math.nan
        rank = max(1, math.ceil(q * n))
        return _bin_top(int(np.searchsorted(np.cumsum(self.hist), rank)))

    def result(self) -> dict:
        s = {k: _value(v) for k, v in self.sums.items()}
        n = max(self.count, 1)
        g_norm, d_norm = math.sqrt(s["g_sq"]), math.sqrt(s["d_sq"])
        if self.count == 0 and self.nan_inf:
            rel, cosine, max_abs, mean_abs, rmse = math.inf, 0.0, math.inf, math.inf, math.inf
        else:
            rel = _rel(s["sum_sq"], s["g_sq"])
            if g_norm > 0 and d_norm > 0:
                cosine = s["gd"] / (g_norm * d_norm)
            else:
                cosine = 1.0 if g_norm == d_norm else 0.0
            max_abs, mean_abs, rmse = self.max_abs, s["sum_abs"] / n, math.sqrt(s["sum_sq"] / n)
        worst_rel, worst_image = self.worst if self.worst else (math.nan, "")
        return {
            "max_abs": max_abs, "mean_abs": mean_abs, "rmse": rmse, "rel_error": rel,
            "cosine": cosine,
            "range": [self.g_min, self.g_max] if self.g_count else [0.0, 0.0],
            "golden_rms": math.sqrt(s["g_only_sq"] / max(self.g_count, 1)),
            "golden_max_abs": self.g_max_abs, "nan_inf": self.nan_inf,
            "golden_nan_inf": self.golden_nan_inf, "count": self.count, "images": self.images,
            "rel_error_p50": self.quantile(0.5), "rel_error_p90": self.quantile(0.9),
            "rel_error_p99": self.quantile(0.99),
            "rel_error_worst": worst_rel, "worst_image": worst_image,
            **({"offset_rel_error": self._offset_rel_error(s["g_sq"]),
                "positions": self.positions} if self.channel_sums and self.positions else {}),
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
