"""Input: the ``Input(width:height:channels:numImages:)`` function of Forge/Forge/Tensor.swift.

* ``func Input(width: Int? = nil, height: Int? = nil, channels: Int? = nil, numImages: Int = 1)
  -> Tensor`` (numImages is the fork's): a tensor with typeName ``Input``, no layer, unknown
  dimensions stored as -1; its shortId is ``__Input__``.
* ``Model.encode`` wraps the input texture as ``MPSImage(texture:featureChannels: 3)``.
* Generated builders call plain ``Input()`` and start with ``Resize``: any texture size works.
  In the IR the Input node stands for the image the layers read, so its (H, W, C) is the Keras
  input's.

Pinned by tests/reference_device/test_refdev_errors_faults.py::test_scoping_and_loader_spec.
"""
from .registry import ForgeOp, ForgeTensor, forge_op
from .shape import DataShape
from .signature import INT, OPTIONAL_INT, Param, Signature


@forge_op
class Input(ForgeOp):
    kind = "Input"
    signatures = (Signature("Input", Param("width", OPTIONAL_INT, None),
                            Param("height", OPTIONAL_INT, None),
                            Param("channels", OPTIONAL_INT, None), Param("numImages", INT, 1)),)
    type_name = "Input"
    has_layer = False
    provides_texture = True
    writes_at_destination = False

    def ir_arguments(self, node):
        return {}

    def tensor_name(self, name):
        return super().tensor_name("")           # Input() has no id: always __Input__

    def ir_shape(self, node, input_shapes):
        return (node.attrs["height"], node.attrs["width"], node.attrs["channels"])

    def output_shape(self, arguments, inputs):
        def known(value):
            return -1 if value is None else value
        return DataShape(known(arguments["width"]), known(arguments["height"]),
                         known(arguments["channels"]), arguments["numImages"])

    def forge_tensors(self, node, tensor_names):
        return [ForgeTensor(self.tensor_name(node.name), self.type_name,
                            self.output_shape(self.forge_arguments(node), []), (), False, True)]
