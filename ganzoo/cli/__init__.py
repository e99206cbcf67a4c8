"""The ``ganzoo`` command: thin, it parses, calls the library (:mod:`ganzoo.workflows` and the
rest) and prints. One module per command group; :func:`main` is the console script.

User errors (:class:`ganzoo.errors.GanzooError`) print as one line on stderr with exit code 2.
"""

from __future__ import annotations

import signal
import sys
import warnings

import typer
from rich.markup import escape

from ganzoo.cli import common
from ganzoo.cli.common import app, console, err_console
from ganzoo.errors import GanzooError

# The command groups, in the order `ganzoo --help` lists them.
# isort: off
from ganzoo.cli import recipes  # noqa: F401, E402
from ganzoo.cli import training  # noqa: F401, E402
from ganzoo.cli import models  # noqa: F401, E402
from ganzoo.cli import demo  # noqa: F401, E402
from ganzoo.cli import ablate  # noqa: F401, E402
from ganzoo.cli import upstream  # noqa: F401, E402
# isort: on

__all__ = ["app", "console", "err_console", "main"]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    err_console.print(f"[yellow]warning[/yellow]: {message}", highlight=False)


def _peer_lost(exc: BaseException) -> str | None:
    """One line for a rank whose peer died (see ganzoo.training.distributed.peer_lost)."""
    if "torch.distributed" not in sys.modules:
        return None
    from ganzoo.training.distributed import peer_lost

    return peer_lost(exc)


def _open_closed_streams() -> None:
    """A closed stdout or stderr (``>&-``; Python sets it to None) becomes /dev/null, with one
    line on stderr when only stdout is closed: the command runs, what it prints is discarded."""
    import os

    for name in ("stderr", "stdout"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - lives as long as sys
            if name == "stdout":
                err_console.print(
                    "[yellow]warning[/yellow]: stdout is closed (>&-); what ganzoo prints there "
                    "is discarded",
                    highlight=False,
                )


class Terminated(BaseException):
    """SIGTERM outside training: unwinds like Ctrl-C, so partial files are cleaned up."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: one-line errors, no tracebacks for user errors.

    Exit codes: 0 success, 2 a user error (one line on stderr), 1 a failure of the system
    (disk, permissions), 130 Ctrl-C, 143 SIGTERM (a training stops after the current step
    with a checkpoint first, then exits the same way).
    """
    common.ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    _open_closed_streams()
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (tests)
        previous = None
    try:
        code = app(args=argv, standalone_mode=False)
    except GanzooError as exc:  # exit 2; a full disk 1; a run stopped by a signal 130 / 143
        # escaped: "pip install 'ganzoo[demo]'" is text, not rich markup
        err_console.print(f"[red]error[/red]: {escape(str(exc))}", highlight=False)
        return exc.exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except Terminated:
        err_console.print("terminated (a run keeps its last checkpoint; --resume continues it)")
        return 143
    except typer.Abort:
        code = 130
    except OSError as exc:  # a full disk, a permission, a folder where a file was expected
        where = f": {exc.filename}" if exc.filename else ""
        err_console.print(f"[red]error[/red]: {exc.strerror or exc}{where}", highlight=False)
        return 1
    except Exception as exc:  # usage errors of the click that typer carries
        if callable(getattr(exc, "show", None)) and isinstance(
            getattr(exc, "exit_code", None), int
        ):
            exc.show()
            return exc.exit_code
        lost = _peer_lost(exc)
        if lost:  # the dead rank's own error says what happened; this one adds nothing
            err_console.print(f"[red]error[/red]: {lost}", highlight=False)
            from ganzoo.training.distributed import leave_after_lost_peer

            leave_after_lost_peer(1)
            return 1
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if code == 130:  # typer turns Ctrl-C into this exit code
        err_console.print("interrupted (a run keeps its last checkpoint; --resume continues it)")
    elif code == 143:
        err_console.print("terminated (a run keeps its last checkpoint; --resume continues it)")
    return code if isinstance(code, int) else 0
