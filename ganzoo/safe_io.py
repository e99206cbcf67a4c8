"""Files written so that a crash or a full disk loses nothing, and read so that an untrusted
file runs no code.

* :func:`write_bytes_atomic` / :func:`write_text_atomic`: a temporary sibling
  (``.NAME.tmp-PID``), fsynced, renamed over the final name; a failure removes the temporary
  file and leaves the old one.
* :func:`read_json`: the JSON value of a file the user may have edited or damaged; anything
  unreadable (not UTF-8, not JSON, nested too deeply, a number too long) is one line.
* :func:`load_weights`: ``torch.load(..., weights_only=True)``; a file holding anything but
  tensors and plain data is refused in one line, never with PyTorch's advice to set
  ``weights_only=False`` (that would run code from a file the user may not have made).
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError, first_line

#: Marks a temporary file: ``.NAME.tmp-PID`` (stale ones are removed when a run is opened).
TEMP_MARK = ".tmp-"


def temp_path(path: Path) -> Path:
    """The temporary sibling :func:`write_bytes_atomic` writes before renaming."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def parse_json(text: str | bytes) -> Any:
    """The JSON value of ``text``; ``ValueError`` with a one-line reason when it is not UTF-8,
    not JSON, nested too deeply or holds a number too long for Python to convert."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError:  # an integer of more than 4300 digits
        raise ValueError("a number too long to read") from None


def read_json(path: str | Path, what: str = "file") -> Any:
    """The JSON value in ``path``; a one-line :class:`GanzooError` naming the file and what is
    wrong with it (missing, unreadable, see :func:`parse_json`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GanzooError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise GanzooError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        return parse_json(data)
    except ValueError as exc:
        raise GanzooError(f"{path}: not a readable {what} ({exc})") from None


def load_weights(path: str | Path, what: str = "file") -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with one-line errors.

    ``what`` names the file in messages (e.g. 'checkpoint'). Raises :class:`GanzooError` for a
    missing or unreadable file and for one that holds Python objects a weights-only load
    refuses (the objects are never built).
    """
    import torch  # here: the atomic writers must not cost a torch import

    path = Path(path)
    if not path.is_file():
        raise GanzooError(f"{path}: no such {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # its text advises weights_only=False: never quoted
        if "GLOBAL" in str(exc) or "global" in str(exc):
            raise GanzooError(
                f"{path}: refused: the {what} holds Python objects besides tensors, which could "
                "run code when loaded; ganzoo loads only tensors and plain data (ask for the "
                "weights as a state dict or a .safetensors file)"
            ) from None
        raise GanzooError(
            f"{path}: not a readable {what} (corrupt, or not a PyTorch weights file)"
        ) from None
    except Exception as exc:  # truncated zip, not a torch file, ...
        raise GanzooError(f"{path}: not a readable {what} ({first_line(exc)})") from None
