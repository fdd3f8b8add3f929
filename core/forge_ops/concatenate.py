"""Concatenate: the ``Concatenate(_:name:)`` function of Forge/Forge/Tensor.swift.

* ``func Concatenate(_ tensors: [Tensor], name: String = "") -> Tensor`` (name is the fork's):
  depth concatenation without a copy.  Input k gets ``destinationTensor`` = the concat and
  ``destinationChannelOffset`` = the channels of the inputs before it; the result is
  ``(max W, max H, ΣC, 1)``, typeName ``Concat``, shortId ``__Concat_<name>__``.
* The fork's preconditions: no input is itself a Concat (no nesting), and no input has another
  consumer ("MPSCNN can not read with a (src) channel offset").
* MPS writes at ``destinationFeatureChannelOffset``, which "shall be a multiple of 4" (Apple's
  MPSCNNKernel documentation); Forge does not check it.  So every input but the last needs a
  multiple of 4 channels, and an input written by a layer that ignores the channel offset must
  come first.
* The fork's DocumentDirectoryDumper (ForgeTests/ForgeTests/TestUtils.swift) writes each input's
  file by slicing the concat image, except for a Concat that is an input of a Collect: it then
  slices the Collect, so that Concat's inputs get no file of their own.

Pinned by tests/reference_device/test_refdev_layers.py (test_concat_writes_at_channel_offsets_*,
test_concat_offset_not_multiple_of_4_is_an_error, test_concat_input_with_other_consumer_*) and
tests/core/test_core_passes.py (test_enforce_merge_rules_*, test_flatten_nested_concats).
"""
from .registry import ForgeOp, forge_op
from .params import NAME
from .shape import DataShape
from .signature import TENSORS, Param, Signature

CHANNEL_OFFSET_MULTIPLE = 4


@forge_op
class Concatenate(ForgeOp):
    kind = "Concatenate"
    signatures = (Signature("Concatenate", Param("tensors", TENSORS, labelled=False), NAME),)
    type_name = "Concat"
    divergence_hint = ("channel offsets of the concatenated inputs (each input's "
                       "destinationChannelOffset) or the order of the inputs")
    has_layer = False
    gathers = "channels"
    writes_at_destination = False

    def ir_arguments(self, node):
        return {"tensors": list(node.inputs), "name": node.name}

    def output_shape(self, arguments, inputs):
        return DataShape(max(s.width for s in inputs), max(s.height for s in inputs),
                         sum(s.channels for s in inputs))

    def can_write_at_channel(self, offset, channels):
        return False                        # the fork forbids nested concatenations

    def channel_offsets(self, channel_counts) -> list:
        """Each input's ``destinationChannelOffset``: the channels of the inputs before it."""
        offsets, total = [], 0
        for channels in channel_counts:
            offsets.append(total)
            total += channels
        return offsets

    def offset_is_writable(self, offset: int) -> bool:
        """Whether MPS can write an input at this destination channel offset."""
        return offset % CHANNEL_OFFSET_MULTIPLE == 0

    def inputs_are_dumped(self, consumer_gathers) -> bool:
        """Whether the fork's dumper writes the inputs' files, given what the concat's
        consumers gather (``"images"``: a Collect)."""
        return "images" not in consumer_gathers

    def swift_head(self, node, input_variables):
        return self.swift_call(dict(self.forge_arguments(node), tensors=input_variables))
