"""The Forge op registry: everything known about the Forge fork's layers, in one place.

One module per Forge layer kind (or graph function), each registered with ``@forge_op``; the
converter (shape inference, padding legalisation, concat/collect rules, weight files, Swift,
manifest) and the reference device (parser and executor) both dispatch through it.  Facts and
their sources: each module's docstring, indexed in docs/forge.md.

Public surface:

* :func:`op_for` (IR kind), :func:`op_for_swift` (Swift initialiser), :func:`op_for_type_name`
  (a manifest's ``forge_type``), :func:`registered_ops`,
  :func:`ir_kinds`, :class:`ForgeOp`, :class:`ForgeOpError`, :class:`ForgeTensor`;
* :class:`DataShape`; :class:`Neuron` and :func:`neuron_kind_for_swift`;
* :func:`kernel_for_swift`, :func:`custom_kernels`, :class:`KernelCall`;
* :func:`preprocessing_layer` (a manifest preprocessing step as an IR node and its weights);
* :class:`ForgeTarget`, :data:`IOS11`, :data:`DEFAULT_TARGET`; the signature helpers (:class:`Signature`,
  :data:`DEVICE`, :class:`SignatureError`).

Imports nothing from the rest of the project but numpy (and PIL for Resize).
"""
from . import (activation, collect_merge, concatenate, convolution, custom, dense,  # noqa: F401
               depthwise, global_pooling, input, pointwise, pooling, resize, softmax,
               space_to_depth_x2, zero_padding)
from .kernels import KernelCall, custom_kernels, kernel_for_swift
from .neurons import Neuron, neuron_kind_for_swift, neuron_kinds
from .registry import (ForgeOp, ForgeOpError, ForgeTensor, ir_kinds, op_for, op_for_swift,
                       op_for_type_name, registered_ops)
from .shape import DataShape
from .signature import DEVICE, Signature, SignatureError
from .target import DEFAULT_TARGET, IOS11, ForgeTarget


def preprocessing_layer(step: dict) -> tuple:
    """(IR kind, attrs, weights) of the layer implementing a manifest preprocessing step."""
    for op in registered_ops():
        if op.preprocessing_step == step["op"]:
            return op.kind, op.preprocessing_attrs(step), op.preprocessing_weights(step)
    for kernel in custom_kernels():
        if kernel.preprocessing_step == step["op"]:
            attrs = {"kernel_class": kernel.swift_class,
                     "args": kernel.preprocessing_arguments(step)}
            if getattr(kernel, "output_channels", None):
                attrs["channels"] = kernel.output_channels
            return "Custom", attrs, {}
    raise ForgeOpError(f"no Forge layer implements the preprocessing step {step['op']!r}")


__all__ = ["DEFAULT_TARGET", "DEVICE", "IOS11", "DataShape", "ForgeOp", "ForgeOpError", "ForgeTarget",
           "ForgeTensor", "KernelCall", "Neuron", "Signature", "SignatureError", "custom_kernels",
           "ir_kinds", "kernel_for_swift", "neuron_kind_for_swift", "neuron_kinds", "op_for",
           "op_for_swift", "op_for_type_name", "preprocessing_layer", "registered_ops"]
