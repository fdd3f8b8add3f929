"""PNG pictures (matplotlib, Agg backend: no window needed).

* :func:`error_by_depth`: per model, the error of every tensor against its depth (topological
  index), with the budget line and the first divergence marked;
* :func:`featuremap_grid`: golden | device | |difference| of one tensor, every channel a tile
  in a grid (replaces the original ``visualize.py``);
* :func:`tile_channels`: the tiling itself (HWC → one 2-D picture; rows are y, columns x, so a
  non-square map keeps its orientation).
"""
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from core.atomic import atomic_path  # noqa: E402

# PNG metadata without the matplotlib version, so pictures do not change with an upgrade
_PNG_META = {"Software": None}
FLOOR = 1e-12      # zero errors are drawn at this height on the log axis
LOCAL_FLOOR = 1e-6  # ... and exact local replays (ReLU, pooling, concat) here, far below ε


def _save(fig, path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata=_PNG_META)
    plt.close(fig)
    return path


def error_by_depth(results, path, title: str = None) -> Path:
    """Cumulative and local relative error against tensor depth, log scale.

    Top: each tensor's error against Keras on the image (cumulative: it grows with depth), red
    where the suite judged ``fail`` or found a data problem, its budget as a dashed step line.
    Bottom: each layer's own (local) error — Keras on the device's inputs, and the MPS kernels on
    Keras's inputs — against its local budget, which does not grow with depth (exact replays are
    drawn at 1e-6); the cumulative error is drawn faintly for comparison.  The first divergence
    is a vertical line.
    """
    tensors = sorted((t for t in results.tensors if t.metrics is not None), key=lambda t: t.index)
    depth = np.array([t.index for t in tensors], dtype=float)
    failing = np.array([t.verdict in ("fail", "data_problem") for t in tensors], dtype=bool)
    cumulative = _shown([t.metrics.rel_error for t in tensors])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    first = results.first_divergence

    budget = np.array([t.budget.rel_error if t.budget else np.nan for t in tensors], float)
    if len(depth):
        top.plot(depth, cumulative, color="0.75", linewidth=0.8, zorder=1)
    ok, bad = ~failing & np.isfinite(cumulative), failing & np.isfinite(cumulative)
    top.scatter(depth[ok], cumulative[ok], s=14, color="tab:blue", label="passing tensor",
                zorder=2)
    if bad.any():
        top.scatter(depth[bad], cumulative[bad], s=22, color="tab:red",
                    label="failing tensor or data problem", zorder=3)
    if np.isfinite(budget).any():
        top.step(depth, budget, where="mid", color="tab:orange", linestyle="--", linewidth=1.2,
                 label="budget", zorder=1)
    top.set_ylabel("cumulative relative error")

    bottom.plot(depth, cumulative, color="0.85", linewidth=0.8, label="cumulative", zorder=1)
    for attr, colour, label in (("device_rel_error", "tab:green", "Keras on the device's inputs"),
                                ("golden_rel_error", "tab:purple", "MPS kernels on Keras's inputs")):
        values = _shown([getattr(t.local, attr) if t.local else None for t in tensors],
                        LOCAL_FLOOR)
        if np.isfinite(values).any():
            bottom.scatter(depth, values, s=12, color=colour, label=label, zorder=2)
    local_budget = np.array([t.local.budget if t.local else np.nan for t in tensors], float)
    if np.isfinite(local_budget).any():
        bottom.step(depth, local_budget, where="mid", color="tab:orange", linestyle="--",
                    linewidth=1.2, label="local budget", zorder=1)
    offsets = _shown([t.local.device_offset_rel_error if t.local else None for t in tensors],
                     LOCAL_FLOOR)
    offset_budget = np.array([t.local.offset_budget if t.local and t.local.offset_budget
                              else np.nan for t in tensors], float)
    if np.isfinite(offset_budget).any():
        bottom.scatter(depth, offsets, s=10, marker="x", color="tab:cyan", zorder=2,
                       label="its per-channel offset (device's inputs)")
        bottom.step(depth, offset_budget, where="mid", color="tab:cyan", linestyle=":",
                    linewidth=1.2, label="local offset budget", zorder=1)
    culprits = np.array([t.blame == "culprit" for t in tensors], dtype=bool)
    if culprits.any():
        worst = _shown([t.local.worst() if t.blame == "culprit" else None for t in tensors],
                       LOCAL_FLOOR)
        bottom.scatter(depth[culprits], worst[culprits], s=40, facecolors="none",
                       edgecolors="tab:red", label="culprit (own error over budget)", zorder=3)
    bottom.set_ylabel("local (own) relative error")
    for ax in (top, bottom):
        if first is not None:
            ax.axvline(first.index, color="tab:red", linestyle=":", linewidth=1.2,
                       label=f"first divergence: {first.tensor}")
        if np.isfinite(cumulative).any():       # a log axis needs a positive value to show
            ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    bottom.set_xlabel("tensor depth (topological index)")
    h, w = results.input_size
    fig.suptitle(title or f"{results.model} {w}×{h} — {results.device}: error by layer depth")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.08, hspace=0.08)
    return _save(fig, path)


def _shown(values, floor=FLOOR) -> np.ndarray:
    """Errors for a log axis: exact zeros at the floor, missing and non-finite left out."""
    array = np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.where(np.isfinite(array), np.maximum(array, floor), np.nan)


# -- feature maps -------------------------------------------------------------------------
def as_hwc(array) -> np.ndarray:
    """Any activation as (H, W, C): HWC stays, a vector becomes 1×1×N, 2-D (A, B) becomes A×B×1."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 3:
        return a
    if a.ndim == 4:                        # (N, H, W, C): first image
        return a[0]
    if a.ndim == 2:
        return a[:, :, None]
    return a.reshape(1, 1, -1)


def tile_channels(hwc, max_channels: int = None, pad: float = np.nan) -> np.ndarray:
    """Tile the channels of an (H, W, C) map into an n×m grid with a 1-pixel gap (``pad``).

    Tile ``c`` (row-major in the grid) is ``hwc[:, :, c]``: H rows, W columns.  Vectors
    (1×1×N) are laid out as a near-square picture instead, one pixel per value.
    """
    hwc = as_hwc(hwc)
    h, w, c = hwc.shape
    if h == 1 and w == 1 and c > 1:        # a Dense / logits vector: one pixel per value
        cols = math.ceil(math.sqrt(c))
        rows = math.ceil(c / cols)
        flat = np.full(rows * cols, pad, dtype=np.float32)
        flat[:c] = hwc.reshape(-1)
        return flat.reshape(rows, cols)
    if max_channels is not None:
        c = min(c, max_channels)
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), pad, dtype=np.float32)
    for k in range(c):
        r, q = divmod(k, cols)
        grid[r * (h + 1): r * (h + 1) + h, q * (w + 1): q * (w + 1) + w] = hwc[:, :, k]
    return grid


def _stats(a) -> str:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return "no finite values"
    return f"min {finite.min():.4g}  max {finite.max():.4g}  mean {finite.mean():.4g}"


def featuremap_grid(a, b, path, label_a: str = "A", label_b: str = "B", title: str = "",
                    max_channels: int = 256) -> Path:
    """Three panels: A | B | |A − B|; A and B share one colour scale, the difference its own."""
    a, b = as_hwc(a), as_hwc(b)
    if a.size != b.size:
        raise ValueError(f"{label_a} has {a.size} values {a.shape}, {label_b} has {b.size} "
                         f"{b.shape}: they are not the same tensor")
    if a.shape != b.shape:                 # same data, other bookkeeping (e.g. [N,1] vs 1×1×N)
        b = b.reshape(a.shape)
    diff = np.abs(a - b)
    ta, tb, td = (tile_channels(x, max_channels) for x in (a, b, diff))
    both = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]])
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    dfin = diff[np.isfinite(diff)]
    dhi = float(dfin.max()) if dfin.size and dfin.max() > 0 else 1.0
    aspect = ta.shape[1] / max(ta.shape[0], 1)
    panel_w = 5.0
    fig, axes = plt.subplots(1, 3, figsize=(3 * panel_w, max(2.5, panel_w / aspect + 1.2)))
    cmap = matplotlib.colormaps["gray"].with_extremes(bad="white")
    hot = matplotlib.colormaps["magma"].with_extremes(bad="white")
    for ax, tiles, data, label, kw in (
            (axes[0], ta, a, label_a, dict(cmap=cmap, vmin=lo, vmax=hi)),
            (axes[1], tb, b, label_b, dict(cmap=cmap, vmin=lo, vmax=hi)),
            (axes[2], td, diff, f"|{label_a} − {label_b}|", dict(cmap=hot, vmin=0.0, vmax=dhi))):
        image = ax.imshow(np.ma.masked_invalid(tiles), interpolation="nearest", **kw)
        ax.set_title(f"{label}\n{_stats(data)}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    h, w, c = a.shape
    shown = c if h == 1 and w == 1 else min(c, max_channels)
    fig.suptitle(f"{title}  (H×W×C = {h}×{w}×{c}"
                 + (f", first {shown} channels" if shown < c else "") + ")")
    fig.tight_layout()
    return _save(fig, path)
