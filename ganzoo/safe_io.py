"""Files written so that a crash or a full disk loses nothing, and read so that an untrusted
file runs no code.

* :func:`write_bytes_atomic` / :func:`write_text_atomic` / :func:`atomic_writer`: a temporary
  sibling (``.NAME.tmp-PID``, created afresh, never through a link), fsynced, renamed over the
  final name; a failure removes the temporary file and leaves the old one. The rename replaces
  a symbolic link planted at the final name instead of writing through it, and ``within``
  refuses a folder that is a link leading out of the folder it belongs to.
* :func:`open_append`: appends to a log, refusing a symbolic link in its place.
* :func:`read_inside`: the bytes of a regular file inside a folder, reached through no link
  (and, with ``png``, a real PNG): what reports and exports embed from a run directory.
* :func:`read_json`: the JSON value of a file the user may have edited or damaged; anything
  unreadable (not UTF-8, not JSON, nested too deeply, a number too long) is one line; with
  ``root``, read through :func:`read_inside`.
* :func:`load_weights`: ``torch.load(..., weights_only=True)``; a file holding anything but
  tensors and plain data is refused in one line, never with PyTorch's advice to set
  ``weights_only=False`` (that would run code from a file the user may not have made), and
  one holding a NaN or an infinity is refused in one line naming the file and the tensor
  (:func:`refuse_nonfinite`, which the safetensors loader uses too).
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ganzoo.errors import GanzooError, first_line

#: Marks a temporary file: ``.NAME.tmp-PID`` (stale ones are removed when a run is opened).
TEMP_MARK = ".tmp-"


#: Refuses to follow a link at the last component (0 where the platform has no such flag).
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The largest file :func:`read_inside` reads (a sample sheet is a few MiB).
MAX_READ_BYTES = 256 * 1024 * 1024


class UnsafePathError(GanzooError):
    """A file or folder that is a link out of where ganzoo reads or writes, or not what it
    claims to be."""


def temp_path(path: Path) -> Path:
    """The temporary sibling :func:`write_bytes_atomic` writes before renaming."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


def is_inside(path: str | Path, root: str | Path) -> bool:
    """True when ``path``, every link resolved, lies in ``root`` (resolved too)."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, base]) == base


def check_inside(folder: str | Path, root: str | Path) -> None:
    """A one-line :class:`UnsafePathError` when ``folder`` (e.g. ``RUN/eval``) is, or goes
    through, a link leading out of ``root``."""
    if not is_inside(folder, root):
        raise UnsafePathError(
            f"{folder} is a link to {os.path.realpath(folder)}, outside {root}; ganzoo writes "
            "only inside it: remove the link"
        )


@contextmanager
def atomic_writer(path: str | Path, *, within: str | Path | None = None) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` atomically when the block ends without an error
    (see the module docstring); ``within``: the folder ``path`` must stay inside."""
    path = Path(path)
    if within is not None:
        check_inside(path.parent, within)
    tmp = temp_path(path)
    try:
        tmp.unlink(missing_ok=True)  # a stale one of a dead process with our pid, or a link
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # replaces a link at ``path``, never writes through it
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes, *, within: str | Path | None = None) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_writer(path, within=within) as f:
        f.write(data)


def write_text_atomic(path: str | Path, text: str, *, within: str | Path | None = None) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), within=within)


def open_append(path: str | Path, *, binary: bool = False) -> IO[Any]:
    """``open(path, "a")`` that refuses a symbolic link in ``path``'s place (one line), so a
    planted link never makes a log grow a file elsewhere."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise UnsafePathError(
                f"{path} is a symbolic link; ganzoo appends only to its own files: remove it"
            ) from None
        raise
    return os.fdopen(fd, "ab" if binary else "a", **({} if binary else {"encoding": "utf-8"}))


def read_inside(
    path: str | Path, root: str | Path, *, png: bool = False, max_bytes: int = MAX_READ_BYTES
) -> bytes:
    """The bytes of ``path``, a regular file inside the folder ``root``, reached through no
    symbolic link below ``root`` (``root`` itself may be one); with ``png`` the bytes must
    decode as a PNG. Anything else is an :class:`UnsafePathError` whose message is the
    reason ('outside ...', 'a symbolic link', 'not a regular file', 'not a PNG image', ...)."""
    root = Path(root)
    try:
        parts = Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).parts
    except ValueError:
        parts = ()
    if not parts or ".." in parts:
        raise UnsafePathError(f"outside {root}")
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_RDONLY | NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                try:
                    link = stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode)
                except OSError:
                    link = False
                where = Path(*parts[: i + 1])
                raise UnsafePathError(
                    f"{where} is a symbolic link" if link else f"{where}: {exc.strerror}"
                ) from None
            os.close(fd)
            fd = child
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError("not a regular file")
        if info.st_size > max_bytes:
            raise UnsafePathError(f"larger than {max_bytes >> 20} MiB")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if png and not _is_png(data):
        raise UnsafePathError("not a PNG image")
    return data


def _is_png(data: bytes) -> bool:
    if not data.startswith(PNG_SIGNATURE):
        return False
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            ok = img.format == "PNG"
            img.verify()  # the chunks and their checksums, without decoding the pixels
    except Exception:
        return False
    return ok


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


def read_json(path: str | Path, what: str = "file", *, root: str | Path | None = None) -> Any:
    """The JSON value in ``path``; a one-line :class:`GanzooError` naming the file and what is
    wrong with it (missing, unreadable, see :func:`parse_json`). With ``root``, ``path`` must be
    a regular file inside that folder reached through no link (:func:`read_inside`)."""
    path = Path(path)
    try:
        data = path.read_bytes() if root is None else read_inside(path, root)
    except UnsafePathError as exc:
        raise UnsafePathError(f"{path}: not read ({exc})") from None
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
    refuses (the objects are never built), and for one holding a NaN or an infinity in any
    floating-point tensor (:func:`refuse_nonfinite`).
    """
    import torch  # here: the atomic writers must not cost a torch import

    path = Path(path)
    if not path.is_file():
        raise GanzooError(f"{path}: no such {what}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
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
    refuse_nonfinite(state, path, what)
    return state


def nonfinite_entries(state: Any, prefix: str = "") -> list[str]:
    """Dotted names of the floating-point tensors in ``state`` (nested dicts, lists, tuples)
    holding a NaN or an infinity; ``[]`` when all are finite. The checks run on the tensors'
    devices and synchronise once per device."""
    import torch

    tensors: list[tuple[str, torch.Tensor]] = []

    def walk(value: Any, name: str) -> None:
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() or value.is_complex():
                tensors.append((name, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{name}.{k}" if name else str(k))
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(v, f"{name}.{i}" if name else str(i))

    walk(state, prefix)
    by_device: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    for name, t in tensors:
        by_device.setdefault(t.device, []).append((name, t))
    bad: list[str] = []
    for group in by_device.values():
        flags = torch.stack([torch.isfinite(t).all() for _, t in group])
        if not bool(flags.all()):
            bad += [name for (name, _), ok in zip(group, flags.tolist()) if not ok]
    return bad


class NonFiniteWeightsError(GanzooError):
    """Weights holding a NaN or an infinity: a model made of them outputs garbage."""


def refuse_nonfinite(state: Any, path: str | Path, what: str = "file") -> None:
    """A one-line :class:`NonFiniteWeightsError` naming ``path`` and the first bad tensor when
    a floating-point tensor of ``state`` holds a NaN or an infinity."""
    bad = nonfinite_entries(state)
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise NonFiniteWeightsError(
            f"{path}: refused: the {what} holds NaN or infinite values ({bad[0][:80]}{more}); "
            "it is corrupt or from a diverged run: use another file"
        )
