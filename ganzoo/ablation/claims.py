"""Who is training a run, and how it ended: files beside each run, safe on shared storage.

::

    OUT/runs/<run>.claim         created with O_CREAT|O_EXCL by the process training <run>:
                                 {host, pid, time, token}; its mtime is a heartbeat
    OUT/runs/<run>.status.json   written atomically: running / done / failed, the error line,
                                 the log, threads and device of the run

A claim is *stale* (taken over) when its process is gone (same host, pid not alive) or its
heartbeat is older than the timeout (another host: a killed job stops beating). Two launches of
the same ablation, on one machine or on a cluster, never train the same run twice.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError
from ganzoo.safe_io import read_json as read_json_file
from ganzoo.safe_io import write_text_atomic

#: A claim whose heartbeat is older than this (seconds) is stale.
CLAIM_TIMEOUT_S = 600.0
HEARTBEAT_S = 30.0


def claim_path(out: Path, run: str) -> Path:
    return Path(out) / "runs" / f"{run}.claim"


def status_path(out: Path, run: str) -> Path:
    return Path(out) / "runs" / f"{run}.status.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when missing or unreadable (being written)."""
    try:
        data = read_json_file(path, "claim or status record")
    except GanzooError:
        return None
    return data if isinstance(data, dict) else None


def read_status(out: Path, run: str) -> dict[str, Any] | None:
    return read_json(status_path(out, run))


def write_status(out: Path, run: str, **fields: Any) -> None:
    """Replace the run's status record atomically (``state`` and whatever else is given)."""
    path = status_path(out, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(fields, indent=2) + "\n")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def describe(claim: dict[str, Any]) -> str:
    return f"{claim.get('host', '?')} pid {claim.get('pid', '?')}"


def is_stale(claim: dict[str, Any] | None, mtime: float, timeout_s: float) -> bool:
    """A claim from a dead local process, or without a heartbeat for ``timeout_s``."""
    pid = claim.get("pid") if claim is not None else None
    if claim is None or type(pid) is not int or not 0 < pid < 2**31:  # unreadable: by age alone
        return time.time() - mtime > timeout_s
    if claim.get("host") == socket.gethostname() and not pid_alive(pid):
        return True
    return time.time() - mtime > timeout_s


@dataclass
class Claim:
    """A held claim: beats its heartbeat until :meth:`release`."""

    path: Path
    token: str
    _stop: threading.Event
    _thread: threading.Thread | None = None

    def release(self) -> None:
        """Stop the heartbeat and remove the claim (when it is still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = read_json(self.path)
        if held is not None and held.get("token") == self.token:
            self.path.unlink(missing_ok=True)


def _create(path: Path) -> Claim | None:
    token = uuid.uuid4().hex
    body = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), "token": token}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(body) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return Claim(path, token, threading.Event())


def _beat(claim: Claim, every_s: float) -> None:
    while not claim._stop.wait(every_s):
        try:
            os.utime(claim.path)
        except OSError:
            return


def try_claim(
    out: Path, run: str, *, timeout_s: float = CLAIM_TIMEOUT_S, heartbeat_s: float = HEARTBEAT_S
) -> Claim | dict[str, Any]:
    """Claim ``run``: a :class:`Claim` (heartbeat running), or the live claim that holds it.

    A stale claim is taken over: renamed aside (only one taker wins the rename), checked to be
    the stale one, then replaced by ours with O_EXCL."""
    path = claim_path(out, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        claim = _create(path)
        if claim is not None:
            claim._thread = threading.Thread(target=_beat, args=(claim, heartbeat_s), daemon=True)
            claim._thread.start()
            return claim
        held = read_json(path)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue  # released meanwhile: try again
        if not is_stale(held, mtime, timeout_s):
            return held or {"host": "?", "pid": "?"}
        aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            continue  # another taker won
        moved = read_json(aside)
        if held is not None and (moved or {}).get("token") != held.get("token"):
            try:  # we moved a fresh claim of another taker: put it back
                os.link(aside, path)
            except FileExistsError:
                pass
            aside.unlink(missing_ok=True)
            return moved or {"host": "?", "pid": "?"}
        aside.unlink(missing_ok=True)
    return read_json(path) or {"host": "?", "pid": "?"}
