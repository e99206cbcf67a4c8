"""A logger that cannot stall or end training: its calls run in order on a daemon thread of its
own, and training never waits on them except at the end, for at most the deadline.

A call that raises anything (``SystemExit`` included) or has not returned within the deadline
makes the logger's next call raise :class:`LoggerFailure`, which
:class:`ganzoo.training.logs.RunLogs` reports in one line before dropping the logger. A logger
stuck in a call (a server that accepts and never answers) is abandoned on its thread.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

from ganzoo.loggers.base import Logger, RunInfo

#: Seconds one logger call (or the logger's backlog at the end of a run) may take.
TIMEOUT_S = 120.0
TIMEOUT_ENV = "GANZOO_LOGGER_TIMEOUT_S"
#: Calls a logger may fall behind before it is dropped (it cannot keep up with training).
MAX_BACKLOG = 1000


def logger_timeout() -> float:
    """The deadline of a logger call: ``GANZOO_LOGGER_TIMEOUT_S`` when set, else TIMEOUT_S."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV, TIMEOUT_S))
    except ValueError:
        return TIMEOUT_S
    return value if value > 0 else TIMEOUT_S


class LoggerFailure(Exception):
    """A logger's call failed on its thread, or did not answer within the deadline."""

    def __init__(self, what: str, cause: BaseException | None = None) -> None:
        super().__init__(what)
        self.what, self.cause = what, cause


class ThreadedLogger(Logger):
    """``logger`` driven from a thread of its own, with a deadline of ``timeout_s`` per call."""

    def __init__(self, logger: Logger, label: str, timeout_s: float | None = None) -> None:
        self.logger, self.label = logger, label
        self.timeout_s = timeout_s or logger_timeout()
        self.failure: LoggerFailure | None = None
        self.fresh_state = False  # a new state() since the last one read
        self._state: Any = {}  # or the exception the logger's state() raised
        self._busy: tuple[str, float] | None = None  # the call in progress, since when
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._serve, name=f"logger-{label}", daemon=True)
        self._thread.start()

    # -- the Logger interface: queue the call, never wait -------------------------------------
    def start(self, info: RunInfo) -> None:
        self._submit("start", info)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        self._submit("log_scalars", step, values)

    def log_image(self, step: int, name: str, path: Path) -> None:
        self._submit("log_image", step, name, path)

    def finish(self, final: dict[str, float]) -> None:
        """Queue ``finish`` and wait for the backlog, at most the deadline."""
        self._submit("finish", final)
        done = self._idle.wait(self.timeout_s)
        self._queue.put(None)  # the thread ends once it is free
        if not done:
            self._stalled()
        self.check()

    def state(self) -> dict[str, Any]:
        """The logger's state after its latest ``start`` or ``finish`` (never waits); raises
        what the logger's ``state()`` raised."""
        self.fresh_state = False
        if isinstance(self._state, BaseException):
            raise self._state
        return self._state

    def _read_state(self) -> None:
        try:
            self._state = self.logger.state()
        except Exception as exc:
            self._state = exc
        self.fresh_state = True

    # -- health ---------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`LoggerFailure` when a call failed, has run past the deadline, or the
        logger has fallen MAX_BACKLOG calls behind."""
        if self.failure is None:
            busy = self._busy
            if busy is not None and time.monotonic() - busy[1] > self.timeout_s:
                self._stalled()
            elif self._pending > MAX_BACKLOG:
                self.failure = LoggerFailure(f"fell {self._pending} calls behind training")
        if self.failure is not None:
            raise self.failure

    def _stalled(self) -> None:
        busy = self._busy
        where = f" in {busy[0]}" if busy else ""
        self.failure = self.failure or LoggerFailure(
            f"did not answer within {self.timeout_s:g} s{where}"
        )

    def _submit(self, method: str, *args: Any) -> None:
        self.check()
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._queue.put((method, args))

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            method, args = item
            if self.failure is None:
                self._busy = (method, time.monotonic())
                try:
                    getattr(self.logger, method)(*args)
                    if method in ("start", "finish"):
                        self._read_state()
                except BaseException as exc:  # SystemExit too: it must not end the run
                    self.failure = self.failure or LoggerFailure(f"failed in {method}", exc)
                finally:
                    self._busy = None
            with self._lock:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()
