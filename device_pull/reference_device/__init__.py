"""The reference device: runs a generated Forge builder + Parameters with MPS numerics on a host.

Public API:

* :func:`run_reference_device` (builder, param_dir, images, out_dir, dump="all", fault=None)
  → run-log dict; writes the phone's dump files and ``run-<model>.json``;
* :class:`ReferenceDevice` (builder, param_dir, fault=None): compiled network;
  ``.forward(rgba8, dump="none"|"output"|"all")`` → {"output", "dumps", "resized"};
  ``.tensors`` in Forge's topological order, ``.name``, ``.file_name(tensor)``;
* :func:`parse_builder` (path) → :class:`BuilderProgram` (name, uncompiled graph, loader spec);
* :class:`ReferenceDeviceError`: every error names the file/line/layer and what to do;
* :data:`FAULT_KINDS`.
"""
from .device import ReferenceDevice
from .forge import ReferenceDeviceError
from .params import FAULT_KINDS
from .run import run_reference_device, write_dumps
from .swift import BuilderProgram, parse_builder, parse_builder_source

__all__ = ["ReferenceDevice", "ReferenceDeviceError", "FAULT_KINDS", "run_reference_device",
           "write_dumps", "BuilderProgram", "parse_builder", "parse_builder_source"]
