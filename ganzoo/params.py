"""Typed parameters: what a builder's signature declares, validated by pydantic.

A component's parameters are its builder's named arguments with their type hints
(:func:`signature_params`); a recipe's value for one is checked against its hint
(:func:`validate_value`), and a failure is one line naming the dotted path, e.g.
``generator.ngf: expected an integer, got 'wide'`` (:func:`format_validation_error`).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from ganzoo.errors import RegistryError


@dataclass(frozen=True)
class Param:
    """One parameter a builder accepts."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def describe(self) -> str:
        text = f"{self.name}: {type_name(self.annotation)}"
        return text if self.required else f"{text} = {self.default!r}"


def signature_params(builder: Callable[..., Any]) -> list[Param]:
    """Named parameters of a class or function, with resolved type hints."""
    target = builder.__init__ if inspect.isclass(builder) else builder
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # resolve one by one; an unresolvable annotation accepts anything
        hints = {}
        namespace = vars(inspect.getmodule(target) or typing)
        for pname, ann in getattr(target, "__annotations__", {}).items():
            try:
                hints[pname] = eval(ann, namespace) if isinstance(ann, str) else ann
            except Exception:
                continue
    out = []
    for p in inspect.signature(builder).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
            continue
        out.append(Param(p.name, hints.get(p.name, Any), p.default))
    return out


_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "string": "a string",
    "list": "a list",
    "tuple": "a list",
    "dict": "a mapping",
}


def validate_value(annotation: Any, value: Any, path: str) -> Any:
    """Validate one value against a type annotation; one-line error naming ``path``."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    try:
        return _adapter(annotation).validate_python(value)
    except pydantic.ValidationError as exc:
        raise RegistryError(format_validation_error(exc, path)) from None
    except RegistryError as exc:  # raised by nested validators (e.g. attention specs)
        raise RegistryError(f"{path}: {exc}") from None


def format_validation_error(exc: pydantic.ValidationError, path: str) -> str:
    """The first error of ``exc`` as 'a.b.c: expected an integer, got 'three'' (the value
    shortened, so an error never echoes an unbounded input)."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    where = f"{path}.{loc}" if loc and path else (loc or path)
    kind = err["type"]
    got = short_repr(err.get("input"))
    msg = err["msg"]
    if kind == "literal_error":
        return f"{where}: expected one of {err['ctx']['expected']}, got {got}"
    if kind == "missing":
        return f"{where}: required, but missing"
    if kind == "extra_forbidden":
        return f"{where}: unknown key"
    if kind == "string_pattern_mismatch":
        return f"{where}: expected letters, digits and . _ + - only (it names a folder), got {got}"
    if kind in _CONSTRAINTS and msg.startswith("Input should be "):
        return f"{where}: must be {msg[len('Input should be ') :]}, got {got}"
    base = kind.split("_")[0]
    expected = _EXPECTED.get(base, msg[0].lower() + msg[1:])
    return f"{where}: expected {expected}, got {got}"


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (containers are not expanded)."""
    if isinstance(value, dict | list | tuple | set):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(annotation: Any) -> str:
    """A short readable form of a type annotation, for messages and docs."""
    if annotation is Any:
        return "any"
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return "|".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


#: pydantic error types of a value of the right type outside its allowed range.
_CONSTRAINTS = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of"}
)

_ADAPTERS: dict[Any, pydantic.TypeAdapter] = {}


def _adapter(annotation: Any) -> pydantic.TypeAdapter:
    try:
        return _ADAPTERS.setdefault(annotation, pydantic.TypeAdapter(annotation))
    except TypeError:  # unhashable annotation
        return pydantic.TypeAdapter(annotation)
