"""``ganzoo train --nproc N``: the same command again under torchrun, one process per rank."""

from __future__ import annotations

import sys


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


def exec_torchrun(nproc: int, argv: list[str]) -> None:
    """Replace this process by torchrun running the same ``ganzoo train`` command."""
    import os

    os.execv(sys.executable, torchrun_command(nproc, argv))
