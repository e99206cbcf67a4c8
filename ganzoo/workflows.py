"""Training, scoring and ablations from Python, as the ``ganzoo`` commands run them::

    >>> import ganzoo
    >>> result = ganzoo.train("recipes/quickstart.yaml", overrides=["train.max_steps=200"])
    >>> scores = ganzoo.evaluate(result.run_dir, "val")            # an EvalRecord
    >>> study = ganzoo.ablate("recipes/ablations/discriminators.yaml", jobs=2)   # AblationResult

``train_distributed`` is ``ganzoo train --nproc N`` (torchrun on this machine). Each returns a
typed record (:mod:`ganzoo.results`); errors a user can cause are
:class:`ganzoo.errors.GanzooError` with a one-line message, as on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from ganzoo.errors import GanzooError
from ganzoo.results import AblationResult, EvalRecord, TrainResult


def _train_argv(
    recipe: str | Path | None,
    overrides: list[str],
    out: Path | None,
    resume: Path | None,
    overwrite: bool,
) -> list[str]:
    """The ``ganzoo train`` command line of these arguments (what torchrun runs per rank)."""
    argv = ["train"]
    if recipe is not None:
        argv.append(str(recipe))
    for item in overrides:
        argv += ["--set", item]
    if out is not None:
        argv += ["--out", str(out)]
    if resume is not None:
        argv += ["--resume", str(resume)]
    if overwrite:
        argv.append("--overwrite")
    return argv


def _check_train_args(
    recipe: Any, out: Path | None, resume: Path | None, overwrite: bool, nproc: int
) -> None:
    """The contradictions ``ganzoo train`` refuses, in one line each."""
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


def _recipe(recipe: Any, overrides: list[str]) -> Any:
    """A :class:`ganzoo.recipe.Recipe` from a recipe file or object and ``--set`` overrides."""
    from ganzoo.recipe import Recipe, from_dict, load_recipe
    from ganzoo.recipe_tree import apply_overrides

    if isinstance(recipe, Recipe):
        return from_dict(apply_overrides(recipe.to_dict(), overrides)) if overrides else recipe
    return load_recipe(recipe, overrides)


def train(
    recipe: Any = None,
    *,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overwrite: bool = False,
    console: Console | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``recipe`` (a YAML path or a :class:`ganzoo.recipe.Recipe`) into ``out`` (default
    ``runs/NAME``), or continue the run in ``resume``; ``overrides`` are ``dotted.key=value``
    strings, as ``--set`` takes. SIGINT / SIGTERM stop after the current step with a checkpoint
    (``TrainResult.stopped`` says which). Under torchrun every rank calls this (see
    :func:`train_distributed`)."""
    from ganzoo.run_dir import RunDir
    from ganzoo.training.trainer import train as run_training

    overrides = list(overrides or [])
    out = Path(out) if out is not None else None
    resume = Path(resume) if resume is not None else None
    _check_train_args(recipe, out, resume, overwrite, 1)
    trainer, final = run_training(
        None if resume is not None else _recipe(recipe, overrides),
        run_dir=resume or out,
        resume=resume is not None,
        overwrite=overwrite,
        overrides=overrides,
        console=console,
        progress=progress,
    )
    main = trainer.dist.is_main
    samples = sorted(RunDir(trainer.run_dir).samples.glob("*.png")) if main else []
    return TrainResult(
        run_dir=Path(trainer.run_dir),
        checkpoint=Path(final["checkpoint"]) if final.get("checkpoint") else None,
        step=int(final["step"]),
        samples=samples[-1] if samples else None,
        stopped=trainer.stop_requested,
        is_main=main,
        distributed=trainer.dist.enabled,
        record=dict(final),
    )


def train_distributed(
    recipe: str | Path | None = None,
    *,
    nproc: int,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overwrite: bool = False,
    argv: list[str] | None = None,
) -> int:
    """``ganzoo train --nproc N``: check the arguments and the recipe once, then run the same
    ``ganzoo train`` command under torchrun, one process per rank on this machine (``argv``:
    that command line, default built from these arguments). Returns the exit status: 0, or 130 /
    143 when a signal stopped the ranks (after their checkpoint); a failed rank raises
    :class:`ganzoo.training.torchrun.RankFailedError`."""
    from ganzoo.run_dir import RunDir
    from ganzoo.training.torchrun import run_torchrun

    overrides = list(overrides or [])
    out = Path(out) if out is not None else None
    resume = Path(resume) if resume is not None else None
    _check_train_args(recipe, out, resume, overwrite, nproc)
    if resume is not None:
        RunDir(resume).resume_recipe(overrides)
    else:
        _recipe(recipe, overrides)
        if out is not None and RunDir(out).contents() and not overwrite:
            raise GanzooError(
                f"{out} already holds files; pass --overwrite or choose another --out"
            )
    return run_torchrun(nproc, argv or _train_argv(recipe, overrides, out, resume, overwrite))


def evaluate(
    model: str | Path,
    split: str = "val",
    *,
    data_root: str | Path | None = None,
    mode: str = "auto",
    num_samples: int = 0,
    fid: bool = False,
    inception_weights: str | Path | None = None,
    use_ema: bool = True,
    batch_size: int | None = None,
    device: str = "auto",
    perceptual: bool = True,
    checkpoint: str = "last",
) -> EvalRecord:
    """Score ``model`` (a run directory, checkpoint or ``.safetensors``) on ``split`` as
    ``ganzoo eval`` does: writes ``RUN_DIR/eval/<split>.json`` (and a ``.png`` sheet of
    ``num_samples`` rows) and returns the scores. ``perceptual``: LPIPS and DISTS where their
    weights are cached (``notes`` says what was left out); ``checkpoint``: a run directory's
    ``last`` or ``best``."""
    from ganzoo.evaluation.evaluate import evaluate_run

    record = evaluate_run(
        model,
        split,
        data_root=data_root,
        mode=mode,
        num_samples=num_samples,
        fid=fid,
        inception_weights=inception_weights,
        use_ema=use_ema,
        batch_size=batch_size,
        device=device,
        perceptual=perceptual,
        checkpoint=checkpoint,
    )
    return EvalRecord.from_record(record)


def inception_or_none(weights: str | Path | None, console: Console | None = None) -> str | None:
    """The Inception weights for an ablation's FID, or None after a one-line note on
    ``console`` (the ablation goes on without FID)."""
    from ganzoo.scoring.fid import inception_weights, require_torch_fidelity

    try:
        require_torch_fidelity()
        return str(inception_weights(weights, download=False))
    except GanzooError as exc:
        (console or Console(stderr=True)).print(f"--fid: left out ({exc})", highlight=False)
        return None


def ablate(
    source: str | Path,
    *,
    overrides: list[str] | None = None,
    vary: list[str] | None = None,
    seeds: str | None = None,
    steps: int | None = None,
    out: str | Path | None = None,
    jobs: int | None = None,
    threads_per_run: int | None = None,
    launcher: str | None = None,
    launcher_options: dict[str, Any] | None = None,
    fid: bool = False,
    inception_weights: str | Path | None = None,
    console: Console | None = None,
    err_console: Console | None = None,
) -> AblationResult:
    """Train every variant x seed of an ablation spec (or of a recipe with ``vary`` axes,
    ``dotted.key=v1,v2``) the same way into ``out`` (default ``runs/ablations/NAME``), score
    them and write the report; resumable (finished runs are skipped). Never raises for a
    failed run: see :attr:`AblationResult.failed` and :meth:`AblationResult.failure_message`.

    ``launcher``: ``sequential``, ``local`` (the default with ``jobs``), ``submitit`` or a
    plugin's; ``launcher_options``: its registered parameters (``--launcher-opt key=value``),
    which the spec's ``launcher:`` block is updated by."""
    from ganzoo.ablation import load_plan, run_ablation, write_results
    from ganzoo.launchers.base import build_launcher
    from ganzoo.run_dir import RunDir

    console = console or Console()
    plan = load_plan(source, list(overrides or []), vary=vary, seeds=seeds, steps=steps)
    if jobs is not None and launcher is None and not plan.launcher.get("name"):
        launcher = "local"
    options = dict(launcher_options or {})
    options.update(jobs=jobs, threads_per_run=threads_per_run)
    runner = build_launcher(plan.launcher, launcher, options)
    inception = inception_or_none(inception_weights, err_console) if fid else None
    out = Path(out) if out is not None else Path("runs") / "ablations" / plan.name
    runs = len(plan.variants) * len(plan.seeds)
    console.print(
        f"ablation {plan.name}: {len(plan.variants)} variants x {len(plan.seeds)} seeds = "
        f"{runs} runs of {plan.max_steps} steps into {out}",
        highlight=False,
    )
    outcomes = run_ablation(plan, out, console=console, launcher=runner, inception=inception)
    result = AblationResult(plan.name, out, outcomes)
    for o in result.claimed:
        console.print(f"{o.run_dir.name}: left alone, {o.error}", highlight=False)
    unfinished = len(result.failed) + len(result.claimed)
    if unfinished < len(outcomes) or any(RunDir(o.run_dir).eval_dir.is_dir() for o in outcomes):
        return AblationResult(plan.name, out, outcomes, write_results(out, console))
    return result
