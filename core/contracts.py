"""Typed, versioned contracts between the parts: dataclasses with a JSON schema checked on read.

A contract is a pydantic dataclass declared with :func:`contract`; it carries its format string
(``keras2metal.<thing>/<version>``) as the ``format`` field and as ``FORMAT``.  :func:`load`
refuses another format, unknown fields and wrong types with one error naming the source, the
field and what to do (``HINT`` of the class); :func:`dumps` writes non-finite floats as the
strings ``"Infinity"``/``"NaN"`` so the JSON stays standard and reads back to the same numbers.
:func:`schema` gives the JSON schema a reader in another language can check against.
"""
import json
from pathlib import Path

from pydantic import ConfigDict, TypeAdapter, ValidationError, model_serializer
from pydantic.dataclasses import dataclass as _pydantic_dataclass

CONFIG = ConfigDict(extra="forbid", ser_json_inf_nan="strings", validate_assignment=False)


class ContractError(ValueError):
    """A contract file or object that is not of its format; the text names the field and the fix."""


def contract(format_name: str, hint: str):
    """Class decorator: a pydantic dataclass of format ``format_name``; ``hint`` is the fix told
    to a user whose file does not validate (e.g. "re-run keras2metal")."""
    def wrap(cls):
        cls.FORMAT = format_name
        cls.HINT = hint
        return _pydantic_dataclass(cls, config=CONFIG)
    return wrap


def component(cls):
    """A part of a contract (no format of its own), validated with the same rules."""
    return _pydantic_dataclass(cls, config=CONFIG)


def omitted_when_none(*names):
    """A serializer for a contract class body: the optional fields ``names`` are left out of the
    JSON while None, so files written before a field existed stay byte-identical.

        _omit = omitted_when_none("folded_into")
    """
    @model_serializer(mode="wrap")
    def serialize(self, handler):
        data = handler(self)
        for name in names:
            if data.get(name) is None:
                data.pop(name, None)
        return data
    return serialize


def _adapter(cls) -> TypeAdapter:
    adapter = cls.__dict__.get("_k2m_adapter")
    if adapter is None:
        adapter = TypeAdapter(cls)
        setattr(cls, "_k2m_adapter", adapter)
    return adapter


def _where(loc) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load(cls, data, source: str = "<object>"):
    """Validate ``data`` (a dict from JSON) as ``cls``; :class:`ContractError` names the field."""
    if not isinstance(data, dict):
        raise ContractError(f"{source}: a {type(data).__name__} at the top level, expected an "
                            f"object of format {cls.FORMAT!r}; {cls.HINT}")
    if data.get("format") != cls.FORMAT:
        raise ContractError(f"{source}: format is {data.get('format')!r}, expected "
                            f"{cls.FORMAT!r}; {cls.HINT}")
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ContractError(f"{source}: field {_where(first['loc'])}: {first['msg']}{more}; "
                            f"{cls.HINT}") from None


def to_dict(obj) -> dict:
    """The JSON-ready dict of a contract object (non-finite floats as strings)."""
    return json.loads(dumps(obj, indent=None))


def dumps(obj, indent=1) -> str:
    text = _adapter(type(obj)).dump_json(obj, by_alias=True).decode()
    if indent is None:
        return text
    return json.dumps(json.loads(text), indent=indent) + "\n"


def read_json(path, hint: str, missing: str = "no such file"):
    """The JSON in ``path``; a missing, unreadable or malformed file is one
    :class:`ContractError` naming the file and ending in ``hint`` (what to do)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ContractError(f"{path}: {missing}; {hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot be read ({exc}); {hint}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{path}: not valid JSON ({exc}); {hint}") from None


def read(cls, path):
    """Load a contract file; missing or malformed files are :class:`ContractError`."""
    return load(cls, read_json(path, cls.HINT), str(path))


def schema(cls) -> dict:
    """The JSON schema of a contract (for documentation and other readers)."""
    return _adapter(cls).json_schema()


__all__ = ["ContractError", "component", "contract", "dumps", "load", "omitted_when_none", "read",
           "read_json", "schema", "to_dict"]
