"""``ganzoo import | data``: upstream checkpoints, options and datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ganzoo.cli.common import app, console
from ganzoo.errors import GanzooError

import_app = typer.Typer(
    no_args_is_help=True, help="Bring in upstream pix2pix / pix2pixHD checkpoints and options."
)
app.add_typer(import_app, name="import")
FlagsOpt = Annotated[
    str | None,
    typer.Option(help="upstream flags, e.g. '--netG unet_128 --ngf 32 --no_dropout' (win)"),
]
FamilyOpt = Annotated[
    str | None, typer.Option(help="pix2pix or pix2pixhd (default: from the options file)")
]


def _family(family: str | None):  # noqa: ANN202 - a Literal
    if family not in (None, "pix2pix", "pix2pixhd"):
        raise GanzooError(f"--family {family}: use pix2pix or pix2pixhd")
    return family


@import_app.command("weights")
def import_weights(
    source: Annotated[
        Path, typer.Argument(help="upstream checkpoints/NAME/ folder or a *_net_G.pth file")
    ],
    out: Annotated[Path, typer.Option(help="the run directory to write")],
    options: Annotated[
        Path | None, typer.Option(help="train_opt.txt / opt.txt (default: beside the file)")
    ] = None,
    flags: FlagsOpt = None,
    family: FamilyOpt = None,
    discriminator: Annotated[
        Path | None, typer.Option(help="the *_net_D.pth file (default: beside G)")
    ] = None,
    epoch: Annotated[str, typer.Option(help="which checkpoint of a folder: latest, 200, ...")] = (
        "latest"
    ),
    overwrite: Annotated[bool, typer.Option(help="move an existing --out aside")] = False,
) -> None:
    """Import an upstream G (and D) into a run directory that translate/eval/export and
    train --resume (fine-tuning) accept."""
    from ganzoo.upstream import import_checkpoint

    result = import_checkpoint(
        source,
        out,
        options_file=options,
        flags=flags,
        family=_family(family),
        discriminator=discriminator,
        epoch=epoch,
        overwrite=overwrite,
    )
    r = result.recipe
    console.print(
        f"imported {result.generator_file}"
        + (f" and {result.discriminator_file}" if result.discriminator_file else "")
        + f" ({result.options.family}, options from {result.options.source})",
        highlight=False,
    )
    console.print(
        f"generator {r.generator.name} {r.generator.params}, discriminator "
        f"{r.discriminator.name} {r.discriminator.params}",
        highlight=False,
    )
    console.print(
        f"run dir: {result.run_dir} (checkpoint {result.checkpoint.name})", highlight=False
    )


@import_app.command("options")
def import_options(
    options: Annotated[Path | None, typer.Argument(help="an upstream train_opt.txt / opt.txt")] = (
        None
    ),
    flags: FlagsOpt = None,
    family: FamilyOpt = None,
    out: Annotated[Path | None, typer.Option(help="write the recipe here (default: stdout)")] = (
        None
    ),
) -> None:
    """Convert upstream options (a file, flags, or both) into an equivalent recipe."""
    from ganzoo.safe_io import write_text_atomic
    from ganzoo.upstream.importer import resolve_options

    if options is None and not flags:
        raise GanzooError("give an options file or --flags")
    recipe = resolve_options(options, flags, _family(family)).to_recipe()
    text = recipe.to_yaml()
    if out is None:
        print(text, end="")
    else:
        write_text_atomic(out, text)
        console.print(f"wrote {out}", highlight=False)


data_app = typer.Typer(no_args_is_help=True, help="Datasets: fetch the pix2pix archives.")
app.add_typer(data_app, name="data")


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="facades, cityscapes, maps, edges2shoes, ...")],
    to: Annotated[Path, typer.Option(help="folder that receives NAME/")] = Path("datasets"),
    from_: Annotated[
        str | None,
        typer.Option("--from", help="a URL or a local NAME.tar.gz instead of the official one"),
    ] = None,
    force: Annotated[bool, typer.Option(help="replace a folder that is already there")] = False,
) -> None:
    """Download and safely unpack an official pix2pix dataset."""
    from ganzoo.data.fetch import fetch_dataset

    path = fetch_dataset(name, to, from_, force=force)
    console.print(f"{name} is ready in {path}", highlight=False)
