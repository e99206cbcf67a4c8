"""The trainer weighs and orders things as the papers' code does (issue: faithfulness audit).

Each test names the upstream line it follows; each failed on the trainer before the fix.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe
from torch import nn

from ganzoo.training.trainer import Trainer


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def recording(trainer: Trainer) -> list[torch.Tensor]:
    """Every input the D of ``trainer`` sees, in order."""
    seen: list[torch.Tensor] = []
    trainer.d_module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    return seen


def batches(trainer: Trainer, n: int):  # noqa: ANN201
    out = []
    epoch = 0
    while len(out) < n:
        out += list(trainer.train_batches.epoch(epoch, 0))
        epoch += 1
    return out[:n]


# 1. the image pool keeps (condition, fake) pairs --------------------------------------------
def test_the_image_pool_pairs_each_fake_with_its_own_condition(
    tiny_data: Path, tmp_path: Path
) -> None:
    # pix2pix: fake_AB_pool.query(torch.cat((real_A, fake_B), 1)); pix2pixHD:
    # fake_pool.query(torch.cat((input_label, fake_image), 1))
    recipe = tiny_recipe(tiny_data, "optim.pool_size=2", "data.batch_size=1", "train.max_steps=8")
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    seen = recording(trainer)
    stream = batches(trainer, 12)
    returned_old = 0
    for batch in stream:
        seen.clear()
        trainer.train_step(batch)
        fake_pair, real_pair = seen[0], seen[1]  # D's update: the fake pair first
        assert fake_pair.shape[1] == 6  # the pool returned a whole pair
        if not torch.equal(fake_pair[:, :3], real_pair[:, :3]):
            returned_old += 1  # a past fake, with the condition it was made from
            assert any(torch.equal(fake_pair[:, :3], b["A"]) for b in stream)
    assert returned_old > 0
    assert all(img.shape[1] == 6 for img in trainer.state.pool.images)
    trainer.close()


def test_the_gradient_penalty_interpolates_pairs_of_one_condition(
    tiny_data: Path, tmp_path: Path
) -> None:
    # with an image pool, D's fake pair may be an older one with another condition; the
    # penalty's interpolates must stay between a real pair and a fake of the same condition
    recipe = tiny_recipe(
        tiny_data,
        "loss.objective=wgan_gp",
        "discriminator.norm=none",
        "optim.pool_size=2",
        "data.batch_size=1",
    )
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    seen = recording(trainer)
    pooled = 0
    for batch in batches(trainer, 4):
        seen.clear()
        trainer.train_step(batch)
        fake_pair, real_pair, x_hat = seen[:3]  # the critic terms, then the penalty
        pooled += not torch.equal(fake_pair[:, :3], real_pair[:, :3])
        assert torch.allclose(x_hat[:, :3], real_pair[:, :3], atol=1e-6)
    assert pooled > 0  # the pool did hand back older pairs
    trainer.close()


# 9. D sees the fake pair first -------------------------------------------------------------
def test_the_discriminator_sees_the_fake_pair_before_the_real_one(
    tiny_data: Path, tmp_path: Path
) -> None:
    # pix2pix backward_D and pix2pixHD forward: pred_fake, then pred_real (BatchNorm running
    # statistics depend on it)
    trainer = Trainer(tiny_recipe(tiny_data), tmp_path / "run", progress=False)
    seen = recording(trainer)
    (batch,) = batches(trainer, 1)
    trainer.train_step(batch)
    real_pair = torch.cat([batch["A"], batch["B"]], 1)
    assert len(seen) == 3  # D(fake), D(real) for D's update; D(fake) for G's
    assert not torch.equal(seen[0], real_pair) and torch.equal(seen[1], real_pair)
    trainer.close()


# 2. multi-scale GAN terms are summed, multi-depth ones averaged -----------------------------
@pytest.mark.parametrize(
    "discriminator, reduction",
    [
        ("{name: multiscale, num_d: 3, n_layers: 1, ndf: 4}", "sum"),  # pix2pixHD GANLoss
        ("{name: multiscale, num_d: 3, n_layers: 1, ndf: 4, reduction: mean}", "mean"),  # SPADE
        ("{name: multidepth, branches: 2, ndf: 4}", "mean"),  # Lines2Face main.py and test.py
    ],
)
def test_branch_losses_combine_as_each_family_does(
    tiny_data: Path, tmp_path: Path, discriminator: str, reduction: str
) -> None:
    recipe = tiny_recipe(
        tiny_data,
        f"discriminator={discriminator}",
        "data.load_size=100",
        "data.crop_size=96",
        "generator.num_downs=5",
    )
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    assert trainer.update.reduction == reduction
    (batch,) = batches(trainer, 1)
    g_before = copy.deepcopy(trainer.g_module)  # G's loss uses G before, D after D's update
    losses = trainer.train_step(batch)
    with torch.no_grad():
        out = trainer.d_module(torch.cat([batch["A"], g_before(batch["A"])], 1))
    per_branch = torch.stack([trainer.update.objective.g_loss(branch[-1]) for branch in out])
    assert len(out) > 1
    expected = per_branch.sum() if reduction == "sum" else per_branch.mean()
    assert losses["g_gan"].item() == pytest.approx(expected.item(), rel=1e-5)
    trainer.close()


# 3. WGAN-GP's lambda is the paper's ----------------------------------------------------------
def test_wgan_gp_adds_the_penalty_to_the_unhalved_critic_loss(
    tiny_data: Path, tmp_path: Path
) -> None:
    # Gulrajani et al.: L = D(fake) - D(real) + lambda * GP, lambda 10
    recipe = tiny_recipe(
        tiny_data, "loss.objective=wgan_gp", "discriminator.norm=none", "train.max_steps=1"
    )
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    (batch,) = batches(trainer, 1)
    losses = trainer.train_step(batch)
    total = losses["d_real"] + losses["d_fake"] + losses["d_penalty"]
    assert losses["d"].item() == pytest.approx(total.item(), rel=1e-6)
    assert trainer.update.objective.penalty_weight == 10.0
    trainer.close()


# 8. staged training: the global part frozen, then everything; init from another run ----------
def test_pix2pixhd_local_trains_the_enhancer_alone_then_everything(
    tiny_data: Path, tmp_path: Path
) -> None:
    gen = (
        "generator={name: pix2pixhd_local, ngf: 4, n_downsample_global: 2, "
        "n_blocks_global: 1, n_blocks_local: 1}"
    )
    common = (gen, "data.load_size=36", "data.crop_size=32", "data.batch_size=6")
    # a trained global generator of twice the width, as pix2pixHD's 512p stage
    global_run = tmp_path / "global"
    from ganzoo.training.trainer import train

    train(
        tiny_recipe(
            tiny_data,
            "generator={name: pix2pixhd_global, ngf: 8, n_downsample: 2, n_blocks: 1}",
            "data.load_size=20",
            "data.crop_size=16",
            "train.max_steps=2",
        ),
        run_dir=global_run,
        progress=False,
    )
    # 12 pairs at batch 6: 2 steps per epoch; the enhancer alone for 1 epoch
    recipe = tiny_recipe(
        tiny_data,
        *common,
        "optim.train_only={generator: ['model1_*'], epochs: 1}",
        f"train.init_from={global_run}",
        "train.max_steps=4",
    )
    trainer = Trainer(recipe, tmp_path / "local", progress=False)
    from ganzoo.artifacts.checkpoint import latest_checkpoint, load_checkpoint

    global_g = load_checkpoint(latest_checkpoint(global_run / "checkpoints"))["generator"]
    start = {k: v.clone() for k, v in trainer.g_module.state_dict().items()}
    for key in ("model.1.weight", "model.4.weight"):  # the global part starts trained
        assert torch.equal(start[key], global_g[key])
    assert not torch.equal(start["model1_1.1.weight"], global_g["model.1.weight"][:4])
    for batch in batches(trainer, 2):  # epoch 0: the restricted phase
        trainer.state.begin_epoch(0, fresh=False)
        trainer.train_step(batch)
    mid = trainer.g_module.state_dict()
    assert torch.equal(mid["model.1.weight"], start["model.1.weight"])  # frozen
    assert not torch.equal(mid["model1_1.1.weight"], start["model1_1.1.weight"])  # trained
    d_moments = {k: v.clone() for k, v in trainer.state.opt_d.state_dict()["state"][0].items()}
    trainer.state.begin_epoch(1, fresh=True)  # the phase ends: G's Adam restarts, all parameters
    assert not trainer.state.opt_g.state
    kept = trainer.state.opt_d.state_dict()["state"][0]  # D's Adam goes on (never rebuilt)
    assert all(torch.equal(kept[k], v) for k, v in d_moments.items())
    trainer.train_step(batches(trainer, 1)[0])
    assert not torch.equal(trainer.g_module.state_dict()["model.1.weight"], start["model.1.weight"])
    trainer.close()


def test_a_stage_end_restarts_g_adam_and_keeps_d_adam(tiny_data: Path, tmp_path: Path) -> None:
    # pix2pixHD models/pix2pixHD_model.py update_fixed_params: a new optimizer_G only
    recipe = tiny_recipe(tiny_data, "optim.train_only={generator: ['*'], epochs: 1}")
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    trainer.state.begin_epoch(0, fresh=True)
    for batch in batches(trainer, 2):
        trainer.train_step(batch)
    d_param = trainer.state.opt_d.param_groups[0]["params"][0]  # (a view of D's first weight)
    d_before = {k: v.clone() for k, v in trainer.state.opt_d.state[d_param].items()}
    trainer.state.begin_epoch(1, fresh=True)
    assert not trainer.state.opt_g.state
    d_after = trainer.state.opt_d.state[d_param]
    assert int(d_after["step"]) == 2
    assert all(torch.equal(d_after[k], v) for k, v in d_before.items())
    trainer.close()


def test_init_from_puts_each_discriminator_scale_on_its_resolution(
    tiny_data: Path, tmp_path: Path
) -> None:
    # pix2pixHD networks.py MultiscaleDiscriminator.forward feeds the full resolution to
    # scale{num_D-1}: --load_pretrain by name pairs a 2-scale D at 16 with a 3-scale D at 32 as
    # 16 -> 16 and 8 -> 8, i.e. ganzoo's scales.0 -> scales.1 and scales.1 -> scales.2
    from ganzoo.artifacts.checkpoint import latest_checkpoint, load_checkpoint
    from ganzoo.training.trainer import train

    g = "generator={name: unet, num_downs: 4, ngf: 4, norm: batch}"
    d = "discriminator={{name: multiscale, num_d: {}, n_layers: 1, ndf: 4}}"
    small = ("data.load_size=20", "data.crop_size=16", "train.max_steps=1")
    train(tiny_recipe(tiny_data, g, d.format(2), *small), run_dir=tmp_path / "a", progress=False)
    source = load_checkpoint(latest_checkpoint(tmp_path / "a" / "checkpoints"))["discriminator"]
    recipe = tiny_recipe(tiny_data, g, d.format(3), f"train.init_from={tmp_path / 'a'}")
    trainer = Trainer(recipe, tmp_path / "b", progress=False)
    own = trainer.d_module.state_dict()
    for key, value in source.items():
        s = int(key.split(".")[1])
        moved = key.replace(f"scales.{s}.", f"scales.{s + 1}.", 1)
        assert torch.equal(own[moved], value), key
    full = [k for k in own if k.startswith("scales.0.") and k.endswith("weight")]
    assert full and not any(torch.equal(own[k], source[k]) for k in full)  # its own init
    trainer.close()
    # the same sizes: each scale stays where it is; unknown sizes: paired from the coarsest
    net = trainer.d_module
    same = net.weights_by_resolution({"scales.1.x": 1, "scales.0.x": 0}, (32, 32))
    assert same == {"scales.0.x": 0, "scales.1.x": 1}
    assert net.weights_by_resolution({"scales.0.x": 0}, None) == {"scales.2.x": 0}
    assert net.weights_by_resolution({"scales.0.x": 0}, (24, 24)) == {}  # no such resolution


def test_lines2face_stage_two_trains_the_attention_and_the_last_layer_only(
    tiny_data: Path, tmp_path: Path
) -> None:
    gen = "generator={name: lines2face, ngf: 2, n_blocks: 1, dilation: 1}"
    sizes = (
        "data.load_size=128",
        "data.crop_size=128",
        "discriminator={name: multidepth, branches: 2, ndf: 2}",
    )
    from ganzoo.training.trainer import train

    train(tiny_recipe(tiny_data, gen, *sizes, "train.max_steps=1"), run_dir=tmp_path / "one")
    attention = "[{block: conditional_self_attention, resolution: 64, reduction: 2}]"
    recipe = tiny_recipe(
        tiny_data,
        gen,
        *sizes,
        f"generator.attention={attention}",
        "optim.train_only={generator: ['attention.*', 'out.*'], discriminator: []}",
        f"train.init_from={tmp_path / 'one'}",
    )
    trainer = Trainer(recipe, tmp_path / "two", progress=False)
    g0 = {k: v.detach().clone() for k, v in trainer.g_module.named_parameters()}
    d0 = {k: v.detach().clone() for k, v in trainer.d_module.named_parameters()}
    trainer.state.begin_epoch(0, fresh=True)
    losses = trainer.train_step(batches(trainer, 1)[0])
    assert "d" not in losses  # D is not updated in this stage
    g1 = dict(trainer.g_module.named_parameters())
    d1 = dict(trainer.d_module.named_parameters())
    assert all(torch.equal(d0[k], d1[k]) for k in d0)
    changed = {k for k in g0 if not torch.equal(g0[k], g1[k])}
    assert changed and all(k.startswith(("attention.", "out.")) for k in changed)
    assert any(k.startswith("attention.") for k in changed)
    trainer.close()


def test_init_from_names_what_it_took(tiny_data: Path, tmp_path: Path, capsys) -> None:
    from ganzoo.errors import TrainingError
    from ganzoo.training.trainer import train

    train(tiny_recipe(tiny_data, "train.max_steps=1"), run_dir=tmp_path / "a", progress=False)
    trainer = Trainer(tiny_recipe(tiny_data, f"train.init_from={tmp_path / 'a'}"), tmp_path / "b")
    assert "initialised from" in capsys.readouterr().out
    trainer.close()
    other = "generator={name: resnet, n_blocks: 1, ngf: 8}"
    with pytest.raises(TrainingError, match="none of its generator weights fit"):
        Trainer(tiny_recipe(tiny_data, other, f"train.init_from={tmp_path / 'a'}"), tmp_path / "c")


def test_pixel_and_pix2pixhd_details(tmp_path: Path) -> None:
    from ganzoo import registry

    # PixelDiscriminator: the last conv's bias=use_bias (a bias with instance norm)
    pixel = registry.create("discriminator", "pixel", in_channels=6, norm="instance")
    convs = [m for m in pixel.modules() if isinstance(m, nn.Conv2d)]
    assert [c.bias is not None for c in convs] == [True, True, True]
    assert sum(p.numel() for p in pixel.parameters()) == 448 + 8_320 + 129
    # pix2pixHD's weights_init leaves PyTorch's default conv biases
    torch.manual_seed(0)
    multiscale = registry.create("discriminator", "multiscale", in_channels=6, ndf=8)
    biases = [m.bias for m in multiscale.modules() if isinstance(m, nn.Conv2d)]
    assert all(b is not None and torch.count_nonzero(b) > 0 for b in biases)
