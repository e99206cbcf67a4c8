"""Errors a user can cause. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanzooError(Exception):
    """Base class of every user-facing error: the message says what is wrong and how to fix it.
    ``exit_code`` is the status the CLI exits with after printing it."""

    exit_code: int = 2


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


class StorageError(TrainingError):
    """A run's files could not be written (a full disk, a permission): a failure of the system,
    exit code 1."""

    exit_code = 1


class StoppedError(TrainingError):
    """A signal stopped a run after saving it (resumable): exit code 128 + the signal's number
    (130 Ctrl-C, 143 SIGTERM)."""

    def __init__(self, message: str, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = signum
        if signum is not None:
            self.exit_code = 128 + int(signum)


def shorten(text: str, limit: int = 200) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ending in "…" when cut
    (a single word longer than half the limit is cut inside)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "…"


def first_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The first line of ``exc``'s message (at most 200 characters, cut between words), for
    one-line errors; ``Type: line`` with ``with_type``; the type's name when the message is
    empty."""
    text = str(exc).strip()
    line = shorten(text.splitlines()[0]) if text else ""
    if not line:
        return type(exc).__name__
    return f"{type(exc).__name__}: {line}" if with_type else line


def did_you_mean(name: str, choices: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> str:
    """The hint "did you mean 'x'?" (up to ``n`` names: "'x' or 'y'") naming the ``choices``
    closest to ``name`` (:func:`difflib.get_close_matches`); empty when none is close enough."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?" if close else ""
