"""BatchNorm at test time: the stored running statistics, precise-BN calibration (the recipe's
``train.calibrate_bn`` and ``ganzoo calibrate``) and the test-time mode ``auto``."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe
from torch import nn

import ganzoo
from ganzoo.ablation.figures import translate_first
from ganzoo.ablation.spec import EvalSettings
from ganzoo.artifacts.loading import load_generator
from ganzoo.build import build_generator
from ganzoo.cli import main
from ganzoo.data import build_dataset
from ganzoo.errors import GanzooError
from ganzoo.evaluation.evaluate import evaluate_run
from ganzoo.evaluation.translate import translate_files
from ganzoo.inference_mode import generator_in_mode, resolve_mode
from ganzoo.nn.precise_bn import batchnorm_layers, recompute_bn_statistics
from ganzoo.run_dir import RunDir
from ganzoo.training.trainer import Trainer, train

BATCH1 = ("data.batch_size=1", "train.val_batches=4")


@pytest.fixture(scope="module")
def bn_run(tiny_data: Path, tmp_path_factory) -> Path:
    """A 6-step batch-1 BatchNorm U-Net run with an EMA (what ``auto`` runs per-sample)."""
    run = tmp_path_factory.mktemp("bn") / "run"
    recipe = tiny_recipe(tiny_data, *BATCH1, "train.max_steps=6", "optim.ema_decay=0.9")
    train(recipe, run_dir=run, progress=False)
    return run


def population_statistics(net: nn.Module, images: list[torch.Tensor]) -> list[tuple]:
    """Per BatchNorm layer: the mean over ``images`` (each alone, G in eval mode but BatchNorm
    normalising by the image's own statistics) of the per-image channel mean and unbiased
    variance of the layer's input, measured with forward hooks."""
    g = copy.deepcopy(net).eval()
    layers = batchnorm_layers(g)
    sums: dict[int, list[torch.Tensor]] = {i: [0, 0] for i in range(len(layers))}

    def hook(i: int):  # noqa: ANN202
        def record(module: nn.Module, inputs: tuple[torch.Tensor]) -> None:
            x = inputs[0].float()
            sums[i][0] = sums[i][0] + x.mean(dim=(0, 2, 3))
            sums[i][1] = sums[i][1] + x.var(dim=(0, 2, 3), unbiased=True)

        return record

    for i, m in enumerate(layers):
        m.train()
        m.register_forward_pre_hook(hook(i))
    with torch.no_grad():
        for x in images:
            g(x[None])
    return [(s[0] / len(images), s[1] / len(images)) for s in sums.values()]


def deviation(net: nn.Module, population: list[tuple]) -> float:
    """The largest |stored - population| mean, in population standard deviations, and the
    largest |log(stored var / population var)| over every channel of every layer."""
    worst = 0.0
    for m, (mean, var) in zip(batchnorm_layers(net), population):
        worst = max(worst, ((m.running_mean - mean).abs() / var.sqrt()).max().item())
        worst = max(worst, (m.running_var / var).log().abs().max().item())
    return worst


# -- the stored statistics -----------------------------------------------------------------------
def test_stored_statistics_are_one_train_forward_per_step(tiny_data: Path, tmp_path: Path):
    """Nothing but the training forward of G moves its running statistics: with validation and
    samples at every step, bf16 autocast and channels_last, each BatchNorm layer sees exactly one
    train-mode batch per step and its buffers are the momentum-0.1 average of those batches."""
    recipe = tiny_recipe(
        tiny_data,
        *BATCH1,
        "train.max_steps=5",
        "train.sample_every=1",
        "train.log_every=1",
        "train.precision=bf16",
        "train.channels_last=true",
    )
    seen: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    with Trainer(recipe, tmp_path / "run", progress=False) as trainer:
        layers = batchnorm_layers(trainer.g_module)

        def record(module: nn.Module, inputs: tuple[torch.Tensor]) -> None:
            if module.training and any(module is m for m in layers):
                x = inputs[0].float()
                seen.setdefault(id(module), []).append(
                    (x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=True))
                )

        for m in layers:
            m.register_forward_pre_hook(record)
        trainer.fit()
        for m in layers:
            stats = seen[id(m)]
            assert len(stats) == 5  # one train-mode forward per step, validation adds none
            mean, var = torch.zeros_like(m.running_mean), torch.ones_like(m.running_var)
            for batch_mean, batch_var in stats:
                mean = 0.9 * mean + 0.1 * batch_mean
                var = 0.9 * var + 0.1 * batch_var
            assert torch.allclose(m.running_mean, mean, rtol=1e-3, atol=1e-5)
            assert torch.allclose(m.running_var, var, rtol=1e-3, atol=1e-5)


def test_calibrated_training_stores_population_statistics(tiny_data: Path, tmp_path: Path):
    """``train.calibrate_bn``: the checkpoint's statistics are the population's (every training
    image, evaluation preprocessing), to within float rounding; the moving averages are not."""
    recipe = tiny_recipe(tiny_data, *BATCH1, "train.max_steps=12", "train.calibrate_bn=12")
    _, final = train(recipe, run_dir=tmp_path / "run", progress=False)
    ds = build_dataset(recipe.data, "train", train=False)
    images = [ds[(0, i)]["A"] for i in range(len(ds))]
    calibrated, _, _ = load_generator(final["checkpoint"])
    population = population_statistics(calibrated, images)
    assert deviation(calibrated, population) < 1e-3
    plain = tiny_recipe(tiny_data, *BATCH1, "train.max_steps=12")
    _, final = train(plain, run_dir=tmp_path / "plain", progress=False)
    moving, _, _ = load_generator(final["checkpoint"])
    # the same weights (calibration draws no random numbers), other statistics
    weights = {k: v for k, v in moving.state_dict().items() if "running" not in k}
    assert all(torch.equal(v, calibrated.state_dict()[k]) for k, v in weights.items())
    assert deviation(moving, population) > 0.05


def test_precise_bn_averages_the_batches_and_restores_the_layers() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.Dropout(0.5)).train()
    net[1].momentum = 0.3
    batches = [torch.randn(2, 2, 4, 4) * (k + 1) for k in range(3)]
    assert recompute_bn_statistics(net, iter(batches), max_images=5) == 5
    feats = [net[0](b).detach() for b in (batches[0], batches[1], batches[2][:1])]
    mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats]).mean(0)
    assert torch.allclose(net[1].running_mean, mean, atol=1e-6)
    assert torch.allclose(net[1].running_var, var, atol=1e-5)
    assert net[1].momentum == 0.3 and net.training and net[2].training
    before = net[1].running_mean.clone()

    def broken():  # noqa: ANN202
        yield batches[0]
        raise RuntimeError("a bad image")

    with pytest.raises(RuntimeError):
        recompute_bn_statistics(net, broken(), max_images=5)
    assert torch.equal(net[1].running_mean, before)  # put back


# -- ganzoo calibrate ----------------------------------------------------------------------------
def test_calibrate_writes_population_statistics_into_the_checkpoint(
    bn_run: Path, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    shutil.copytree(bn_run, run)
    checkpoint = sorted((run / "checkpoints").glob("*.pt"))[-1]
    before = torch.load(checkpoint, weights_only=True)
    assert main(["calibrate", str(run), "--images", "12", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "BatchNorm layers of G and its EMA copy over 12 train images" in out
    after = torch.load(checkpoint, weights_only=True)
    assert after["bn_calibration"] == {"images": 12, "split": "train"}
    for part in ("generator", "ema"):
        changed = {k for k in before[part] if not torch.equal(before[part][k], after[part][k])}
        assert changed and all(k.endswith(("running_mean", "running_var")) for k in changed)
    assert after["step"] == before["step"]
    assert all(
        torch.equal(v, after["discriminator"][k]) for k, v in before["discriminator"].items()
    )
    recipe = load_generator(checkpoint)[1]
    ds = build_dataset(recipe.data, "train", train=False)
    images = [ds[(0, i)]["A"] for i in range(len(ds))]
    for use_ema in (True, False):
        g, _, _ = load_generator(checkpoint, use_ema=use_ema)
        assert deviation(g, population_statistics(g, images)) < 1e-3
    assert not list(run.glob("checkpoints/.*"))  # no temporary file left


def test_calibrate_refusals_are_one_line(tiny_data: Path, bn_run: Path, tmp_path: Path, capsys):
    instance = tmp_path / "instance"
    recipe = tiny_recipe(
        tiny_data,
        "train.max_steps=1",
        "generator={name: unet, num_downs: 5, ngf: 8, norm: instance}",
    )
    train(recipe, run_dir=instance, progress=False)
    assert main(["calibrate", str(instance)]) == 2
    assert "G has no BatchNorm layers; there is nothing to calibrate" in capsys.readouterr().err
    assert main(["export", str(bn_run), "--out", str(tmp_path / "g.safetensors")]) == 0
    capsys.readouterr()
    assert main(["calibrate", str(tmp_path / "g.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "calibrate writes into a training checkpoint (.pt)" in err and err.count("\n") == 1
    assert main(["calibrate", str(bn_run), "--images", "0"]) == 2
    assert "--images 0: must be at least 1" in capsys.readouterr().err
    with RunDir(bn_run).lock():  # a training holds the run
        assert main(["calibrate", str(bn_run)]) == 2
    assert "is in use by another training" in capsys.readouterr().err


# -- the test-time mode ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (BATCH1, "per-sample"),
        (("data.batch_size=2",), "eval"),
        ((*BATCH1, "generator={name: unet, num_downs: 5, ngf: 8, norm: instance}"), "eval"),
        ((*BATCH1, "generator={name: unet, num_downs: 5, ngf: 8, norm: syncbatch}"), "eval"),
    ],
)
def test_auto_runs_per_sample_only_batchnorm_trained_at_batch_one(
    tiny_data: Path, overrides: tuple[str, ...], expected: str
) -> None:
    recipe = tiny_recipe(tiny_data, *overrides)
    chosen = resolve_mode(build_generator(recipe), recipe)
    assert chosen.requested == "auto" and chosen.name == expected
    assert chosen.describe().count("\n") == 0 and "auto: " in chosen.describe()
    for explicit in ("eval", "train"):
        assert resolve_mode(build_generator(recipe), recipe, explicit).name == explicit


def test_per_sample_outputs_depend_only_on_their_input(bn_run: Path) -> None:
    g, recipe, _ = load_generator(bn_run)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    chosen = resolve_mode(g, recipe)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad(), generator_in_mode(g, chosen) as net:
        together = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(3)])
        again = net(x)
    with torch.no_grad(), generator_in_mode(g, "eval") as net:
        running = net(x)
    assert torch.allclose(together, alone, atol=1e-6) and torch.equal(together, again)
    assert not torch.allclose(together, running, atol=1e-3)  # not the running statistics
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())
    assert not g.training


def test_every_caller_defaults_to_auto_and_says_which_mode(
    bn_run: Path, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    record = evaluate_run(bn_run, out_dir=tmp_path / "ev")
    assert record["mode"] == "auto" and record["mode_used"] == "per-sample"
    assert "trained at batch size 1" in record["mode_line"]
    # the trainer's last validation ran the same mode on the same pairs as ganzoo eval
    last = [json.loads(x) for x in (bn_run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in last if "val_l1" in r][-1]
    assert val["val_l1"] == pytest.approx(record["l1"], abs=1e-5)
    assert evaluate_run(bn_run, mode="eval", out_dir=tmp_path / "e")["l1"] != record["l1"]
    model = ganzoo.load(bn_run, device="cpu")
    assert model.mode == "auto" and model.inference.name == "per-sample"
    assert "mode: per-sample BatchNorm statistics" in repr(model)
    g, recipe, _ = load_generator(bn_run)
    files = sorted((tiny_data / "val").glob("*.png"))
    result = translate_files(g, recipe, files, tmp_path / "out")
    assert result.mode == "per-sample"
    assert main(["translate", str(bn_run), "-i", str(files[0]), "-o", str(tmp_path / "o")]) == 0
    assert "mode: per-sample BatchNorm statistics" in capsys.readouterr().out
    assert main(["eval", str(bn_run), "--mode", "eval", "--device", "cpu"]) == 0
    assert "mode: eval (BatchNorm running statistics, dropout off)" in capsys.readouterr().out
    with pytest.raises(GanzooError, match="use auto, eval or train"):
        resolve_mode(g, recipe, "test")
    # ablations: scored and drawn in auto by default
    assert EvalSettings().mode == "auto"
    _, _, drawn = translate_first({"base": bn_run}, "val", "auto", 2)
    a = torch.stack([build_dataset(recipe.data, "val", train=False)[(0, i)]["A"] for i in (0, 1)])
    with torch.no_grad(), generator_in_mode(g, resolve_mode(g, recipe)) as net:
        assert torch.allclose(drawn["base"], net(a), atol=1e-6)
