"""A logger that cannot stall or end training: its calls run on a daemon thread of its own, and
training waits for each at most a deadline.

A call that raises anything (``SystemExit`` included) or has not returned within the deadline
raises :class:`LoggerFailure` in the caller, which :class:`ganzoo.training.logs.RunLogs`
reports in one line before dropping the logger. A logger stuck in a call (a server that accepts
and never answers) is abandoned on its thread.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganzoo.loggers.base import Logger, RunInfo

#: Seconds one logger call may take.
TIMEOUT_S = 120.0
TIMEOUT_ENV = "GANZOO_LOGGER_TIMEOUT_S"


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


@dataclass
class _Call:
    method: str
    args: tuple[Any, ...]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class ThreadedLogger(Logger):
    """``logger`` driven from a thread of its own, with a deadline of ``timeout_s`` per call;
    its other attributes read through (e.g. TensorBoard's ``writer``)."""

    def __init__(self, logger: Logger, label: str, timeout_s: float | None = None) -> None:
        self.logger, self.label = logger, label
        self.timeout_s = timeout_s or logger_timeout()
        self.failure: LoggerFailure | None = None
        self._finished = False
        self._final_state: Any = {}
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=f"logger-{label}", daemon=True)
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        if name == "logger":  # not set yet
            raise AttributeError(name)
        return getattr(self.logger, name)

    def start(self, info: RunInfo) -> None:
        self._call("start", info)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        self._call("log_scalars", step, values)

    def log_image(self, step: int, name: str, path: Path) -> None:
        self._call("log_image", step, name, path)

    def finish(self, final: dict[str, float]) -> None:
        """The last calls: ``finish``, then ``state`` (kept for :meth:`state`); the thread ends."""
        try:
            self._call("finish", final)
            try:
                self._final_state = self._call("state")
            except LoggerFailure as exc:
                self._final_state = exc
        finally:
            self._finished = True
            self._calls.put(None)  # the thread ends once it is free

    def state(self) -> dict[str, Any]:
        """The wrapped logger's state (after ``finish``: as it was then); a failure here does
        not drop the logger."""
        if not self._finished:
            return self._call("state")
        if isinstance(self._final_state, BaseException):
            raise self._final_state
        return self._final_state

    def _call(self, method: str, *args: Any) -> Any:
        if self.failure is not None:
            raise self.failure
        call = _Call(method, args)
        self._calls.put(call)
        if not call.done.wait(self.timeout_s):
            self.failure = LoggerFailure(f"did not answer within {self.timeout_s:g} s in {method}")
            self._calls.put(None)  # ends the thread should the call ever return
            raise self.failure
        if call.error is not None:
            failure = LoggerFailure(f"failed in {method}", call.error)
            if method != "state":
                self.failure = failure
            raise failure
        return call.result

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            try:
                call.result = getattr(self.logger, call.method)(*call.args)
            except BaseException as exc:  # SystemExit too: it must not end the run
                call.error = exc
            finally:
                call.done.set()
