"""Datasets shipped inside the package (ganzoo/assets/NAME) and ``data.root`` resolution."""

from __future__ import annotations

from pathlib import Path

from ganzoo.errors import DataError

PREFIX = "embedded:"
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def embedded_names() -> list[str]:
    """Names usable as ``root: embedded:NAME``."""
    if not ASSETS.is_dir():
        return []
    return sorted(
        p.name for p in ASSETS.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )


def resolve_root(root: str | Path) -> Path:
    """'embedded:NAME' -> the packaged folder ganzoo/assets/NAME; anything else -> a path
    (relative paths are relative to the current directory)."""
    text = str(root)
    if text.startswith(PREFIX):
        name = text[len(PREFIX) :]
        names = embedded_names()
        if name not in names:
            raise DataError(
                f"data.root '{text}': no embedded dataset '{name}'; embedded datasets: "
                f"{', '.join(names) or 'none'}"
            )
        return ASSETS / name
    return Path(text).expanduser()
