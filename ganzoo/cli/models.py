"""``ganzoo translate | eval | export | push | pretrained``: using trained generators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ganzoo.cli.common import (
    CheckpointOpt,
    DeviceOpt,
    EmaOpt,
    ModelArg,
    ModeOpt,
    app,
    console,
    err_console,
)


@app.command()
def translate(
    model: ModelArg,
    input_: Annotated[Path, typer.Option("--input", "-i", help="an image or a folder of images")],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for <stem>.* outputs")],
    direction: Annotated[
        str | None,
        typer.Option(help="AtoB or BtoA: the input half of A|B files (default: as trained)"),
    ] = None,
    size: Annotated[str | None, typer.Option(help="N or HxW: resize inputs to this first")] = None,
    resize: Annotated[
        bool,
        typer.Option("--resize/--pad", help="resize to --size (default crop size), or reflect-pad"),
    ] = False,
    paired: Annotated[
        bool | None,
        typer.Option("--paired/--plain", help="inputs are A|B files / plain images (default auto)"),
    ] = None,
    mode: ModeOpt = "auto",
    batch_size: Annotated[int | None, typer.Option(help="default 1 in train mode, else 8")] = None,
    seed: Annotated[int, typer.Option(help="dropout draws in train mode")] = 0,
    ema: EmaOpt = True,
    device: DeviceOpt = "auto",
    out_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="png, png16, tiff, npy, or tiff32 / npy32 (float32) (default: the input's kind "
            "and depth)",
        ),
    ] = None,
    max_pixels: Annotated[
        int | None,
        typer.Option(min=1, help="pixels G may run on per image (default 3145728, e.g. 2048x1536)"),
    ] = None,
    page: Annotated[
        bool,
        typer.Option(help="also write OUTPUT/index.html: input | output | target per image"),
    ] = False,
    checkpoint: CheckpointOpt = "last",
) -> None:
    """Translate images with a trained generator; writes OUTPUT/<stem>.<ending> per input (the
    input's kind and depth, or --format)."""
    from ganzoo.evaluation.translate import translate as run_translate

    layout = "auto" if paired is None else ("paired" if paired else "plain")
    result = run_translate(
        model,
        input_,
        output,
        direction=direction,
        size=size,
        fit="resize" if resize else "pad",
        mode=mode,
        batch_size=batch_size,
        layout=layout,
        use_ema=ema,
        device=device,
        seed=seed,
        out_format=out_format,  # type: ignore[arg-type]
        max_pixels=max_pixels,
        checkpoint=checkpoint,
    )
    pairs = f", {result.paired} read as A|B ({result.direction})" if result.paired else ""
    console.print(
        f"translated {len(result.outputs)} image(s){pairs} in {result.mode} mode -> {output}",
        highlight=False,
    )
    if result.inference is not None:
        console.print(f"mode: {result.inference.describe()}", highlight=False)
    console.print(f"generator: {result.info.describe()}", highlight=False)
    if page:
        from ganzoo.evaluation.translate import input_files
        from ganzoo.report.translations import write_translation_page

        html = write_translation_page(
            input_files(input_),
            output,
            result.recipe,
            direction=result.direction,
            layout=layout,
            out_format=out_format,
            title=f"ganzoo translate {model}",
        )
        console.print(f"wrote {html}", highlight=False)


@app.command()
def calibrate(
    run_dir: Annotated[str, typer.Argument(help="run directory or step_*.pt checkpoint")],
    images: Annotated[int, typer.Option(help="training images to average over")] = 400,
    split: Annotated[
        str | None, typer.Option(help="split to draw them from (default: the training split)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="dataset root instead of the recipe's data.root")
    ] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Recompute G's BatchNorm running statistics over training images (precise BN) and write
    them into the checkpoint: eval mode and exports then use population statistics."""
    from ganzoo.training.calibrate_run import calibrate_run

    result = calibrate_run(run_dir, images=images, split=split, data_root=data, device=device)
    console.print(result.describe(), highlight=False)


@app.command("eval")
def eval_cmd(
    run_dir: ModelArg,
    split: Annotated[str, typer.Option(help="val, test or any split folder")] = "val",
    data: Annotated[
        Path | None, typer.Option(help="dataset root instead of the recipe's data.root")
    ] = None,
    num_samples: Annotated[int, typer.Option(help="rows in the eval/<split>.png sheet")] = 8,
    fid: Annotated[bool, typer.Option(help="also FID and KID (Inception weights needed)")] = False,
    inception_weights: Annotated[
        Path | None,
        typer.Option(help="weights-inception-2015-12-05-6726825d.pth, if not in the torch cache"),
    ] = None,
    perceptual: Annotated[
        bool,
        typer.Option(
            help="also LPIPS (AlexNet, VGG16) and DISTS, where their torchvision weights are in "
            "the torch hub cache"
        ),
    ] = True,
    mode: ModeOpt = "auto",
    batch_size: Annotated[int | None, typer.Option(help="default 1 in train mode, else 8")] = None,
    ema: EmaOpt = True,
    device: DeviceOpt = "auto",
    checkpoint: CheckpointOpt = "last",
) -> None:
    """Score a trained generator on a split: L1, PSNR, SSIM, LPIPS, DISTS (and FID/KID); writes
    RUN_DIR/eval/."""
    from ganzoo.workflows import evaluate

    r = evaluate(
        run_dir,
        split,
        data_root=data,
        mode=mode,
        num_samples=num_samples,
        fid=fid,
        inception_weights=inception_weights,
        use_ema=ema,
        batch_size=batch_size,
        device=device,
        perceptual=perceptual,
        checkpoint=checkpoint,
    )
    console.print(
        f"{r.recipe} step {r.step} on {r.split} ({r.n} images, {r.mode_used} "
        f"mode{', EMA weights' if r.ema else ''})",
        highlight=False,
    )
    console.print(f"mode: {r.mode_line}", highlight=False)
    table = Table("metric", "value", header_style="bold")
    rows = [("L1 [-1,1]", f"{r.l1:.4f}"), ("PSNR dB", f"{r.psnr:.2f}"), ("SSIM", f"{r.ssim:.4f}")]
    for label, value in (("LPIPS (AlexNet)", r.lpips_alex), ("LPIPS (VGG16)", r.lpips_vgg)):
        if value is not None:
            rows.append((label, f"{value:.4f}"))
    if r.dists is not None:
        rows.append(("DISTS", f"{r.dists:.4f}"))
    if r.fid is not None:
        rows += [("FID", f"{r.fid:.2f}"), ("KID", f"{r.kid:.4f} ± {r.kid_std:.4f}")]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for note in r.notes:
        err_console.print(f"note: {note}", highlight=False)
    console.print(f"wrote {r.json}" + (f" and {r.sheet}" if r.sheet else ""), highlight=False)


@app.command()
def export(
    run_dir: ModelArg,
    format_: Annotated[
        str, typer.Option("--format", help="safetensors, torchscript, onnx or hub (a folder)")
    ] = "safetensors",
    out: Annotated[
        Path | None, typer.Option(help="file, or folder for hub (default RUN_DIR/export/...)")
    ] = None,
    size: Annotated[
        str | None, typer.Option(help="N or HxW example input (default crop size)")
    ] = None,
    ema: EmaOpt = True,
) -> None:
    """Export a trained generator (EMA weights if kept) with its recipe for use outside ganzoo;
    --format hub writes a Hugging Face Hub folder with a model card."""
    if format_ == "hub":
        from ganzoo.artifacts.hub import export_hub_folder

        folder = export_hub_folder(run_dir, out, use_ema=ema)
        files = ", ".join(sorted(p.name for p in folder.iterdir()))
        console.print(f"wrote {folder} ({files})", highlight=False)
        return
    from ganzoo.evaluation.export import export_generator

    e = export_generator(run_dir, format_, out=out, size=size, use_ema=ema)
    hw = f"{e.size[0]}x{e.size[1]}"
    shape = {
        "onnx": "dynamic batch, height, width" if e.dynamic else f"fixed size {hw}",
        "torchscript": f"traced at {hw}",
    }.get(e.format, "weights + recipe")
    console.print(
        f"wrote {e.path} ({e.format}, {e.nbytes / 2**20:.1f} MiB, {shape})", highlight=False
    )
    console.print(f"generator: {e.info.describe()}", highlight=False)


@app.command()
def push(
    run_dir: ModelArg,
    repo_id: Annotated[str, typer.Argument(help="NAMESPACE/NAME on the Hugging Face Hub")],
    private: Annotated[bool, typer.Option(help="create the repository private")] = False,
    ema: EmaOpt = True,
    space: Annotated[
        bool, typer.Option(help="push the demo (`ganzoo demo --export`) as a Gradio Space")
    ] = False,
) -> None:
    """Upload a trained generator to the Hugging Face Hub (the folder of --format hub), or its
    demo as a Space with --space; the token comes from HF_TOKEN or `huggingface-cli login`."""
    if space:
        from ganzoo.demo.export import push_space

        url = push_space(run_dir, repo_id, private=private, use_ema=ema)
        console.print(f"pushed the demo to the Space {repo_id}: {url}", highlight=False)
        return
    from ganzoo.artifacts.hub import push as push_to_hub

    url = push_to_hub(run_dir, repo_id, private=private, use_ema=ema)
    console.print(f"pushed to {repo_id}: {url}", highlight=False)
    console.print(f"load it with ganzoo.load('hf://{repo_id}')", highlight=False)


pretrained_app = typer.Typer(
    no_args_is_help=True, help="The official pretrained pix2pix generators."
)
app.add_typer(pretrained_app, name="pretrained")


@pretrained_app.command("list")
def pretrained_list() -> None:
    """The official pix2pix models: task, data, direction, upstream flags, licence."""
    from ganzoo.pretrained import CATALOG, LICENCE

    table = Table("name", "task", "dataset", "direction", "upstream flags", header_style="bold")
    for p in CATALOG.values():
        table.add_row(p.name, p.task, f"{p.dataset} ({p.data_source})", p.direction, p.flags)
    console.print(table)
    console.print(f"licence and citation: {LICENCE}", highlight=False)


@pretrained_app.command("fetch")
def pretrained_fetch(
    name: Annotated[str, typer.Argument(help="a name from `ganzoo pretrained list`")],
    to: Annotated[Path, typer.Option(help="folder that receives the run directory NAME/")] = (
        Path("runs") / "pretrained"
    ),
    from_: Annotated[
        str | None, typer.Option("--from", help="a mirror of the authors' models folder (URL)")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="download and import again")] = False,
    sha256: Annotated[
        str | None, typer.Option(help="the file's SHA-256 to insist on (64 hex digits)")
    ] = None,
) -> None:
    """Download an official pix2pix generator and import it as a run directory."""
    from ganzoo.pretrained import fetch_pretrained

    result = fetch_pretrained(name, to, base_url=from_, overwrite=overwrite, sha256=sha256)
    verb = "downloaded and imported" if result.downloaded else "already present in"
    console.print(f"{name}: {verb} {result.run_dir}", highlight=False)
    m = result.model
    console.print(
        f"translate with: ganzoo translate {result.run_dir} --input {m.dataset} A|B files or "
        f"inputs --output OUT (direction {m.direction})",
        highlight=False,
    )
