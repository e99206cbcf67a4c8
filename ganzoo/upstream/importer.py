"""``ganzoo import weights``: an upstream checkpoint -> a ganzoo run directory.

The source is an upstream checkpoint folder (``checkpoints/NAME/`` with ``latest_net_G.pth``,
optionally ``latest_net_D.pth`` and the ``train_opt.txt`` / ``opt.txt`` written beside them)
or a ``*_net_G.pth`` file. The architecture comes from that options file, from flags, or from
both (flags win). The files are read with ``torch.load(weights_only=True)`` only. The result is
an ordinary run directory: ``recipe.yaml`` (the equivalent recipe) and
``checkpoints/step_00000000.pt`` holding G (and D when there is one) and where they came from,
which ``translate``, ``eval`` and ``export`` use as any run, and ``train --resume`` fine-tunes
(optimizers start fresh, ``--set data.root=...`` points at the data).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ganzoo.artifacts.checkpoint import save_checkpoint
from ganzoo.artifacts.schema import checkpoint_header
from ganzoo.build import build_discriminator, build_generator
from ganzoo.errors import GanzooError
from ganzoo.recipe import Recipe
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import load_weights
from ganzoo.upstream.options import (
    Family,
    UpstreamOptions,
    new_options,
    parse_flags,
    read_options,
)
from ganzoo.upstream.weights import (
    clean,
    discriminator_hint,
    generator_hint,
    rename_multiscale,
    to_ganzoo,
)

OPTION_FILES = ("train_opt.txt", "opt.txt")


@dataclass(frozen=True)
class Imported:
    """What :func:`import_checkpoint` wrote."""

    run_dir: Path
    checkpoint: Path
    recipe: Recipe
    generator_file: Path
    discriminator_file: Path | None
    options: UpstreamOptions


def find_files(source: Path, epoch: str = "latest") -> tuple[Path, Path | None, Path | None]:
    """(G file, D file or None, options file or None) of an upstream folder or G file."""
    source = Path(source)
    if source.is_dir():
        g = source / f"{epoch}_net_G.pth"
        if not g.is_file():
            found = sorted(p.name for p in source.glob("*_net_G.pth"))
            listing = f" (found: {', '.join(found[:5])})" if found else ""
            raise GanzooError(
                f"{source}: no {g.name}{listing}; pass the generator file itself or --epoch"
            )
        folder = source
    elif source.is_file():
        g, folder = source, source.parent
    else:
        raise GanzooError(f"{source}: no such upstream checkpoint folder or file")
    stem = g.name[: -len("_net_G.pth")] if g.name.endswith("_net_G.pth") else None
    d = folder / f"{stem}_net_D.pth" if stem is not None else None
    opt = next((folder / n for n in OPTION_FILES if (folder / n).is_file()), None)
    return g, d if d is not None and d.is_file() else None, opt


def resolve_options(
    options_file: Path | None, flags: str | None, family: Family | None
) -> UpstreamOptions:
    """The options file (if any) with ``flags`` on top; the family's defaults without either."""
    if options_file is not None:
        options = read_options(options_file, family)
    else:
        options = new_options(family or "pix2pix")
    if flags:
        options = parse_flags(flags, options.family, base=options)
    return options


def load_upstream(path: Path, what: str) -> dict[str, torch.Tensor]:
    state = load_weights(path, f"upstream {what} checkpoint")
    if not isinstance(state, dict):
        raise GanzooError(f"{path}: not a state dict (a {type(state).__name__})")
    return clean(state)


def import_checkpoint(
    source: str | Path,
    out: str | Path,
    *,
    options_file: str | Path | None = None,
    flags: str | None = None,
    family: Family | None = None,
    discriminator: str | Path | None = None,
    epoch: str = "latest",
    overwrite: bool = False,
    overrides: dict[str, object] | None = None,
) -> Imported:
    """Import an upstream checkpoint into the run directory ``out`` (see the module docstring).

    ``overrides`` replace recipe keys of the converted recipe (dotted keys), e.g.
    ``{"data.root": "datasets/facades"}``. A mismatch between the file and the architecture
    is a one-line error naming the key or shape and the flag that probably caused it.
    """
    g_file, d_file, found_options = find_files(Path(source), epoch)
    if discriminator is not None:
        d_file = Path(discriminator)
    opt_path = Path(options_file) if options_file is not None else found_options
    if opt_path is None and not flags:
        warnings.warn(
            f"no {' or '.join(OPTION_FILES)} beside {g_file.name} and no --flags: assuming the "
            "upstream defaults (pix2pix: --netG unet_256 --norm batch)",
            stacklevel=2,
        )
    options = resolve_options(opt_path, flags, family)
    recipe = options.to_recipe()
    if overrides:
        from ganzoo.recipe import from_dict
        from ganzoo.recipe_tree import apply_overrides

        tree = apply_overrides(recipe.to_dict(), [f"{k}={v}" for k, v in overrides.items()])
        recipe = from_dict(tree, source="import overrides")
    state: dict[str, object] = checkpoint_header(recipe.to_dict(), 0, 0, 0)
    state["imported"] = {
        "generator": str(g_file),
        "discriminator": str(d_file) if d_file else "",
        "options": options.source,
        "family": options.family,
    }
    g_net = build_generator(recipe)
    state["generator"] = to_ganzoo(
        load_upstream(g_file, "generator"), g_net, hint=generator_hint(options), file=g_file
    )
    if d_file is not None:
        d_state = load_upstream(d_file, "discriminator")
        if options.family == "pix2pixhd":
            d_state = rename_multiscale(d_state, int(options["num_D"]))
        state["discriminator"] = to_ganzoo(
            d_state,
            build_discriminator(recipe),
            hint=discriminator_hint(options),
            file=d_file,
        )
    run = RunDir(out)
    run.start_new(recipe, overwrite=overwrite)
    try:
        ckpt = save_checkpoint(state, run.checkpoints, 0, recipe.train.keep_checkpoints)
    finally:
        run.release()
    return Imported(run.path, ckpt, recipe, g_file, d_file, options)
