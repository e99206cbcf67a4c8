"""The ``best_checkpoint`` callback: ``checkpoints/best.pt`` holds the step of the best
validation score, its state follows a resume, and eval / translate / ``ganzoo.load`` pick it
with ``best``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe

import ganzoo
from ganzoo.artifacts.checkpoint import latest_checkpoint, load_checkpoint
from ganzoo.artifacts.loading import load_generator
from ganzoo.cli import main
from ganzoo.errors import GanzooError, RecipeError, TrainingError
from ganzoo.evaluation.evaluate import evaluate_run
from ganzoo.training.observers import BestCheckpoint
from ganzoo.training.trainer import Trainer, train

CALLBACKS = (
    "train.callbacks=[losses, {name: validation, metrics: [l1, psnr, ssim]}, "
    "{name: best_checkpoint, metric: ssim}]"
)


def _vals(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "val_ssim" in r]


def _best(vals: list[dict]) -> dict:
    best = vals[0]
    for r in vals[1:]:
        if r["val_ssim"] > best["val_ssim"]:  # strictly better, as the callback
            best = r
    return best


def test_the_rule_follows_the_metric() -> None:
    assert BestCheckpoint("l1").less and BestCheckpoint("val_lpips_vgg").less
    assert not BestCheckpoint("psnr").less and not BestCheckpoint("ssim").less
    assert BestCheckpoint("psnr", rule="less").less
    cb = BestCheckpoint("l1")
    assert cb.better(0.5) and not cb.better(float("nan"))
    cb.best = 0.5
    assert cb.better(0.4) and not cb.better(0.5) and not cb.better(0.6)
    with pytest.raises(RecipeError, match="unknown metric 'lpip'; did you mean 'lpips_"):
        BestCheckpoint("lpip")


def test_best_is_kept_and_its_state_follows_a_resume(tiny_data: Path, tmp_path: Path) -> None:
    common = ("train.sample_every=1", "train.checkpoint_every=3", CALLBACKS)
    run = tmp_path / "run"
    train(tiny_recipe(tiny_data, "train.max_steps=3", *common), run_dir=run, progress=False)
    first = _best(_vals(run))
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    assert state["step"] == first["step"]
    assert state["callbacks"]["best_checkpoint"]["best"] == first["val_ssim"]
    saved = load_checkpoint(run / "checkpoints" / "step_00000003.pt")["callbacks"]
    fresh = BestCheckpoint("ssim")
    fresh.load_state_dict(saved["best_checkpoint"])
    assert (fresh.best, fresh.best_step) == (first["val_ssim"], first["step"])
    resumed, _ = train(run_dir=run, resume=True, overrides=["train.max_steps=6"], progress=False)
    (cb,) = [c for c in resumed.callbacks if isinstance(c, BestCheckpoint)]
    vals = _vals(run)
    assert [r["step"] for r in vals] == list(range(1, 7))
    best = _best(vals)  # over the whole run: the resume continued the saved best
    assert (cb.best, cb.best_step) == (best["val_ssim"], best["step"])
    last = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert last["callbacks"]["best_checkpoint"]["step"] == best["step"]
    assert load_checkpoint(run / "checkpoints" / "best.pt")["step"] == best["step"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.pt",
        "step_00000003.pt",
        "step_00000006.pt",
    ]

    # eval / translate / load pick it with "best"
    _, _, info = load_generator(run, checkpoint="best")
    assert info.path == run / "checkpoints" / "best.pt" and info.step == best["step"]
    assert ganzoo.load(run, checkpoint="best", device="cpu").info.step == best["step"]
    record = evaluate_run(run, checkpoint="best", out_dir=tmp_path / "e", perceptual=False)
    assert record["step"] == best["step"] and record["checkpoint"].endswith("best.pt")
    assert main(["eval", str(run), "--checkpoint", "best", "--no-perceptual"]) == 0
    assert json.loads((run / "eval" / "val.json").read_text())["step"] == best["step"]
    images = tmp_path / "in"
    images.mkdir()
    shutil.copy(tiny_data / "val" / "0.png", images / "0.png")
    code = main(["translate", str(run), "-i", str(images), "-o", str(tmp_path / "out"),
                 "--checkpoint", "best", "--device", "cpu"])  # fmt: skip
    assert code == 0 and (tmp_path / "out" / "0.png").is_file()


def test_best_needs_a_kept_best_and_a_run_directory(tiny_data: Path, tmp_path: Path, capsys):
    run = tmp_path / "run"
    train(tiny_recipe(tiny_data, "train.max_steps=1"), run_dir=run, progress=False)
    with pytest.raises(TrainingError, match="kept no best checkpoint") as info:
        load_generator(run, checkpoint="best")
    assert "\n" not in str(info.value) and "best_checkpoint callback" in str(info.value)
    with pytest.raises(TrainingError, match="picks from a run directory"):
        load_generator(latest_checkpoint(run / "checkpoints"), checkpoint="best")
    with pytest.raises(GanzooError, match="use last or best"):
        load_generator(run, checkpoint="first")
    assert main(["eval", str(run), "--checkpoint", "best"]) == 2
    err = capsys.readouterr().err
    assert "kept no best checkpoint" in err and len(err.strip().splitlines()) == 1


def test_best_of_an_unscored_metric_is_refused_before_training(
    tiny_data: Path, tmp_path: Path
) -> None:
    recipe = tiny_recipe(
        tiny_data, "train.max_steps=1", "train.callbacks=[validation, {name: best_checkpoint}]"
    )
    torch.manual_seed(0)
    with Trainer(recipe, tmp_path / "ok", progress=False) as trainer:  # l1 is scored: fine
        trainer.fit()
    assert (tmp_path / "ok" / "checkpoints" / "best.pt").is_file()
    recipe = tiny_recipe(
        tiny_data,
        "train.max_steps=1",
        "train.callbacks=[validation, {name: best_checkpoint, metric: ssim}]",
    )
    with (
        Trainer(recipe, tmp_path / "run", progress=False) as trainer,
        pytest.raises(RecipeError, match="metric ssim is not scored; add"),
    ):
        trainer.fit()


def test_a_resume_keeps_a_best_written_after_its_checkpoint(tiny_data: Path, tmp_path: Path):
    """best.pt written after the checkpoint a run resumes from (it stopped in between): the
    best value it holds is kept, so a resumed run that does not replay the same steps cannot
    replace it with a worse model."""
    run = tmp_path / "run"
    common = ("train.sample_every=1", "train.checkpoint_every=2", "train.keep_checkpoints=3")
    periodic = CALLBACKS.replace("[losses,", "[losses, checkpoint,")
    recipe = tiny_recipe(tiny_data, "train.max_steps=4", periodic, *common)
    train(recipe, run_dir=run, progress=False)
    best_pt = run / "checkpoints" / "best.pt"
    kept = load_checkpoint(best_pt)  # as if written at step 3 with a score nothing beats
    kept["step"] = 3
    kept["callbacks"]["best_checkpoint"].update(best=1.0, step=3)
    torch.save(kept, best_pt)
    (run / "checkpoints" / "step_00000004.pt").unlink()  # the run stopped before step 4's
    restored = load_checkpoint(run / "checkpoints" / "step_00000002.pt")["callbacks"]
    assert restored["best_checkpoint"]["best"] < 1.0
    resumed, _ = train(run_dir=run, resume=True, overrides=["train.max_steps=6"], progress=False)
    (cb,) = [c for c in resumed.callbacks if isinstance(c, BestCheckpoint)]
    assert (cb.best, cb.best_step) == (1.0, 3)
    assert load_checkpoint(best_pt)["step"] == 3  # never replaced by the resumed validations
    last = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert last["step"] == 6 and last["callbacks"]["best_checkpoint"]["best"] == 1.0


def test_an_unreadable_best_is_noted_and_replaced(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = ("train.sample_every=1", "train.checkpoint_every=2", CALLBACKS)
    train(tiny_recipe(tiny_data, "train.max_steps=2", *common), run_dir=run, progress=False)
    best_pt = run / "checkpoints" / "best.pt"
    best_pt.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="best_checkpoint: .*best.pt.*the next validation"):
        train(run_dir=run, resume=True, overrides=["train.max_steps=3"], progress=False)
    assert load_checkpoint(best_pt)["step"] == 3  # whatever its score: a readable file again
