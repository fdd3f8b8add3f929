"""The weight writer: IR weights (Keras layout) -> MPSCNN layout float32 files Forge memory-maps.

Each weighted op lays its own weights out (``weight_files`` in core/forge_ops: Convolution and
PointwiseConvolution OHWI ``[out][kH][kW][in]``, DepthwiseConvolution ``[C][kH][kW]``, Dense
``[out][H][W][C]``, biases ``[out]``).  Files are raw little-endian float32 without a header,
``<model>-<layer>.weights.bin`` / ``.biases.bin``, as the builder's ``ParameterLoaderBundle``
closure names them (Forge/Forge/Parameters.swift maps ``count`` floats of the file).

``keras2metal -e`` also exports the original (unfolded) model's arrays, for comparing a folded
layer with the layers it came from: :func:`export_original_arrays`.
"""
import hashlib
import json

import numpy as np

from core.atomic import inside, write_bytes, write_chunks, write_text
from core.errors import ConversionError
from core.forge_ops import op_for

ORIGINAL_FORMAT = "keras2metal.original/1"


def weight_file_name(model_name: str, layer: str, kind: str) -> str:
    return f"{model_name}-{layer}.{kind}.bin"


def to_bytes(array) -> memoryview:
    """The array's raw little-endian float32 bytes, without a copy when it already is that."""
    return memoryview(np.ascontiguousarray(array, dtype="<f4")).cast("B")


def _hashed_chunks(array, digest):
    """The file's bytes as written: a ``Transposed`` kernel band by band, an array at once; each
    chunk goes into ``digest`` before it is handed on."""
    for chunk in array.bands() if hasattr(array, "bands") else [array]:
        data = to_bytes(chunk)
        digest.update(data)
        yield data


def write_weights(graph, param_dir) -> list:
    """Write every weighted node's files into ``param_dir``; returns the manifest entries."""
    entries = []
    for node in graph.nodes:
        input_shape = graph.node(node.inputs[0]).shape if node.inputs else None
        for kind, array, layout in op_for(node.op).weight_files(node, input_shape):
            name = weight_file_name(graph.name, node.name, kind)
            digest = hashlib.sha256()
            write_chunks(inside(param_dir, name), _hashed_chunks(array, digest))
            entries.append({"file": name, "layer": node.name, "type": kind,
                            "shape": list(array.shape), "layout": layout, "dtype": "<f4",
                            "count": int(array.size), "sha256": digest.hexdigest()})
    return entries


def export_original_arrays(model, model_name: str, out_dir) -> list:
    """Every array of every layer of the unfolded Keras model, as Keras holds it.

    Files ``<out_dir>/<model>-<layer>.<array>.bin`` (raw little-endian float32, Keras layout:
    a Conv2D kernel is ``[kH][kW][in][out]``; BatchNorm keeps gamma, beta, moving_mean and
    moving_variance) and the index ``<out_dir>/<model>.original.json`` listing each file's layer,
    class, array, shape and sha256, written last.  Layer names are made file-safe as for the
    converted weights.  Returns the written paths.
    """
    from core.kerasenv import variable_name, weight_arrays
    from core.passes import forge_identifier

    entries, written, owners = [], [], {}
    for layer in model.layers:
        for variable, array in zip(layer.weights, weight_arrays(layer)):
            array_name = variable_name(variable)
            file_name = f"{model_name}-{forge_identifier(layer.name)}.{array_name}.bin"
            other = owners.setdefault(file_name, layer.name)
            if other != layer.name:
                raise ConversionError(f"layers {other!r} and {layer.name!r} both export as "
                                      f"{file_name}; rename one of them in the model")
            data = to_bytes(array)
            path = inside(out_dir, file_name)
            write_bytes(path, data)
            written.append(path)
            entries.append({"file": file_name, "layer": layer.name,
                            "class": type(layer).__name__, "array": array_name,
                            "shape": list(array.shape), "layout": "keras", "dtype": "<f4",
                            "sha256": hashlib.sha256(data).hexdigest()})
    index = inside(out_dir, f"{model_name}.original.json")
    write_text(index, json.dumps({"format": ORIGINAL_FORMAT, "model": model_name,
                                  "arrays": entries}, indent=1) + "\n")
    return written + [index]
