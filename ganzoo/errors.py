"""Errors a user can cause. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanzooError(Exception):
    """Base class of every user-facing error: the message says what is wrong and how to fix it."""


class RegistryError(GanzooError):
    """Unknown component, duplicate name, broken plugin, or parameters a builder does not take."""


class RecipeError(GanzooError):
    """A recipe that cannot be read, merged or validated."""


class SizeError(GanzooError):
    """An image size a network cannot take."""


class DataError(GanzooError):
    """Missing, empty or corrupt data."""


class TrainingError(GanzooError):
    """A run that cannot go on (NaN loss, unusable checkpoint)."""


def first_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The first line of ``exc``'s message (at most 200 characters), for one-line errors;
    ``Type: line`` with ``with_type``; the type's name when the message is empty."""
    text = str(exc).strip()
    line = text.splitlines()[0][:200] if text else ""
    if not line:
        return type(exc).__name__
    return f"{type(exc).__name__}: {line}" if with_type else line


def did_you_mean(name: str, choices: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> str:
    """The hint "did you mean 'x'?" (up to ``n`` names: "'x' or 'y'") naming the ``choices``
    closest to ``name`` (:func:`difflib.get_close_matches`); empty when none is close enough."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?" if close else ""
