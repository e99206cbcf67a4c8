"""The shared trainer: it learns, resumes exactly, survives signals, stops on NaN."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, tiny_recipe
from PIL import Image

from ganzoo.artifacts.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from ganzoo.errors import TrainingError
from ganzoo.recipe import load_recipe
from ganzoo.recipe_tree import load_tree
from ganzoo.training.trainer import Trainer, train


def quiet_train(recipe, run_dir: Path, **kw):
    return train(recipe, run_dir=run_dir, progress=False, **kw)


def test_a_tiny_model_learns(tiny_data: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(
        tiny_data, "train.max_steps=120", "optim.lr_g=0.002", "train.val_batches=2"
    )
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    before = trainer.validate()["val_l1"]
    final = trainer.fit()
    assert final["val_l1"] < 0.5 * before, (before, final["val_l1"])
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("loss_g_l1" in r for r in records) and records[-1]["val_l1"] == final["val_l1"]
    assert (tmp_path / "run" / "recipe.yaml").is_file()
    assert list((tmp_path / "run" / "samples").glob("step_*.png"))


def _weights(run_dir: Path, index: int = -1) -> dict[str, torch.Tensor]:
    state = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[index])
    return {
        **{f"G.{k}": v for k, v in state["generator"].items()},
        **{f"D.{k}": v for k, v in state["discriminator"].items()},
        **{f"EMA.{k}": v for k, v in state["ema"].items()},
    }


@pytest.mark.parametrize("precision", ["fp32", "bf16", "bf16-master"])
def test_resume_continues_exactly(tiny_data: Path, tmp_path: Path, precision: str) -> None:
    # 14 steps with batch 2 over 12 images = 6 batches/epoch: crosses two epoch ends, with
    # dropout, an image pool, EMA and the linear schedule decaying every epoch; in every
    # precision (bf16-master checkpoints hold the fp32 masters, the bf16 weights round them).
    common = (
        f"train.precision={precision}",
        "train.deterministic=true",
        "optim.pool_size=3",
        "optim.ema_decay=0.9",
        "schedule.epochs=1",
        "schedule.decay_epochs=3",
        # num_downs 6 puts dropout into the U-Net: the torch RNG must continue exactly too
        "generator.num_downs=6",
        "data.load_size=72",
        "data.crop_size=64",
    )
    quiet_train(tiny_recipe(tiny_data, "train.max_steps=14", *common), tmp_path / "straight")
    quiet_train(tiny_recipe(tiny_data, "train.max_steps=7", *common), tmp_path / "halves")
    quiet_train(None, tmp_path / "halves", resume=True, overrides=["train.max_steps=14"])
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "halves")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    # and the second half really trained: the step-7 weights differ from the step-14 ones
    half = _weights(tmp_path / "halves", 0)
    assert not all(torch.equal(half[k], b[k]) for k in b)


def test_resume_without_checkpoint_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "recipe.yaml").write_text(
        (ROOT / "recipes" / "quickstart.yaml")
        .read_text()
        .replace("extends: pix2pix_unet256.yaml", "")
    )
    with pytest.raises(TrainingError, match="no checkpoint to resume from") as info:
        quiet_train(None, tmp_path / "run", resume=True)
    assert "\n" not in str(info.value)


def test_sigterm_saves_a_checkpoint_and_resume_finishes(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "ganzoo",
        "train",
        str(ROOT / "recipes" / "quickstart.yaml"),
        "--out",
        str(run),
    ]
    sets = [
        f"data.root={tiny_data}",
        "data.direction=AtoB",
        "data.load_size=36",
        "data.crop_size=32",
        "data.num_workers=0",
        "data.batch_size=2",
        "generator={name: unet, num_downs: 5, ngf: 8}",
        "discriminator.ndf=8",
        "train.max_steps=100000",
        "train.log_every=1",
        "train.precision=fp32",
    ]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        line = proc.stdout.readline()
        if "step 3/" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err  # saved, then the exit code of SIGTERM
    assert "stopped by SIGTERM" in out
    ckpts = list_checkpoints(run / "checkpoints")
    assert ckpts
    stopped_at = load_checkpoint(ckpts[-1])["step"]
    assert stopped_at >= 3
    _, final = quiet_train(None, run, resume=True, overrides=[f"train.max_steps={stopped_at + 2}"])
    assert final["step"] == stopped_at + 2


@pytest.mark.parametrize("objective", ["vanilla", "lsgan", "hinge", "wgan_gp"])
def test_every_objective_trains(tiny_data: Path, tmp_path: Path, objective: str) -> None:
    _, final = quiet_train(
        tiny_recipe(
            tiny_data, f"loss.objective={objective}", "train.max_steps=3", "loss.feature_matching=1"
        ),
        tmp_path / "run",
    )
    assert final["step"] == 3 and final["val_l1"] == final["val_l1"]  # not NaN


def label_data(root: Path) -> Path:
    """Two train and one val pair: a 48x48 class-id PNG (ids 0-3, a strip of the ignore id
    255) in A, an RGB photo in B."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("val", 1)):
        (root / split / "A").mkdir(parents=True)
        (root / split / "B").mkdir(parents=True)
        for i in range(n):
            ids = rng.integers(0, 4, (6, 6)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
            ids[:, :4] = 255
            Image.fromarray(ids, "L").save(root / split / "A" / f"{i}.png")
            photo = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
            Image.fromarray(photo, "RGB").save(root / split / "B" / f"{i}.png")
    return root


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_runs_a_few_steps(tiny_data: Path, tmp_path: Path, path: Path) -> None:
    labels = "labels" in load_tree(path).get("data", {})
    recipe = load_recipe(path)
    g = {"ngf": 4} if "ngf" in {p for p in _accepted("generator", recipe.generator.name)} else {}
    sets = [
        f"data.root={tiny_data}",
        "data.direction=AtoB",
        "data.num_workers=0",
        "data.batch_size=1",
        "train.max_steps=2",
        "train.log_every=1",
        "train.val_batches=1",
        "train.init_from=null",  # staged recipes start from an earlier stage's run
    ]
    if labels:  # a label map -> photo recipe: 4 classes and the ignore id, 64x64
        sets[0] = f"data.root={label_data(tmp_path / 'labels')}"
        sets += [
            "data.labels={num_classes: 4, ignore_index: 255}",
            "data.load_size=64",
            "data.crop_size=64",
            "loss.perceptual=0",  # no VGG19 weights in the test's torch cache
        ]
    sets += [f"generator.{k}={v}" for k, v in g.items()]
    if "ndf" in _accepted("discriminator", recipe.discriminator.name):
        sets.append("discriminator.ndf=4")
    if path.stem.startswith("lines2face_stage"):  # CSAM at 128x128 is a 16384^2 matrix: smaller
        sets += [
            "data.load_size=192",
            "data.crop_size=192",
            "generator.attention=[{block: conditional_self_attention, resolution: 48}]",
        ]
    _, final = quiet_train(load_recipe(path, sets), tmp_path / "run")
    assert final["step"] == 2


def _accepted(kind: str, name: str) -> set[str]:
    from ganzoo import registry

    return {p.name for p in registry.get(kind, name).parameters()}


def test_bf16_autocast_runs_on_cpu(tiny_data: Path, tmp_path: Path) -> None:
    trainer, final = quiet_train(
        tiny_recipe(tiny_data, "train.precision=bf16", "train.max_steps=2"), tmp_path / "run"
    )
    assert trainer.precision == "bf16" and trainer.amp_dtype == torch.bfloat16
    assert final["val_l1"] == final["val_l1"]
    # weights stay fp32 (autocast only changes the compute dtype)
    assert all(p.dtype == torch.float32 for p in trainer.g_module.parameters())


def test_nan_loss_stops_with_the_last_good_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tiny_data, "train.max_steps=10", "train.checkpoint_every=2")
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    real_g_loss = trainer.update.objective.g_loss

    def poisoned(fake_logits):
        loss = real_g_loss(fake_logits)
        return loss * float("nan") if trainer.step >= 5 else loss

    trainer.update.objective.g_loss = poisoned
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    msg = str(info.value)
    assert "NaN" in msg and "step_00000004.pt" in msg and "\n" not in msg
    # nothing after the NaN was saved
    assert load_checkpoint(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])["step"] == 4


def test_checkpoints_are_atomic_kept_and_loaded_safely(tmp_path: Path) -> None:
    for step in range(1, 6):
        save_checkpoint({"generator": {"w": torch.full((2,), float(step))}}, tmp_path, step, 3)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step_00000003.pt", "step_00000004.pt", "step_00000005.pt"]
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    assert load_checkpoint(tmp_path / names[-1])["generator"]["w"][0] == 5.0
    (tmp_path / "step_00000006.pt").write_bytes(b"garbage")
    with pytest.raises(TrainingError, match="not a readable ganzoo checkpoint"):
        load_checkpoint(tmp_path / "step_00000006.pt")


def test_checkpoint_refuses_pickled_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"generator": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(TrainingError):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_several_d_steps_and_the_ema_generator_for_evaluation(
    tiny_data: Path, tmp_path: Path
) -> None:
    trainer, final = quiet_train(
        tiny_recipe(tiny_data, "optim.d_steps=2", "optim.ema_decay=0.5", "train.max_steps=2"),
        tmp_path / "run",
    )
    assert final["step"] == 2
    # D was updated twice per G step: Adam's step count says so
    d_state = trainer.state.opt_d.state_dict()["state"][0]
    g_state = trainer.state.opt_g.state_dict()["state"][0]
    assert int(d_state["step"]) == 4 and int(g_state["step"]) == 2
    assert trainer.eval_generator() is trainer.ema.module
    ema = dict(trainer.ema.module.named_parameters())
    raw = dict(trainer.g_module.named_parameters())
    assert any(not torch.equal(ema[k], raw[k]) for k in raw)  # an average, not a copy


def test_the_ema_copy_keeps_spectral_norm_exact() -> None:
    # AveragedModel(use_buffers=True) averages the power-iteration vectors u, v too; shorter than
    # 1, they made eval mode's sigma = u^T W v about 4 % too small on this toy
    from torch import nn
    from torch.nn.utils.parametrizations import spectral_norm

    from ganzoo.training.ema import build_ema, update_ema

    torch.manual_seed(0)
    net = spectral_norm(nn.Conv2d(8, 16, 3))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    ema = build_ema(net, 0.999)
    for _ in range(300):
        y = net(torch.randn(4, 8, 8, 8))
        opt.zero_grad()
        (y.pow(2).mean() - y.mean()).backward()
        opt.step()
        update_ema(ema, net)
    copy = ema.module.eval()
    w = copy.parametrizations.weight.original.detach()
    sigma = torch.linalg.matrix_norm(w.flatten(1), 2)
    with torch.no_grad():
        assert torch.linalg.matrix_norm(copy.weight.flatten(1), 2) == pytest.approx(1.0, abs=1e-4)
        assert (w / copy.weight).mean() == pytest.approx(sigma.item(), rel=1e-4)
    sn = copy.parametrizations.weight[0]
    assert sn._u.norm().item() == pytest.approx(1.0, abs=1e-6)


def test_an_ema_saved_with_averaged_spectral_norm_vectors_loads_renormalised(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Checkpoints written before the EMA's vectors were renormalised in training hold
    averaged (too short) u and v; loading them for inference re-iterates those layers, and
    leaves the vectors of a healthy checkpoint bit for bit."""
    from torch.nn.utils import parametrize

    from ganzoo.artifacts.loading import load_generator

    r = tiny_recipe(
        tiny_data,
        "train.max_steps=3",
        "optim.ema_decay=0.9",
        "generator={name: unet, num_downs: 5, ngf: 8, norm: batch, spectral_norm: true}",
    )
    train(r, run_dir=tmp_path / "run", progress=False)
    ckpt = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    state = load_checkpoint(ckpt)
    vectors = [k for k in state["ema"] if k.endswith(("._u", "._v"))]
    assert vectors
    healthy, _, info = load_generator(ckpt)
    assert info.ema
    loaded = healthy.state_dict()
    assert all(torch.equal(loaded[k[len("module.") :]], state["ema"][k]) for k in vectors)
    for k in vectors:  # what averaging unit vectors over a moving weight did
        state["ema"][k] = state["ema"][k] * 0.8
    torch.save(state, ckpt)
    net, _, _ = load_generator(ckpt)
    layers = [m for m in net.modules() if parametrize.is_parametrized(m)]
    assert layers
    for m in layers:
        sn = m.parametrizations.weight[0]
        assert sn._u.norm().item() == pytest.approx(1.0, abs=1e-5)
        assert sn._v.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_train_only_glob_matching_nothing_is_one_line(tiny_data: Path, tmp_path: Path) -> None:
    """pix2pixHD's 'model1_*' on a U-Net trained nothing and failed in backward with a
    RuntimeError; now `ganzoo check` and `train` refuse it in one line, before any folder."""
    from ganzoo.build import check_recipe
    from ganzoo.errors import RecipeError

    r = tiny_recipe(tiny_data, "train.max_steps=2", "optim.train_only={generator: ['model1_*']}")
    with pytest.raises(RecipeError, match="'model1_\\*' matches no parameter of generator unet"):
        check_recipe(r)
    with pytest.raises(RecipeError, match="matches no parameter"):
        train(r, run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_train_only_generator_none_trains_d_alone(tiny_data: Path, tmp_path: Path) -> None:
    """`generator: []` (docs/training.md: "none") updates D only, with no lr_scheduler
    warning for the optimizer that never steps."""
    import warnings

    r = tiny_recipe(
        tiny_data,
        "train.max_steps=8",
        "optim.train_only={generator: [], epochs: 1}",
        "train.log_every=1",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer = Trainer(r, tmp_path / "run", progress=False)
        g0 = {k: v.clone() for k, v in trainer.g_module.state_dict().items()}
        d0 = {k: v.clone() for k, v in trainer.d_module.state_dict().items()}
        trainer.state.begin_epoch(0, fresh=True)
        trainer.train_step(next(iter(trainer.train_batches.epoch(0, 0))))
        g1, d1 = trainer.g_module.state_dict(), trainer.d_module.state_dict()
        weights = [k for k in g0 if "running" not in k and "num_batches" not in k]
        assert all(torch.equal(g0[k], g1[k]) for k in weights)
        assert any(not torch.equal(d0[k], d1[k]) for k in d0)
        trainer.close()
        _, final = train(r, run_dir=tmp_path / "run2", progress=False)
        frozen_d = tiny_recipe(
            tiny_data, "train.max_steps=8", "optim.train_only={discriminator: [], epochs: 1}"
        )
        train(frozen_d, run_dir=tmp_path / "run3", progress=False)  # no lr_scheduler warning
    assert final["step"] == 8


def test_a_failed_start_leaves_no_folder_and_the_name_is_reused(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start refused (here: no data) used to leave an empty runs/<name>, and the next run
    went silently to runs/<name>-2."""
    import io

    from rich.console import Console

    from ganzoo.errors import DataError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError):
        train(tiny_recipe(tiny_data, "data.root=nowhere"), progress=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    (tmp_path / "runs" / "quickstart").mkdir(parents=True)  # an empty folder is reused
    with pytest.raises(DataError):
        train(tiny_recipe(tiny_data, "data.root=nowhere"), progress=False)
    assert (tmp_path / "runs" / "quickstart").is_dir()
    assert not any((tmp_path / "runs" / "quickstart").iterdir())
    r = tiny_recipe(tiny_data, "train.max_steps=1")
    trainer, _ = train(r, progress=False)
    assert trainer.run_dir == Path("runs/quickstart")
    out = io.StringIO()
    trainer, _ = train(r, console=Console(file=out, width=200))
    assert trainer.run_dir == Path("runs/quickstart-2")
    assert "runs/quickstart holds another run; this one goes to runs/quickstart-2" in out.getvalue()


def test_a_run_prints_a_startup_block_and_records_its_precision(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Nothing was printed before the first log_every; at 80 columns the bar lost the step
    count and ETA; the precision actually used was recorded nowhere."""
    import io

    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    r = tiny_recipe(tiny_data, "train.max_steps=4", "train.log_every=2")
    train(r, run_dir=tmp_path / "run", console=console)
    text = out.getvalue()
    assert f"run folder: {tmp_path / 'run'}" in text
    assert "precision: fp32" in text and "generator unet: 0." in text
    assert "12 train / 4 val pairs" in text and "steps: 0 -> 4" in text
    assert text.index("run folder") < text.index("4/4")  # the block comes before the steps
    assert "eta" in text
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert env["precision"] == "fp32"
    from ganzoo.report import write_html_report

    html = write_html_report(tmp_path / "run").read_text()
    assert "<td>precision</td><td>fp32</td>" in html


def test_fp16_on_cpu_says_it_falls_back() -> None:
    from ganzoo.training.precision import resolve_precision

    with pytest.warns(UserWarning, match="fp16 needs CUDA; this cpu run uses bf16"):
        assert resolve_precision("fp16", torch.device("cpu")) == "bf16"


def test_resume_of_a_finished_run_says_there_is_nothing_to_do(
    tiny_data: Path, tmp_path: Path
) -> None:
    import io

    from rich.console import Console

    r = tiny_recipe(tiny_data, "train.max_steps=2")
    train(r, run_dir=tmp_path / "run", progress=False)
    before = sorted((tmp_path / "run" / "checkpoints").iterdir())
    out = io.StringIO()
    _, final = train(run_dir=tmp_path / "run", resume=True, console=Console(file=out, width=300))
    assert "nothing to do: the run is already at step 2 of 2" in out.getvalue()
    assert "train.max_steps=4" in out.getvalue() and final["step"] == 2
    assert sorted((tmp_path / "run" / "checkpoints").iterdir()) == before


def test_more_loader_workers_than_cpus_is_said_once(tiny_data: Path) -> None:
    """An imported upstream `num_threads 4` (num_workers 4) on a 2-CPU machine made PyTorch
    warn of over-subscription twice; ganzoo now uses one worker per CPU and says so once."""
    import warnings

    from ganzoo.data import build_dataset
    from ganzoo.training.batches import DatasetBatches, usable_workers

    cpus = len(os.sched_getaffinity(0))
    assert usable_workers(0) == 0 and usable_workers(cpus) == cpus
    r = tiny_recipe(tiny_data)
    ds = build_dataset(r.data, "train", train=True, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = DatasetBatches(ds, 2, seed=0, num_workers=cpus + 2)
        try:
            for epoch in range(2):
                list(batches.epoch(epoch))
        finally:
            batches.close()
    messages = [str(w.message) for w in caught]
    assert batches.num_workers == cpus
    assert len(messages) == 1 and f"data.num_workers {cpus + 2} is more than" in messages[0]


def test_loader_workers_auto_is_none_for_cached_data_on_a_cpu(
    tiny_data: Path, tmp_path: Path
) -> None:
    """``data.num_workers: auto`` (the default): a batch of cached pairs takes well under a
    millisecond to assemble, so a CPU-trained run builds no worker processes (they would
    compete with the step's threads); uncached data or an accelerator get 2; a number is
    taken as given; anything else is refused in one line naming the key."""
    from ganzoo.errors import RecipeError
    from ganzoo.training.batches import AUTO_WORKERS, loader_workers

    assert load_recipe(ROOT / "recipes" / "pix2pix_unet256.yaml").data.num_workers == "auto"
    assert load_recipe(ROOT / "recipes" / "quickstart.yaml").data.num_workers == "auto"
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert loader_workers("auto", cpu, cached=True) == 0
    assert loader_workers("auto", cpu, cached=False) == AUTO_WORKERS == 2
    assert loader_workers("auto", cuda, cached=True) == AUTO_WORKERS
    assert loader_workers(3, cpu, cached=True) == 3
    with pytest.raises(RecipeError, match="data.num_workers"):
        tiny_recipe(tiny_data, "data.num_workers=many")
    for value, cache, workers in (("auto", True, 0), ("auto", False, 2), (1, True, 1)):
        r = tiny_recipe(tiny_data, f"data.num_workers={value}", f"data.cache={cache}")
        trainer = Trainer(r, tmp_path / f"run-{value}-{cache}", progress=False)
        try:
            assert trainer.train_batches.num_workers == min(workers, os.cpu_count() or 1)
        finally:
            trainer.close()
