"""The reference device: runs a generated Forge builder + Parameters with MPS numerics on a host.

The Swift interpreter, Forge's graph bookkeeping and the executor live here; what each Forge
initialiser means and what each layer computes come from the op registry (core.forge_ops), the
same definitions the converter emits from.

Public API:

* :func:`run_reference_device` (builder, param_dir, images, out_dir, dump="all", fault=None,
  manifest=None) → summary dict; writes what the phone writes, one run folder per image
  (``out_dir`` itself for one image): dumps, ``shapes-<model>.json`` and ``run-<model>.json``;
* :class:`ReferenceDevice` (builder, param_dir, fault=None): compiled network;
  ``.forward(rgba8, dump="none"|"output"|"all")`` → {"output", "dumps", "resized"};
  ``.tensors`` in Forge's topological order, ``.name``, ``.file_name(tensor)``;
* :func:`parse_builder` (path) → :class:`BuilderProgram` (name, uncompiled graph, loader spec);
* :class:`ReferenceDeviceError`: every error names the file/line/layer and what to do;
* :data:`FAULT_KINDS`.

Decisions where Forge or MPS would misbehave silently (each is a clear error or a run-log
warning here, so a conversion bug shows up in CI):

* a Concatenate input at a channel offset that is not a multiple of 4 is an error naming the
  concat and the input (MPS requires ``destinationFeatureChannelOffset % 4 == 0``; what a GPU
  does otherwise is undefined);
* a Collect input whose channel count differs from the first input's, and a tensor given to a
  second Concatenate/Collect (Forge keeps one destination), are errors;
* a concat input read by another layer, a Forge kernel reading image k > 0 of a Collect, or one
  writing into image k > 0 or a channel offset > 0, run as the device would (wrong data) and are
  reported in the run log's warnings;
* the fork's DocumentDirectoryDumper quirk for a Concat inside a Collect is reproduced;
* ``stride`` faults swap the layer's (x, y) kernel and stride tuples; when both are square (the
  swap would be invisible) the layer's output is written with x and y exchanged instead.
"""
from .device import ReferenceDevice
from .forge import ReferenceDeviceError
from .params import FAULT_KINDS
from .run import run_reference_device, write_dumps
from .swift import BuilderProgram, parse_builder, parse_builder_source

__all__ = ["ReferenceDevice", "ReferenceDeviceError", "FAULT_KINDS", "run_reference_device",
           "write_dumps", "BuilderProgram", "parse_builder", "parse_builder_source"]
