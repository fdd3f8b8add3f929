"""Swift initialiser signatures: one definition read two ways.

The emitter renders a call from a signature (labels in declaration order, unlabelled parameters
first, defaults left out for layers); the reference device binds a parsed call to the same
signature (missing labels get their defaults, unknown labels and wrong types are errors).  Every
argument value is held in Forge's own conventions: (x, y) tuples, ``"same"``/``"valid"`` for
``PaddingType``, a :class:`~core.forge_ops.neurons.Neuron` for an ``MPSCNNNeuron``.
"""
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

REQUIRED = object()     # a parameter without a default
DEVICE = object()       # the builder's MTLDevice (``device`` / ``self.device``)


class SignatureError(ValueError):
    """A call that does not fit its initialiser; the caller adds file and line."""


def swift_float(value) -> str:
    """A float32 as Swift source: shortest round-trip digits, no trailing ``.0``."""
    return np.format_float_positional(np.float32(value), trim="-")


def swift_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class ParamType:
    """How one parameter's value is checked when parsed and written when emitted."""
    name: str
    accepts: Callable[[Any], bool]
    render: Callable[[Any], str]
    problem: str                      # "`label:` <problem>" when a parsed value is rejected
    normalise: Callable[[Any], Any] = lambda value: value


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_int_tuple(size):
    return lambda value: (isinstance(value, tuple) and len(value) == size
                          and all(_is_int(v) for v in value))


def _render_tuple(value) -> str:
    return "(" + ", ".join(str(int(v)) for v in value) + ")"


INT = ParamType("Int", _is_int, lambda v: str(int(v)), "must be an integer", int)
OPTIONAL_INT = ParamType("Int?", lambda v: v is None or _is_int(v), lambda v: str(int(v)),
                         "must be an integer or nil", lambda v: None if v is None else int(v))
NUMBER = ParamType("Float", _is_number, swift_float, "must be a number", float)
BOOL = ParamType("Bool", lambda v: isinstance(v, bool), lambda v: "true" if v else "false",
                 "must be true or false")
STRING = ParamType("String", lambda v: isinstance(v, str), swift_string,
                   "must be a string literal", str)
PAIR = ParamType("(Int, Int)", _is_int_tuple(2), _render_tuple,
                 "must be an (x, y) tuple of integers", lambda v: tuple(int(x) for x in v))
TBLR = ParamType("(Int, Int, Int, Int)", _is_int_tuple(4), _render_tuple,
                 "must be a (top, bottom, left, right) tuple of integers",
                 lambda v: tuple(int(x) for x in v))
INT_LIST = ParamType("[Int]", lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
                     lambda v: "[" + ", ".join(str(int(x)) for x in v) + "]",
                     "must be an array of integers", lambda v: [int(x) for x in v])
DEVICE_TYPE = ParamType("MTLDevice", lambda v: v is DEVICE, lambda v: "device",
                        "must be the builder's device")
TENSORS = ParamType("[Tensor]", lambda v: isinstance(v, list), lambda v: "[" + ", ".join(v) + "]",
                    "must be an array of tensors")


def enum(*members: str) -> ParamType:
    """A Swift enum parameter (``.same``), held as the member's name."""
    return ParamType("enum", lambda v: isinstance(v, str) and str(v) in members,
                     lambda v: "." + str(v),
                     "must be one of " + ", ".join("." + m for m in members), str)


def instance_of(cls, what: str, optional: bool = False) -> ParamType:
    """A parameter holding an object the registry defines (a neuron, a custom kernel call)."""
    return ParamType(what + ("?" if optional else ""),
                     lambda v: (optional and v is None) or isinstance(v, cls),
                     lambda v: v.swift_reference(),
                     f"must be {'an' if what[0] in 'AEIMOU' else 'a'} {what}"
                     + (" or nil" if optional else ""))


@dataclass(frozen=True)
class Param:
    """One initialiser parameter: Swift label (None: unlabelled, ``_ name``), key, type, default."""
    name: str
    type: ParamType
    default: Any = REQUIRED
    labelled: bool = True

    @property
    def label(self) -> Optional[str]:
        return self.name if self.labelled else None


class Signature:
    """A Swift initialiser: its unlabelled parameters first, then its labelled ones, in order."""

    def __init__(self, callee: str, *params: Param):
        self.callee = callee
        self.params = params
        self.positional = [p for p in params if not p.labelled]
        self.labelled = {p.name: p for p in params if p.labelled}

    def bind(self, positional: list, labelled: dict) -> dict:
        """Arguments of a parsed call by parameter name, defaults filled in, values checked."""
        callee = self.callee
        if len(positional) > len(self.positional):
            raise SignatureError(f"{callee}: too many unlabelled arguments")
        for param in self.positional[len(positional):]:
            raise SignatureError(f"{callee}: missing the unlabelled first argument ({param.name})")
        given = {p.name: v for p, v in zip(self.positional, positional)}
        for key, value in labelled.items():
            if key not in self.labelled:
                raise SignatureError(f"{callee} has no argument `{key}:` (it takes "
                                     f"{', '.join(k + ':' for k in self.labelled) or 'no labels'})")
            given[key] = value
        arguments = {}
        for param in self.params:
            if param.name in given:
                arguments[param.name] = self.check(param, given[param.name])
            elif param.default is REQUIRED:
                raise SignatureError(f"{callee}: missing argument `{param.name}:`")
            else:
                arguments[param.name] = param.default
        return arguments

    def check(self, param: Param, value):
        if not param.type.accepts(value):
            what = f"`{param.name}:`" if param.labelled else f"{self.callee}(_:) {param.name}"
            raise SignatureError(f"{what} {param.type.problem}, got `{value!r}`")
        return param.type.normalise(value)

    def complete(self, arguments: dict) -> dict:
        """``arguments`` (as the converter builds them) with every default filled in, in order."""
        unknown = set(arguments) - {p.name for p in self.params}
        if unknown:
            raise SignatureError(f"{self.callee} has no parameter {', '.join(sorted(unknown))}")
        complete = {}
        for param in self.params:
            if param.name in arguments:
                complete[param.name] = arguments[param.name]
            elif param.default is REQUIRED:
                raise SignatureError(f"{self.callee}: argument {param.name} is required")
            else:
                complete[param.name] = param.default
        return complete

    def render(self, arguments: dict, *, spell_out_defaults: bool = False) -> str:
        """The call's argument list; labelled arguments equal to their default are left out
        unless ``spell_out_defaults`` (neurons and kernels show every number they use)."""
        parts = []
        for param in self.params:
            value = arguments.get(param.name, param.default)
            if param.labelled and not spell_out_defaults and _equal(value, param.default):
                continue
            text = param.type.render(value)
            parts.append(f"{param.name}: {text}" if param.labelled else text)
        return ", ".join(parts)

    def call(self, arguments: dict, *, spell_out_defaults: bool = False) -> str:
        return f"{self.callee}({self.render(arguments, spell_out_defaults=spell_out_defaults)})"


def _equal(value, default) -> bool:
    return default is not REQUIRED and value == default
