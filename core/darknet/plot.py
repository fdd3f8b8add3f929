"""Model plot for ``yad2k -p``: Keras' ``plot_model`` when pydot/graphviz exist, else matplotlib."""
from __future__ import annotations

import os


def _inbound(layer):
    names = []
    for node in getattr(layer, "_inbound_nodes", [])[:1]:
        tensors = getattr(node, "input_tensors", None)
        if tensors is None:
            tensors = getattr(node, "keras_inputs", [])
        for t in tensors if isinstance(tensors, (list, tuple)) else [tensors]:
            hist = getattr(t, "_keras_history", None)
            if hist is not None:
                names.append(hist[0].name)
    return names


def _shape(layer):
    try:
        shape = layer.output.shape
    except Exception:  # noqa: BLE001 - cosmetic only
        return ""
    return "x".join("?" if d is None else str(d) for d in tuple(shape)[1:])


def plot_model(model, path) -> str:
    path = os.fspath(path)
    try:
        from core.kerasenv import keras
        keras.utils.plot_model(model, to_file=path, show_shapes=True)
        if os.path.exists(path):
            return path
    except Exception:  # noqa: BLE001 - pydot/graphviz missing: fall back to matplotlib
        pass
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = model.layers
    row = {layer.name: k for k, layer in enumerate(layers)}
    fig_h = max(2.0, 0.32 * len(layers))
    fig, ax = plt.subplots(figsize=(7, fig_h))
    for k, layer in enumerate(layers):
        y = -k
        ax.text(0.5, y, f"{layer.name}  ({type(layer).__name__})  {_shape(layer)}", ha="center",
                va="center", fontsize=7, bbox=dict(boxstyle="round", fc="#e8eef8", ec="#335"))
        for src in _inbound(layer):
            if src in row and row[src] != k - 1:
                ys = -row[src]
                ax.annotate("", xy=(0.02, y), xytext=(0.02, ys),
                            arrowprops=dict(arrowstyle="->", connectionstyle="arc3,rad=0.4",
                                            color="#a33", lw=0.6))
    ax.set_xlim(0, 1)
    ax.set_ylim(-len(layers), 1)
    ax.axis("off")
    ax.set_title(model.name)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path
