"""`ganzoo.train`, `ganzoo.evaluate` and `ganzoo.ablate` from Python: what the commands do,
returning typed records (ganzoo.results)."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, tiny_recipe
from rich.console import Console

import ganzoo
from ganzoo.ablation.runner import RunOutcome
from ganzoo.results import AblationResult, EvalRecord, TrainResult
from ganzoo.workflows import train_distributed

QUIET = {"console": Console(file=io.StringIO())}


def test_train_then_evaluate_return_typed_results(tiny_data: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tiny_data, "train.max_steps=2", "train.sample_every=2")
    result = ganzoo.train(recipe, out=tmp_path / "run", progress=False, **QUIET)
    assert isinstance(result, TrainResult)
    assert result.run_dir == tmp_path / "run" and result.step == 2
    assert result.checkpoint.is_file() and result.checkpoint.parent.name == "checkpoints"
    assert result.samples is not None and result.samples.is_file()
    assert result.is_main and not result.distributed and result.stopped is None
    assert result.record["step"] == 2

    scores = ganzoo.evaluate(result.run_dir, "val", device="cpu", num_samples=2)
    assert isinstance(scores, EvalRecord)
    assert (scores.split, scores.step, scores.n, scores.mode) == ("val", 2, 4, "auto")
    assert scores.mode_used == "eval" and scores.mode_line  # BN trained at batch 2
    assert all(math.isfinite(v) for v in (scores.l1, scores.psnr, scores.ssim))
    assert scores.json.is_file() and scores.sheet is not None and scores.sheet.is_file()
    assert scores.fid is None and scores.record["l1"] == scores.l1


def test_train_takes_a_recipe_file_with_overrides_and_resumes(
    tiny_data: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe(tiny_data, "train.max_steps=1").to_yaml())
    first = ganzoo.train(recipe, out=tmp_path / "run", progress=False, **QUIET)
    assert first.step == 1
    again = ganzoo.train(
        resume=tmp_path / "run", overrides=["train.max_steps=2"], progress=False, **QUIET
    )
    assert again.step == 2 and again.run_dir == first.run_dir


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give a recipe to train, or --resume RUN_DIR"),
        ({"recipe": "r.yaml", "resume": "runs/x"}, "not both"),
        ({"resume": "runs/x", "out": "runs/y"}, "--out and --overwrite are for new runs"),
    ],
)
def test_train_refuses_contradictory_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ganzoo.GanzooError, match=message):
        ganzoo.train(**kwargs)
    with pytest.raises(ganzoo.GanzooError, match=message):
        train_distributed(nproc=2, **kwargs)
    with pytest.raises(ganzoo.GanzooError, match="--nproc 0: must be at least 1"):
        train_distributed("r.yaml", nproc=0)


def test_ablate_returns_the_outcomes_and_the_report(tiny_data: Path, tmp_path: Path) -> None:
    sets = [
        f"data.root={tiny_data}",
        "data.direction=AtoB",
        "data.load_size=36",
        "data.crop_size=32",
        "data.batch_size=2",
        "data.num_workers=0",
        "generator={name: unet, num_downs: 5, ngf: 4, norm: batch}",
        "discriminator={name: patchgan, n_layers: 2, ndf: 4, norm: batch}",
        "train.precision=fp32",
        "train.sample_every=1000",
        "train.val_batches=1",
    ]
    result = ganzoo.ablate(
        ROOT / "recipes" / "quickstart.yaml",
        overrides=sets,
        vary=["discriminator.n_layers=1,2"],
        seeds="0",
        steps=2,
        out=tmp_path / "ablation",
        **QUIET,
    )
    assert isinstance(result, AblationResult)
    assert result.out == tmp_path / "ablation" and result.ok
    assert [o.action for o in result.outcomes] == ["trained", "trained"]
    assert result.failed == [] and result.claimed == [] and result.failure_message() is None
    assert result.report is not None and result.report.csv.is_file()
    assert [s.name for s in result.report.summaries] == ["1", "2"]


def test_an_ablation_with_failed_runs_says_so_in_one_line(tmp_path: Path) -> None:
    def outcome(name: str, action: str) -> RunOutcome:
        return RunOutcome(name, 0, tmp_path / "runs" / f"{name}-s0", action)  # type: ignore[arg-type]

    outcomes = [outcome("a", "trained"), outcome("b", "failed"), outcome("c", "claimed")]
    result = AblationResult("x", tmp_path, outcomes)
    assert not result.ok and [o.variant for o in result.claimed] == ["c"]
    assert result.failure_message() == (
        f"1 run(s) failed or stopped (b-s0; errors in {tmp_path / 'logs'}); 1 run(s) "
        "unfinished, held by another launch (c-s0); run the same command again to retry them"
    )
    assert result.signum is None


def test_import_ganzoo_imports_no_workflow_until_used() -> None:
    code = textwrap.dedent("""\
        import sys
        import ganzoo
        assert callable(ganzoo.train) and callable(ganzoo.ablate)
        heavy = ("ganzoo.workflows", "ganzoo.training", "torch")
        print(sorted(m for m in heavy if m in sys.modules))
        """)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]"
