"""Download and unpack the official pix2pix datasets (``ganzoo data fetch``), safely.

The archive is downloaded by :func:`ganzoo.download.download` to ``<to>/<name>.tar.gz.part``
(resumable, bounded in size and in time without progress by the dataset's :data:`LIMITS`),
checked member by member while it is unpacked into a hidden staging folder, and renamed into
``<to>/<name>`` only once every expected split holds images: a half-done fetch never looks
finished. Unpacking is bounded too: a member count and a total unpacked size (the smaller of
the dataset's cap and a multiple of the archive's size, since JPEG archives barely compress),
so a decompression bomb is stopped after a few times its own size. Any failure or interrupt
removes the staging folder.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (
    Progress,
    SpinnerColumn,
    TextColumn,
)

from ganzoo.download import Limits, download, reason
from ganzoo.errors import DataError, GanzooError, did_you_mean

#: Where the pix2pix authors host the archives (``<BASE_URL>/<name>.tar.gz``).
BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"

#: The split folders each official archive holds under ``<name>/`` (A|B pairs side by side).
DATASET_SPLITS: dict[str, tuple[str, ...]] = {
    "facades": ("train", "val", "test"),
    "cityscapes": ("train", "val"),
    "maps": ("train", "val"),
    "edges2shoes": ("train", "val"),
    "edges2handbags": ("train", "val"),
    "night2day": ("train", "val", "test"),
}


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds for one official archive: download size, unpacked size and member count (each
    about twice the real archive's, which are 29 MB .. 8.6 GB of JPEG pairs)."""

    max_bytes: int
    max_unpacked: int
    max_members: int

    def download(self) -> Limits:
        return Limits(max_bytes=self.max_bytes)


_MIB, _GIB = 1 << 20, 1 << 30
LIMITS: dict[str, ArchiveLimits] = {
    "facades": ArchiveLimits(64 * _MIB, 96 * _MIB, 2_000),
    "cityscapes": ArchiveLimits(256 * _MIB, 384 * _MIB, 8_000),
    "maps": ArchiveLimits(512 * _MIB, 768 * _MIB, 6_000),
    "edges2shoes": ArchiveLimits(5 * _GIB, 8 * _GIB, 110_000),
    "edges2handbags": ArchiveLimits(17 * _GIB, 26 * _GIB, 300_000),
    "night2day": ArchiveLimits(5 * _GIB, 8 * _GIB, 45_000),
}
#: Unpacked bytes may be at most this multiple of the archive's size (plus 16 MiB).
MAX_EXPANSION = 4

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

# tarfile's own "data" filter (Python 3.11.4+) backs up the member checks below.
_TAR_FILTER: dict[str, str] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def dataset_url(name: str) -> str:
    """The official archive of dataset ``name`` (one of DATASET_SPLITS)."""
    return f"{BASE_URL}/{_known_name(name)}.tar.gz"


def fetch_dataset(
    name: str,
    to: Path = Path("datasets"),
    source: str | None = None,
    *,
    progress: bool = True,
    force: bool = False,
    limits: ArchiveLimits | None = None,
    download_limits: Limits | None = None,
) -> Path:
    """Download (or take from ``source``), check and unpack dataset ``name`` into ``to/name``.

    ``source`` is an http(s)/file URL or a local archive path replacing the official URL.
    Returns the dataset folder (holding its split folders of A|B images). A folder already
    present and complete is left alone unless ``force``. ``progress`` shows a progress bar
    (on a terminal) and status lines on stderr. ``limits`` / ``download_limits`` replace the
    dataset's bounds (tests). Every failure is a one-line DataError.
    """
    name = _known_name(name)
    limits = limits or LIMITS[name]
    to = Path(to)
    if to.exists() and not to.is_dir():
        raise DataError(
            f"--to {to}: is a file, not a folder; give the folder that receives {name}/"
        )
    target = to / name
    console = Console(stderr=True, quiet=not progress, markup=False, soft_wrap=True)
    if (target.exists() or target.is_symlink()) and not force:
        counts = verify_dataset(
            target, name, fix="delete it or fetch again with --force to replace it"
        )
        console.print(f"{target} is already present ({_describe(counts)}); nothing to do")
        return target

    to.mkdir(parents=True, exist_ok=True)
    archive, downloaded = _obtain_archive(
        name, to, source, console, download_limits or limits.download()
    )
    try:
        counts = _unpack_into_place(archive, name, target, console, limits)
    finally:
        if downloaded:
            archive.unlink(missing_ok=True)
    console.print(f"{target} is ready ({_describe(counts)})")
    return target


def verify_dataset(root: Path, name: str, *, fix: str = "fetch it again") -> dict[str, int]:
    """Image count of each split ``name`` must have under ``root``; DataError if one is empty."""
    splits = DATASET_SPLITS[name]
    if not root.is_dir():
        raise DataError(f"{root} is not a folder (expected {_split_list(splits)}); {fix}")
    counts = {split: _count_images(root / split) for split in splits}
    empty = [split for split, count in counts.items() if count == 0]
    if empty:
        raise DataError(
            f"{root} has no images in {_split_list(empty)} "
            f"(a complete {name} holds {_split_list(splits)}); {fix}"
        )
    return counts


def safe_extract(
    archive: Path,
    dest: Path,
    on_file: Callable[[], None] | None = None,
    *,
    max_unpacked: int | None = None,
    max_members: int | None = None,
) -> int:
    """Unpack ``archive`` into the existing folder ``dest`` and return the number of files.

    Every member is checked before it is written: an absolute path, a ``..`` component, a link
    (symbolic or hard), a device node, a fifo, or a path resolving outside ``dest`` raises a
    one-line DataError naming it; so does passing ``max_members`` members or ``max_unpacked``
    bytes in all (checked on each member's declared size, before it is written). Members before
    the bad one may already be in ``dest``; the caller unpacks into a staging folder and deletes
    it on error.
    """
    dest_real = os.path.realpath(dest)
    files = members = unpacked = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                members += 1
                unpacked += max(member.size, 0) if member.isfile() else 0
                if max_members is not None and members > max_members:
                    raise DataError(
                        f"refusing to unpack {archive.name}: more than {max_members:,} members, "
                        "far more than this dataset has; nothing from it was kept"
                    )
                if max_unpacked is not None and unpacked > max_unpacked:
                    raise DataError(
                        f"refusing to unpack {archive.name}: it expands past {max_unpacked:,} "
                        "bytes (a decompression bomb, or not this dataset); nothing from it was "
                        "kept"
                    )
                problem = _member_problem(member, dest_real)
                if problem is not None:
                    raise DataError(
                        f"refusing to unpack {archive.name}: member {member.name!r} {problem}; "
                        f"the archive is unsafe and nothing from it was kept"
                    )
                if member.isdir():
                    os.makedirs(os.path.join(dest_real, member.name), exist_ok=True)
                    continue
                tar.extract(member, dest_real, **_TAR_FILTER)
                files += 1
                if on_file is not None:
                    on_file()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(
            f"could not unpack {archive} ({reason(err)}); it is not a complete .tar.gz archive,"
            f" delete it and fetch again"
        ) from None
    return files


def _member_problem(member: tarfile.TarInfo, dest_real: str) -> str | None:
    """Why ``member`` may not be written under ``dest_real``, or None when it is safe."""
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "has an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "climbs out of the folder with '..'"
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r}); links are not allowed"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r}); links are not allowed"
    if member.ischr() or member.isblk():
        return "is a device node"
    if member.isfifo():
        return "is a fifo"
    if not (member.isfile() or member.isdir()):
        return "is neither a regular file nor a folder"
    real = os.path.realpath(os.path.join(dest_real, name))
    if os.path.commonpath([real, dest_real]) != dest_real:
        return "would be written outside the target folder"
    return None


def _obtain_archive(
    name: str, to: Path, source: str | None, console: Console, limits: Limits
) -> tuple[Path, bool]:
    """The archive to unpack, and whether it was downloaded here (and is ours to delete)."""
    if source is None:
        url = dataset_url(name)
    else:
        scheme = urllib.parse.urlsplit(source).scheme.lower()
        if scheme in ("http", "https"):
            url = source
        elif scheme == "file":
            return _local_archive(urllib.request.url2pathname(urllib.parse.urlsplit(source).path))
        elif len(scheme) > 1:  # one letter is a Windows drive, i.e. a plain path
            raise DataError(
                f"cannot fetch from {source!r}: only http, https and file URLs or a local "
                f"path are supported"
            )
        else:
            return _local_archive(source)
    archive = to / f"{name}.tar.gz"
    try:
        download(url, archive, limits, hint=_by_hand_hint(name, to), console=console)
    except GanzooError as exc:
        raise DataError(str(exc)) from None
    return archive, True


def _local_archive(path: str) -> tuple[Path, bool]:
    archive = Path(path).expanduser()
    if not archive.is_file():
        raise DataError(f"no archive at {archive}; give the path of the downloaded .tar.gz file")
    return archive, False


def _unpack_into_place(
    archive: Path, name: str, target: Path, console: Console, limits: ArchiveLimits
) -> dict[str, int]:
    """Unpack into a hidden staging folder, verify, then rename into ``target``."""
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.unpacking-", dir=target.parent))
    max_unpacked = min(limits.max_unpacked, MAX_EXPANSION * archive.stat().st_size + 16 * _MIB)
    try:
        with _count_bar(console) as bar:
            task = bar.add_task(f"unpacking {archive.name}", total=None)
            safe_extract(
                archive,
                staging,
                on_file=lambda: bar.advance(task),
                max_unpacked=max_unpacked,
                max_members=limits.max_members,
            )
        root = staging / name if (staging / name).is_dir() else _single_folder(staging)
        counts = verify_dataset(
            root, name, fix=f"{archive.name} is not the {name} archive; nothing was unpacked"
        )
        if target.exists() or target.is_symlink():  # force: swap, then drop the old copy
            retired = Path(tempfile.mkdtemp(prefix=f".{name}.replaced-", dir=target.parent))
            os.replace(target, retired / name)
            os.replace(root, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(root, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts


def _single_folder(staging: Path) -> Path:
    """The archive's only top-level folder, or ``staging`` when the splits sit at the top."""
    entries = list(staging.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else staging


def _count_bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}: {task.completed} files", markup=False),
        console=console,
        disable=console.quiet or not console.is_terminal,
    )


def _known_name(name: str) -> str:
    key = name.strip().lower()
    if key in DATASET_SPLITS:
        return key
    known = ", ".join(DATASET_SPLITS)
    suggestion = did_you_mean(key, DATASET_SPLITS)
    suggestion = f"{suggestion} " if suggestion else ""
    raise DataError(f"unknown dataset '{name}'; {suggestion}known datasets: {known}")


def _by_hand_hint(name: str, to: Path) -> str:
    return (
        f"download {name}.tar.gz yourself ({dataset_url(name)}) and run "
        f"`ganzoo data fetch {name} --from /path/to/{name}.tar.gz`, or unpack it into {to / name}"
    )


def _count_images(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    with os.scandir(folder) as entries:
        return sum(
            1
            for entry in entries
            if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
        )


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(
        f"{split} {count:,} image{'' if count == 1 else 's'}" for split, count in counts.items()
    )


def _split_list(splits: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"{split}/" for split in splits)
