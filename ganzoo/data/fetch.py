"""Download and unpack the official pix2pix datasets (``ganzoo data fetch``), safely.

The archive is downloaded to ``<to>/<name>.tar.gz.part`` (resumed with an HTTP Range request
when the server allows it, restarted from zero when it does not), renamed when complete, checked
member by member while it is unpacked into a hidden staging folder, and renamed into
``<to>/<name>`` only once every expected split holds images: a half-done fetch never looks
finished. Only ``urllib.request`` is used, so proxies from the environment are honoured.
"""

from __future__ import annotations

import difflib
import http.client
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
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ganzoo.errors import DataError

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

#: Seconds to wait for a connection, and for each read before a stalled download gives up.
TIMEOUT_S = 15.0

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

_CHUNK_BYTES = 1 << 20
_USER_AGENT = "ganzoo-data-fetch"
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
) -> Path:
    """Download (or take from ``source``), check and unpack dataset ``name`` into ``to/name``.

    ``source`` is an http(s)/file URL or a local archive path replacing the official URL.
    Returns the dataset folder (holding its split folders of A|B images). A folder already
    present and complete is left alone unless ``force``. ``progress`` shows a progress bar
    (on a terminal) and status lines on stderr. Every failure is a one-line DataError.
    """
    name = _known_name(name)
    to = Path(to)
    target = to / name
    console = Console(stderr=True, quiet=not progress, markup=False, soft_wrap=True)
    if (target.exists() or target.is_symlink()) and not force:
        counts = verify_dataset(
            target, name, fix="delete it or fetch again with --force to replace it"
        )
        console.print(f"{target} is already present ({_describe(counts)}); nothing to do")
        return target

    to.mkdir(parents=True, exist_ok=True)
    archive, downloaded = _obtain_archive(name, to, source, console)
    try:
        counts = _unpack_into_place(archive, name, target, console)
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


def safe_extract(archive: Path, dest: Path, on_file: Callable[[], None] | None = None) -> int:
    """Unpack ``archive`` into the existing folder ``dest`` and return the number of files.

    Every member is checked before it is written: an absolute path, a ``..`` component, a link
    (symbolic or hard), a device node, a fifo, or a path resolving outside ``dest`` raises a
    one-line DataError naming it. Members before the bad one may already be in ``dest``; the
    caller unpacks into a staging folder and deletes it on error.
    """
    dest_real = os.path.realpath(dest)
    files = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
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
            f"could not unpack {archive} ({_reason(err)}); it is not a complete .tar.gz archive,"
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


def _obtain_archive(name: str, to: Path, source: str | None, console: Console) -> tuple[Path, bool]:
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
    part = to / f"{name}.tar.gz.part"
    _download(url, part, _by_hand_hint(name, to), console)
    os.replace(part, archive)
    return archive, True


def _local_archive(path: str) -> tuple[Path, bool]:
    archive = Path(path).expanduser()
    if not archive.is_file():
        raise DataError(f"no archive at {archive}; give the path of the downloaded .tar.gz file")
    return archive, False


def _download(url: str, part: Path, hint: str, console: Console) -> None:
    """Download ``url`` into ``part``, continuing what ``part`` already holds when possible."""
    host = urllib.parse.urlsplit(url).netloc
    opener = urllib.request.build_opener()
    for _attempt in range(2):  # a second request only after discarding a .part it cannot resume
        have = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            response = opener.open(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as err:
            err.close()
            if err.code == 416 and have:  # the .part is not a prefix the server can continue
                part.unlink()
                continue
            raise DataError(
                f"{host} answered HTTP {err.code} {err.reason} for {url}; {hint}"
            ) from None
        except (OSError, http.client.HTTPException) as err:
            raise DataError(f"could not reach {host} ({_reason(err)}); {hint}") from None
        with response:
            start, total = _resume_point(response, have)
            if start is None:
                part.unlink()
                continue
            if start:
                console.print(f"resuming {url} at {start:,} bytes")
            elif have:
                console.print(f"{host} cannot resume downloads; downloading {url} from the start")
            else:
                console.print(f"downloading {url}")
            _save_body(response, part, start, total, console)
        return
    raise DataError(f"{host} would neither resume nor restart the download of {url}; {hint}")


def _resume_point(response: http.client.HTTPResponse, have: int) -> tuple[int | None, int | None]:
    """(offset the body starts at or None if unusable, total archive size if known)."""
    if response.status == 206:
        match = re.fullmatch(
            r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip()
        )
        if match is None or int(match[1]) != have:
            return None, None
        return have, None if match[2] == "*" else int(match[2])
    length = response.headers.get("Content-Length", "").strip()
    return 0, int(length) if length.isdigit() else None


def _save_body(
    response: http.client.HTTPResponse,
    part: Path,
    start: int,
    total: int | None,
    console: Console,
) -> None:
    """Write the body to ``part`` (appended at ``start``, or from scratch) with a progress bar."""
    host = urllib.parse.urlsplit(response.url).netloc
    done = start
    again = "run the same command again to resume"
    with part.open("ab" if start else "wb") as out, _download_bar(console) as bar:
        task = bar.add_task(part.name.removesuffix(".part"), total=total, completed=start)
        try:
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                bar.update(task, completed=done)
        except (OSError, http.client.HTTPException) as err:
            raise DataError(
                f"download from {host} broke off at {done:,} bytes ({_reason(err)}); {again}"
            ) from None
    if total is not None and done < total:
        raise DataError(f"download from {host} ended at {done:,} of {total:,} bytes; {again}")


def _unpack_into_place(archive: Path, name: str, target: Path, console: Console) -> dict[str, int]:
    """Unpack into a hidden staging folder, verify, then rename into ``target``."""
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.unpacking-", dir=target.parent))
    try:
        with _count_bar(console) as bar:
            task = bar.add_task(f"unpacking {archive.name}", total=None)
            safe_extract(archive, staging, on_file=lambda: bar.advance(task))
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


def _download_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=console.quiet or not console.is_terminal,
    )


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
    close = difflib.get_close_matches(key, DATASET_SPLITS, n=1)
    suggestion = f"did you mean '{close[0]}'? " if close else ""
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


def _reason(err: BaseException) -> str:
    """A one-line reason for a network or archive error."""
    reason = getattr(err, "reason", None) or err
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return " ".join(str(text).split())
