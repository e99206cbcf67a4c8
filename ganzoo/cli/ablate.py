"""``ganzoo ablate``: train variants of a recipe the same way and compare them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ganzoo.cli.common import SetOpt, app, console, err_console
from ganzoo.errors import GanzooError, StoppedError


@app.command()
def ablate(
    source: Annotated[
        Path | None, typer.Argument(help="ablation spec, or a recipe with --vary")
    ] = None,
    set_: SetOpt = None,
    vary: Annotated[
        list[str] | None,
        typer.Option(help="with a recipe: an axis, dotted.key=v1,v2,... (repeatable)"),
    ] = None,
    seeds: Annotated[str | None, typer.Option(help="seeds, e.g. 0,1,2")] = None,
    steps: Annotated[int | None, typer.Option(help="step budget of every run")] = None,
    out: Annotated[
        Path | None, typer.Option(help="ablation directory (default runs/ablations/NAME)")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="rebuild the report of this directory, no training")
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(help="runs at once on this machine (one GPU each, or cores/N threads)"),
    ] = None,
    threads_per_run: Annotated[
        int | None, typer.Option(help="torch threads of each run (match --jobs sequentially)")
    ] = None,
    launcher: Annotated[
        str | None, typer.Option(help="sequential, local, submitit or a plugin's launcher")
    ] = None,
    launcher_opt: Annotated[
        list[str] | None,
        typer.Option(help="a launcher parameter, key=value (YAML value), repeatable"),
    ] = None,
    # submitit's parameters before --launcher-opt: hidden aliases of --launcher-opt KEY=VALUE
    partition: Annotated[str | None, typer.Option(hidden=True)] = None,
    gpus_per_node: Annotated[int | None, typer.Option(hidden=True)] = None,
    cpus_per_task: Annotated[int | None, typer.Option(hidden=True)] = None,
    time: Annotated[int | None, typer.Option(hidden=True)] = None,
    mem_gb: Annotated[float | None, typer.Option(hidden=True)] = None,
    fid: Annotated[
        bool, typer.Option(help="also FID and KID per run (skipped when no Inception weights)")
    ] = False,
    inception_weights: Annotated[
        Path | None, typer.Option(help="the Inception weights file for --fid")
    ] = None,
) -> None:
    """Train every variant of an ablation the same way (resumable) and compare them; a
    launcher's parameters (submitit: partition, gpus_per_node, cpus_per_task, time, mem_gb, ...)
    go in --launcher-opt KEY=VALUE."""
    from ganzoo.launchers.base import parse_options

    if report is not None:
        from ganzoo.ablation import write_results

        if source is not None or vary or seeds or steps or set_:
            raise GanzooError("--report DIR rebuilds a finished ablation; give nothing else")
        write_results(report, console)
        return
    if source is None:
        raise GanzooError("give an ablation spec (or a recipe with --vary), or --report DIR")
    from ganzoo.workflows import ablate as run_ablation

    aliases = dict(partition=partition, gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task)
    aliases.update(time=time, mem_gb=mem_gb)
    options = parse_options(launcher_opt or [])
    options.update({k: v for k, v in aliases.items() if v is not None})
    result = run_ablation(
        source,
        overrides=set_ or [],
        vary=vary,
        seeds=seeds,
        steps=steps,
        out=out,
        jobs=jobs,
        threads_per_run=threads_per_run,
        launcher=launcher,
        launcher_options=options,
        fid=fid,
        inception_weights=inception_weights,
        console=console,
        err_console=err_console,
    )
    message = result.failure_message()
    if message:  # exit 2, or 130 / 143 when a signal stopped a run
        raise StoppedError(message, result.signum) if result.signum else GanzooError(message)
