"""Finding image files; decoding them is :mod:`ganzoo.data.formats`."""

from __future__ import annotations

from pathlib import Path

from ganzoo.data.formats import IMAGE_EXTENSIONS, TRAINING_ADVICE, unreadable

__all__ = ["IMAGE_EXTENSIONS", "TRAINING_ADVICE", "is_image_file", "list_images", "unreadable"]


def is_image_file(path: Path) -> bool:
    """A visible file with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return (
        path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")
    )


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (not recursive)."""
    return sorted(p for p in folder.iterdir() if is_image_file(p))
