"""Collect and the merge layers (Add, Multiply, Maximum, Average), the fork's residual
connections: ``Collect(_:name:)`` in Forge/Forge/Tensor.swift, ``MergeOperation`` and its
subclasses in Forge/Forge/Layers.swift, ``MergeOpKernel`` in Forge/Forge/MergeOp.swift.

* ``func Collect(_ tensors: [Tensor], name: String = "") -> Tensor`` stacks its inputs as the
  *images* of one MPSImage: input k gets ``destinationImageNumber`` = the images before it.
  Every input must match the first input's width and height (fatalError); channels are not
  checked, the first input's count is used.  Result ``(W, H, C, ΣnumImages)``, typeName
  ``Collect``, no layer, shortId ``__Collect_<name>__``.
* ``MergeOperation(operation: MergeOpType, name:)`` with ``enum MergeOpType { case Add = 1,
  Multiply, Maximum, Average }``, and ``Add(name:)`` etc.; typeName ``"\\(operation)"``;
  ``outputShape`` ``(W, H, C, 1)``.  It reduces all images of its source element-wise; Average
  divides each term by the number of images.
* MergeOpKernel writes at ``destinationChannelOffset/4 + imageNumber*slices``, with the
  preconditions ``destinationChannelOffset % 4 == 0`` and ``destinationChannelOffset <
  featureChannels``; with at most 4 channels and one destination image it takes the texture2d
  pipeline even when the destination is a wider Concat array.
* A Collect input is read by an MPSCNNLayer at image ``offset.z`` = its image number; Forge's own
  kernels read image 0.
* The converter's IR writes ``Collect([a, b], name: "for_<x>") --> Add(name: "<x>")`` as one
  node of kind ``CollectMerge``, as the fork's generated builders do.

Pinned by tests/reference_device/test_refdev_layers.py (test_merge_ops_and_collect,
test_second_destination_is_an_error) and
tests/core/test_core_passes.py::test_enforce_merge_rules_copies_depthwise_written_collect_inputs.
"""
import numpy as np

from .numerics import F32, round_f16_
from .params import NAME
from .registry import COLLECT_NAME_PREFIX, ForgeOp, ForgeOpError, ForgeTensor, forge_op, op_for_swift
from .shape import DataShape
from .signature import TENSORS, Param, Signature, enum

MERGE_OPERATIONS = ("Add", "Multiply", "Maximum", "Average")


def collect_name(merge_name: str) -> str:
    return COLLECT_NAME_PREFIX + merge_name


@forge_op
class Collect(ForgeOp):
    signatures = (Signature("Collect", Param("tensors", TENSORS, labelled=False), NAME),)
    type_name = "Collect"
    has_layer = False
    gathers = "images"

    def image_numbers(self, image_counts) -> list:
        """Each input's ``destinationImageNumber``: the images of the inputs before it."""
        numbers, total = [], 0
        for count in image_counts:
            numbers.append(total)
            total += count
        return numbers

    def output_shape(self, arguments, inputs):
        first = inputs[0]
        for k, shape in enumerate(inputs):
            if (shape.width, shape.height) != (first.width, first.height):
                raise ForgeOpError(f"input #{k} is {shape.width}x{shape.height}, the first input "
                                   f"is {first.width}x{first.height}; Forge stops with a fatalError")
        return DataShape(first.width, first.height, first.channels,
                         sum(s.num_images for s in inputs))


@forge_op
class MergeOperation(ForgeOp):
    signatures = (Signature("MergeOperation", Param("operation", enum(*MERGE_OPERATIONS)), NAME),
                  *(Signature(operation, NAME) for operation in MERGE_OPERATIONS))
    type_names = MERGE_OPERATIONS
    reads_source_image = False
    reads_all_images = True
    divergence_hint = ("the inputs of the merge (a branch's scale, e.g. Inception-ResNet's residual "
                       "scale) or their order")

    def type_name_of(self, arguments):
        return arguments["operation"]

    def from_call(self, callee, arguments):
        if callee in MERGE_OPERATIONS:
            return {"operation": callee, **arguments}
        return arguments

    def swift_call(self, arguments):
        """``Add(name:)`` and its siblings, as the fork's generated builders write them."""
        return self.signature_for(arguments["operation"]).call({"name": arguments["name"]})

    def output_shape(self, arguments, inputs):
        source = inputs[0]
        return DataShape(source.width, source.height, source.channels, 1)

    def compute(self, layer, source, in_shape, out_shape):
        return merge(source, layer.arguments["operation"])


@forge_op
class CollectMerge(ForgeOp):
    """The IR's ``Collect([...], name: "for_<x>") --> <Operation>(name: "<x>")``."""
    kind = "CollectMerge"
    gathers = "images"

    def forge_arguments(self, node):
        return MERGE.signature.complete({"operation": node.attrs["operation"], "name": node.name})

    def type_name_of(self, arguments):
        return MERGE.type_name_of(arguments)

    def ir_shape(self, node, input_shapes):
        inputs = [DataShape.from_hwc(s) for s in input_shapes]
        collected = COLLECT.output_shape({}, inputs)
        return MERGE.output_shape(self.forge_arguments(node), [collected]).hwc

    def can_write_at_channel(self, offset, channels):
        # MergeOpKernel's preconditions and its texture2d pipeline for <= 4 channels
        return offset < channels and channels > 4

    def swift_head(self, node, input_variables):
        collect = COLLECT.signature.call({"tensors": input_variables,
                                         "name": collect_name(node.name)})
        return f"{collect} --> {MERGE.swift_call(self.forge_arguments(node))}"

    def forge_tensors(self, node, tensor_names):
        height, width, channels = node.shape
        collected = ForgeTensor(COLLECT.tensor_name(collect_name(node.name)), COLLECT.type_name,
                                DataShape(width, height, channels, len(node.inputs)),
                                tuple(tensor_names[i] for i in node.inputs), False, False)
        merged = ForgeTensor(node.name, self.type_name_of(self.forge_arguments(node)),
                             DataShape(width, height, channels), (collected.name,), True, True)
        return [collected, merged]

    def names_taken_by(self, name):
        return (name, collect_name(name))


COLLECT, MERGE = op_for_swift("Collect"), op_for_swift("MergeOperation")


def merge(images: np.ndarray, operation: str) -> np.ndarray:
    """MergeOpKernel over the images (axis 0) of a Collect."""
    x = images
    if operation == "Add":
        out = np.add(x[0], x[1]) if x.shape[0] == 2 else x.sum(axis=0, dtype=F32)
    elif operation == "Multiply":
        out = np.prod(x, axis=0)
    elif operation == "Maximum":
        out = x.max(axis=0)
    else:                                        # Average: each term divided by the count
        out = (x / F32(x.shape[0])).sum(axis=0)
    return round_f16_(np.ascontiguousarray(out, dtype=F32))
