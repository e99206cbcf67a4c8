"""A run's records read back: ``metrics.jsonl`` lines and ``eval/<split>.json`` results.

Readers keep what they can: a torn last line (a crash mid-write) is ignored, and any other
unreadable line or file is left out with one :class:`MalformedFileWarning` saying which and why.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from ganzoo.safe_io import parse_json

#: A step a record or file name may carry (a checkpoint's step is an int64).
MAX_STEP = 2**63 - 1
#: The numbers every ``eval/<split>.json`` holds, and those it may hold.
EVAL_NUMBERS = ("l1", "psnr", "ssim")
EVAL_OPTIONAL = ("lpips_alex", "lpips_vgg", "dists", "fid", "kid", "kid_std")


def warn_left_out(message: str) -> None:
    warnings.warn(message, MalformedFileWarning, stacklevel=3)


class MalformedFileWarning(UserWarning):
    """A record or file of a run directory that could not be read and was left out."""


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_record(line: str | bytes) -> dict[str, Any]:
    """One ``metrics.jsonl`` line as a record: a JSON object with an integer ``step`` in
    ``[0, MAX_STEP]``, keeping only its number-valued fields (a string, list or null where a
    number belongs is dropped; NaN and inf are kept: a loss may diverge). ``ValueError`` with a
    one-line reason for a line that is not such a record."""
    data = parse_json(line)
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    step = data.get("step")
    if not (isinstance(step, int) and not isinstance(step, bool) and 0 <= step <= MAX_STEP):
        raise ValueError("no integer step" if "step" in data else "no step")
    return {k: v for k, v in data.items() if is_number(v)}


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (see :func:`parse_record`), in file order. A torn
    last line (a crash mid-write) is ignored; other unreadable lines are left out with one
    warning giving their count and the first one's line number and reason."""
    path = Path(path)
    data = path.read_bytes()
    lines = data.splitlines()
    torn = bool(lines) and not data.endswith(b"\n")
    records, bad = [], []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(parse_record(line))
        except ValueError as exc:
            if not (torn and i == len(lines)):
                bad.append((i, str(exc)))
    if bad:
        warn_left_out(
            f"{path}: left out {len(bad)} unreadable line(s) (line {bad[0][0]}: {bad[0][1]})"
        )
    return records


def read_last_record(path: str | Path, tail: int = 4096) -> dict[str, Any] | None:
    """The last readable record (see :func:`parse_record`) in the last ``tail`` bytes of a
    ``metrics.jsonl``, without reading the rest (a live run's progress); None without one."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - tail))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return parse_record(line)
        except ValueError:
            continue
    return None


def check_eval_record(record: Any) -> dict[str, Any]:
    """``record`` when it is an ``eval/<split>.json`` result (see :meth:`RunDir.eval_records`);
    ``ValueError`` naming the first field that is missing or of the wrong type."""
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    for key in (*EVAL_NUMBERS, *(k for k in EVAL_OPTIONAL if k in record)):
        if key not in record:
            raise ValueError(f"no {key}")
        if not is_number(record[key]):
            raise ValueError(f"{key} is {json.dumps(record[key])[:40]}, not a number")
    for key in ("split", "mode", "sheet"):
        if key in record and not isinstance(record[key], str):
            raise ValueError(f"{key} is not a string")
    for key in ("n", "step"):
        if key in record and not (is_number(record[key]) and 0 <= record[key] <= MAX_STEP):
            raise ValueError(f"{key} is not a count")
    return record
