"""The ``ganzoo`` command: thin, it parses, calls the library and prints.

User errors (:class:`ganzoo.errors.GanzooError`) print as one line on stderr with exit code 2.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ganzoo import __version__, registry
from ganzoo.errors import GanzooError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Paired image-to-image translation GANs (the pix2pix family).",
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)

RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML file", show_default=False)]
SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here
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


def _kind(kind: str) -> str:
    k = kind.lower().rstrip("s") if kind.lower() != "attention" else "attention"
    if k not in registry.KINDS:
        raise GanzooError(f"unknown kind '{kind}'; kinds are: {', '.join(registry.KINDS)}")
    return k


@app.command("list")
def list_cmd(
    kind: Annotated[Optional[str], typer.Argument(help="generator, discriminator, ...")] = None,  # noqa: UP045
    pattern: Annotated[str, typer.Option(help="glob over names")] = "*",
) -> None:
    """List registered components: name, kind, origin and a one-line summary."""
    kinds = [_kind(kind)] if kind else list(registry.KINDS)
    table = Table("name", "kind", "origin", "summary", header_style="bold")
    for k in kinds:
        for name in registry.list(k, pattern):
            entry = registry.get(k, name)
            try:
                summary = entry.summary()
            except GanzooError as exc:
                summary = f"[red]unavailable[/red]: {exc}"
            table.add_row(name, k, entry.origin, summary)
    console.print(table)


@app.command()
def check(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Validate a recipe (components, parameters, image sizes) and print it resolved."""
    from ganzoo.build import check_recipe
    from ganzoo.recipe import load_recipe

    r = load_recipe(recipe, set_ or [])
    check_recipe(r)
    console.print(r.to_yaml(), highlight=False, markup=False, end="")
    err_console.print(f"[green]ok[/green]: {recipe} is a valid recipe")


@app.command()
def schema() -> None:
    """Print the JSON schema of recipes."""
    from ganzoo.recipe import Recipe

    print(json.dumps(Recipe.model_json_schema(), indent=2))


@app.command(context_settings={"allow_extra_args": False})
def train(
    recipe: Annotated[Optional[Path], typer.Argument(help="recipe YAML file")] = None,  # noqa: UP045
    set_: SetOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="run directory (default runs/NAME)")] = None,  # noqa: UP045
    resume: Annotated[
        Optional[Path], typer.Option(help="continue the run in this directory")  # noqa: UP045
    ] = None,
    nproc: Annotated[int, typer.Option(help="processes on this machine (execs torchrun)")] = 1,
) -> None:
    """Train a recipe (or --resume a run); Ctrl-C saves a checkpoint and stops."""
    if nproc > 1:
        _exec_torchrun(nproc)
    from ganzoo.recipe import load_recipe
    from ganzoo.training.trainer import train as run_training

    if resume is None and recipe is None:
        raise GanzooError("give a recipe to train, or --resume RUN_DIR")
    if resume is not None and recipe is not None:
        raise GanzooError("give either a recipe or --resume RUN_DIR, not both")
    r = None if resume is not None else load_recipe(recipe, set_ or [])
    trainer, final = run_training(
        r, run_dir=resume or out, resume=resume is not None, overrides=set_ or [],
        console=console,
    )
    if not trainer.dist.is_main:
        return
    samples = sorted((trainer.run_dir / "samples").glob("*.png"))
    console.print(f"run dir: {trainer.run_dir}", highlight=False)
    if "val_l1" in final:
        console.print(
            f"step {final['step']}: val L1 {final['val_l1']:.4f}, PSNR {final['val_psnr']:.2f} dB",
            highlight=False,
        )
    if samples:
        console.print(f"samples: {samples[-1]}", highlight=False)
    console.print(f"checkpoint: {final['checkpoint']}", highlight=False)


def _exec_torchrun(nproc: int) -> None:
    """Replace this process by ``torchrun --nproc_per_node N -m ganzoo train ...``."""
    import os

    args, skip = [], False
    for i, a in enumerate(sys.argv[1:]):
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        args.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "ganzoo", *args]
    os.execv(sys.executable, cmd)


@app.command()
def plot(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Optional[Path], typer.Option(help="PNG path (default RUN_DIR/losses.png)")] = None,  # noqa: UP045
) -> None:
    """Plot a run's loss and validation curves to a PNG."""
    from ganzoo.evaluation.plots import plot_run

    console.print(f"wrote {plot_run(run_dir, out)}", highlight=False)


data_app = typer.Typer(no_args_is_help=True, help="Datasets: fetch the pix2pix archives.")
app.add_typer(data_app, name="data")


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="facades, cityscapes, maps, edges2shoes, ...")],
    to: Annotated[Path, typer.Option(help="folder that receives NAME/")] = Path("datasets"),
    from_: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--from", help="a URL or a local NAME.tar.gz instead of the official one"),
    ] = None,
    force: Annotated[bool, typer.Option(help="replace a folder that is already there")] = False,
) -> None:
    """Download and safely unpack an official pix2pix dataset."""
    from ganzoo.data.fetch import fetch_dataset

    path = fetch_dataset(name, to, from_, force=force)
    console.print(f"{name} is ready in {path}", highlight=False)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    err_console.print(f"[yellow]warning[/yellow]: {message}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: one-line errors, no tracebacks for user errors."""
    warnings.showwarning = _show_warning
    try:
        app(args=argv, standalone_mode=False)
    except GanzooError as exc:
        err_console.print(f"[red]error[/red]: {exc}", highlight=False)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except Exception as exc:  # usage errors of the click that typer carries
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
