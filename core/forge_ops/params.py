"""Parameters many Forge initialisers share (Forge/Forge/Layers.swift)."""
from .neurons import Neuron
from .signature import BOOL, STRING, Param, instance_of

NEURON = instance_of(Neuron, "MPSCNNNeuron")
OPTIONAL_NEURON = instance_of(Neuron, "MPSCNNNeuron", optional=True)

NAME = Param("name", STRING, "")
ACTIVATION = Param("activation", OPTIONAL_NEURON, None)
USE_BIAS = Param("useBias", BOOL, True)
# Layer.init(name:useBias:wantsTextures:allowsIncompleteShape:), inherited by the layers that
# declare no initialiser of their own (GlobalAveragePooling, Softmax).
LAYER_INIT = (NAME, USE_BIAS, Param("wantsTextures", BOOL, False),
              Param("allowsIncompleteShape", BOOL, False))


def xy(pair) -> tuple:
    """Keras gives (rows, cols) = (y, x); Forge takes (x, y)."""
    return (int(pair[1]), int(pair[0]))


def ir_neuron(node):
    """The node's fused neuron as a Neuron, or None."""
    neuron = node.attrs.get("neuron")
    return Neuron.from_ir(neuron) if neuron else None
