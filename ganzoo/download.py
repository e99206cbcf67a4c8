"""Bounded, resumable HTTP downloads: every file ganzoo fetches (datasets, Inception weights,
pretrained models) comes through :func:`download`.

A download goes to ``<dest>.part``, resumed with an HTTP Range request when the server allows
it (restarted from zero when it does not), and is renamed over ``dest`` only when complete and,
if a SHA-256 is known, verified. It is bounded by :class:`Limits`:

* ``max_bytes``: a declared length above it is refused before any byte is read, and a body
  growing past it (an endless response) is cut off;
* ``stall_seconds`` / ``stall_bytes``: fewer than ``stall_bytes`` arriving in any window of
  ``stall_seconds`` (a server trickling a byte every few seconds) ends the download; each
  socket read also times out after ``timeout`` seconds;
* ``min_rate``: once ``stall_seconds`` have passed, a body arriving slower than ``min_rate``
  bytes per second on average ends the download, so no download of a file of at most
  ``max_bytes`` takes longer than ``stall_seconds + max_bytes / min_rate`` (a mirror sending
  3 KiB every 10 s passes every stall window but not this);
* ``deadline``: seconds the whole :func:`download` may take (None: no deadline), checked
  after every read and bounding each read's timeout.

A refused, stalled, too slow or overdue download deletes its ``.part``; a connection that
breaks off keeps it, so running the same command again resumes. Only ``urllib`` is used,
so proxies from the environment are honoured. Every failure is a one-line
:class:`~ganzoo.errors.GanzooError`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ganzoo.errors import GanzooError

_CHUNK_BYTES = 1 << 20
USER_AGENT = "ganzoo"


@dataclass(frozen=True)
class Limits:
    """What a download may take (see the module docstring)."""

    max_bytes: int
    stall_seconds: float = 60.0
    stall_bytes: int = 16 * 1024
    timeout: float = 15.0
    min_rate: float = 32 * 1024
    deadline: float | None = None


class DownloadError(GanzooError):
    """A download that failed; ``resumable`` when its ``.part`` was kept."""

    def __init__(self, message: str, resumable: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download(
    url: str,
    dest: Path,
    limits: Limits,
    *,
    hint: str,
    console: Console | None = None,
    sha256: str | None = None,
    opener: Callable[..., http.client.HTTPResponse] | None = None,
    headers: dict[str, str] | None = None,
) -> Path:
    """Fetch ``url`` into ``dest`` (see the module docstring); returns ``dest``.

    ``hint`` ends every error message (what to do by hand). ``opener`` replaces
    ``urllib.request.build_opener().open`` (tests). ``headers`` (e.g. a token) are sent to
    ``url`` only, never to a host it redirects to.
    """
    dest = Path(dest)
    part = part_path(dest)
    console = console or Console(stderr=True, quiet=True)
    host = urllib.parse.urlsplit(url).netloc or url
    open_url = opener or urllib.request.build_opener().open
    dest.parent.mkdir(parents=True, exist_ok=True)
    if part.is_symlink():  # planted: the download would grow the file it points to
        part.unlink()
    clock = _Clock(limits, host)
    for _attempt in range(2):  # a second request only after discarding a .part it cannot resume
        have = part.stat().st_size if part.is_file() else 0
        if have > limits.max_bytes:
            part.unlink()
            have = 0
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        for key, value in (headers or {}).items():
            request.add_unredirected_header(key, value)
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            response = open_url(request, timeout=clock.read_timeout(part))
        except urllib.error.HTTPError as err:
            err.close()
            if err.code == 416 and have:  # the .part is not a prefix the server can continue
                part.unlink()
                continue
            raise DownloadError(
                f"{host} answered HTTP {err.code} {err.reason} for {url}; {hint}"
            ) from None
        except (OSError, http.client.HTTPException) as err:
            raise DownloadError(f"could not reach {host} ({reason(err)}); {hint}") from None
        with response:
            start, total = _resume_point(response, have)
            if start is None:
                part.unlink()
                continue
            if total is not None and total > limits.max_bytes:
                part.unlink(missing_ok=True)
                raise DownloadError(
                    f"{host} announces {total:,} bytes for {url}, more than the "
                    f"{limits.max_bytes:,} this file can be; nothing was downloaded; {hint}"
                )
            if start:
                console.print(f"resuming {url} at {start:,} bytes")
            elif have:
                console.print(f"{host} cannot resume downloads; downloading {url} from the start")
            else:
                console.print(f"downloading {url}")
            _save_body(response, part, start, total, limits, host, console, clock)
        _verify(part, sha256, url, hint)
        os.replace(part, dest)
        return dest
    raise DownloadError(f"{host} would neither resume nor restart the download of {url}; {hint}")


class _Clock:
    """The time bounds of one download: the overall ``deadline`` and the average rate."""

    def __init__(self, limits: Limits, host: str) -> None:
        self.limits, self.host = limits, host
        self.start = time.monotonic()

    def read_timeout(self, part: Path) -> float:
        """The socket timeout: ``limits.timeout``, or less when the deadline is nearer."""
        if self.limits.deadline is None:
            return self.limits.timeout
        left = self.limits.deadline - (time.monotonic() - self.start)
        if left <= 0:
            part.unlink(missing_ok=True)
            raise self.overdue(0)
        return max(0.05, min(self.limits.timeout, left))

    def overdue(self, done: int) -> DownloadError:
        return DownloadError(
            f"download from {self.host} took longer than its {self.limits.deadline:g} s "
            f"deadline ({done:,} bytes received); stopped and deleted, try again later"
        )

    def check_deadline(self, done: int) -> None:
        """Raise when past the deadline (``done`` bytes received)."""
        if (
            self.limits.deadline is not None
            and time.monotonic() - self.start > self.limits.deadline
        ):
            raise self.overdue(done)

    def check(self, done: int, fresh: int) -> None:
        """Raise when past the deadline, or when ``fresh`` bytes (this request's) arrived
        slower than ``min_rate`` on average once ``stall_seconds`` have passed."""
        self.check_deadline(done)
        elapsed = time.monotonic() - self.start
        limits = self.limits
        if elapsed >= limits.stall_seconds and fresh < limits.min_rate * elapsed:
            raise DownloadError(
                f"download from {self.host} too slow: {fresh / elapsed / 1024:,.1f} KiB/s on "
                f"average over {elapsed:.0f} s (at least {limits.min_rate / 1024:,.1f} KiB/s "
                "expected); stopped and deleted, try again later"
            )


def _resume_point(response: http.client.HTTPResponse, have: int) -> tuple[int | None, int | None]:
    """(offset the body starts at or None if unusable, total file size if known)."""
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
    limits: Limits,
    host: str,
    console: Console,
    clock: _Clock,
) -> None:
    """Append the body to ``part`` within ``limits``, with a progress bar on a terminal."""
    done = start
    again = "run the same command again to resume"
    window_start, window_done = time.monotonic(), done
    try:
        with part.open("ab" if start else "wb") as out, _bar(console) as bar:
            task = bar.add_task(part.name.removesuffix(".part"), total=total, completed=start)
            while True:
                try:
                    chunk = response.read1(_CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as err:
                    clock.check_deadline(done)  # a read cut short by the deadline
                    raise DownloadError(
                        f"download from {host} broke off at {done:,} bytes ({reason(err)}); "
                        f"{again}",
                        resumable=True,
                    ) from None
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                bar.update(task, completed=done)
                if done > limits.max_bytes:
                    raise DownloadError(
                        f"download from {host} passed {limits.max_bytes:,} bytes, more than this "
                        "file can be (an endless or wrong response); stopped and deleted"
                    )
                now = time.monotonic()
                if now - window_start >= limits.stall_seconds:
                    if done - window_done < limits.stall_bytes:
                        raise DownloadError(
                            f"download from {host} stalled: {done - window_done:,} bytes in "
                            f"{now - window_start:.0f} s (at least {limits.stall_bytes:,} "
                            "expected); stopped and deleted, try again later"
                        )
                    window_start, window_done = now, done
                clock.check(done, done - start)
    except DownloadError as err:
        if not err.resumable:
            part.unlink(missing_ok=True)
        raise
    if total is not None and done < total:
        raise DownloadError(
            f"download from {host} ended at {done:,} of {total:,} bytes; {again}", resumable=True
        )


def _verify(part: Path, sha256: str | None, url: str, hint: str) -> None:
    if sha256 is None:
        return
    digest = hashlib.sha256()
    with part.open("rb") as f:
        while block := f.read(_CHUNK_BYTES):
            digest.update(block)
    if digest.hexdigest() != sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: the downloaded file's SHA-256 is {digest.hexdigest()[:16]}..., not the "
            f"expected {sha256[:16]}... (corrupt or replaced); deleted; {hint}"
        )


def _bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=console.quiet or not console.is_terminal,
    )


def reason(err: BaseException) -> str:
    """A one-line reason for a network or archive error."""
    cause = getattr(err, "reason", None) or err
    text = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
    return " ".join(str(text).split())
