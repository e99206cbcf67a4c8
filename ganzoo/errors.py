"""Errors a user can cause. The CLI prints them as one line, without a traceback."""

from __future__ import annotations


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
