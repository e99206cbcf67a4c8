"""``ganzoo list | check | schema | show | docs``: the registry and recipes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ganzoo import registry
from ganzoo.cli.common import RecipeArg, SetOpt, app, console, err_console
from ganzoo.errors import GanzooError


def _kind(kind: str) -> str:
    k = kind.lower().rstrip("s") if kind.lower() != "attention" else "attention"
    if k not in registry.KINDS:
        raise GanzooError(f"unknown kind '{kind}'; kinds are: {', '.join(registry.KINDS)}")
    return k


@app.command("list")
def list_cmd(
    kind: Annotated[str | None, typer.Argument(help="generator, discriminator, ...")] = None,
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
    terms = check_recipe(r)
    console.print(r.to_yaml(defaults=True), highlight=False, markup=False, end="")
    err_console.print(f"[green]ok[/green]: {recipe} is a valid recipe")
    err_console.print(_terms_line(terms), highlight=False, markup=False)


@app.command()
def schema() -> None:
    """Print the JSON schema of recipes."""
    from ganzoo.recipe import Recipe

    print(json.dumps(Recipe.model_json_schema(), indent=2))


@app.command()
def show(
    recipe: RecipeArg,
    set_: SetOpt = None,
    receptive_fields: Annotated[bool, typer.Option(help="probe D's receptive fields")] = True,
) -> None:
    """Build a recipe's G and D at its crop size: params, output shapes, FLOPs, receptive
    fields."""
    from ganzoo.build import check_recipe
    from ganzoo.recipe import load_recipe
    from ganzoo.summary import summarize

    r = load_recipe(recipe, set_ or [])
    terms = check_recipe(r)
    h, w = r.data.image_size
    table = Table(
        "",
        "name",
        "params",
        "input",
        "output(s)",
        "GFLOPs/fwd",
        "receptive field",
        title=f"{r.name} at {h}x{w}, batch 1",
        header_style="bold",
    )
    for s in summarize(r, receptive_fields=receptive_fields):
        shapes = ", ".join("x".join(str(d) for d in shape[1:]) for shape in s.output_shapes)
        rf = (
            ", ".join(
                f"{a}x{b}" + (" (whole input)" if a >= h and b >= w else "")
                for a, b in s.receptive_fields
            )
            or "-"
        )
        table.add_row(
            s.role,
            s.name,
            f"{s.params:,}",
            "x".join(str(d) for d in s.input_shape[1:]),
            shapes,
            f"{s.gflops:.2f}",
            rf,
        )
    console.print(table)
    console.print(_terms_line(terms), highlight=False, markup=False)


def _terms_line(terms: Any) -> str:
    """What the step adds to the objective: ``loss.regularizers`` and D's own terms."""
    lines = terms.describe()
    if not lines:
        return "step terms: none (no loss.regularizers)"
    return "step terms, in order:\n" + "\n".join(f"  {line}" for line in lines)


docs_app = typer.Typer(no_args_is_help=True, help="Generated documentation.")
app.add_typer(docs_app, name="docs")


@docs_app.command("components")
def docs_components(
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Write docs/components.md from the registry."""
    from ganzoo.catalogue import components_markdown
    from ganzoo.safe_io import write_text_atomic

    text = components_markdown()
    if out is None:
        print(text, end="")
    else:
        write_text_atomic(out, text)
        console.print(f"wrote {out}", highlight=False)
