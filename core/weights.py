"""The weight writer: IR weights (Keras layout) -> MPSCNN layout float32 files Forge memory-maps.

Each weighted op lays its own weights out (``weight_files`` in core/forge_ops: Convolution and
PointwiseConvolution OHWI ``[out][kH][kW][in]``, DepthwiseConvolution ``[C][kH][kW]``, Dense
``[out][H][W][C]``, biases ``[out]``).  Files are raw little-endian float32 without a header,
``<model>-<layer>.weights.bin`` / ``.biases.bin``, as the builder's ``ParameterLoaderBundle``
closure names them (Forge/Forge/Parameters.swift maps ``count`` floats of the file).
"""
import hashlib

import numpy as np

from core.atomic import inside, write_bytes
from core.forge_ops import op_for


def weight_file_name(model_name: str, layer: str, kind: str) -> str:
    return f"{model_name}-{layer}.{kind}.bin"


def to_bytes(array) -> bytes:
    return np.ascontiguousarray(array, dtype="<f4").tobytes()


def write_weights(graph, param_dir) -> list:
    """Write every weighted node's files into ``param_dir``; returns the manifest entries."""
    entries = []
    for node in graph.nodes:
        input_shape = graph.node(node.inputs[0]).shape if node.inputs else None
        for kind, array, layout in op_for(node.op).weight_files(node, input_shape):
            data = to_bytes(array)
            name = weight_file_name(graph.name, node.name, kind)
            write_bytes(inside(param_dir, name), data)
            entries.append({"file": name, "layer": node.name, "type": kind,
                            "shape": list(array.shape), "layout": layout, "dtype": "<f4",
                            "count": int(array.size), "sha256": hashlib.sha256(data).hexdigest()})
    return entries
