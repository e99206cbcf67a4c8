"""``ganzoo train | plot | report``: training a recipe and looking at the run."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from ganzoo.cli import common
from ganzoo.cli.common import SetOpt, app, console


@app.command(context_settings={"allow_extra_args": False})
def train(
    recipe: Annotated[Path | None, typer.Argument(help="recipe YAML file")] = None,
    set_: SetOpt = None,
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/NAME)")] = None,
    resume: Annotated[Path | None, typer.Option(help="continue the run in this directory")] = None,
    overwrite: Annotated[
        bool, typer.Option(help="--out holds files: move them aside to OUT.replaced-TIME")
    ] = False,
    nproc: Annotated[int, typer.Option(help="processes on this machine (runs torchrun)")] = 1,
) -> None:
    """Train a recipe (or --resume a run); Ctrl-C saves a checkpoint and stops."""
    from ganzoo.workflows import train as run_training
    from ganzoo.workflows import train_distributed

    if nproc != 1:  # checked once here, then torchrun runs this command per rank
        args = dict(overrides=set_ or [], out=out, resume=resume, overwrite=overwrite)
        raise typer.Exit(train_distributed(recipe, nproc=nproc, argv=common.ARGV, **args))
    result = run_training(
        recipe, overrides=set_ or [], out=out, resume=resume, overwrite=overwrite, console=console
    )
    if not result.is_main:
        return  # under torchrun the launching process reports a stop (run_torchrun)
    console.print(f"run dir: {result.run_dir}", highlight=False)
    if result.samples is not None:
        console.print(f"samples: {result.samples}", highlight=False)
    console.print(f"checkpoint: {result.checkpoint}", highlight=False)
    if result.stopped is not None and not result.distributed:
        raise typer.Exit(_signal_exit_code(result.stopped))  # saved, then 130 / 143


def _signal_exit_code(name: str) -> int:
    """128 + the number of the signal named ``name`` (``'SIGINT'`` -> 130); 130 otherwise."""
    return 128 + int(getattr(signal.Signals, name, signal.SIGINT))


@app.command()
def plot(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path | None, typer.Option(help="PNG path (default RUN_DIR/losses.png)")] = None,
) -> None:
    """Plot a run's loss and validation curves to a PNG."""
    from ganzoo.evaluation.plots import plot_run

    console.print(f"wrote {plot_run(run_dir, out)}", highlight=False)


@app.command()
def report(
    source: Annotated[Path, typer.Argument(help="a run directory or an ablation directory")],
    out: Annotated[Path | None, typer.Option(help="the HTML file (default SOURCE/report.html)")] = (
        None
    ),
) -> None:
    """One self-contained HTML page of a run or an ablation (opens offline)."""
    from ganzoo.report import write_html_report

    console.print(f"wrote {write_html_report(source, out)}", highlight=False)
