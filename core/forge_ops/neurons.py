"""The ``MPSCNNNeuron`` classes: Swift initialiser, the IR's name, formula, and whether MPS may
fuse them into a convolution.

Formulas are Apple's (MPSCNNNeuron documentation, one class per formula).  The IR writes a neuron
as ``{"type": "relu", "a": 0.0}``; the builder declares each distinct neuron once as
``let neuron_relu_0 = MPSCNNNeuronReLU(device: device, a: 0)`` and passes the variable to
``activation:`` (Convolution, PointwiseConvolution, DepthwiseConvolution, Dense) or to
``Activation(_:)``.  Neuron calls spell out every parameter, so the builder shows the numbers.
"""
from dataclasses import dataclass, field

import numpy as np

from .signature import DEVICE_TYPE, NUMBER, Param, Signature, swift_float
from .target import DEFAULT_TARGET, ForgeTarget, Versioned

F32 = np.float32
_KINDS = {}          # Swift class suffix ("ReLU") -> NeuronKind
_IR_TYPES = {}       # IR type ("relu") -> NeuronKind


class NeuronKind:
    """One MPSCNNNeuron class."""

    swift_suffix = ""              # MPSCNNNeuron<suffix>
    ir_type = ""                   # the IR's neuron "type"
    parameters = {}                # a/b parameters of the initialiser with their defaults
    # MPS fuses a neuron into MPSCNNConvolution / MPSCNNFullyConnected (neuronFilter:).
    fusable_into_convolution = Versioned({11: True})

    @property
    def swift_class(self) -> str:
        return "MPSCNNNeuron" + self.swift_suffix

    @property
    def signature(self) -> Signature:
        return Signature(self.swift_class, Param("device", DEVICE_TYPE),
                         *(Param(name, NUMBER, default) for name, default in self.parameters.items()))

    def formula(self, x: np.ndarray, a, b) -> np.ndarray:
        """Apply to a float32 array (in place where possible) and return it."""
        raise NotImplementedError


def neuron_kind(cls):
    """Class decorator: register one MPSCNNNeuron class."""
    kind = cls()
    _KINDS[kind.swift_suffix] = kind
    _IR_TYPES[kind.ir_type] = kind
    return cls


def neuron_kind_for_swift(swift_class: str):
    """The kind for ``MPSCNNNeuronReLU`` etc., or None."""
    if not swift_class.startswith("MPSCNNNeuron"):
        return None
    return _KINDS.get(swift_class[len("MPSCNNNeuron"):])


def neuron_kinds() -> list:
    return list(_KINDS.values())


@dataclass(frozen=True)
class Neuron:
    """One neuron object: its kind's Swift suffix and its a, b (float32 values, as MPS holds them)."""
    kind: str
    a: float = 0.0
    b: float = 0.0
    spec: NeuronKind = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"unknown neuron MPSCNNNeuron{self.kind}; known: "
                             + ", ".join("MPSCNNNeuron" + k for k in _KINDS))
        object.__setattr__(self, "a", float(F32(self.a)))
        object.__setattr__(self, "b", float(F32(self.b)))
        object.__setattr__(self, "spec", _KINDS[self.kind])

    @classmethod
    def from_ir(cls, neuron: dict) -> "Neuron":
        spec = _IR_TYPES.get(neuron["type"])
        if spec is None:
            raise ValueError(f"IR neuron type {neuron['type']!r} has no MPSCNNNeuron; known: "
                             + ", ".join(sorted(_IR_TYPES)))
        return cls(spec.swift_suffix, **{name: neuron[name] for name in spec.parameters})

    def fusable(self, target: ForgeTarget = DEFAULT_TARGET) -> bool:
        return self.spec.fusable_into_convolution.at(target)

    def swift_reference(self) -> str:
        """The builder's variable for this neuron: ``neuron_<type>_<a>_<b>``."""
        parts = [self.spec.ir_type] + [swift_float(getattr(self, name)).replace("-", "m")
                                       .replace(".", "_") for name in self.spec.parameters]
        return "neuron_" + "_".join(parts)

    def swift_initialiser(self) -> str:
        arguments = {name: getattr(self, name) for name in self.spec.parameters}
        return self.spec.signature.call(dict(arguments, device=None), spell_out_defaults=True)

    @property
    def preserves_f16(self) -> bool:
        """True when float16 inputs give float16-exact outputs (no rounding needed)."""
        exact_b = float(np.float16(self.b)) == self.b
        return ((self.kind == "ReLU" and self.a == 0.0) or self.kind == "Absolute"
                or (self.kind == "ReLUN" and self.a == 0.0 and exact_b))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply to a float32 array (in place where possible) and return it."""
        return self.spec.formula(x, F32(self.a), F32(self.b))

    def __repr__(self):
        return f"MPSCNNNeuron{self.kind}(a={self.a:g}, b={self.b:g})"


@neuron_kind
class ReLU(NeuronKind):
    swift_suffix, ir_type, parameters = "ReLU", "relu", {"a": 0.0}

    def formula(self, x, a, b):                       # x >= 0 ? x : a*x
        if a == 0.0:
            return np.maximum(x, F32(0), out=x)
        return np.where(x >= 0, x, a * x)


@neuron_kind
class ReLUN(NeuronKind):
    swift_suffix, ir_type, parameters = "ReLUN", "relun", {"a": 1.0, "b": 6.0}
    # MPS computes ReLUN wrongly when it is fused into a convolution (tognos/YAD2K README: keep a
    # separate Activation layer, as the fork's MobileNet builder does).
    fusable_into_convolution = Versioned({11: False})

    def formula(self, x, a, b):                       # min(x >= 0 ? x : a*x, b)
        if a == 0.0:
            y = np.maximum(x, F32(0), out=x)
        else:
            y = np.where(x >= 0, x, a * x).astype(F32, copy=False)
        return np.minimum(y, b, out=y)


@neuron_kind
class Linear(NeuronKind):
    swift_suffix, ir_type, parameters = "Linear", "linear", {"a": 1.0, "b": 0.0}

    def formula(self, x, a, b):                       # a*x + b
        x *= a
        x += b
        return x


@neuron_kind
class Sigmoid(NeuronKind):
    swift_suffix, ir_type, parameters = "Sigmoid", "sigmoid", {}

    def formula(self, x, a, b):
        return F32(1) / (F32(1) + np.exp(-x))


@neuron_kind
class HardSigmoid(NeuronKind):
    swift_suffix, ir_type, parameters = "HardSigmoid", "hard_sigmoid", {"a": 0.2, "b": 0.5}

    def formula(self, x, a, b):                       # clamp(a*x + b, 0, 1)
        return np.clip(a * x + b, F32(0), F32(1))


@neuron_kind
class TanH(NeuronKind):
    swift_suffix, ir_type, parameters = "TanH", "tanh", {"a": 1.0, "b": 1.0}

    def formula(self, x, a, b):                       # a * tanh(b*x)
        return a * np.tanh(b * x)


@neuron_kind
class ELU(NeuronKind):
    swift_suffix, ir_type, parameters = "ELU", "elu", {"a": 1.0}

    def formula(self, x, a, b):                       # x >= 0 ? x : a*(exp(x) - 1)
        return np.where(x >= 0, x, a * np.expm1(np.minimum(x, F32(0))))


@neuron_kind
class Absolute(NeuronKind):
    swift_suffix, ir_type, parameters = "Absolute", "absolute", {}

    def formula(self, x, a, b):
        return np.abs(x)


@neuron_kind
class SoftPlus(NeuronKind):
    swift_suffix, ir_type, parameters = "SoftPlus", "softplus", {"a": 1.0, "b": 1.0}

    def formula(self, x, a, b):                       # a * log(1 + exp(b*x))
        return a * np.logaddexp(F32(0), b * x).astype(F32)


@neuron_kind
class SoftSign(NeuronKind):
    swift_suffix, ir_type, parameters = "SoftSign", "softsign", {}

    def formula(self, x, a, b):                       # x / (1 + |x|)
        return x / (F32(1) + np.abs(x))
