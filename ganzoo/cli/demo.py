"""``ganzoo demo``: the model on a local web page, or exported as a folder / Space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ganzoo.cli.common import DeviceOpt, EmaOpt, app, console


@app.command()
def demo(
    source: Annotated[
        str | None,
        typer.Argument(
            help="run directory, checkpoint, .safetensors, Hub folder, hf://NAMESPACE/NAME or a "
            "pretrained model's name (default: the newest runs/quickstart-* run)",
            show_default=False,
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(help="write a self-contained demo folder (app.py, model) here instead"),
    ] = None,
    input_: Annotated[
        str | None,
        typer.Option("--input", help="sketch, labels or image (default: from the recipe)"),
    ] = None,
    host: Annotated[
        str, typer.Option(help="address to serve on; 127.0.0.1 is this machine only")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to serve on")] = 7860,
    ema: EmaOpt = True,
    device: DeviceOpt = "auto",
) -> None:
    """Serve a page where you draw a sketch, paint a label map or upload an image and see the
    model's output (needs the extra: pip install 'ganzoo\\[demo]')."""
    from ganzoo.demo.model import newest_quickstart

    chosen = source if source is not None else str(newest_quickstart())
    if source is None:
        console.print(f"no SOURCE given: the newest quickstart run, {chosen}", highlight=False)
    if export is not None:
        from ganzoo.demo.export import export_demo

        folder = export_demo(chosen, export, kind=input_, use_ema=ema)
        files = ", ".join(sorted(p.name for p in folder.iterdir()))
        console.print(f"wrote {folder} ({files})", highlight=False)
        console.print(f"run it with: cd {folder} && python app.py", highlight=False)
        return
    from ganzoo.demo.page import serve

    serve(
        chosen,
        kind=input_,
        host=host,
        port=port,
        device=device,
        ema=ema,
        announce=lambda line: console.print(line, highlight=False),
    )
