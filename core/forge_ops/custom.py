"""Custom: ``Custom: Layer`` in Forge/Forge/Layers.swift, running a ``CustomKernel`` (kernels/).

* ``init(_ custom: CustomKernel, width: Int? = nil, height: Int? = nil, channels: Int? = nil,
  name: String = "")``; typeName ``Custom``.
* ``outputShape``: the given dimensions, the input's where nil; with all three given it accepts
  an input of unknown shape.
* Forge calls ``custom.encode(commandBuffer:sourceImage:destinationImage:)``: the kernel reads
  image 0 of its source and ignores the destination's channel offset and image number.

Pinned by tests/reference_device/test_refdev_layers.py (test_custom_transpose_and_subtract_mean,
test_rgb2bgr_kernel, test_unknown_custom_kernel_names_the_line,
test_project_custom_kernel_from_core).
"""
from .kernels import KernelCall, kernel_for_swift
from .params import NAME
from .registry import ForgeOp, ForgeOpError, forge_op
from .shape import DataShape
from .signature import OPTIONAL_INT, Param, Signature, instance_of

_DIMENSIONS = ("width", "height", "channels")


@forge_op
class Custom(ForgeOp):
    kind = "Custom"
    signatures = (Signature("Custom", Param("custom", instance_of(KernelCall, "custom kernel object"),
                                            labelled=False),
                            *(Param(d, OPTIONAL_INT, None) for d in _DIMENSIONS), NAME),)
    type_name = "Custom"
    divergence_hint = ("the custom Metal kernel's arguments (channel counts, offsets, constants) or, for "
                       "preprocessing, the channel order (RGB vs BGR), mean/scale constants or the "
                       "order of the steps")
    writes_at_destination = False
    reads_source_image = False

    def ir_arguments(self, node):
        """A kernel that changes the shape (the project's) declares it; Forge's own keep the
        input's."""
        kernel = kernel_for_swift(node.attrs["kernel_class"])
        if kernel is None:
            raise ForgeOpError(f"layer {node.name!r}: no custom kernel "
                               f"{node.attrs['kernel_class']!r} in core/forge_ops/kernels/")
        arguments = {"custom": kernel.call(node.attrs.get("args", {})), "name": node.name}
        out_shape = node.attrs.get("out_shape")
        if out_shape:
            height, width, channels = out_shape
            arguments.update(width=int(width), height=int(height), channels=int(channels))
        elif node.attrs.get("channels"):
            arguments["channels"] = int(node.attrs["channels"])    # RGB2Gray: one channel
        return arguments

    def output_shape(self, arguments, inputs):
        source = inputs[0]
        given = [arguments[d] for d in _DIMENSIONS]
        return DataShape(*(value if value is not None else fallback
                           for value, fallback in zip(given, (source.width, source.height,
                                                              source.channels))))

    def allows_incomplete_shape(self, arguments):
        return all(arguments[d] is not None for d in _DIMENSIONS)

    def compute(self, layer, source, in_shape, out_shape):
        call = layer.arguments["custom"]
        src = source[:in_shape.height, :in_shape.width, :in_shape.channels]
        want = (out_shape.height, out_shape.width, out_shape.channels)
        out = call.kernel.run(src, call.arguments, want)
        if out.shape != want:
            raise ForgeOpError(f"custom kernel {call.kernel.swift_class} produced an image of shape "
                               f"(H, W, C) = {out.shape}, but the layer declares {want}; fix the "
                               "Custom(width:height:channels:) arguments")
        return out
