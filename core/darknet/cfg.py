"""Darknet `.cfg` reader following Darknet's own parsing rules (`parser.c: read_cfg`).

* every whitespace character anywhere in a line is removed first;
* empty lines and lines starting with ``#`` or ``;`` are skipped;
* a line starting with ``[`` opens a section whose type is the whole bracketed text
  (Darknet's short aliases ``[conv]``, ``[max]``, ``[net]``/``[network]``, ... are accepted);
* any other line is ``key=value`` split at the first ``=``; for a key given twice the first one
  wins (Darknet's ``option_find``).

Values are parsed strictly when they are read (a bad number is an error naming its line, where
Darknet's ``atoi`` would silently read 0). Missing keys take Darknet's defaults, given by the
caller of the typed getters.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from .errors import CfgError

# canonical name -> accepted spellings (Darknet's string_to_layer_type)
_ALIASES = {
    "net": ("net", "network"),
    "convolutional": ("convolutional", "conv"),
    "maxpool": ("maxpool", "max"),
    "avgpool": ("avgpool", "avg"),
    "connected": ("connected", "conn"),
    "softmax": ("softmax", "soft"),
    "normalization": ("normalization", "lrn"),
    "deconvolutional": ("deconvolutional", "deconv"),
    "route": ("route",),
    "reorg": ("reorg",),
    "region": ("region",),
    "yolo": ("yolo",),
    "shortcut": ("shortcut",),
    "upsample": ("upsample",),
    "dropout": ("dropout",),
    "batchnorm": ("batchnorm",),
    "local": ("local",),
    "crop": ("crop",),
    "cost": ("cost",),
    "detection": ("detection",),
    "rnn": ("rnn",),
    "gru": ("gru",),
    "lstm": ("lstm",),
    "crnn": ("crnn",),
    "activation": ("activation",),
    "logistic": ("logistic",),
    "l2norm": ("l2norm",),
    "iseg": ("iseg",),
}
SECTION_TYPES = {alias: canon for canon, names in _ALIASES.items() for alias in names}

#: section kinds this converter builds
SUPPORTED = frozenset({
    "convolutional", "maxpool", "avgpool", "route", "reorg", "shortcut", "upsample", "region",
    "yolo", "connected", "dropout", "softmax", "cost",
})

_REQUIRED = object()


@dataclass
class Option:
    value: str
    line: int


@dataclass
class Section:
    """One ``[section]`` of a cfg; ``index`` is Darknet's layer index (-1 for ``[net]``)."""

    kind: str
    raw: str
    line: int
    index: int
    path: str
    options: dict = field(default_factory=dict)
    used: set = field(default_factory=set)

    # -- error helpers -------------------------------------------------------------------------
    def where(self, key: str | None = None) -> str:
        line = self.options[key].line if key is not None and key in self.options else self.line
        what = "[net]" if self.index < 0 else f"[{self.raw}] (layer {self.index})"
        return f"{self.path}:{line}: {what}"

    def error(self, message: str, key: str | None = None, cls=CfgError) -> CfgError:
        return cls(f"{self.where(key)}: {message}")

    # -- typed getters -------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return key in self.options

    def _raw(self, key, default):
        if key not in self.options:
            if default is _REQUIRED:
                raise self.error(f"required key '{key}' is missing; add '{key}=...' to this section")
            return None
        self.used.add(key)
        return self.options[key].value

    def get_str(self, key: str, default=_REQUIRED) -> str:
        raw = self._raw(key, default)
        return default if raw is None else raw

    def get_int(self, key: str, default=_REQUIRED, lo: int | None = None, hi: int | None = None) -> int:
        raw = self._raw(key, default)
        if raw is None:
            return default
        value = _parse_int(raw)
        if value is None:
            raise self.error(f"'{key}={raw}' is not an integer; write a whole number", key)
        self._check_range(key, value, lo, hi)
        return value

    def get_float(self, key: str, default=_REQUIRED, lo: float | None = None, hi: float | None = None) -> float:
        raw = self._raw(key, default)
        if raw is None:
            return default
        value = _parse_float(raw)
        if value is None:
            raise self.error(f"'{key}={raw}' is not a finite number; write e.g. {key}=0.5", key)
        self._check_range(key, value, lo, hi)
        return value

    def get_int_list(self, key: str, default=_REQUIRED) -> list:
        raw = self._raw(key, default)
        if raw is None:
            return default
        out = []
        for piece in raw.split(","):
            if piece == "" and raw.endswith(","):
                continue  # Darknet tolerates a trailing comma
            value = _parse_int(piece)
            if value is None:
                raise self.error(f"'{key}={raw}': '{piece}' is not an integer; write a comma-separated "
                                 "list of whole numbers", key)
            out.append(value)
        if not out:
            raise self.error(f"'{key}=' is empty; write a comma-separated list", key)
        return out

    def get_float_list(self, key: str, default=_REQUIRED) -> list:
        raw = self._raw(key, default)
        if raw is None:
            return default
        out = []
        for piece in raw.split(","):
            if piece == "" and raw.endswith(","):
                continue
            value = _parse_float(piece)
            if value is None:
                raise self.error(f"'{key}={raw}': '{piece}' is not a finite number; write a "
                                 "comma-separated list of numbers", key)
            out.append(value)
        if not out:
            raise self.error(f"'{key}=' is empty; write a comma-separated list", key)
        return out

    def _check_range(self, key, value, lo, hi):
        if lo is not None and value < lo:
            raise self.error(f"'{key}={self.options[key].value if key in self.options else value}' "
                             f"must be at least {lo}", key)
        if hi is not None and value > hi:
            raise self.error(f"'{key}={self.options[key].value if key in self.options else value}' "
                             f"must be at most {hi}", key)


def _parse_int(text: str):
    t = text[1:] if text[:1] in "+-" else text
    if not t.isascii() or not t.isdigit() or len(t) > 18:
        return None
    return int(text)


def _parse_float(text: str):
    if not text.isascii() or text.lower().lstrip("+-") in ("nan", "inf", "infinity") or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class DarknetConfig:
    """A parsed cfg: the ``[net]`` section and the layer sections in order."""

    path: str
    net: Section
    layers: list

    def __len__(self):
        return len(self.layers)


def parse_cfg_text(text: str, path: str = "<cfg>") -> DarknetConfig:
    """Parse cfg text; raise :class:`CfgError` naming the line for anything malformed."""
    if not isinstance(text, str):
        raise CfgError(f"{path}: cfg content must be text")
    sections: list[Section] = []
    current: Section | None = None
    for number, original in enumerate(text.splitlines(), start=1):
        line = "".join(original.split())
        if "\x00" in line:
            raise CfgError(f"{path}:{number}: NUL byte in the cfg; is this a binary file "
                           "(e.g. the .weights passed as the cfg)?")
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(f"{path}:{number}: malformed section header '{original.strip()}'; "
                               "write it as [name]")
            raw = line[1:-1]
            kind = SECTION_TYPES.get(raw)
            if kind is None:
                raise CfgError(f"{path}:{number}: unknown section type [{raw}]; Darknet knows "
                               f"{', '.join('[' + k + ']' for k in sorted(_ALIASES))}")
            current = Section(kind=kind, raw=raw, line=number, index=len(sections) - 1, path=path)
            sections.append(current)
            continue
        if "=" not in line:
            raise CfgError(f"{path}:{number}: cannot parse '{original.strip()}'; expected key=value "
                           "or a [section] header")
        if current is None:
            raise CfgError(f"{path}:{number}: 'key=value' before the first section; the cfg must "
                           "start with [net]")
        key, value = line.split("=", 1)
        if not key:
            raise CfgError(f"{path}:{number}: empty key in '{original.strip()}'")
        current.options.setdefault(key, Option(value, number))  # first occurrence wins
    if not sections:
        raise CfgError(f"{path}: no sections found; is this a Darknet .cfg file?")
    first = sections[0]
    if first.kind != "net":
        raise CfgError(f"{path}:{first.line}: the first section is [{first.raw}] but Darknet "
                       "requires [net] (or [network]) first; add a [net] section with width, "
                       "height and channels")
    for sec in sections[1:]:
        if sec.kind == "net":
            raise CfgError(f"{path}:{sec.line}: a second [{sec.raw}] section; only the first "
                           "section may be [net]")
    return DarknetConfig(path=path, net=first, layers=sections[1:])


def parse_cfg(path) -> DarknetConfig:
    """Read and parse a `.cfg` file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CfgError(f"{path}: cannot read the cfg file ({exc.strerror or exc}); check the path") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_cfg_text(text, path)
