"""The ``ganzoo`` command: thin, it parses, calls the library and prints.

User errors (:class:`ganzoo.errors.GanzooError`) print as one line on stderr with exit code 2.
"""

from __future__ import annotations

import json
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated

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
    check_recipe(r)
    console.print(r.to_yaml(defaults=True), highlight=False, markup=False, end="")
    err_console.print(f"[green]ok[/green]: {recipe} is a valid recipe")


@app.command()
def schema() -> None:
    """Print the JSON schema of recipes."""
    from ganzoo.recipe import Recipe

    print(json.dumps(Recipe.model_json_schema(), indent=2))


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
    from ganzoo.recipe import load_recipe
    from ganzoo.run_dir import RunDir
    from ganzoo.training.trainer import train as run_training

    if resume is None and recipe is None:
        raise GanzooError("give a recipe to train, or --resume RUN_DIR")
    if resume is not None and recipe is not None:
        raise GanzooError("give either a recipe or --resume RUN_DIR, not both")
    if resume is not None and (out is not None or overwrite):
        raise GanzooError(
            "--resume continues RUN_DIR in place; --out and --overwrite are for new runs"
        )
    if nproc < 1:
        raise GanzooError(f"--nproc {nproc}: must be at least 1")
    r = None if resume is not None else load_recipe(recipe, set_ or [])
    if nproc > 1:  # validated here, so a bad recipe fails once, not in every process
        if resume is not None:
            RunDir(resume).resume_recipe(set_ or [])
        elif out is not None and RunDir(out).contents() and not overwrite:
            raise GanzooError(
                f"{out} already holds files; pass --overwrite or choose another --out"
            )
        _run_torchrun(nproc, _ARGV)
    trainer, final = run_training(
        r,
        run_dir=resume or out,
        resume=resume is not None,
        overwrite=overwrite,
        overrides=set_ or [],
        console=console,
    )
    if not trainer.dist.is_main:
        return  # under torchrun the launching process reports a stop (_run_torchrun)
    samples = sorted(trainer.run.samples.glob("*.png"))
    console.print(f"run dir: {trainer.run_dir}", highlight=False)
    if samples:
        console.print(f"samples: {samples[-1]}", highlight=False)
    console.print(f"checkpoint: {final['checkpoint']}", highlight=False)
    if trainer.stop_requested is not None and not trainer.dist.enabled:
        raise typer.Exit(_signal_exit_code(trainer.stop_requested))  # saved, then 130 / 143


def _signal_exit_code(name: str) -> int:
    """128 + the number of the signal named ``name`` (``'SIGINT'`` -> 130); 130 otherwise."""
    return 128 + int(getattr(signal.Signals, name, signal.SIGINT))


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


def _run_torchrun(nproc: int, argv: list[str]) -> None:
    """Run torchrun in this process on the same ``ganzoo train`` command. Ctrl-C or SIGTERM
    reaches the ranks through torchrun (they save and stop), then this exits 130 / 143 with one
    line instead of torchrun's traceback; a failed rank is one line too (its error is above)."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(torchrun_command(nproc, argv)[3:])
    noisy = [n for n in list(logging.root.manager.loggerDict) if n.startswith("torch.distributed")]
    levels = {name: logging.getLogger(name).level for name in noisy}
    for name in noisy:  # not "Received 2 death signal, shutting down workers" and the like
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        run(args)
    except SignalException as exc:
        raise typer.Exit(128 + int(exc.sigval)) from None
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        how = failure.signal_name() if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        err_console.print(f"[red]error[/red]: rank {rank} failed ({how}); its error is above")
        raise typer.Exit(failure.exitcode if failure.exitcode in (1, 2) else 1) from None
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    raise typer.Exit(0)


@app.command()
def plot(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path | None, typer.Option(help="PNG path (default RUN_DIR/losses.png)")] = None,
) -> None:
    """Plot a run's loss and validation curves to a PNG."""
    from ganzoo.evaluation.plots import plot_run

    console.print(f"wrote {plot_run(run_dir, out)}", highlight=False)


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
EmaOpt = Annotated[bool, typer.Option("--ema/--no-ema", help="use the EMA weights if kept")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda")]
ModeOpt = Annotated[
    str,
    typer.Option(
        help="auto: per-sample BN stats for BN trained at batch 1, else eval; eval: BN running "
        "stats, no dropout; train: batch stats + dropout"
    ),
]


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
    from ganzoo.evaluation.calibrate import calibrate_run

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
    mode: ModeOpt = "auto",
    batch_size: Annotated[int | None, typer.Option(help="default 1 in train mode, else 8")] = None,
    ema: EmaOpt = True,
    device: DeviceOpt = "auto",
) -> None:
    """Score a trained generator on a split: L1, PSNR, SSIM (and FID/KID); writes RUN_DIR/eval/."""
    from ganzoo.evaluation.evaluate import evaluate_run

    r = evaluate_run(
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
    )
    console.print(
        f"{r['recipe']} step {r['step']} on {r['split']} ({r['n']} images, {r['mode_used']} "
        f"mode{', EMA weights' if r['ema'] else ''})",
        highlight=False,
    )
    console.print(f"mode: {r['mode_line']}", highlight=False)
    table = Table("metric", "value", header_style="bold")
    rows = [
        ("L1 [-1,1]", f"{r['l1']:.4f}"),
        ("PSNR dB", f"{r['psnr']:.2f}"),
        ("SSIM", f"{r['ssim']:.4f}"),
    ]
    if "fid" in r:
        rows += [("FID", f"{r['fid']:.2f}"), ("KID", f"{r['kid']:.4f} ± {r['kid_std']:.4f}")]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(
        f"wrote {r['json']}" + (f" and {r['sheet']}" if "sheet" in r else ""), highlight=False
    )


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
        from ganzoo.artifacts.sources import find_checkpoint, output_base
        from ganzoo.run_dir import RunDir

        target = out or RunDir(output_base(run_dir, find_checkpoint(run_dir))).export_dir / "hub"
        folder = export_hub_folder(run_dir, target, use_ema=ema)
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
) -> None:
    """Upload a trained generator to the Hugging Face Hub (the folder of --format hub); the
    token comes from HF_TOKEN or `huggingface-cli login`."""
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
    check_recipe(r)
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


@app.command()
def report(
    source: Annotated[Path, typer.Argument(help="a run directory or an ablation directory")],
    out: Annotated[Path | None, typer.Option(help="the HTML file (default SOURCE/report.html)")] = (
        None
    ),
) -> None:
    """One self-contained HTML page of a run or an ablation (opens offline)."""
    from ganzoo.report import write_report

    console.print(f"wrote {write_report(source, out)}", highlight=False)


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
    partition: Annotated[str | None, typer.Option(help="submitit: SLURM partition")] = None,
    gpus_per_node: Annotated[int | None, typer.Option(help="submitit: GPUs per run")] = None,
    cpus_per_task: Annotated[
        int | None, typer.Option(help="submitit: CPUs per run (its torch threads)")
    ] = None,
    time: Annotated[int | None, typer.Option(help="submitit: minutes per run")] = None,
    mem_gb: Annotated[float | None, typer.Option(help="submitit: memory per run, GB")] = None,
    fid: Annotated[
        bool, typer.Option(help="also FID and KID per run (skipped when no Inception weights)")
    ] = False,
    inception_weights: Annotated[
        Path | None, typer.Option(help="the Inception weights file for --fid")
    ] = None,
) -> None:
    """Train every variant of an ablation the same way (resumable) and compare them."""
    from ganzoo.ablation import load_plan, run_ablation, write_report
    from ganzoo.launchers.base import build_launcher, parse_options
    from ganzoo.run_dir import RunDir

    if report is not None:
        if source is not None or vary or seeds or steps or set_:
            raise GanzooError("--report DIR rebuilds a finished ablation; give nothing else")
        write_report(report, console)
        return
    if source is None:
        raise GanzooError("give an ablation spec (or a recipe with --vary), or --report DIR")
    plan = load_plan(source, set_ or [], vary=vary, seeds=seeds, steps=steps)
    if jobs is not None and launcher is None and not plan.launcher.get("name"):
        launcher = "local"
    options = parse_options(launcher_opt or [])
    options.update(
        jobs=jobs,
        threads_per_run=threads_per_run,
        partition=partition,
        gpus_per_node=gpus_per_node,
        cpus_per_task=cpus_per_task,
        time=time,
        mem_gb=mem_gb,
    )
    runner = build_launcher(plan.launcher, launcher, options)
    inception = _inception_or_none(inception_weights) if fid else None
    out = out or Path("runs") / "ablations" / plan.name
    runs = len(plan.variants) * len(plan.seeds)
    console.print(
        f"ablation {plan.name}: {len(plan.variants)} variants x {len(plan.seeds)} seeds = "
        f"{runs} runs of {plan.max_steps} steps into {out}",
        highlight=False,
    )
    outcomes = run_ablation(plan, out, console=console, launcher=runner, inception=inception)
    claimed = [o for o in outcomes if o.action == "claimed"]
    for o in claimed:
        console.print(f"{o.run_dir.name}: left alone, {o.error}", highlight=False)
    failed = [o for o in outcomes if o.action in ("failed", "stopped")]
    reported = len(failed) + len(claimed) < len(outcomes) or any(
        RunDir(o.run_dir).eval_dir.is_dir() for o in outcomes
    )
    if reported:
        write_report(out, console)
    if failed or claimed:  # an unfinished ablation never exits 0
        from ganzoo.errors import StoppedError

        where = out / "results.md" if reported else out / "logs"
        parts = [f"{len(failed)} run(s) failed or stopped " if failed else ""]
        if failed:
            parts[0] += f"({', '.join(o.run_dir.name for o in failed)}; errors in {where})"
        if claimed:
            names = ", ".join(o.run_dir.name for o in claimed)
            parts.append(f"{len(claimed)} run(s) unfinished, held by another launch ({names})")
        message = "; ".join(p for p in parts if p) + "; run the same command again to retry them"
        signum = next((o.signum for o in outcomes if o.signum), None)
        raise StoppedError(message, signum) if signum else GanzooError(message)


def _inception_or_none(weights: Path | None) -> str | None:
    """The Inception weights for --fid, or None after a one-line note (the ablation goes on)."""
    from ganzoo.evaluation.fid import inception_weights, require_torch_fidelity

    try:
        require_torch_fidelity()
        return str(inception_weights(weights, download=False))
    except GanzooError as exc:
        err_console.print(f"--fid: left out ({exc})", highlight=False)
        return None


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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    err_console.print(f"[yellow]warning[/yellow]: {message}", highlight=False)


_ARGV: list[str] = []


def _peer_lost(exc: BaseException) -> str | None:
    """One line for a rank whose peer died (see ganzoo.training.distributed.peer_lost)."""
    if "torch.distributed" not in sys.modules:
        return None
    from ganzoo.training.distributed import peer_lost

    return peer_lost(exc)


def _open_closed_streams() -> None:
    """A closed stdout or stderr (``>&-``; Python sets it to None) becomes /dev/null, with one
    line on stderr when only stdout is closed: the command runs, what it prints is discarded."""
    import os

    for name in ("stderr", "stdout"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - lives as long as sys
            if name == "stdout":
                err_console.print(
                    "[yellow]warning[/yellow]: stdout is closed (>&-); what ganzoo prints there "
                    "is discarded",
                    highlight=False,
                )


class Terminated(BaseException):
    """SIGTERM outside training: unwinds like Ctrl-C, so partial files are cleaned up."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: one-line errors, no tracebacks for user errors.

    Exit codes: 0 success, 2 a user error (one line on stderr), 1 a failure of the system
    (disk, permissions), 130 Ctrl-C, 143 SIGTERM (a training stops after the current step
    with a checkpoint first, then exits the same way).
    """
    global _ARGV
    _ARGV = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    _open_closed_streams()
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (tests)
        previous = None
    try:
        code = app(args=argv, standalone_mode=False)
    except GanzooError as exc:  # exit 2; a full disk 1; a run stopped by a signal 130 / 143
        err_console.print(f"[red]error[/red]: {exc}", highlight=False)
        return exc.exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except Terminated:
        err_console.print("terminated (a run keeps its last checkpoint; --resume continues it)")
        return 143
    except typer.Abort:
        code = 130
    except OSError as exc:  # a full disk, a permission, a folder where a file was expected
        where = f": {exc.filename}" if exc.filename else ""
        err_console.print(f"[red]error[/red]: {exc.strerror or exc}{where}", highlight=False)
        return 1
    except Exception as exc:  # usage errors of the click that typer carries
        if callable(getattr(exc, "show", None)) and isinstance(
            getattr(exc, "exit_code", None), int
        ):
            exc.show()
            return exc.exit_code
        lost = _peer_lost(exc)
        if lost:  # the dead rank's own error says what happened; this one adds nothing
            err_console.print(f"[red]error[/red]: {lost}", highlight=False)
            return 1
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if code == 130:  # typer turns Ctrl-C into this exit code
        err_console.print("interrupted (a run keeps its last checkpoint; --resume continues it)")
    elif code == 143:
        err_console.print("terminated (a run keeps its last checkpoint; --resume continues it)")
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
