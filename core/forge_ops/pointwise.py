"""PointwiseConvolution: ``PointwiseConvolution: Convolution`` in Forge/Forge/Layers.swift.

* ``init(channels: Int, stride: (Int, Int) = (1, 1), activation: MPSCNNNeuron? = nil,
  useBias: Bool = true, name: String = "")``; typeName ``PointwConv``.
* A 1x1 Convolution (.same).  Forge accepts ``stride`` but never passes it on to
  ``Convolution.init``, so it always runs with stride 1 (upstream Forge too).
* Weights as Convolution: OHWI ``[out][1][1][in]``.

Pinned by tests/reference_device/test_refdev_layers.py::test_pointwise_ignores_stride.
"""
from .convolution import Convolution
from .params import ACTIVATION, NAME, USE_BIAS, ir_neuron, xy
from .registry import forge_op
from .signature import INT, PAIR, Param, Signature


@forge_op
class PointwiseConvolution(Convolution):
    kind = "PointwiseConvolution"
    signatures = (Signature("PointwiseConvolution", Param("channels", INT),
                            Param("stride", PAIR, (1, 1)), ACTIVATION, USE_BIAS, NAME),)
    type_name = "PointwConv"
    accumulator = "pointwise"
    divergence_hint = "1×1 convolution weights: OHWI transpose, a dropped bias or a wrong BatchNorm fold"
    description = "pointwise convolution"

    def ir_arguments(self, node):
        a = node.attrs
        return {"channels": int(node.weights["kernel"].shape[-1]), "stride": xy(a["stride"]),
                "activation": ir_neuron(node), "useBias": a.get("use_bias", True),
                "name": node.name}

    def window(self, arguments):
        return (1, 1), (1, 1)

    def padding(self, arguments):
        return "same"

    def with_window(self, arguments, kernel, stride):
        return arguments                      # Forge fixes its window: 1x1, stride 1

    def parse_warnings(self, arguments):
        if arguments["stride"] == (1, 1):
            return []
        return [f"PointwiseConvolution {arguments['name']!r} declares stride "
                f"{arguments['stride']}, which Forge ignores (it always runs stride 1)"]
