"""The weight writer: IR weights (Keras layout) -> MPSCNN layout float32 files Forge memory-maps.

Layouts (forge-target.md §2.4): Convolution and PointwiseConvolution OHWI ``[out][kH][kW][in]``,
DepthwiseConvolution ``[C][kH][kW]``, Dense ``[out][H][W][C]`` (Keras flattens channels-last in
the same order, so it is the plain transpose), biases ``[out]``.  Raw little-endian, no header.
"""
import hashlib

import numpy as np

from core.atomic import inside, write_bytes


def mpscnn_arrays(node, input_shape) -> list:
    """[(type, array, layout)] for a weighted node, already in MPSCNN layout."""
    if "kernel" not in node.weights:
        return []
    kernel = node.weights["kernel"]
    if node.op in ("Convolution", "PointwiseConvolution"):
        arrays = [("weights", kernel.transpose(3, 0, 1, 2), "OHWI")]
    elif node.op == "DepthwiseConvolution":
        arrays = [("weights", kernel[:, :, :, 0].transpose(2, 0, 1), "CHW")]
    elif node.op == "Dense":
        h, w, c = input_shape
        arrays = [("weights", kernel.T.reshape(kernel.shape[1], h, w, c), "OHWI")]
    else:
        return []
    if node.attrs.get("use_bias", True):
        arrays.append(("biases", node.weights["bias"], "O"))
    return arrays


def weight_file_name(model_name: str, layer: str, kind: str) -> str:
    return f"{model_name}-{layer}.{kind}.bin"


def to_bytes(array) -> bytes:
    return np.ascontiguousarray(array, dtype="<f4").tobytes()


def write_weights(graph, param_dir) -> list:
    """Write every weighted node's files into ``param_dir``; returns the manifest entries."""
    entries = []
    for node in graph.nodes:
        input_shape = graph.node(node.inputs[0]).shape if node.inputs else None
        for kind, array, layout in mpscnn_arrays(node, input_shape):
            data = to_bytes(array)
            name = weight_file_name(graph.name, node.name, kind)
            write_bytes(inside(param_dir, name), data)
            entries.append({"file": name, "layer": node.name, "type": kind,
                            "shape": list(array.shape), "layout": layout, "dtype": "<f4",
                            "count": int(array.size), "sha256": hashlib.sha256(data).hexdigest()})
    return entries
