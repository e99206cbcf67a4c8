"""Train and score every (variant, seed) of a plan, resumably.

::

    OUT/ablation.json                    the plan (variants, seeds, budget, evaluation)
    OUT/runs/<variant>__seed<k>/         an ordinary run directory (ganzoo.training)
    OUT/runs/<variant>__seed<k>/eval/<split>.json   its score (ganzoo.evaluation)

A run is *finished* when its newest checkpoint is at the budget step and its evaluation
record is for that step and mode; re-running skips it. A checkpoint below the budget is
resumed exactly; a run folder without any checkpoint is started again from scratch.
"""

from __future__ import annotations

import gc
import json
import math
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from ganzoo.ablation.plan import Plan, Variant
from ganzoo.ablation.run_job import RunJob
from ganzoo.artifacts.checkpoint import latest_checkpoint
from ganzoo.errors import GanzooError, RecipeError, StoppedError, TrainingError
from ganzoo.recipe import from_dict
from ganzoo.recipe_tree import read_yaml
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import read_json, write_text_atomic

MANIFEST = "ablation.json"
Action = Literal["skipped", "evaluated", "resumed", "trained", "claimed", "failed", "stopped"]


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_ablation` did for one (variant, seed)."""

    variant: str
    seed: int
    run_dir: Path
    action: Action
    error: str | None = None  # failed: the one-line error; claimed: who holds the run
    log: Path | None = None
    threads: int | None = None
    signum: int | None = None  # stopped: the signal that stopped it (SIGINT, SIGTERM)


def checkpoint_step(path: Path) -> int:
    """The step of ``.../step_00001234.pt``."""
    return int(path.stem.split("_")[-1])


def eval_record_path(run_dir: Path, split: str) -> Path:
    """Where ``ganzoo.evaluation.evaluate_run`` writes a run's score on ``split``."""
    return RunDir(run_dir).eval_dir / f"{split}.json"


def read_eval(run_dir: Path, split: str, step: int, mode: str) -> dict[str, Any] | None:
    """The run's evaluation record when it scores ``step`` in ``mode`` on the run's own data
    (not another ``--data``), else None."""
    try:  # unreadable (not UTF-8, nested too deeply, ...): scored again
        record = read_json(eval_record_path(run_dir, split), "eval record")
        root = str(read_yaml(RunDir(run_dir).recipe_path)["data"]["root"])
    except (OSError, ValueError, RecursionError, KeyError, TypeError, AttributeError, GanzooError):
        return None
    if not isinstance(record, dict):
        return None
    n = record.get("n")
    ok = record.get("step") == step and record.get("mode") == mode
    ok = ok and isinstance(n, int) and not isinstance(n, bool) and n > 0
    return record if ok and record.get("data_root") == root else None


#: The metrics of an eval record an ablation compares: required, and optional (LPIPS / DISTS
#: where their weights are cached, ``--fid``).
SCORES = ("l1", "psnr", "ssim")
OPTIONAL_SCORES = ("lpips_alex", "lpips_vgg", "dists", "fid", "kid")


def score_problem(record: dict[str, Any]) -> str | None:
    """Why an eval record's scores cannot be averaged ("'l1' is 'abc', not a finite
    number"), or None when every score is a finite number."""
    for key in (*SCORES, *(k for k in OPTIONAL_SCORES if k in record)):
        value = record.get(key)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            shown = "missing" if key not in record else f"{str(value)[:40]!r}"
            return f"'{key}' is {shown}, not a finite number"
    return None


def _comparable(tree: dict[str, Any]) -> dict[str, Any]:
    tree = json.loads(json.dumps(tree))
    tree.get("train", {}).pop("max_steps", None)
    return tree


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return f"{path}: {a!r} here, {b!r} in the spec"


def run_state(run_dir: Path, variant: Variant, seed: int, plan: Plan) -> Action | Literal["fresh"]:
    """What the run needs: 'skipped' (finished), 'evaluated' (trained, not scored), 'resumed'
    (a checkpoint below the budget) or 'fresh'. A run trained with another recipe, or past
    the budget, is a one-line error."""
    run = RunDir(run_dir)
    ckpt = latest_checkpoint(run.checkpoints)
    if ckpt is None:  # nothing to keep
        return "fresh"
    stored = run.recipe_path
    expected = _comparable(variant.recipe(seed).to_dict())
    found = _comparable(from_dict(read_yaml(stored), source=str(stored)).to_dict())
    if found != expected:
        raise RecipeError(
            f"{run_dir} was trained with another recipe ({_first_difference(found, expected)}); "
            "give another --out or delete that run"
        )
    step = checkpoint_step(ckpt)
    if step > plan.max_steps:
        raise TrainingError(
            f"{run_dir} is at step {step}, past the budget of {plan.max_steps}; give another "
            "--out or raise the budget"
        )
    if step < plan.max_steps:
        return "resumed"
    record = read_eval(run_dir, plan.eval.split, step, plan.eval.mode)
    if record is None or score_problem(record) is not None:  # scored again
        return "evaluated"
    return "skipped"


def train_run(
    run_dir: Path,
    variant: Variant,
    seed: int,
    plan: Plan,
    *,
    resume: bool,
    console: Console | None,
    progress: bool,
) -> None:
    """Train one (variant, seed) to the budget; a signal stops the ablation (resumable)."""
    from ganzoo.training.trainer import train

    if resume:
        trainer, _ = train(
            None,
            run_dir=run_dir,
            resume=True,
            overrides=[f"train.max_steps={plan.max_steps}"],
            console=console,
            progress=progress,
        )
    else:
        if run_dir.exists():  # a start that never reached a checkpoint: begin again
            shutil.rmtree(run_dir)
        trainer, _ = train(
            variant.recipe(seed), run_dir=run_dir, console=console, progress=progress
        )
    stopped = trainer.stop_requested
    del trainer
    gc.collect()
    if stopped is not None:
        raise StoppedError(
            f"ablation stopped by {stopped} during {run_dir.name}; run the same command again "
            "to resume it",
            signal_number(stopped),
        )


def signal_number(name: str | None) -> int | None:
    """``'SIGINT'`` -> 2; None for anything that is not a signal's name."""
    try:
        return int(signal.Signals[name]) if name else None
    except KeyError:
        return None


def evaluate(run_dir: Path, plan: Plan, *, inception: str | None = None) -> dict[str, Any]:
    """Score the run's final checkpoint on the plan's split and mode (whole split); with the
    ``inception`` weights file, FID and KID too."""
    from ganzoo.evaluation.evaluate import evaluate_run

    return evaluate_run(
        run_dir,
        plan.eval.split,
        mode=plan.eval.mode,
        fid=inception is not None,
        inception_weights=inception,
        device="auto",
    )


def write_manifest(out: Path, plan: Plan) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / MANIFEST
    write_text_atomic(path, json.dumps(plan.manifest(), indent=2) + "\n")  # shared storage
    return path


def run_ablation(
    plan: Plan,
    out: Path,
    *,
    console: Console | None = None,
    progress: bool = True,
    launcher: Any = None,
    inception: str | None = None,
) -> list[RunOutcome]:
    """Train and score every run of ``plan`` into ``out`` (skipping finished ones, resuming
    interrupted ones, leaving alone the ones another live launch holds) through ``launcher``
    (a :class:`ganzoo.launchers.Launcher`; default: sequential in this process). Returns what
    was done per run, failures included (recorded, retried by the next call). With the
    ``inception`` weights file the runs are scored with FID and KID too. Write the report with
    :func:`ganzoo.ablation.report.write_results`."""
    from ganzoo import registry

    out = Path(out)
    console = console or Console()
    jobs = [RunJob(out, plan, v, s, inception=inception) for v, s in plan.runs()]
    for job in jobs:  # a conflicting run fails the launch before anything trains
        run_state(job.run_dir, job.variant, job.seed, plan)
    write_manifest(out, plan)
    if launcher is None:
        launcher = registry.create("launcher", "sequential", progress=progress)
    return launcher.launch(jobs, out, console)
