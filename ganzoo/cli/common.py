"""The `ganzoo` application object, its consoles, and the arguments several commands share."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ganzoo import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Paired image-to-image translation GANs (the pix2pix family).",
)
console = Console(width=None if sys.stdout is not None and sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)

RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML file", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a recipe key: dotted.key=value (YAML value)"),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"ganzoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    """Paired image-to-image translation GANs (the pix2pix family)."""


def _model_source(ctx: typer.Context, source: str) -> str:
    """A pretrained model's name -> its run directory (fetched once); any other source as is
    (and nothing fetched while the shell completes a command line)."""
    if ctx.resilient_parsing:
        return source
    from ganzoo.pretrained import resolve

    return str(resolve(source))


ModelArg = Annotated[
    str,
    typer.Argument(
        help="run directory, step_*.pt checkpoint, .safetensors, Hub folder, hf://NAMESPACE/NAME "
        "or a pretrained model's name",
        callback=_model_source,
    ),
]
CheckpointOpt = Annotated[
    str,
    typer.Option(
        "--checkpoint",
        help="in a run directory: last (the newest step_*.pt) or best (checkpoints/best.pt, "
        "kept by the best_checkpoint callback)",
    ),
]
EmaOpt = Annotated[bool, typer.Option("--ema/--no-ema", help="use the EMA weights if kept")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda")]
ModeOpt = Annotated[
    str,
    typer.Option(
        help="auto: per-sample BN stats for BN trained at batch 1, else eval; eval: BN running "
        "stats, no dropout; train: batch stats + dropout"
    ),
]

#: The command line as given (``ganzoo train --nproc`` runs it again under torchrun).
ARGV: list[str] = []
