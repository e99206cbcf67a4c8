"""``ganzoo train --nproc N``: the same command again under torchrun, one process per rank."""

from __future__ import annotations

import sys

from ganzoo.errors import TrainingError


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node N -m ganzoo ARGV``
    with ``--nproc`` taken out of ``argv``."""
    args, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        args.append(a)
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "ganzoo",
        *args,
    ]


class RankFailedError(TrainingError):
    """A rank of a ``--nproc`` run failed (its own error is printed above): exit code 1, or
    the rank's 2 for a user error."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_torchrun(nproc: int, argv: list[str]) -> int:
    """Run torchrun in this process on the same ``ganzoo train`` command and return the exit
    status: 0, or 130 / 143 when Ctrl-C or SIGTERM reached the ranks through torchrun (they
    save and stop) instead of torchrun's traceback. A failed rank raises
    :class:`RankFailedError` (one line; its error is above)."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(torchrun_command(nproc, argv)[3:])
    noisy = [n for n in list(logging.root.manager.loggerDict) if n.startswith("torch.distributed")]
    levels = {name: logging.getLogger(name).level for name in noisy}
    for name in noisy:  # not "Received 2 death signal, shutting down workers" and the like
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        run(args)
    except SignalException as exc:
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        how = failure.signal_name() if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        code = failure.exitcode if failure.exitcode in (1, 2) else 1
        raise RankFailedError(f"rank {rank} failed ({how}); its error is above", code) from None
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    return 0
